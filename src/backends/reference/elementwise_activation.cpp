// Reference kernels for activation functions (Sigmoid, Softplus, Gelu, Elu,
// HardSwish, ...), Shrink and Clip. Float attributes are converted once to the
// compute type (float for f32/f16/bf16, double for f64); NaN inputs propagate
// wherever the ONNX formula would propagate them.
#include "backends/reference/elementwise_loops.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

// max(0, min(1, t)) keeping NaN.
template <class C>
C clamp01(C t) {
  return t < C(0) ? C(0) : (t > C(1) ? C(1) : t);
}

// log(1 + e^v) without overflow for large v.
template <class C>
C softplus(C v) {
  return v > C(0) ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v));
}

}  // namespace

Result<void> run_sigmoid(KernelCtx& c) {
  // Two branches so exp never overflows.
  return unary_float(c, [](auto v) {
    using C = decltype(v);
    if (v >= C(0)) return C(1) / (C(1) + std::exp(-v));
    C e = std::exp(v);
    return e / (C(1) + e);
  });
}

Result<void> run_softsign(KernelCtx& c) {
  return unary_float(c, [](auto v) { return v / (decltype(v)(1) + std::fabs(v)); });
}

Result<void> run_softplus(KernelCtx& c) {
  return unary_float(c, [](auto v) { return softplus(v); });
}

Result<void> run_mish(KernelCtx& c) {
  return unary_float(c, [](auto v) { return v * std::tanh(softplus(v)); });
}

Result<void> run_gelu(KernelCtx& c) {
  if (c.attr<ir::GeluAttrs>().approximate == ir::GeluApprox::kTanh) {
    return unary_float(c, [](auto v) {
      using C = decltype(v);
      const C k = C(0.79788456080286535588);  // sqrt(2/pi)
      return C(0.5) * v * (C(1) + std::tanh(k * (v + C(0.044715) * v * v * v)));
    });
  }
  return unary_float(c, [](auto v) {
    using C = decltype(v);
    return C(0.5) * v * (C(1) + std::erf(v * C(0.70710678118654752440)));  // 1/sqrt(2)
  });
}

Result<void> run_elu(KernelCtx& c) {
  float alpha = c.attr<ir::EluAttrs>().alpha;
  return unary_float(c, [=](auto v) {
    using C = decltype(v);
    return v < C(0) ? C(alpha) * std::expm1(v) : v;
  });
}

Result<void> run_celu(KernelCtx& c) {
  float alpha = c.attr<ir::EluAttrs>().alpha;
  if (alpha == 0.0f) return c.fail("Celu alpha must be non-zero");
  return unary_float(c, [=](auto v) {
    using C = decltype(v);
    return v < C(0) ? C(alpha) * std::expm1(v / C(alpha)) : v;
  });
}

Result<void> run_selu(KernelCtx& c) {
  const auto& a = c.attr<ir::SeluAttrs>();
  float alpha = a.alpha, gamma = a.gamma;
  return unary_float(c, [=](auto v) {
    using C = decltype(v);
    return v <= C(0) ? C(gamma) * (C(alpha) * std::expm1(v)) : C(gamma) * v;
  });
}

Result<void> run_leaky_relu(KernelCtx& c) {
  float alpha = c.attr<ir::LeakyReluAttrs>().alpha;
  return unary_float(c, [=](auto v) {
    using C = decltype(v);
    return v < C(0) ? C(alpha) * v : v;
  });
}

Result<void> run_thresholded_relu(KernelCtx& c) {
  float alpha = c.attr<ir::ThresholdedReluAttrs>().alpha;
  return unary_float(c, [=](auto v) {
    using C = decltype(v);
    return v <= C(alpha) ? C(0) : v;
  });
}

Result<void> run_hard_sigmoid(KernelCtx& c) {
  const auto& a = c.attr<ir::HardSigmoidAttrs>();
  float alpha = a.alpha, beta = a.beta;
  return unary_float(c, [=](auto v) {
    using C = decltype(v);
    return clamp01(C(alpha) * v + C(beta));
  });
}

Result<void> run_hard_swish(KernelCtx& c) {
  // ONNX: x * HardSigmoid(x) with alpha = 1/6, beta = 0.5.
  return unary_float(c, [](auto v) {
    using C = decltype(v);
    return v * clamp01(C(1.0 / 6.0) * v + C(0.5));
  });
}

Result<void> run_shrink(KernelCtx& c) {
  const auto& a = c.attr<ir::ShrinkAttrs>();
  double lambd = a.lambd, bias = a.bias;
  return unary_numeric(c, [=](auto v) {
    using C = decltype(v);
    if constexpr (std::is_floating_point_v<C>) {
      return v < -C(lambd) ? v + C(bias) : (v > C(lambd) ? v - C(bias) : C(0));
    } else {
      // Integers: compare and shift in double, then convert back (saturating).
      double d = double(v);
      return cast_value<C>(d < -lambd ? d + bias : (d > lambd ? d - bias : 0.0));
    }
  });
}

// Clip: optional scalar min (input 1) and max (input 2). Bounds of another
// dtype (older opsets' float attributes) are converted by cast_value. When
// min > max every element becomes max, as ONNX specifies.
Result<void> run_clip(KernelCtx& c) {
  for (size_t i = 1; i < 3; ++i)
    if (c.has(i) && c.input(i).numel() != 1)
      return c.fail(std::string(i == 1 ? "min" : "max") + " must be a scalar, got shape " +
                    shape_str(c.input(i).shape()));
  return dispatch_numeric(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    using C = compute_t<T>;
    bool has_lo = c.has(1), has_hi = c.has(2);
    C lo{}, hi{};
    for (size_t i = 1; i < 3; ++i) {
      if (!c.has(i)) continue;
      C& bound = i == 1 ? lo : hi;
      KILN_TRY(dispatch_numeric(c, c.input(i).dtype(), [&](auto btag) -> Result<void> {
        using B = decltype(btag);
        bound = load(cast_value<T>(c.input(i).data<B>()[0]));
        return {};
      }));
    }
    map_unary<T, T>(c.input(0), c.out[0], [&](C v) {
      if (has_lo && v < lo) v = lo;
      if (has_hi && v > hi) v = hi;
      return v;
    });
    return {};
  });
}

}  // namespace kiln::ref
