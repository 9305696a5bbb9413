// The AVX2 int8 kernels (qkernels.h); compiled with -mavx2 -mfma and called
// only after cpu_info() reported AVX2. GEMM tile 6x16: 12 ymm int32
// accumulators, two B loads and one A broadcast (a pair of int16) per k pair,
// pmaddwd then paddd, the same register budget as the fp32 6x16 kernel.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "backends/cpu/qkernels.h"

namespace kiln::cpu {
namespace qavx2 {

constexpr int kMr = 6, kNr = 16;

#include "backends/cpu/qkernels_impl.inc"

// The 6x16 tile: acc[i][0..1] = row i of a-panel . b-panel.
static inline __attribute__((always_inline)) void qgemm_tile(int64_t kp, const int16_t* a, const int16_t* b,
                                                             __m256i acc[kMr][2]) {
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  for (int64_t p = 0; p < kp; ++p) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
#pragma GCC unroll 6
    for (int i = 0; i < kMr; ++i) {
      int32_t pair;
      std::memcpy(&pair, a + 2 * i, sizeof pair);
      const __m256i av = _mm256_set1_epi32(pair);
      acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(av, b0));
      acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(av, b1));
    }
    a += 2 * kMr;
    b += 2 * kNr;
  }
}

void qgemm_ukernel(int64_t kp, const void* av, const void* bv, int32_t* c) {
  const int16_t* a = static_cast<const int16_t*>(av);
  const int16_t* b = static_cast<const int16_t*>(bv);
  __m256i acc[kMr][2];
  qgemm_tile(kp, a, b, acc);
#pragma GCC unroll 6
  for (int i = 0; i < kMr; ++i) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * kNr), acc[i][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i * kNr + 8), acc[i][1]);
  }
}

// floor(v / 2^shift) per signed 64-bit lane (AVX2 has only the logical shift):
// for v < 0, ~v >> s is floor((-v - 1) / 2^s) and ~ of that is floor(v / 2^s).
static inline __m256i sra_epi64(__m256i v, __m128i shift) {
  const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
  return _mm256_xor_si256(_mm256_srl_epi64(_mm256_xor_si256(v, sign), shift), sign);
}

// Four products (int64 lanes) -> round_half_even(p / 2^shift), clamped to [lo, hi] (both minus zero point).
static inline __m256i round_clamp(__m256i p, __m256i half, __m256i mask, __m128i shift, __m256i lo, __m256i hi) {
  const __m256i t = _mm256_add_epi64(p, half);
  __m256i q = sra_epi64(t, shift);
  // An exact tie (t's low bits all 0) rounded up to an odd q goes back to even.
  const __m256i tie = _mm256_cmpeq_epi64(_mm256_and_si256(t, mask), _mm256_setzero_si256());
  q = _mm256_sub_epi64(q, _mm256_and_si256(tie, _mm256_and_si256(q, _mm256_set1_epi64x(1))));
  q = _mm256_blendv_epi8(q, lo, _mm256_cmpgt_epi64(lo, q));
  return _mm256_blendv_epi8(q, hi, _mm256_cmpgt_epi64(q, hi));
}

struct RequantConsts {
  __m256i bias, mult, half, mask, lo, hi, zp;
  __m128i shift;
  explicit RequantConsts(const QRow& r) {
    const int s = r.multiplier == 0 ? 1 : r.shift;
    bias = _mm256_set1_epi32(r.bias);
    mult = _mm256_set1_epi64x(r.multiplier);
    half = _mm256_set1_epi64x(int64_t(1) << (s - 1));
    mask = _mm256_set1_epi64x((int64_t(1) << s) - 1);
    lo = _mm256_set1_epi64x(int64_t(r.lo) - r.zero_point);
    hi = _mm256_set1_epi64x(int64_t(r.hi) - r.zero_point);
    zp = _mm256_set1_epi32(r.zero_point);
    shift = _mm_cvtsi32_si128(s);
  }
};

// Eight sums -> eight requantized int32 lanes (each within [lo, hi]).
static inline __m256i requant8(__m256i acc, const RequantConsts& k) {
  acc = _mm256_add_epi32(acc, k.bias);
  const __m256i even = _mm256_mul_epi32(acc, k.mult);
  const __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), k.mult);
  const __m256i qe = round_clamp(even, k.half, k.mask, k.shift, k.lo, k.hi);
  const __m256i qo = round_clamp(odd, k.half, k.mask, k.shift, k.lo, k.hi);
  return _mm256_add_epi32(_mm256_blend_epi32(qe, _mm256_slli_epi64(qo, 32), 0xAA), k.zp);
}

// The same for sums whose |acc + bias| < 2^22, in double precision: acc *
// (multiplier * 2^-shift) is then exact (under 53 bits), and rounding to
// nearest-even and clamping in double give the integer result exactly; about
// three times fewer instructions than the 64-bit integer path.
struct RequantDouble {
  __m256d scale, lo, hi;
  __m256i bias, zp, lim;
  explicit RequantDouble(const QRow& r) {
    scale = _mm256_set1_pd(r.scale);
    lo = _mm256_set1_pd(double(int64_t(r.lo) - r.zero_point));
    hi = _mm256_set1_pd(double(int64_t(r.hi) - r.zero_point));
    bias = _mm256_set1_epi32(r.bias);
    zp = _mm256_set1_epi32(r.zero_point);
    lim = _mm256_set1_epi32((1 << 22) - 1);
  }
};

// True when every lane of acc + bias is within (-2^22, 2^22).
static inline bool small8(__m256i v, const RequantDouble& k) {
  const __m256i a = _mm256_abs_epi32(v);  // |INT32_MIN| stays negative: not small
  return _mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpgt_epi32(a, k.lim), _mm256_cmpgt_epi32(_mm256_setzero_si256(), a))) == 0;
}

static inline __m256i requant8_double(__m256i v, const RequantDouble& k) {
  auto half = [&](__m128i x) {
    __m256d d = _mm256_mul_pd(_mm256_cvtepi32_pd(x), k.scale);
    d = _mm256_round_pd(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    d = _mm256_min_pd(_mm256_max_pd(d, k.lo), k.hi);
    return _mm256_cvtpd_epi32(d);
  };
  const __m256i r = _mm256_set_m128i(half(_mm256_extracti128_si256(v, 1)), half(_mm256_castsi256_si128(v)));
  return _mm256_add_epi32(r, k.zp);
}

// Eight sums -> requantized lanes, by the double path when all are small
// (the integer path's constants are only set up when some are not).
static inline __m256i requant8_any(__m256i acc, const QRow& r, const RequantDouble& kd) {
  const __m256i v = _mm256_add_epi32(acc, kd.bias);
  if (__builtin_expect(small8(v, kd), 1)) return requant8_double(v, kd);
  return requant8(acc, RequantConsts(r));
}

void requant_row(const int32_t* acc, int64_t n, const QRow& r, void* out, bool is_signed) {
  const RequantDouble kd(r);
  uint8_t* o = static_cast<uint8_t*>(out);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i v0 = requant8_any(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i)), r, kd);
    const __m256i v1 = requant8_any(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i + 8)), r, kd);
    // Values are already within the 8-bit range, so the saturating packs are exact.
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
    const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
    const __m128i bytes = is_signed ? _mm_packs_epi16(lo, hi) : _mm_packus_epi16(lo, hi);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + i), bytes);
  }
  if (i < n) {
    alignas(32) int32_t in[16] = {}, res[16];
    const int64_t rest = n - i;
    std::memcpy(in, acc + i, sizeof(int32_t) * size_t(rest));
    _mm256_store_si256(reinterpret_cast<__m256i*>(res),
                       requant8_any(_mm256_load_si256(reinterpret_cast<const __m256i*>(in)), r, kd));
    _mm256_store_si256(reinterpret_cast<__m256i*>(res + 8),
                       requant8_any(_mm256_load_si256(reinterpret_cast<const __m256i*>(in + 8)), r, kd));
    for (int64_t j = 0; j < rest; ++j) o[i + j] = is_signed ? uint8_t(int8_t(res[j])) : uint8_t(res[j]);
  }
}

// Two vectors of requantized lanes (within the 8-bit range) -> 16 bytes.
static inline __m128i pack16(__m256i v0, __m256i v1, bool is_signed) {
  const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8);
  const __m128i lo = _mm256_castsi256_si128(w), hi = _mm256_extracti128_si256(w, 1);
  return is_signed ? _mm_packs_epi16(lo, hi) : _mm_packus_epi16(lo, hi);
}

// Requantizes a stored [kMr][kNr] tile. Kept out of line: inlined, its
// constants took registers from the accumulators, which then spilled in the
// k loop (the kernel ran at half speed).
__attribute__((noinline)) static void requant_tile(const int32_t* c, const QRow* rows, uint8_t* out, int64_t ld_out,
                                                   bool is_signed) {
  for (int i = 0; i < kMr; ++i) {
    const RequantDouble kd(rows[i]);
    const __m256i v0 = requant8_any(_mm256_load_si256(reinterpret_cast<const __m256i*>(c + i * kNr)), rows[i], kd);
    const __m256i v1 = requant8_any(_mm256_load_si256(reinterpret_cast<const __m256i*>(c + i * kNr + 8)), rows[i], kd);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i * ld_out), pack16(v0, v1, is_signed));
  }
}

void qgemm_requant_ukernel(int64_t kp, const void* a, const void* b, const QRow* rows, uint8_t* out,
                           int64_t ld_out, bool is_signed) {
  alignas(32) int32_t c[kMr * kNr];
  qgemm_ukernel(kp, a, b, c);
  requant_tile(c, rows, out, ld_out, is_signed);
}

// 16 bytes -> 16 int16 minus the zero point.
static inline __m256i widen16(const void* p, bool is_signed, __m256i zp) {
  const __m128i v = _mm_loadu_si128(static_cast<const __m128i*>(p));
  return _mm256_sub_epi16(is_signed ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v), zp);
}

// 16 bytes at p, p + 2, ..., p + 30 (reading no byte past p + 30) -> 16 int16 minus the zero point.
static inline __m256i widen16_step2(const uint8_t* p, bool is_signed, __m256i zp) {
  const __m128i evens = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i a = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), evens);
  const __m128i b = _mm_shuffle_epi8(_mm_srli_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 15)), 1), evens);
  const __m128i v = _mm_unpacklo_epi64(a, b);
  return _mm256_sub_epi16(is_signed ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v), zp);
}

void pack_b_panel(const void* src, bool is_signed, int32_t zp, const int64_t* k_off, int64_t k, const int64_t* col_off,
                  int valid, int step, void* dstv) {
  int16_t* dst = static_cast<int16_t*>(dstv);
  const int64_t kp = (k + 1) / 2;
  const uint8_t* s = static_cast<const uint8_t*>(src);
  if (step != 0 && valid == kNr) {
    const __m256i z = _mm256_set1_epi16(int16_t(zp));
    const int64_t c0 = col_off[0];
    auto row = [&](int64_t kk) { return step == 1 ? widen16(s + k_off[kk] + c0, is_signed, z) : widen16_step2(s + k_off[kk] + c0, is_signed, z); };
    for (int64_t p = 0; p < kp; ++p, dst += 2 * kNr) {
      const __m256i r0 = row(2 * p);
      const __m256i r1 = 2 * p + 1 < k ? row(2 * p + 1) : _mm256_setzero_si256();
      // unpack interleaves within 128-bit lanes: lo = cols 0-3 | 8-11, hi = 4-7 | 12-15.
      const __m256i lo = _mm256_unpacklo_epi16(r0, r1), hi = _mm256_unpackhi_epi16(r0, r1);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
    return;
  }
  for (int64_t p = 0; p < kp; ++p, dst += 2 * kNr) {
    const int64_t o0 = k_off[2 * p];
    const bool has1 = 2 * p + 1 < k;
    const int64_t o1 = has1 ? k_off[2 * p + 1] : 0;
    for (int j = 0; j < kNr; ++j) {
      int32_t v0 = 0, v1 = 0;
      if (j < valid) {
        const int64_t c = col_off[j];
        v0 = (is_signed ? int32_t(int8_t(s[o0 + c])) : int32_t(s[o0 + c])) - zp;
        if (has1) v1 = (is_signed ? int32_t(int8_t(s[o1 + c])) : int32_t(s[o1 + c])) - zp;
      }
      dst[2 * j] = int16_t(v0);
      dst[2 * j + 1] = int16_t(v1);
    }
  }
}

void quantize_row(const float* x, int64_t n, float scale, int32_t zp, int32_t lo, int32_t hi, void* out,
                  bool is_signed) {
  const __m256 s = _mm256_set1_ps(scale);
  // Clamping before the zero point is added keeps every value exact in float;
  // max_ps returns its second operand for a NaN first one: NaN -> lo.
  const __m256 flo = _mm256_set1_ps(float(lo - zp)), fhi = _mm256_set1_ps(float(hi - zp));
  const __m256i z = _mm256_set1_epi32(zp);
  uint8_t* o = static_cast<uint8_t*>(out);
  auto one = [&](__m256 v) {
    __m256 q = _mm256_round_ps(_mm256_div_ps(v, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    q = _mm256_min_ps(_mm256_max_ps(q, flo), fhi);
    return _mm256_add_epi32(_mm256_cvtps_epi32(q), z);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(one(_mm256_loadu_ps(x + i)), one(_mm256_loadu_ps(x + i + 8))), 0xD8);
    const __m128i l = _mm256_castsi256_si128(w), h = _mm256_extracti128_si256(w, 1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + i), is_signed ? _mm_packs_epi16(l, h) : _mm_packus_epi16(l, h));
  }
  for (; i < n; ++i) {
    float q = std::nearbyint(x[i] / scale);
    q = std::isnan(q) ? float(lo - zp) : std::fmin(std::fmax(q, float(lo - zp)), float(hi - zp));
    const int32_t v = int32_t(q) + zp;
    o[i] = is_signed ? uint8_t(int8_t(v)) : uint8_t(v);
  }
}

void dequantize_row(const void* x, bool is_signed, int64_t n, int32_t zp, float scale, float* out) {
  const uint8_t* in = static_cast<const uint8_t*>(x);
  const __m256 s = _mm256_set1_ps(scale);
  const __m256i z = _mm256_set1_epi32(zp);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + i));
    const __m256i v = is_signed ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(v, z)), s));
  }
  for (; i < n; ++i) out[i] = float((is_signed ? int32_t(int8_t(in[i])) : int32_t(in[i])) - zp) * scale;
}

// Integer Winograd input transform (see wino_input_impl in qkernels_impl.inc
// for the contract) with the 16 tiles in the vector lanes: each tile's 4x4
// patch is loaded as 16 bytes, the 16 patches are transposed (byte k of every
// tile in one vector), widened to int16, transformed with 32 adds, and two
// channels are interleaved into the pair layout of the GEMM's B panels.
// Lanes past `count` compute on tile 0 (their columns are never stored).
static inline void wino_patch_rows(const uint8_t* base, int64_t wp, const int64_t* off, int count, bool is_signed,
                                   __m256i zp, __m256i out[16]) {
  __m128i r[16];
  for (int j = 0; j < 16; ++j) {
    const uint8_t* src = base + off[j < count ? j : 0];
    int32_t w0, w1, w2, w3;
    std::memcpy(&w0, src, 4);
    std::memcpy(&w1, src + wp, 4);
    std::memcpy(&w2, src + 2 * wp, 4);
    std::memcpy(&w3, src + 3 * wp, 4);
    r[j] = _mm_setr_epi32(w0, w1, w2, w3);
  }
  // 16x16 byte transpose: after it, t[k] holds byte k (= row k / 4, column k % 4) of every tile.
  __m128i a[16], b[16];
  for (int m = 0; m < 8; ++m) {
    a[2 * m] = _mm_unpacklo_epi8(r[2 * m], r[2 * m + 1]);
    a[2 * m + 1] = _mm_unpackhi_epi8(r[2 * m], r[2 * m + 1]);
  }
  for (int m = 0; m < 4; ++m) {
    b[4 * m] = _mm_unpacklo_epi16(a[4 * m], a[4 * m + 2]);
    b[4 * m + 1] = _mm_unpackhi_epi16(a[4 * m], a[4 * m + 2]);
    b[4 * m + 2] = _mm_unpacklo_epi16(a[4 * m + 1], a[4 * m + 3]);
    b[4 * m + 3] = _mm_unpackhi_epi16(a[4 * m + 1], a[4 * m + 3]);
  }
  for (int h = 0; h < 2; ++h)  // rows 0-7 (b[0..7]) and 8-15 (b[8..15])
    for (int kb = 0; kb < 4; ++kb) {
      a[h * 8 + 2 * kb] = _mm_unpacklo_epi32(b[h * 8 + kb], b[h * 8 + 4 + kb]);
      a[h * 8 + 2 * kb + 1] = _mm_unpackhi_epi32(b[h * 8 + kb], b[h * 8 + 4 + kb]);
    }
  for (int x = 0; x < 8; ++x) {
    const __m128i lo = _mm_unpacklo_epi64(a[x], a[8 + x]), hi = _mm_unpackhi_epi64(a[x], a[8 + x]);
    // a[x] holds k = 2x (low half) and 2x + 1 (high half).
    out[2 * x] = _mm256_sub_epi16(is_signed ? _mm256_cvtepi8_epi16(lo) : _mm256_cvtepu8_epi16(lo), zp);
    out[2 * x + 1] = _mm256_sub_epi16(is_signed ? _mm256_cvtepi8_epi16(hi) : _mm256_cvtepu8_epi16(hi), zp);
  }
}

// B^T d B on 16 vectors d[r * 4 + s] -> v[r * 4 + s].
static inline void wino_bt_d_b(const __m256i d[16], __m256i v[16]) {
  __m256i t[16];
  for (int s = 0; s < 4; ++s) {
    t[0 * 4 + s] = _mm256_sub_epi16(d[0 * 4 + s], d[2 * 4 + s]);
    t[1 * 4 + s] = _mm256_add_epi16(d[1 * 4 + s], d[2 * 4 + s]);
    t[2 * 4 + s] = _mm256_sub_epi16(d[2 * 4 + s], d[1 * 4 + s]);
    t[3 * 4 + s] = _mm256_sub_epi16(d[1 * 4 + s], d[3 * 4 + s]);
  }
  for (int r = 0; r < 4; ++r) {
    v[r * 4 + 0] = _mm256_sub_epi16(t[r * 4 + 0], t[r * 4 + 2]);
    v[r * 4 + 1] = _mm256_add_epi16(t[r * 4 + 1], t[r * 4 + 2]);
    v[r * 4 + 2] = _mm256_sub_epi16(t[r * 4 + 2], t[r * 4 + 1]);
    v[r * 4 + 3] = _mm256_sub_epi16(t[r * 4 + 1], t[r * 4 + 3]);
  }
}

void wino_input(const uint8_t* img, int64_t plane, int64_t wp, const int64_t* tile_off, int count, int64_t c,
                bool is_signed, int32_t zp, int16_t* v, int64_t xs) {
  const __m256i z = _mm256_set1_epi16(int16_t(zp));
  __m256i d[16], v0[16], v1[16];
  for (int64_t ci = 0; ci < c; ci += 2) {
    wino_patch_rows(img + ci * plane, wp, tile_off, count, is_signed, z, d);
    wino_bt_d_b(d, v0);
    if (ci + 1 < c) {
      wino_patch_rows(img + (ci + 1) * plane, wp, tile_off, count, is_signed, z, d);
      wino_bt_d_b(d, v1);
    } else {
      for (int k = 0; k < 16; ++k) v1[k] = _mm256_setzero_si256();
    }
    int16_t* dst = v + (ci / 2) * 2 * kNr;
    for (int k = 0; k < 16; ++k) {
      const __m256i lo = _mm256_unpacklo_epi16(v0[k], v1[k]), hi = _mm256_unpackhi_epi16(v0[k], v1[k]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k * xs), _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + k * xs + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
  }
}

}  // namespace qavx2

const QKernels& qkernels_avx2() {
  static const QKernels set = {"qgemm_s16_avx2_6x16", qavx2::kMr, qavx2::kNr, 2, 2, 1,
                               &qavx2::qgemm_ukernel, &qavx2::qgemm_requant_ukernel, &qavx2::requant_row, &qavx2::pack_b_panel,
                               &qavx2::quantize_row,  &qavx2::dequantize_row,
                               &qavx2::wino_input, &qavx2::wino_output_impl<qavx2::kNr>};
  return set;
}

}  // namespace kiln::cpu
