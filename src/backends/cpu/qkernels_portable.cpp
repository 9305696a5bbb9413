// The portable int8 kernels (qkernels.h): plain C++, exact by construction.
// They are also the definition the AVX2 set is tested against.
#include <cmath>

#include "backends/cpu/qkernels.h"
#include "quant/quant_params.h"

namespace kiln::cpu {
namespace qportable {

constexpr int kMr = 4, kNr = 8;

#include "backends/cpu/qkernels_impl.inc"

void qgemm_ukernel(int64_t kp, const void* av, const void* bv, int32_t* c) {
  const int16_t* a = static_cast<const int16_t*>(av);
  const int16_t* b = static_cast<const int16_t*>(bv);
  uint32_t acc[kMr][kNr] = {};
  for (int64_t p = 0; p < kp; ++p, a += 2 * kMr, b += 2 * kNr)
    for (int i = 0; i < kMr; ++i)
      for (int j = 0; j < kNr; ++j)
        acc[i][j] += uint32_t(int32_t(a[2 * i]) * b[2 * j] + int32_t(a[2 * i + 1]) * b[2 * j + 1]);
  for (int i = 0; i < kMr; ++i)
    for (int j = 0; j < kNr; ++j) c[i * kNr + j] = int32_t(acc[i][j]);
}

void requant_row(const int32_t* acc, int64_t n, const QRow& r, void* out, bool is_signed) {
  const kiln::quant::Requant rq{r.multiplier, r.shift};
  for (int64_t i = 0; i < n; ++i) {
    const int32_t v = kiln::quant::requantize(int32_t(uint32_t(acc[i]) + uint32_t(r.bias)), rq, r.zero_point, r.lo, r.hi);
    if (is_signed) static_cast<int8_t*>(out)[i] = int8_t(v);
    else static_cast<uint8_t*>(out)[i] = uint8_t(v);
  }
}

void qgemm_requant_ukernel(int64_t kp, const void* a, const void* b, const QRow* rows, uint8_t* out,
                           int64_t ld_out, bool is_signed) {
  int32_t c[kMr * kNr];
  qgemm_ukernel(kp, a, b, c);
  for (int i = 0; i < kMr; ++i) requant_row(c + i * kNr, kNr, rows[i], out + i * ld_out, is_signed);
}

void pack_b_panel(const void* src, bool is_signed, int32_t zp, const int64_t* k_off, int64_t k, const int64_t* col_off,
                  int valid, int /*step*/, void* dstv) {
  int16_t* dst = static_cast<int16_t*>(dstv);
  const int64_t kp = (k + 1) / 2;
  for (int64_t p = 0; p < kp; ++p, dst += 2 * kNr)
    for (int j = 0; j < kNr; ++j)
      for (int h = 0; h < 2; ++h) {
        const int64_t kk = 2 * p + h;
        int32_t v = 0;
        if (j < valid && kk < k) {
          const int64_t off = k_off[kk] + col_off[j];
          v = (is_signed ? int32_t(static_cast<const int8_t*>(src)[off]) : int32_t(static_cast<const uint8_t*>(src)[off])) - zp;
        }
        dst[2 * j + h] = int16_t(v);
      }
}

void quantize_row(const float* x, int64_t n, float scale, int32_t zp, int32_t lo, int32_t hi, void* out,
                  bool is_signed) {
  for (int64_t i = 0; i < n; ++i) {
    const float q = std::nearbyint(x[i] / scale);
    int32_t v;
    if (std::isnan(q)) v = lo;
    else {
      const double t = double(q) + double(zp);
      v = t <= double(lo) ? lo : t >= double(hi) ? hi : int32_t(t);
    }
    if (is_signed) static_cast<int8_t*>(out)[i] = int8_t(v);
    else static_cast<uint8_t*>(out)[i] = uint8_t(v);
  }
}

void dequantize_row(const void* x, bool is_signed, int64_t n, int32_t zp, float scale, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t v = is_signed ? int32_t(static_cast<const int8_t*>(x)[i]) : int32_t(static_cast<const uint8_t*>(x)[i]);
    out[i] = float(v - zp) * scale;
  }
}

}  // namespace qportable

const QKernels& qkernels_portable() {
  static const QKernels set = {"qgemm_s16_portable_4x8", qportable::kMr, qportable::kNr, 2, 2, 1,
                               &qportable::qgemm_ukernel, &qportable::qgemm_requant_ukernel, &qportable::requant_row, &qportable::pack_b_panel,
                               &qportable::quantize_row,  &qportable::dequantize_row,
                               &qportable::wino_input_impl<qportable::kNr>, &qportable::wino_output_impl<qportable::kNr>};
  return set;
}

const QKernels& qkernels_pairs(Isa isa) { return isa == Isa::kPortable ? qkernels_portable() : qkernels_avx2(); }

const QKernels& qkernels(Isa isa) {
  if (isa == Isa::kAvx512Amx) return qkernels_avx512_amx();
  if (isa == Isa::kAvx512 && cpu_info().avx512_vnni) return qkernels_avx512_vnni();
  return qkernels_pairs(isa);
}

}  // namespace kiln::cpu
