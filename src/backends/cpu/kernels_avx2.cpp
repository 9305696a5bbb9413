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

// One row of a 6x16 tile: a's float broadcast against the two B vectors.
static inline __attribute__((always_inline)) void fma_row(const float* a, __m256 b0, __m256 b1, __m256& lo,
                                                          __m256& hi) {
  const __m256 av = _mm256_broadcast_ss(a);
  lo = _mm256_fmadd_ps(av, b0, lo);
  hi = _mm256_fmadd_ps(av, b1, hi);
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

// 8x8 transpose of r[0..7] (row i = r[i]) in place: r[k] becomes column k.
static inline __attribute__((always_inline)) void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// B^T along one axis for 6 vectors.
static inline __attribute__((always_inline)) void bt6(const __m256 d[6], __m256 o[6]) {
  const __m256 c4 = _mm256_set1_ps(4.0f), c5 = _mm256_set1_ps(5.0f), c2 = _mm256_set1_ps(2.0f);
  const __m256 d4_d2 = _mm256_sub_ps(d[4], d[2]);   // d4 - d2
  const __m256 d3_d1 = _mm256_sub_ps(d[3], d[1]);   // d3 - d1
  o[0] = _mm256_add_ps(_mm256_fnmadd_ps(c5, d[2], _mm256_mul_ps(c4, d[0])), d[4]);
  o[1] = _mm256_fnmadd_ps(c4, _mm256_add_ps(d[1], d[2]), _mm256_add_ps(d[3], d[4]));
  o[2] = _mm256_fmadd_ps(c4, _mm256_sub_ps(d[1], d[2]), _mm256_sub_ps(d[4], d[3]));
  o[3] = _mm256_fmadd_ps(c2, d3_d1, d4_d2);
  o[4] = _mm256_fnmadd_ps(c2, d3_d1, d4_d2);
  o[5] = _mm256_add_ps(_mm256_fnmadd_ps(c5, d[3], _mm256_mul_ps(c4, d[1])), d[5]);
}

// F(4x4) input transform with the 16 tiles in two 8-lane halves: each tile's
// patch row is loaded as 8 floats (2 past the patch: the caller leaves slack
// after the image) and 8 tiles' rows are transposed at once, instead of 36
// scalar loads per tile (the template in kernels_impl.inc).
static void winograd_input_panel_f4(const float* img, int64_t plane, int64_t wp, const int64_t* tile_off, int count,
                                    int64_t c, float* v, int64_t xs) {
  for (int64_t ci = 0; ci < c; ++ci) {
    const float* base = img + ci * plane;
    for (int half = 0; half < 2; ++half) {
      __m256 d[6][6];  // d[row][column], lanes = 8 tiles
      for (int r = 0; r < 6; ++r) {
        __m256 rows[8];
        for (int j = 0; j < 8; ++j) {
          const int jj = half * 8 + j;
          rows[j] = _mm256_loadu_ps(base + tile_off[jj < count ? jj : 0] + r * wp);
        }
        transpose8(rows);
        for (int s = 0; s < 6; ++s) d[r][s] = rows[s];
      }
      __m256 t[6][6];  // t[i][s] = (B^T d)[i][s]
      for (int s = 0; s < 6; ++s) {
        __m256 col[6] = {d[0][s], d[1][s], d[2][s], d[3][s], d[4][s], d[5][s]}, o[6];
        bt6(col, o);
        for (int i = 0; i < 6; ++i) t[i][s] = o[i];
      }
      for (int i = 0; i < 6; ++i) {
        __m256 o[6];
        bt6(t[i], o);
        for (int s = 0; s < 6; ++s) _mm256_storeu_ps(v + (i * 6 + s) * xs + ci * 16 + half * 8, o[s]);
      }
    }
  }
}

// F(4x4) outputs of 16 tiles (y[p * 4 + q][lane]) stored as 4-float rows:
// for each half of 8 lanes and output row p, the 4 vectors y[p][0..3] are
// transposed so that each tile's row is one 128-bit value.
static void winograd_store4(const float* y, int count, const int64_t* at, const bool* whole, const float* res,
                            float* out, int64_t ow, Act act, float lo, float hi) {
  const __m128 vlo = _mm_set1_ps(lo), vhi = _mm_set1_ps(hi), zero = _mm_setzero_ps();
  for (int half = 0; half < 2 && half * 8 < count; ++half)
    for (int p = 0; p < 4; ++p) {
      const float* yp = y + p * 4 * 16 + half * 8;
      const __m256 y0 = _mm256_loadu_ps(yp), y1 = _mm256_loadu_ps(yp + 16);
      const __m256 y2 = _mm256_loadu_ps(yp + 32), y3 = _mm256_loadu_ps(yp + 48);
      const __m256 t0 = _mm256_unpacklo_ps(y0, y1), t1 = _mm256_unpackhi_ps(y0, y1);
      const __m256 t2 = _mm256_unpacklo_ps(y2, y3), t3 = _mm256_unpackhi_ps(y2, y3);
      const __m256 u[4] = {_mm256_shuffle_ps(t0, t2, 0x44), _mm256_shuffle_ps(t0, t2, 0xEE),
                           _mm256_shuffle_ps(t1, t3, 0x44), _mm256_shuffle_ps(t1, t3, 0xEE)};
      for (int k = 0; k < 8; ++k) {  // lane k of this half: u[k % 4], 128-bit half k / 4
        const int j = half * 8 + k;
        if (j >= count || !whole[j]) continue;
        __m128 v = k < 4 ? _mm256_castps256_ps128(u[k]) : _mm256_extractf128_ps(u[k - 4], 1);
        const int64_t o = at[j] + p * ow;
        if (res) v = _mm_add_ps(v, _mm_loadu_ps(res + o));
        if (act == Act::kRelu) v = _mm_max_ps(v, zero);
        else if (act == Act::kClip) v = _mm_min_ps(_mm_max_ps(v, vlo), vhi);
        _mm_storeu_ps(out + o, v);
      }
    }
}

// Direct convolution tile (KernelSet::conv_direct): 6 output pixels x 16
// output channels in the 6x16 microkernel's 12 accumulators, each pixel's
// input broadcast from where it lies in the padded image (px[i] + koff[t]),
// so that a strided convolution needs no packed copy of its image (the
// stride-2 gather was 15-21% of such layers' time). The tile is transposed
// in registers (pixels to lanes) and each output channel's 6 pixels stored
// with a lane mask.
static void conv_direct_6x16(int64_t k, const float* w, const int64_t* koff, const float* const* px, float* out,
                             int64_t plane, int ocv, int pv, const float* bias, Act act, float lo, float hi) {
  const float *p0 = px[0], *p1 = px[1], *p2 = px[2], *p3 = px[3], *p4 = px[4], *p5 = px[5];
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t t = 0; t < k; ++t) {
    const int64_t o = koff[t];
    const __m256 b0 = _mm256_loadu_ps(w), b1 = _mm256_loadu_ps(w + 8);
    fma_row(p0 + o, b0, b1, c00, c01);
    fma_row(p1 + o, b0, b1, c10, c11);
    fma_row(p2 + o, b0, b1, c20, c21);
    fma_row(p3 + o, b0, b1, c30, c31);
    fma_row(p4 + o, b0, b1, c40, c41);
    fma_row(p5 + o, b0, b1, c50, c51);
    w += 16;
  }
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(pv), lanes);
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), zero = _mm256_setzero_ps();
  for (int half = 0; half < 2 && half * 8 < ocv; ++half) {
    __m256 r[8] = {half ? c01 : c00, half ? c11 : c10, half ? c21 : c20, half ? c31 : c30,
                   half ? c41 : c40, half ? c51 : c50, zero, zero};
    const __m256 bv = _mm256_loadu_ps(bias + half * 8);
    for (int i = 0; i < 6; ++i) {
      r[i] = _mm256_add_ps(r[i], bv);
      if (act == Act::kRelu) r[i] = _mm256_max_ps(r[i], zero);
      else if (act == Act::kClip) r[i] = _mm256_min_ps(_mm256_max_ps(r[i], vlo), vhi);
    }
    transpose8(r);
    const int n = std::min(8, ocv - half * 8);
    for (int j = 0; j < n; ++j) _mm256_maskstore_ps(out + (half * 8 + j) * plane, mask, r[j]);
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
                                {&avx2::winograd_input_panel_f4, &avx2::winograd_input_panel_impl<16, 2>},
                                {&avx2::winograd_output_panel_impl<16, 4>, &avx2::winograd_output_panel_impl<16, 2>},
                                &avx2::winograd_store4,
                                &avx2::conv_direct_6x16,
                                6};
  return set;
}

}  // namespace kiln::cpu
