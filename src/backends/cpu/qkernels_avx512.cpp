// The AVX-512 int8 kernels (qkernels.h, byte quads): the VNNI set, and the
// AMX set (Isa::kAvx512Amx, further below) that shares its packing and
// requantization. Compiled with -mavx512f -mavx512bw -mavx512vnni -mamx-tile
// -mamx-int8; each set is called only after cpu_info() reported it. VNNI GEMM
// tile 8x32: 16 zmm int32 accumulators; per quad
// of k, two B loads (32 columns x 4 u8) and one 4-byte weight broadcast per
// row, each feeding two vpdpbusd (four u8 x s8 products summed into each
// int32 lane, exact and wrapping). 64 multiply-adds per instruction against
// the AVX2 pair kernel's 16 per two (pmaddwd + paddd).
//
// Activations are packed as raw bytes (int8 ones with the sign bit flipped),
// so the sums include zp' * sum(w); the biases were corrected once at build
// time (fold_x_zero_point, qgemm.h). Whole tiles are requantized here in
// double precision (16 outputs per vector); requant_row, QuantizeLinear and
// DequantizeLinear rows are the AVX2 set's.
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/qkernels.h"

namespace kiln::cpu {
namespace qavx512 {

constexpr int kMr = 8, kNr = 32;

// acc[i][0..1] = row i (output channel) of the a-panel . the b-panel.
static inline __attribute__((always_inline)) void qgemm_tile(int64_t groups, const int8_t* a, const uint8_t* b,
                                                             __m512i acc[kMr][2]) {
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i b0 = _mm512_loadu_si512(b);
    const __m512i b1 = _mm512_loadu_si512(b + 64);
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) {
      int32_t quad;
      std::memcpy(&quad, a + 4 * i, sizeof quad);
      const __m512i av = _mm512_set1_epi32(quad);
      acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], b0, av);
      acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], b1, av);
    }
    a += 4 * kMr;
    b += 4 * kNr;
  }
}

void qgemm_ukernel(int64_t groups, const void* a, const void* b, int32_t* c) {
  __m512i acc[kMr][2];
  qgemm_tile(groups, static_cast<const int8_t*>(a), static_cast<const uint8_t*>(b), acc);
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i) {
    _mm512_storeu_si512(c + i * kNr, acc[i][0]);
    _mm512_storeu_si512(c + i * kNr + 16, acc[i][1]);
  }
}

// 16 sums of one output channel -> 16 requantized bytes at out, in double
// precision as the AVX2 set does (qkernels_avx2.cpp, RequantDouble): exact
// while every |acc + bias| < 2^22; false (nothing stored) otherwise.
static inline bool requant16(__m512i acc, const QRow& r, bool is_signed, uint8_t* out) {
  const __m512i v = _mm512_add_epi32(acc, _mm512_set1_epi32(r.bias));
  const __m512i a = _mm512_abs_epi32(v);  // |INT32_MIN| stays negative: not small
  if (_mm512_cmpgt_epi32_mask(a, _mm512_set1_epi32((1 << 22) - 1)) | _mm512_cmplt_epi32_mask(a, _mm512_setzero_si512()))
    return false;
  const __m512d scale = _mm512_set1_pd(r.scale);
  const __m512d lo = _mm512_set1_pd(double(int64_t(r.lo) - r.zero_point));
  const __m512d hi = _mm512_set1_pd(double(int64_t(r.hi) - r.zero_point));
  auto half = [&](__m256i x) {
    __m512d d = _mm512_mul_pd(_mm512_cvtepi32_pd(x), scale);
    d = _mm512_roundscale_pd(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_cvtpd_epi32(_mm512_min_pd(_mm512_max_pd(d, lo), hi));
  };
  const __m512i q = _mm512_add_epi32(
      _mm512_inserti64x4(_mm512_castsi256_si512(half(_mm512_castsi512_si256(v))), half(_mm512_extracti64x4_epi64(v, 1)), 1),
      _mm512_set1_epi32(r.zero_point));
  // q is within the output type's range: the saturating narrowings are exact.
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), is_signed ? _mm512_cvtsepi32_epi8(q) : _mm512_cvtusepi32_epi8(q));
  return true;
}

// Requantizes a stored [mr][kNr] tile; out of line so that its constants
// stay out of the k loop's registers (see qkernels_avx2.cpp, requant_tile).
__attribute__((noinline)) static void requant_tile(const int32_t* c, int mr, const QRow* rows, uint8_t* out,
                                                   int64_t ld_out, bool is_signed) {
  for (int i = 0; i < mr; ++i) {
    const int32_t* ci = c + i * kNr;
    uint8_t* o = out + i * ld_out;
    if (!requant16(_mm512_load_si512(ci), rows[i], is_signed, o) ||
        !requant16(_mm512_load_si512(ci + 16), rows[i], is_signed, o + 16))
      qkernels_avx2().requant_row(ci, kNr, rows[i], o, is_signed);  // 64-bit integer path
  }
}

void qgemm_requant_ukernel(int64_t groups, const void* a, const void* b, const QRow* rows, uint8_t* out,
                           int64_t ld_out, bool is_signed) {
  alignas(64) int32_t c[kMr * kNr];
  qgemm_ukernel(groups, a, b, c);
  requant_tile(c, kMr, rows, out, ld_out, is_signed);
}

// 16 bytes at p, p + 2, ..., p + 30, reading no byte past p + 30.
static inline __m128i evens16(const uint8_t* p) {
  const __m128i evens = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i lo = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), evens);
  const __m128i hi = _mm_shuffle_epi8(_mm_srli_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 15)), 1), evens);
  return _mm_unpacklo_epi64(lo, hi);
}

// Four rows of 32 bytes (k = 4g .. 4g + 3) -> the quad panel row of group g:
// column j's four bytes at dst + 4j.
static inline void store_quads(__m256i r0, __m256i r1, __m256i r2, __m256i r3, uint8_t* dst) {
  // Within each 128-bit lane: t0 = columns 0-7 (r0, r1 interleaved) | 16-23, t1 = 8-15 | 24-31.
  const __m256i t0 = _mm256_unpacklo_epi8(r0, r1), t1 = _mm256_unpackhi_epi8(r0, r1);
  const __m256i t2 = _mm256_unpacklo_epi8(r2, r3), t3 = _mm256_unpackhi_epi8(r2, r3);
  // Quads of columns 0-3 | 16-19, 4-7 | 20-23, 8-11 | 24-27, 12-15 | 28-31.
  const __m256i q0 = _mm256_unpacklo_epi16(t0, t2), q1 = _mm256_unpackhi_epi16(t0, t2);
  const __m256i q2 = _mm256_unpacklo_epi16(t1, t3), q3 = _mm256_unpackhi_epi16(t1, t3);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permute2x128_si256(q0, q1, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), _mm256_permute2x128_si256(q2, q3, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64), _mm256_permute2x128_si256(q0, q1, 0x31));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 96), _mm256_permute2x128_si256(q2, q3, 0x31));
}

// Columns [j0, j0 + len) at src offsets off, off + delta, ... (delta 0: one column).
struct ColRun {
  int j0, len, delta;
  int64_t off;
};

// The panel's rows from N runs of columns (the first `n` used), each one
// masked load merged at its columns; with N small the loop keeps every run's
// mask and offset in registers.
template <int N>
static void pack_runs(const uint8_t* s, const ColRun* runs, const int64_t* k_off, int64_t k, __m256i flip,
                      uint8_t* dst, int n = N) {
  __mmask32 mask1[N];  // step 1: the run's columns
  __mmask64 mask2[N];  // step 2: the run's even bytes, from the load's base
  int64_t at[N];       // lane j of the load is byte base + off + delta (j - j0)
  bool even[N];
  for (int q = 0; q < n; ++q) {
    const ColRun& run = runs[q];
    const uint64_t cols = (run.len == 32 ? ~uint64_t(0) >> 32 : (uint64_t(1) << run.len) - 1) << run.j0;
    mask1[q] = __mmask32(cols);
    uint64_t evens = 0;
    for (int j = 0; j < kNr; ++j)
      if ((cols >> j) & 1) evens |= uint64_t(1) << (2 * j);
    mask2[q] = evens;
    at[q] = run.off - int64_t(run.delta) * run.j0;
    even[q] = run.delta == 2;
  }
  auto row = [&](int64_t kk) {
    __m256i r = _mm256_setzero_si256();
    if (kk >= k) return r;
    const uint8_t* base = s + k_off[kk];
#pragma GCC unroll 4
    for (int q = 0; q < n; ++q)  // zeroing loads OR-ed together: no chain through r
      r = _mm256_or_si256(r, even[q] ? _mm512_cvtepi16_epi8(_mm512_maskz_loadu_epi8(mask2[q], base + at[q]))
                                     : _mm256_maskz_loadu_epi8(mask1[q], base + at[q]));
    return _mm256_xor_si256(r, flip);
  };
  const int64_t groups = (k + 3) / 4;
  for (int64_t g = 0; g < groups; ++g, dst += 4 * kNr) store_quads(row(4 * g), row(4 * g + 1), row(4 * g + 2), row(4 * g + 3), dst);
}

void pack_b_panel(const void* src, bool is_signed, int32_t /*zp: folded into the biases*/, const int64_t* k_off,
                  int64_t k, const int64_t* col_off, int valid, int step, void* dstv) {
  uint8_t* dst = static_cast<uint8_t*>(dstv);
  const uint8_t* s = static_cast<const uint8_t*>(src);
  const int64_t groups = (k + 3) / 4;
  const __m256i flip = _mm256_set1_epi8(char(is_signed ? 0x80 : 0));
  if (step != 0 && valid == kNr) {  // one run of 32 columns
    const int64_t c0 = col_off[0];
    auto row = [&](int64_t kk) {
      if (kk >= k) return _mm256_setzero_si256();
      const uint8_t* p = s + k_off[kk] + c0;
      const __m256i v = step == 1 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                                  : _mm256_set_m128i(evens16(p + 32), evens16(p));
      return _mm256_xor_si256(v, flip);
    };
    for (int64_t g = 0; g < groups; ++g, dst += 4 * kNr)
      store_quads(row(4 * g), row(4 * g + 1), row(4 * g + 2), row(4 * g + 3), dst);
    return;
  }
  // Otherwise the columns split into runs (an output row ending inside the
  // panel, a partial panel). Each run (of step 1 or 2; a lone column is a
  // run of step 1) is one masked load merged into the row's register at its
  // columns (lanes outside the mask are not read: the load's base may lie
  // before the run). (Masked stores into a buffer read back whole were 7x
  // slower: store forwarding fails.)
  ColRun runs[kNr];
  int nruns = 0;
  for (int j = 0; j < valid;) {
    int delta = j + 1 < valid ? int(col_off[j + 1] - col_off[j]) : 0;
    if (delta != 1 && delta != 2) delta = 0;
    int len = 1;
    while (delta && j + len < valid && col_off[j + len] == col_off[j] + int64_t(delta) * len) ++len;
    runs[nruns++] = {j, len, len == 1 ? 1 : delta, col_off[j]};
    j += len;
  }
  if (nruns == 1) pack_runs<1>(s, runs, k_off, k, flip, dst);
  else if (nruns == 2) pack_runs<2>(s, runs, k_off, k, flip, dst);
  else if (nruns == 3) pack_runs<3>(s, runs, k_off, k, flip, dst);
  else pack_runs<kNr>(s, runs, k_off, k, flip, dst, nruns);
}

// AMX: a 32 x 32 int32 tile as four 16 x 16 tile registers (tmm0-3), fed by
// two A tiles (tmm4-5: 16 output channels x 64 bytes of k each) and two B
// tiles (tmm6-7: 16 quads of k x 16 columns each, read straight from the
// 32-column quad panel above with a 128-byte row stride). tdpbsud: signed
// weights x unsigned activations, four products summed exactly (wrapping)
// into each int32, as vpdpbusd does. Every tile register is configured once
// per thread to its full 16 rows x 64 bytes; partial tiles are zero-padded
// by the packing, and only their valid part is requantized.
namespace amx {

constexpr int kMr = 32, kGb = 16;

struct TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

static inline void configure() {
  // The tile configuration is per thread state (saved by the OS on context switches).
  thread_local bool configured = false;
  if (configured) return;
  alignas(64) TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
  configured = true;
}

void qgemm_ukernel(int64_t groups, const void* a, const void* b, int32_t* c) {
  configure();
  const uint8_t* ap = static_cast<const uint8_t*>(a);
  const uint8_t* bp = static_cast<const uint8_t*>(b);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t g = 0; g < groups; g += kGb) {
    _tile_loadd(4, ap, 64);             // channels 0-15: [16][64 bytes of k]
    _tile_loadd(5, ap + 16 * 64, 64);   // channels 16-31
    _tile_loadd(6, bp, 4 * kNr);        // columns 0-15: [16 quads][16 x 4 bytes]
    _tile_loadd(7, bp + 64, 4 * kNr);   // columns 16-31
    _tile_dpbsud(0, 4, 6);
    _tile_dpbsud(1, 4, 7);
    _tile_dpbsud(2, 5, 6);
    _tile_dpbsud(3, 5, 7);
    ap += kGb * 4 * kMr;
    bp += kGb * 4 * kNr;
  }
  _tile_stored(0, c, 4 * kNr);
  _tile_stored(1, c + 16, 4 * kNr);
  _tile_stored(2, c + 16 * kNr, 4 * kNr);
  _tile_stored(3, c + 16 * kNr + 16, 4 * kNr);
}

void qgemm_requant_ukernel(int64_t groups, const void* a, const void* b, const QRow* rows, uint8_t* out,
                           int64_t ld_out, bool is_signed) {
  alignas(64) int32_t c[kMr * kNr];
  qgemm_ukernel(groups, a, b, c);
  requant_tile(c, kMr, rows, out, ld_out, is_signed);
}

}  // namespace amx
}  // namespace qavx512

const QKernels& qkernels_avx512_amx() {
  static const QKernels set = {"qgemm_u8s8_amx_32x32",
                               qavx512::amx::kMr,
                               qavx512::kNr,
                               4,
                               1,
                               qavx512::amx::kGb,
                               &qavx512::amx::qgemm_ukernel,
                               &qavx512::amx::qgemm_requant_ukernel,
                               qkernels_avx2().requant_row,
                               &qavx512::pack_b_panel,
                               qkernels_avx2().quantize_row,
                               qkernels_avx2().dequantize_row,
                               nullptr,
                               nullptr};
  return set;
}

const QKernels& qkernels_avx512_vnni() {
  static const QKernels set = {"qgemm_u8s8_avx512vnni_8x32",
                               qavx512::kMr,
                               qavx512::kNr,
                               4,
                               1,
                               1,
                               &qavx512::qgemm_ukernel,
                               &qavx512::qgemm_requant_ukernel,
                               qkernels_avx2().requant_row,
                               &qavx512::pack_b_panel,
                               qkernels_avx2().quantize_row,
                               qkernels_avx2().dequantize_row,
                               nullptr,
                               nullptr};
  return set;
}

}  // namespace kiln::cpu
