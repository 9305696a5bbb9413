#include "quant/quant_params.h"

#include <cmath>

namespace kiln::quant {

Result<void> check_bits(int bits) {
  if ((bits >= 2 && bits <= 8) || bits == 16) return {};
  return make_error("bit width " + std::to_string(bits) + " is out of range (supported: 2 to 8, and 16)");
}

DType QuantParams::storage_dtype(bool pack_int4) const {
  if (bits == 16) return is_signed ? DType::kI16 : DType::kU16;
  if (bits == 4 && pack_int4) return is_signed ? DType::kI4 : DType::kU4;
  return is_signed ? DType::kI8 : DType::kU8;
}

std::string QuantParams::describe() const {
  std::string s = std::string(is_signed ? "int" : "uint") + std::to_string(bits);
  if (group_size > 0) return s + " per-group(" + std::to_string(group_size) + ", axis " + std::to_string(axis) + ")";
  if (axis >= 0) return s + " per-channel(axis " + std::to_string(axis) + ")";
  return s + " per-tensor";
}

Result<Requant> make_requant(double real) {
  if (!(real >= 0) || std::isinf(real)) return make_error("requantization multiplier " + std::to_string(real) + " is not a finite non-negative number");
  if (real == 0) return Requant{0, 1};
  if (real >= double(1 << 30)) return make_error("requantization multiplier " + std::to_string(real) + " is too large");
  int exp;
  double frac = std::frexp(real, &exp);  // real = frac * 2^exp, frac in [0.5, 1)
  int64_t m = std::llround(frac * double(int64_t(1) << 31));
  if (m == (int64_t(1) << 31)) {  // rounding reached 1.0
    m /= 2;
    ++exp;
  }
  int shift = 31 - exp;
  if (shift > 62) return make_error("requantization multiplier " + std::to_string(real) + " is too small");
  if (shift < 1) return make_error("requantization multiplier " + std::to_string(real) + " is too large");
  return Requant{int32_t(m), shift};
}

}  // namespace kiln::quant
