// The int8 GEMM driver: out[ch, col] = requant_ch(sum_k W[ch, k] * (X[k, col]
// - x_zp)), exact int32 sums, one requantization per output channel (QRow),
// 8-bit results. Serves kiln's QConv (W = the weights, X = the im2col view of
// the image) and QGemm (W = the transposed weight matrix, X = the
// activations transposed), so output channels are always the tile's rows.
//
// W is packed once at compile time into int16 pair panels; X is packed per
// task from its 8-bit source through a MatrixView (gemm.h) with the zero point
// subtracted. No K blocking: int32 sums are exact in any order, and a whole-K
// panel (at most 4608 pairs in ResNets) stays in L2. Results do not depend on
// the thread count. Tested in tests/unit/test_cpu_quant.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/qkernels.h"
#include "core/thread_pool.h"

namespace kiln::cpu {

// W [m x k] as ceil(m/mr) panels of [ceil(k/2)][mr][2] int16, zero-padded.
struct QPacked {
  std::vector<int16_t> data;
  int64_t m = 0, k = 0;
  int mr = 0;
  int64_t panel_stride() const { return (k + 1) / 2 * 2 * mr; }
};
// w(r, c) = w[r * row_stride + c * col_stride] for r < m, c < k.
QPacked qpack_w(const int8_t* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, int mr);
QPacked qpack_w(const int16_t* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, int mr);

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
