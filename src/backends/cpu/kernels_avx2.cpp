// The AVX2+FMA kernel set (this file is compiled with -mavx2 -mfma; only
// called after cpu_info() reported both). GEMM microkernel 6x16: 12 ymm
// accumulators, two B loads and one A broadcast per k step, the tile that
// fills AVX2's 16 registers (BLIS' Haswell kernel has the same shape).
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/kernel_set.h"

namespace kiln::cpu {
namespace avx2 {
#include "backends/cpu/kernels_impl.inc"

// Stores one row of a tile (two vectors) with the epilogue applied.
static inline __attribute__((always_inline)) void store_row(__m256 lo, __m256 hi, float* row, bool accumulate,
                                                            const TileEpilogue* e, int i) {
  if (accumulate) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(row));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
  }
  if (e) {
    if (e->bias_row) {
      const __m256 b = _mm256_set1_ps(e->bias_row[i]);
      lo = _mm256_add_ps(lo, b);
      hi = _mm256_add_ps(hi, b);
    }
    if (e->bias_col) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(e->bias_col));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(e->bias_col + 8));
    }
    if (e->residual) {
      const float* r = e->residual + i * e->ldr;
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(r));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(r + 8));
    }
    if (e->act == Act::kRelu) {
      lo = _mm256_max_ps(lo, _mm256_setzero_ps());
      hi = _mm256_max_ps(hi, _mm256_setzero_ps());
    } else if (e->act == Act::kClip) {
      const __m256 l = _mm256_set1_ps(e->lo), h = _mm256_set1_ps(e->hi);
      lo = _mm256_min_ps(_mm256_max_ps(lo, l), h);
      hi = _mm256_min_ps(_mm256_max_ps(hi, l), h);
    }
  }
  _mm256_storeu_ps(row, lo);
  _mm256_storeu_ps(row + 8, hi);
}

static void gemm_ukernel_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate,
                                const TileEpilogue* e) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    a += 6;
    b += 16;
  }
  store_row(c00, c01, c + 0 * ldc, accumulate, e, 0);
  store_row(c10, c11, c + 1 * ldc, accumulate, e, 1);
  store_row(c20, c21, c + 2 * ldc, accumulate, e, 2);
  store_row(c30, c31, c + 3 * ldc, accumulate, e, 3);
  store_row(c40, c41, c + 4 * ldc, accumulate, e, 4);
  store_row(c50, c51, c + 5 * ldc, accumulate, e, 5);
}
}  // namespace avx2

const KernelSet& kernel_set_avx2() {
  static const KernelSet set = {Isa::kAvx2,
                                "gemm_f32_avx2_6x16",
                                6,
                                16,
                                &avx2::gemm_ukernel_6x16,
                                &avx2::activate_impl,
                                &avx2::depthwise_impl,
                                &avx2::softmax_rows_impl,
                                &avx2::layernorm_rows_impl,
                                {&avx2::winograd_input_panel_impl<16, 4>, &avx2::winograd_input_panel_impl<16, 2>},
                                {&avx2::winograd_output_panel_impl<16, 4>, &avx2::winograd_output_panel_impl<16, 2>}};
  return set;
}

}  // namespace kiln::cpu
