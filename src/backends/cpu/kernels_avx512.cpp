// The AVX-512 kernel set (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512dq -mfma; only called after cpu_info() reported them). GEMM
// microkernel 12x32: 24 zmm accumulators, two B loads and one A broadcast
// per k step, within AVX-512's 32 registers.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "backends/cpu/kernel_set.h"

namespace kiln::cpu {
namespace avx512 {
#include "backends/cpu/kernels_impl.inc"
#include "backends/cpu/kernels_ymm.inc"

// Stores one row of a tile (two vectors) with the epilogue applied.
static inline __attribute__((always_inline)) void store_row(__m512 lo, __m512 hi, float* row, bool accumulate,
                                                            const TileEpilogue* e, int i) {
  if (accumulate) {
    lo = _mm512_add_ps(lo, _mm512_loadu_ps(row));
    hi = _mm512_add_ps(hi, _mm512_loadu_ps(row + 16));
  }
  if (e) {
    if (e->bias_row) {
      const __m512 b = _mm512_set1_ps(e->bias_row[i]);
      lo = _mm512_add_ps(lo, b);
      hi = _mm512_add_ps(hi, b);
    }
    if (e->bias_col) {
      lo = _mm512_add_ps(lo, _mm512_loadu_ps(e->bias_col));
      hi = _mm512_add_ps(hi, _mm512_loadu_ps(e->bias_col + 16));
    }
    if (e->residual) {
      const float* r = e->residual + i * e->ldr;
      lo = _mm512_add_ps(lo, _mm512_loadu_ps(r));
      hi = _mm512_add_ps(hi, _mm512_loadu_ps(r + 16));
    }
    if (e->act == Act::kRelu) {
      lo = _mm512_max_ps(lo, _mm512_setzero_ps());
      hi = _mm512_max_ps(hi, _mm512_setzero_ps());
    } else if (e->act == Act::kClip) {
      const __m512 l = _mm512_set1_ps(e->lo), h = _mm512_set1_ps(e->hi);
      lo = _mm512_min_ps(_mm512_max_ps(lo, l), h);
      hi = _mm512_min_ps(_mm512_max_ps(hi, l), h);
    }
  }
  _mm512_storeu_ps(row, lo);
  _mm512_storeu_ps(row + 16, hi);
}

// One row (a batch-1 fully connected layer): two FMAs per k on four
// accumulator pairs, so that the weights stream at load speed rather than
// at the 24 FMAs per k of the whole tile (resnet50's 8 MiB fc).
static void gemm_row_1x32(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, bool accumulate,
                          const TileEpilogue* e) {
  __m512 lo[4], hi[4];
  for (int p = 0; p < 4; ++p) lo[p] = hi[p] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4)
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
      const __m512 av = _mm512_set1_ps(a[(k + p) * 12]);
      lo[p] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + (k + p) * ldb), lo[p]);
      hi[p] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + (k + p) * ldb + 16), hi[p]);
    }
  for (; k < kc; ++k) {
    const __m512 av = _mm512_set1_ps(a[k * 12]);
    lo[0] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + k * ldb), lo[0]);
    hi[0] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + k * ldb + 16), hi[0]);
  }
  store_row(_mm512_add_ps(_mm512_add_ps(lo[0], lo[1]), _mm512_add_ps(lo[2], lo[3])),
            _mm512_add_ps(_mm512_add_ps(hi[0], hi[1]), _mm512_add_ps(hi[2], hi[3])), c, accumulate, e, 0);
}

static void gemm_ukernel_12x32(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                               bool accumulate, const TileEpilogue* e, int rows) {
  if (rows == 1) {
    gemm_row_1x32(kc, a, b, ldb, c, accumulate, e);
    return;
  }
  __m512 acc[12][2];
  for (int i = 0; i < 12; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) {
      const __m512 av = _mm512_set1_ps(a[i]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
    a += 12;
    b += ldb;
  }
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) {
    if (i < rows) store_row(acc[i][0], acc[i][1], c + i * ldc, accumulate, e, i);
  }
}

// The left half of the 12x32 tile: one B vector and twelve accumulators per
// k (the compiler-vectorized template kept its 12x16 array in memory: the
// 16 columns left of a 784-column matrix took 25% of its time).
static void gemm_ukernel_12x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  __m512 acc[12];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, acc[i]);
    a += 12;
    b += 32;
  }
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i)
    _mm512_storeu_ps(c + i * ldc, accumulate ? _mm512_add_ps(acc[i], _mm512_loadu_ps(c + i * ldc)) : acc[i]);
}

// The narrow tail (KernelSet::gemm_ukernel_narrow): lanes 0..11 of a vector
// are the tile's twelve rows (A's panel row, loaded masked), one accumulator
// per column and k phase: KP phases keep enough FMAs in flight when there
// are few columns. A column costs one FMA per k here, twelve in the half tile.
template <int COLS, int KP>
static void gemm_narrow_12(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                           bool accumulate, int rows) {
  __m512 acc[KP][COLS];
#pragma GCC unroll 8
  for (int p = 0; p < KP; ++p)
#pragma GCC unroll 8
    for (int j = 0; j < COLS; ++j) acc[p][j] = _mm512_setzero_ps();
  const __mmask16 twelve = 0x0FFF;
  int64_t k = 0;
  for (; k + KP <= kc; k += KP) {
#pragma GCC unroll 8
    for (int p = 0; p < KP; ++p) {
      const __m512 av = _mm512_maskz_loadu_ps(twelve, a + (k + p) * 12);
#pragma GCC unroll 8
      for (int j = 0; j < COLS; ++j)
        acc[p][j] = _mm512_fmadd_ps(av, _mm512_set1_ps(b[(k + p) * ldb + j]), acc[p][j]);
    }
  }
  for (; k < kc; ++k) {
    const __m512 av = _mm512_maskz_loadu_ps(twelve, a + k * 12);
#pragma GCC unroll 8
    for (int j = 0; j < COLS; ++j) acc[0][j] = _mm512_fmadd_ps(av, _mm512_set1_ps(b[k * ldb + j]), acc[0][j]);
  }
  alignas(64) float v[COLS][16];
#pragma GCC unroll 8
  for (int j = 0; j < COLS; ++j) {
    __m512 s = acc[0][j];
#pragma GCC unroll 8
    for (int p = 1; p < KP; ++p) s = _mm512_add_ps(s, acc[p][j]);
    _mm512_store_ps(v[j], s);
  }
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < COLS; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + v[j][i] : v[j][i];
}
static void gemm_ukernel_narrow_12(int64_t kc, const float* a, const float* b, int64_t ldb, int cols, float* c,
                                   int64_t ldc, bool accumulate, int rows) {
  switch (cols) {
    case 1: gemm_narrow_12<1, 8>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    case 2: gemm_narrow_12<2, 4>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    case 3: gemm_narrow_12<3, 3>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    case 4: gemm_narrow_12<4, 2>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    case 5: gemm_narrow_12<5, 2>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    case 6: gemm_narrow_12<6, 2>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    case 7: gemm_narrow_12<7, 2>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
    default: gemm_narrow_12<8, 2>(kc, a, b, ldb, c, ldc, accumulate, rows); break;
  }
}
// GCC 12 reports the intrinsics' undefined pass-through operands in the
// transposes and masked epilogues below as maybe uninitialized (they are
// not read).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// In-register transpose of 16 rows of 16 floats: 4-float pairs, then
// 2-float pairs within 128-bit lanes (r[4k + c] holds column 4L + c of rows
// 4k .. 4k + 3 in lane L), then the lanes regrouped across the four row
// groups.
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
  }
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    const __m512d a = _mm512_castps_pd(t[4 * k]), b = _mm512_castps_pd(t[4 * k + 1]);
    const __m512d c = _mm512_castps_pd(t[4 * k + 2]), d = _mm512_castps_pd(t[4 * k + 3]);
    u[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
#pragma GCC unroll 4
  for (int c = 0; c < 4; ++c) {
    const __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44), v2 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44);
    const __m512 w2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE);
    r[c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    r[8 + c] = _mm512_shuffle_f32x4(v2, w2, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v2, w2, 0xDD);
  }
}

// Direct convolution tile (KernelSet::conv_direct): 12 output pixels x 32
// output channels in the 12x32 microkernel's 24 accumulators, each pixel's
// input broadcast from where it lies in the padded image. Pixels along one
// output row at stride S (1 or 2) are read at fixed displacements from the
// first (S > 0); a tile that wraps to the next row reads through its 12
// pointers (S = 0). Each half of the tile (16 channels) is transposed as
// 16x16 (pixels to lanes; 8x8 blocks took a third of a stem's time, whose
// reductions are short); each output channel's pixels get the residual and
// the activation and are stored with a lane mask.
template <int S>
static void conv_direct_tile(int64_t k, const float* w, const int64_t* koff, const float* const* px, float* out,
                             const float* res, int64_t plane, int ocv, int pv, const float* bias, Act act, float lo,
                             float hi, float* raw) {
  __m512 acc[12][2];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  const float* p0 = px[0];
  for (int64_t t = 0; t < k; ++t) {
    const int64_t o = koff[t];
    const __m512 b0 = _mm512_loadu_ps(w), b1 = _mm512_loadu_ps(w + 16);
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) {
      const __m512 av = _mm512_set1_ps(S > 0 ? p0[o + i * S] : px[i][o]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
    w += 32;
  }
  if (raw) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) {
      _mm512_storeu_ps(raw + i * 32, acc[i][0]);
      _mm512_storeu_ps(raw + i * 32 + 16, acc[i][1]);
    }
    return;
  }
  const __m512 bv[2] = {_mm512_loadu_ps(bias), _mm512_loadu_ps(bias + 16)};
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), zero = _mm512_setzero_ps();
  const __mmask16 mask = __mmask16((1u << pv) - 1);
  for (int h = 0; h * 16 < ocv; ++h) {  // output channels 16h .. 16h + 15
    __m512 r[16];
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) r[i] = _mm512_add_ps(acc[i][h], bv[h]);
    r[12] = r[13] = r[14] = r[15] = zero;
    transpose16(r);
    const int n = std::min(16, ocv - h * 16);
    for (int j = 0; j < n; ++j) {
      const int64_t at = (h * 16 + j) * plane;
      __m512 v = r[j];
      if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, res + at));
      if (act == Act::kRelu) v = _mm512_max_ps(v, zero);
      else if (act == Act::kClip) v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
      _mm512_mask_storeu_ps(out + at, mask, v);
    }
  }
}
// The chunked direct tile (KernelSet::conv_chunk): 7 output pixels x 64
// output channels in 28 accumulators, a tap's 4 weight vectors and the
// broadcast pixel: one register more than AVX-512 has, so GCC keeps one
// accumulator on the stack. Re-reading the fourth weight vector from L1
// for each of its multiply-adds instead ran slower (a 512-channel 7x7
// layer on 1 thread: 1.44 against 1.19 ms). One line of the next chunk's
// weights is prefetched per tap.
static void conv_chunk_7x64(const ConvChunkArgs& a) {
  __m512 acc[7][4];
  if (a.first) {
#pragma GCC unroll 7
    for (int i = 0; i < 7; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = _mm512_setzero_ps();
  } else {
#pragma GCC unroll 7
    for (int i = 0; i < 7; ++i)
      for (int j = 0; j < 4; ++j) acc[i][j] = _mm512_loadu_ps(a.acc + i * 64 + j * 16);
  }
  const float *p0 = a.px[0], *p1 = a.px[1], *p2 = a.px[2], *p3 = a.px[3], *p4 = a.px[4], *p5 = a.px[5],
              *p6 = a.px[6];
  const float* w = a.w;
  for (int64_t t = 0; t < a.k; ++t) {
    const int64_t o = a.koff[t];
    if (t < a.prefetch_lines) _mm_prefetch(reinterpret_cast<const char*>(a.prefetch + t * 16), _MM_HINT_T0);
    const __m512 b0 = _mm512_loadu_ps(w), b1 = _mm512_loadu_ps(w + 16), b2 = _mm512_loadu_ps(w + 32);
    const float* const ps[7] = {p0, p1, p2, p3, p4, p5, p6};
#pragma GCC unroll 7
    for (int i = 0; i < 7; ++i) {
      const __m512 av = _mm512_set1_ps(ps[i][o]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      acc[i][2] = _mm512_fmadd_ps(av, b2, acc[i][2]);
      acc[i][3] = _mm512_fmadd_ps(av, _mm512_loadu_ps(w + 48), acc[i][3]);
    }
    w += 64;
  }
  if (!a.last || !a.out) {
#pragma GCC unroll 7
    for (int i = 0; i < 7; ++i)
      for (int j = 0; j < 4; ++j) _mm512_storeu_ps(a.acc + i * 64 + j * 16, acc[i][j]);
    return;
  }
  const __m512 vlo = _mm512_set1_ps(a.lo), vhi = _mm512_set1_ps(a.hi), zero = _mm512_setzero_ps();
  const __mmask16 mask = __mmask16((1u << a.pv) - 1);
  for (int h = 0; h * 16 < a.ocv; ++h) {  // output channels 16h .. 16h + 15
    __m512 r[16];
    const __m512 bv = _mm512_loadu_ps(a.bias + h * 16);
#pragma GCC unroll 7
    for (int i = 0; i < 7; ++i) r[i] = _mm512_add_ps(acc[i][h], bv);
    for (int i = 7; i < 16; ++i) r[i] = zero;
    transpose16(r);
    const int n = std::min(16, a.ocv - h * 16);
    for (int j = 0; j < n; ++j) {
      const int64_t at = (h * 16 + j) * a.plane;
      __m512 v = r[j];
      if (a.res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, a.res + at));
      if (a.act == Act::kRelu) v = _mm512_max_ps(v, zero);
      else if (a.act == Act::kClip) v = _mm512_min_ps(_mm512_max_ps(v, vlo), vhi);
      _mm512_mask_storeu_ps(a.out + at, mask, v);
    }
  }
}
#pragma GCC diagnostic pop
static void conv_direct_12x32(int64_t k, const float* w, const int64_t* koff, const float* const* px, float* out,
                              const float* res, int64_t plane, int ocv, int pv, const float* bias, Act act, float lo,
                              float hi, float* raw) {
  const int64_t step = px[1] - px[0];
  bool uniform = pv == 12 && (step == 1 || step == 2);
  for (int i = 2; i < 12 && uniform; ++i) uniform = px[i] - px[0] == i * step;
  if (uniform && step == 2) conv_direct_tile<2>(k, w, koff, px, out, res, plane, ocv, pv, bias, act, lo, hi, raw);
  else if (uniform) conv_direct_tile<1>(k, w, koff, px, out, res, plane, ocv, pv, bias, act, lo, hi, raw);
  else conv_direct_tile<0>(k, w, koff, px, out, res, plane, ocv, pv, bias, act, lo, hi, raw);
}
}  // namespace avx512

const KernelSet& kernel_set_avx512() {
  static const KernelSet set = {Isa::kAvx512,
                                "gemm_f32_avx512_12x32",
                                12,
                                32,
                                &avx512::gemm_ukernel_12x32,
                                &avx512::gemm_ukernel_12x16,
                                &avx512::gemm_ukernel_narrow_12,
                                8,
                                &avx512::activate_impl,
                                &avx512::depthwise_impl,
                                &avx512::depthwise8_impl,
                                &avx512::softmax_rows_impl,
                                &avx512::layernorm_rows_impl,
                                {&avx512::winograd_input_panel_f4<32>, &avx512::winograd_input_panel_impl<32, 2>},
                                {&avx512::winograd_output_panel_impl<32, 4>, &avx512::winograd_output_panel_impl<32, 2>},
                                &avx512::winograd_store4<32>,
                                &avx512::conv_direct_12x32,
                                12,
                                32,
                                &avx512::conv_chunk_7x64,
                                7,
                                64,
                                true};
  return set;
}

const KernelSet& kernel_set_avx512_amx() {
  static const KernelSet set = [] {
    KernelSet k = kernel_set_avx512();
    k.isa = Isa::kAvx512Amx;
    return k;
  }();
  return set;
}

}  // namespace kiln::cpu
