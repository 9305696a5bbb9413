// The AVX2+FMA kernel set (this file is compiled with -mavx2 -mfma; only
// called after cpu_info() reported both). GEMM microkernel 6x16: 12 ymm
// accumulators, two B loads and one A broadcast per k step, the tile that
// fills AVX2's 16 registers (BLIS' Haswell kernel has the same shape).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "backends/cpu/kernel_set.h"

namespace kiln::cpu {
namespace avx2 {
#include "backends/cpu/kernels_impl.inc"
#include "backends/cpu/kernels_ymm.inc"

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

static void gemm_ukernel_6x16(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                              bool accumulate, const TileEpilogue* e, int rows) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    fma_row(a + 0, b0, b1, c00, c01);
    fma_row(a + 1, b0, b1, c10, c11);
    fma_row(a + 2, b0, b1, c20, c21);
    fma_row(a + 3, b0, b1, c30, c31);
    fma_row(a + 4, b0, b1, c40, c41);
    fma_row(a + 5, b0, b1, c50, c51);
    a += 6;
    b += ldb;
  }
  store_row(c00, c01, c + 0 * ldc, accumulate, e, 0);
  if (rows > 1) store_row(c10, c11, c + 1 * ldc, accumulate, e, 1);
  if (rows > 2) store_row(c20, c21, c + 2 * ldc, accumulate, e, 2);
  if (rows > 3) store_row(c30, c31, c + 3 * ldc, accumulate, e, 3);
  if (rows > 4) store_row(c40, c41, c + 4 * ldc, accumulate, e, 4);
  if (rows > 5) store_row(c50, c51, c + 5 * ldc, accumulate, e, 5);
}
// The left half of the 6x16 tile: one B vector and six accumulators per k.
static void gemm_ukernel_6x8(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  // Named accumulators: as an array GCC kept them in memory, a store per FMA.
  __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), c2 = _mm256_setzero_ps();
  __m256 c3 = _mm256_setzero_ps(), c4 = _mm256_setzero_ps(), c5 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 0), b0, c0);
    c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 1), b0, c1);
    c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 2), b0, c2);
    c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 3), b0, c3);
    c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 4), b0, c4);
    c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a + 5), b0, c5);
    a += 6;
    b += 16;
  }
  const __m256 acc[6] = {c0, c1, c2, c3, c4, c5};
  for (int i = 0; i < 6; ++i)
    _mm256_storeu_ps(c + i * ldc, accumulate ? _mm256_add_ps(acc[i], _mm256_loadu_ps(c + i * ldc)) : acc[i]);
}

// The narrow tail (KernelSet::gemm_ukernel_narrow): lanes 0..5 of a vector
// are the tile's six rows (A's panel row, 6 floats, loaded as 8), one
// accumulator per column and k phase: KP phases keep KP FMAs in flight on a
// single column (one chain waited out the FMA latency every k). The two
// lanes past the row are never stored; the last k rows load masked, so that
// nothing past the panel is read.
template <int COLS, int KP>
static void gemm_narrow_6(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                          bool accumulate, int rows) {
  static_assert(COLS * KP <= 8, "accumulators");
  __m256 acc[KP][COLS];
#pragma GCC unroll 4
  for (int p = 0; p < KP; ++p)
#pragma GCC unroll 4
    for (int j = 0; j < COLS; ++j) acc[p][j] = _mm256_setzero_ps();
  int64_t k = 0;
  // Whole loads while the load of k + KP - 1 (8 floats at 6 (k + KP - 1))
  // ends inside the panel's 6 kc floats.
  for (; k + KP + 1 <= kc; k += KP) {
#pragma GCC unroll 4
    for (int p = 0; p < KP; ++p) {
      const __m256 av = _mm256_loadu_ps(a + (k + p) * 6);
#pragma GCC unroll 4
      for (int j = 0; j < COLS; ++j)
        acc[p][j] = _mm256_fmadd_ps(av, _mm256_broadcast_ss(b + (k + p) * ldb + j), acc[p][j]);
    }
  }
  const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
  for (; k < kc; ++k) {
    const __m256 av = _mm256_maskload_ps(a + k * 6, six);
#pragma GCC unroll 4
    for (int j = 0; j < COLS; ++j) acc[0][j] = _mm256_fmadd_ps(av, _mm256_broadcast_ss(b + k * ldb + j), acc[0][j]);
  }
  // Fully unrolled, so that the accumulators stay registers (a loop over
  // them at run time kept the array in memory, a store per FMA).
  alignas(32) float v[COLS][8];
#pragma GCC unroll 4
  for (int j = 0; j < COLS; ++j) {
    __m256 s = acc[0][j];
#pragma GCC unroll 4
    for (int p = 1; p < KP; ++p) s = _mm256_add_ps(s, acc[p][j]);
    _mm256_store_ps(v[j], s);
  }
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < COLS; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + v[j][i] : v[j][i];
}
static void gemm_ukernel_narrow_6(int64_t kc, const float* a, const float* b, int64_t ldb, int cols, float* c,
                                  int64_t ldc, bool accumulate, int rows) {
  switch (cols) {
    case 1: gemm_narrow_6<1, 4>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    case 2: gemm_narrow_6<2, 4>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    case 3: gemm_narrow_6<3, 2>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    default: gemm_narrow_6<4, 2>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
  }
}

}  // namespace avx2

const KernelSet& kernel_set_avx2() {
  static const KernelSet set = {Isa::kAvx2,
                                "gemm_f32_avx2_6x16",
                                6,
                                16,
                                &avx2::gemm_ukernel_6x16,
                                &avx2::gemm_ukernel_6x8,
                                &avx2::gemm_ukernel_narrow_6,
                                4,
                                &avx2::activate_impl,
                                &avx2::depthwise_impl,
                                &avx2::depthwise8_impl,
                                &avx2::softmax_rows_impl,
                                &avx2::layernorm_rows_impl,
                                {&avx2::winograd_input_panel_f4<16>, &avx2::winograd_input_panel_impl<16, 2>},
                                {&avx2::winograd_output_panel_impl<16, 4>, &avx2::winograd_output_panel_impl<16, 2>},
                                &avx2::winograd_store4<16>,
                                &avx2::conv_direct_6x16,
                                6,
                                16,
                                nullptr,
                                0,
                                0,
                                false};
  return set;
}

}  // namespace kiln::cpu
