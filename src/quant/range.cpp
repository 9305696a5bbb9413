// Range -> (Delta, zero point), and the squared-error integral used by the MSE
// searches of weight_delta.cpp and observer_methods.cpp.
#include "quant/range.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "quant/quant_params.h"

namespace kiln::quant {

namespace {
// A positive step as a float: zero range -> kZeroRangeScale, denormal -> FLT_MIN.
float positive_scale(double range, double steps) {
  if (!(range > 0)) return kZeroRangeScale;
  float s = float(range / steps);
  return s < FLT_MIN ? FLT_MIN : s;
}
}  // namespace

ScaleZero scale_zero_from_range(double lo, double hi, int bits, bool is_signed, bool symmetric) {
  QuantParams grid;
  grid.bits = bits;
  grid.is_signed = is_signed;
  const int64_t qmin = grid.qmin(), qmax = grid.qmax();
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  ScaleZero r;
  if (symmetric) {
    double t = std::max(-lo, hi);
    if (is_signed) {
      r.scale = positive_scale(t, double(qmax));
    } else if (lo >= 0) {
      r.scale = positive_scale(hi, double(qmax));
    } else {
      int64_t half = int64_t(1) << (bits - 1);
      r.zero_point = int32_t(half);
      r.scale = positive_scale(t, double(half - 1));
    }
    return r;
  }
  r.scale = positive_scale(hi - lo, double(qmax - qmin));
  if (hi - lo > 0) {
    int64_t z = qmin - round_half_even(lo / double(r.scale));
    r.zero_point = int32_t(std::clamp(z, qmin, qmax));
  } else {
    r.zero_point = int32_t(std::clamp<int64_t>(0, qmin, qmax));
  }
  return r;
}

double sq_error_integral(double a, double b, float scale, int32_t zero_point, int64_t qmin, int64_t qmax) {
  if (!(b > a)) return 0.0;
  const double s = scale, z = zero_point;
  auto level = [&](double x) {
    double j = std::floor(x / s + 0.5) + z;  // ties are measure zero here
    return int64_t(std::clamp(j, double(qmin), double(qmax)));
  };
  // Integral of (x - c)^2 over [u, v), written to avoid cancellation far from c.
  auto piece = [&](double u, double v, int64_t j) {
    double c = (double(j) - z) * s, p = u - c, q = v - c;
    return (q - p) * (q * q + p * q + p * p) / 3.0;
  };
  int64_t ja = level(a), jb = level(b);
  if (ja == jb) return piece(a, b, ja);
  double upper_a = (double(ja) - z + 0.5) * s;  // ja < jb <= qmax, so ja's cell is bounded above
  double lower_b = (double(jb) - z - 0.5) * s;  // jb > ja >= qmin, so jb's cell is bounded below
  return piece(a, upper_a, ja) + piece(lower_b, b, jb) + double(jb - ja - 1) * s * s * s / 12.0;
}

}  // namespace kiln::quant
