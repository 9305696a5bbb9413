// From a clipping range [lo, hi] to (Delta, zero point) on an integer grid: the
// one rule shared by weight (weight_delta.h) and activation (observer.h) step
// choice, plus the expected squared quantization error of a uniform slice of
// values, which both the MSE searches use. Tested in tests/unit/test_quant_calib.cpp.
#pragma once
#include <cstdint>

namespace kiln::quant {

// Delta used when the range is exactly zero (an all-zero channel, a dead ReLU):
// any positive step represents such a tensor exactly, and 2^-23 rather than a
// denormal keeps requantization multipliers (Delta_x * Delta_w / Delta_y) within
// what make_requant can represent.
inline constexpr float kZeroRangeScale = 1.0f / 8388608.0f;

struct ScaleZero {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// The grid: bits and signedness of the storage (qmin/qmax as in QuantParams).
//  symmetric, signed storage:   z = 0, Delta = max(|lo|, |hi|) / qmax.
//  symmetric, unsigned storage: z = 0 and Delta = hi / qmax when lo >= 0 (all
//                               levels on [0, hi], e.g. post-ReLU), otherwise
//                               z = 2^(bits-1) and Delta = max(|lo|,|hi|) / (2^(bits-1) - 1).
//  asymmetric:                  the range is widened to contain 0, Delta =
//                               (hi - lo) / (qmax - qmin), z = qmin - round(lo / Delta)
//                               clamped to [qmin, qmax], so 0 is exactly representable.
// A zero range gives kZeroRangeScale; a positive range whose Delta would be
// denormal gets the smallest normal float. lo <= hi, both finite (callers check).
ScaleZero scale_zero_from_range(double lo, double hi, int bits, bool is_signed, bool symmetric);

// Integral of (x - deQ(Q(x)))^2 over x in [a, b) (a <= b), for the grid
// (scale, zero_point, qmin, qmax); saturation is included. Exact up to ties at
// cell boundaries (measure zero) and the float division in quantize_value.
double sq_error_integral(double a, double b, float scale, int32_t zero_point, int64_t qmin, int64_t qmax);

}  // namespace kiln::quant
