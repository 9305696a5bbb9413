// Helpers shared by the reference quantization kernels (quant.cpp,
// quant_linear.cpp): unpacking integer tensors (incl. packed int4), the
// quantized ranges, and the one rounding rule: round half to even, then saturate.
// Tests: tests/unit/test_ref_reduce_quant.cpp.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "backends/reference/kernel.h"

namespace kiln::ref::quant {

struct QRange {
  int64_t lo, hi;
};
// Range of a quantized integer dtype (i8/u8/i16/u16/i4/u4, and i32).
inline QRange qrange(DType t) {
  switch (t) {
    case DType::kI8: return {-128, 127};
    case DType::kU8: return {0, 255};
    case DType::kI16: return {-32768, 32767};
    case DType::kU16: return {0, 65535};
    case DType::kI4: return {-8, 7};
    case DType::kU4: return {0, 15};
    case DType::kI32: return {INT32_MIN, INT32_MAX};
    default: return {0, 0};
  }
}

// round(v) with ties to even (the default FE_TONEAREST mode), then clamp to r.
// NaN saturates to r.lo (what ONNX's numpy reference produces on x86).
inline int64_t round_saturate(double v, QRange r) {
  if (std::isnan(v)) return r.lo;
  double t = std::nearbyint(v);
  if (t <= double(r.lo)) return r.lo;
  if (t >= double(r.hi)) return r.hi;
  return int64_t(t);
}

// Elements of an integer tensor of at most 32 bits (incl. i4/u4) as int32.
inline std::vector<int32_t> to_int32(const Tensor& t) {
  std::vector<int32_t> v(size_t(t.numel()));
  auto copy = [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = int32_t(p[i]);
  };
  switch (t.dtype()) {
    case DType::kI8: copy(int8_t{}); break;
    case DType::kU8: copy(uint8_t{}); break;
    case DType::kI16: copy(int16_t{}); break;
    case DType::kU16: copy(uint16_t{}); break;
    case DType::kI32: copy(int32_t{}); break;
    default:
      for (size_t i = 0; i < v.size(); ++i) v[i] = int32_t(t.as_int(int64_t(i)));
      break;
  }
  return v;
}

// Any numeric tensor's elements as double (scales, small parameter tensors).
inline std::vector<double> to_double(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = t.as_double(int64_t(i));
  return v;
}

// Writes already-saturated values into an i8/u8/i16/u16/i4/u4/i32 tensor.
// 4-bit types pack two per byte, low nibble first.
inline void pack_ints(const std::vector<int32_t>& v, Tensor& out) {
  auto put = [&](auto tag) {
    using T = decltype(tag);
    T* p = out.data<T>();
    for (size_t i = 0; i < v.size(); ++i) p[i] = T(v[i]);
  };
  switch (out.dtype()) {
    case DType::kI8: put(int8_t{}); break;
    case DType::kU8: put(uint8_t{}); break;
    case DType::kI16: put(int16_t{}); break;
    case DType::kU16: put(uint16_t{}); break;
    case DType::kI32: put(int32_t{}); break;
    case DType::kI4:
    case DType::kU4: {
      uint8_t* p = out.data<uint8_t>();
      for (size_t i = 0; i < v.size(); ++i) {
        int sh = int(i & 1) * 4;
        uint8_t nib = uint8_t(uint32_t(v[i]) & 0xfu);
        p[i / 2] = uint8_t((p[i / 2] & ~(0xf << sh)) | (nib << sh));
      }
      break;
    }
    default: break;
  }
}

// Rounds a float to the precision of a 16-bit float scale dtype, as numpy's
// float16 arithmetic does after every operation; identity for other dtypes.
inline float round_to(DType t, float v) {
  if (t == DType::kF16) return to_float(to_f16(v));
  if (t == DType::kBF16) return to_float(to_bf16(v));
  return v;
}

}  // namespace kiln::ref::quant
