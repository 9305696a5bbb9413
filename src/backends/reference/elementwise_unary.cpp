// Reference kernels for unary math ops (Abs ... Atanh, Sqrt, Exp, Log, Round,
// Erf, IsNaN/IsInf, Not, BitwiseNot) and the copies Identity and Dropout.
// f32 computes in float, f64 in double, f16/bf16 in float, each rounded once on
// store, as numpy's float ufuncs do; integers wrap instead of overflowing.
#include <cstring>

#include "backends/reference/elementwise_loops.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

// Round half to even, written out so it does not depend on the FP rounding mode.
template <class C>
C round_half_even(C v) {
  if (!std::isfinite(v)) return v;
  C f = std::floor(v);
  C d = v - f;  // exact: v and f are within one unit of each other
  C r = d < C(0.5) ? f : (d > C(0.5) ? f + C(1) : (std::fmod(f, C(2)) == C(0) ? f : f + C(1)));
  return std::copysign(r, v);  // -0.4 and -0.5 round to -0, as numpy
}

// Integer results of float math (Erf of an integer input) go through double.
template <class C, class F>
C via_double(C v, F f) {
  if constexpr (std::is_floating_point_v<C>)
    return f(v);
  else
    return cast_value<C>(f(double(v)));
}

}  // namespace

Result<void> run_abs(KernelCtx& c) {
  return unary_numeric(c, [](auto v) {
    using C = decltype(v);
    if constexpr (std::is_floating_point_v<C>)
      return std::fabs(v);
    else if constexpr (std::is_signed_v<C>)
      return v < 0 ? wrap_neg(v) : v;  // |INT_MIN| wraps to INT_MIN, as numpy
    else
      return v;
  });
}

Result<void> run_neg(KernelCtx& c) {
  return unary_numeric(c, [](auto v) {
    using C = decltype(v);
    if constexpr (std::is_floating_point_v<C>)
      return -v;
    else
      return wrap_neg(v);
  });
}

Result<void> run_sign(KernelCtx& c) {
  return unary_numeric(c, [](auto v) {
    using C = decltype(v);
    if constexpr (std::is_floating_point_v<C>)
      if (std::isnan(v)) return v;
    return v > C(0) ? C(1) : (v < C(0) ? C(-1) : C(0));
  });
}

Result<void> run_relu(KernelCtx& c) {
  // v < 0 ? 0 : v keeps NaN, as numpy's clip/maximum do.
  return unary_numeric(c, [](auto v) { return v < decltype(v)(0) ? decltype(v)(0) : v; });
}

Result<void> run_reciprocal(KernelCtx& c) {
  return unary_float(c, [](auto v) { return decltype(v)(1) / v; });
}
Result<void> run_floor(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::floor(v); });
}
Result<void> run_ceil(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::ceil(v); });
}
Result<void> run_round(KernelCtx& c) {
  return unary_float(c, [](auto v) { return round_half_even(v); });
}
Result<void> run_sqrt(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::sqrt(v); });
}
Result<void> run_exp(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::exp(v); });
}
Result<void> run_log(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::log(v); });
}
Result<void> run_erf(KernelCtx& c) {
  return unary_numeric(c, [](auto v) { return via_double(v, [](auto u) { return std::erf(u); }); });
}

Result<void> run_sin(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::sin(v); });
}
Result<void> run_cos(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::cos(v); });
}
Result<void> run_tan(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::tan(v); });
}
Result<void> run_asin(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::asin(v); });
}
Result<void> run_acos(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::acos(v); });
}
Result<void> run_atan(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::atan(v); });
}
Result<void> run_sinh(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::sinh(v); });
}
Result<void> run_cosh(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::cosh(v); });
}
Result<void> run_tanh(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::tanh(v); });
}
Result<void> run_asinh(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::asinh(v); });
}
Result<void> run_acosh(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::acosh(v); });
}
Result<void> run_atanh(KernelCtx& c) {
  return unary_float(c, [](auto v) { return std::atanh(v); });
}

Result<void> run_isnan(KernelCtx& c) {
  return dispatch_float(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    map_unary<decltype(tag), bool>(c.input(0), c.out[0], [](auto v) { return std::isnan(v); });
    return {};
  });
}

Result<void> run_isinf(KernelCtx& c) {
  const auto& a = c.attr<ir::IsInfAttrs>();
  bool neg = a.detect_negative != 0, pos = a.detect_positive != 0;
  return dispatch_float(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    map_unary<decltype(tag), bool>(c.input(0), c.out[0], [&](auto v) {
      return std::isinf(v) && (v > 0 ? pos : neg);
    });
    return {};
  });
}

Result<void> run_not(KernelCtx& c) {
  if (c.input(0).dtype() != DType::kBool) return c.unsupported_dtype(c.input(0).dtype());
  map_unary<bool, bool>(c.input(0), c.out[0], [](bool v) { return !v; });
  return {};
}

Result<void> run_bitwise_not(KernelCtx& c) {
  return dispatch_int(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    map_unary<T, T>(c.input(0), c.out[0], [](T v) { return T(~v); });
    return {};
  });
}

Result<void> run_identity(KernelCtx& c) {
  const Tensor& x = c.input(0);
  if (x.nbytes() > 0) std::memcpy(c.out[0].raw(), x.raw(), size_t(x.nbytes()));
  return {};
}

// Inference-mode Dropout: Y = X, mask all true. Training mode is rejected by
// infer_dropout whenever its inputs are known; this repeats the check so the
// kernel is safe on its own.
Result<void> run_dropout(KernelCtx& c) {
  if (c.has(2) && c.input(2).numel() == 1 && c.input(2).as_int(0) != 0) {
    double ratio = c.has(1) && c.input(1).numel() == 1 ? c.input(1).as_double(0) : 0.5;
    if (ratio != 0.0)
      return c.fail("training mode is not supported (training_mode is true, ratio " + std::to_string(ratio) +
                    "); kiln runs Dropout for inference only");
  }
  KILN_TRY(run_identity(c));
  if (c.out.size() < 2 || !c.out[1].defined()) return {};
  Tensor& mask = c.out[1];
  return dispatch_all(c, mask.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    T one = cast_value<T>(true);
    T* m = mask.data<T>();
    for (int64_t i = 0; i < mask.numel(); ++i) m[i] = one;
    return {};
  });
}

}  // namespace kiln::ref
