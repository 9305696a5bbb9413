// The int8 GEMM driver: out[ch, col] = requant_ch(sum_k W[ch, k] * (X[k, col]
// - x_zp)), exact int32 sums, one requantization per output channel (QRow),
// 8-bit results. Serves kiln's QConv (W = the weights, X = the im2col view of
// the image) and QGemm (W = the transposed weight matrix, X = the
// activations transposed), so output channels are always the tile's rows.
//
// W is packed once at compile time into panels of the kernel set's operand
// form (qkernels.h: int16 pairs, or byte quads with the activation zero point
// folded into the biases by fold_x_zero_point()); X is packed per task from
// its 8-bit source through a MatrixView (gemm.h). No K blocking: int32 sums
// are exact in any order, and a whole-K panel (at most 4608 elements in
// ResNets) stays in L2. Results do not depend on the thread count. Tested in
// tests/unit/test_cpu_quant.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/qkernels.h"
#include "core/thread_pool.h"

namespace kiln::cpu {

// W [m x k] as ceil(m/mr) panels of [groups() / gb][mr][gb][kg] elements
// (int16 pairs or int8 quads), zero-padded.
struct QPacked {
  std::vector<uint8_t> data;
  std::vector<int32_t> row_sum;  // quads: sum over k of each row (fold_x_zero_point)
  int64_t m = 0, k = 0;
  int mr = 0, kg = 2, esize = 2, gb = 1;
  int64_t groups() const { return ((k + kg - 1) / kg + gb - 1) / gb * gb; }
  int64_t panel_bytes() const { return groups() * kg * mr * esize; }
  const void* panel(int64_t p) const { return data.data() + p * panel_bytes(); }
};
// w(r, c) = w[r * row_stride + c * col_stride] for r < m, c < k, in the form
// of `ks` (int16 weights: pair sets only).
QPacked qpack_w(const int8_t* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, const QKernels& ks);
QPacked qpack_w(const int16_t* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, const QKernels& ks);
// Quads: rows[r].bias -= zp' * row_sum[r] (wrapping), zp' = x_zp, or x_zp +
// 128 for int8 activations (packed with the sign bit flipped); r < w.m. A
// no-op for pairs, which subtract the zero point while packing.
void fold_x_zero_point(const QPacked& w, int32_t x_zp, bool x_signed, QRow* rows);

struct QGemmJob {
  int64_t m = 0, n = 0, k = 0;
  const QPacked* w = nullptr;
  const void* x = nullptr;  // 8-bit source of X through x_view (k rows, n columns)
  const MatrixView* x_view = nullptr;
  bool x_signed = false;
  int32_t x_zp = 0;
  const QRow* rows = nullptr;  // m requantizations
  void* out = nullptr;          // element (ch, col) at out[ch * ld_ch + col * ld_col]
  int64_t ld_ch = 0, ld_col = 1;
  bool out_signed = false;
};

void qgemm(const QGemmJob* jobs, int64_t count, const QKernels& ks, ThreadPool* pool);

}  // namespace kiln::cpu
