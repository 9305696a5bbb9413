// The fp32 GEMM driver: C[m x n] = A[m x k] . B[k x n], then an epilogue
// (bias per row or per column, a residual add, an activation) on each tile
// while it is still in cache. One driver serves every matrix product of the
// CPU backend: Gemm/MatMul (A = activations, B = weights packed once at
// compile time) and convolution as implicit GEMM (A = weights packed once,
// B = the image gathered through index tables, no im2col buffer).
//
// Operands are described by offset tables: element (r, c) of a source is
// base[row_off[r] + col_off[c]]. A dense row-major matrix has row_off = r *
// ld, col_off = c; a transposed one swaps them; the im2col view of an image
// has row_off = (channel, ky, kx) offsets and col_off = (oy, ox) offsets.
// Blocking: k in blocks of kKc (fixed, so results are bit-identical for any
// thread count); tiles of the output split across the pool.
// Tested in tests/unit/test_cpu_kernels.cpp; timed in bench/bench_kernels.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cpu/kernel_set.h"
#include "core/thread_pool.h"

namespace kiln::cpu {

// K block: 256 floats of a 6-row A panel (6 KiB) and of a 16-column B panel
// (16 KiB) stay in a 32 KiB L1 through the inner loop.
inline constexpr int64_t kKc = 256;

// A matrix source through offset tables (see above); shared by many jobs.
struct MatrixView {
  std::vector<int64_t> row_off, col_off;
  static MatrixView dense(int64_t rows, int64_t cols, int64_t ld, bool transposed = false);
};

// An operand packed once into the microkernel's panels: A as [ceil(m/mr)]
// panels of [k][mr], B as [ceil(n/nr)] panels of [k][nr]; zero-padded.
struct Packed {
  std::vector<float> data;
  int64_t rows = 0, cols = 0;  // of the logical matrix
  int panel = 0;               // mr (A) or nr (B)
};
Packed pack_a(const float* base, const MatrixView& v, int mr);
Packed pack_b(const float* base, const MatrixView& v, int nr);

struct Epilogue {
  const float* bias = nullptr;  // per row (bias_per_row) or per column of C
  bool bias_per_row = true;
  const float* residual = nullptr;  // same layout as C (row stride ldc)
  Act act = Act::kNone;
  float alpha = 0, beta = 0;
};

// One product. Each operand is either packed (a_packed / b_packed) or read
// through a view from a base pointer.
struct GemmJob {
  int64_t m = 0, n = 0, k = 0;
  const Packed* a_packed = nullptr;
  const float* a = nullptr;
  const MatrixView* a_view = nullptr;
  const Packed* b_packed = nullptr;
  const float* b = nullptr;
  const MatrixView* b_view = nullptr;
  float* c = nullptr;
  int64_t ldc = 0;
  Epilogue epi;
};

// Runs the jobs (independent products: images of a batch, groups, heads)
// with their tiles spread over the pool (nullptr: this thread only).
void gemm_f32(const GemmJob* jobs, int64_t count, const KernelSet& ks, ThreadPool* pool);

}  // namespace kiln::cpu
