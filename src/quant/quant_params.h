// The one definition of kiln's quantization arithmetic. Every backend (reference,
// CPU, CUDA, HLS) must reproduce these integer results bit for bit.
//
//   Q(x)      = clamp(round_half_even(x / Delta) + z, qmin, qmax)
//   deQ(q)    = (q - z) * Delta
//   requant   int32 accumulator -> int8/uint8 output with a fixed-point
//             multiplier: M = Delta_x * Delta_w / Delta_y ~= m * 2^-s with
//             m in [2^30, 2^31), and
//             y = clamp(rshift_round_half_even(int64(acc) * m, s) + z_y, lo, hi)
//             (the 64-bit product cannot overflow: |acc| < 2^31, m < 2^31).
//
// Tested in tests/unit/test_quant_params.cpp (ties, saturation, negative zero points).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/result.h"

namespace kiln::quant {

// Scale(s) Delta and zero point(s) of one tensor. Per-tensor: one scale.
// Per-channel: one scale per index of `axis`. Per-group: one scale per
// `group_size` consecutive elements along `axis` for each other index.
struct QuantParams {
  int bits = 8;           // 2..8 or 16
  bool is_signed = true;  // int vs uint storage
  std::vector<float> scale;
  std::vector<int32_t> zero_point;  // same length as scale (all 0 when symmetric)
  int64_t axis = -1;                // -1: per tensor
  int64_t group_size = 0;           // >0: groups along axis

  int64_t qmin() const { return is_signed ? -(int64_t(1) << (bits - 1)) : 0; }
  int64_t qmax() const { return is_signed ? (int64_t(1) << (bits - 1)) - 1 : (int64_t(1) << bits) - 1; }
  // Storage dtype: i8/u8 for <= 8 bits (i4/u4 when bits == 4 and packed), i16/u16 for 16.
  DType storage_dtype(bool pack_int4 = true) const;
  std::string describe() const;  // "int8 per-channel(axis 0)", ...
};

Result<void> check_bits(int bits);

// Round half to even, as ONNX QuantizeLinear and numpy do.
inline int64_t round_half_even(double v) {
  double f = v - static_cast<double>(static_cast<int64_t>(v));  // fractional part, sign of v
  int64_t i = static_cast<int64_t>(v);
  if (f > 0.5 || (f == 0.5 && (i & 1))) return i + 1;
  if (f < -0.5 || (f == -0.5 && (i & 1))) return i - 1;
  return i;
}

// Q(x): the division is done in float (as ONNX specifies for float32 x and
// scale). Saturating before rounding gives the same result (the bounds are
// integers) and keeps huge values from overflowing.
inline int32_t quantize_value(float x, float scale, int32_t zero_point, int64_t qmin, int64_t qmax) {
  float r = x / scale;
  if (r != r) return static_cast<int32_t>(qmin);  // NaN
  double lo = double(qmin - zero_point), hi = double(qmax - zero_point);
  double v = r < lo ? lo : (r > hi ? hi : double(r));
  return static_cast<int32_t>(round_half_even(v) + zero_point);
}

inline float dequantize_value(int32_t q, float scale, int32_t zero_point) {
  return static_cast<float>(q - zero_point) * scale;
}

// Fixed-point form of a positive real multiplier: real ~= multiplier * 2^-shift.
struct Requant {
  int32_t multiplier = 0;  // in [2^30, 2^31) (0 encodes a zero multiplier)
  int shift = 0;           // total right shift, 1..62
};

// Error when the multiplier is not positive and finite or is too large (>= 2^30)
// or too small (below about 2^-32: the shift would exceed 62) to represent.
Result<Requant> make_requant(double real_multiplier);

// round_half_even(v / 2^shift) for 1 <= shift <= 62, exact in integers.
inline int64_t rshift_round_half_even(int64_t v, int shift) {
  int64_t q = v >> shift;  // floor (arithmetic shift)
  int64_t rem = v - (q << shift);
  int64_t half = int64_t(1) << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) ++q;
  return q;
}

inline int32_t requantize(int32_t acc, const Requant& r, int32_t zero_point, int64_t lo, int64_t hi) {
  int64_t v = r.multiplier == 0 ? 0 : rshift_round_half_even(int64_t(acc) * r.multiplier, r.shift);
  v += zero_point;
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return static_cast<int32_t>(v);
}

}  // namespace kiln::quant
