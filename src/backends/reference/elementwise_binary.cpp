// Reference kernels for numpy-broadcast arithmetic: Add Sub Mul Div Pow Mod,
// bit ops, PRelu, and the variadic Max Min Sum Mean. Integer arithmetic wraps
// modulo 2^bits; integer Div truncates toward zero (C, ONNX Runtime, and the
// ONNX reference's astype of the true quotient); integer division by zero is an error.
#include "backends/reference/elementwise_loops.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

// out = f(a, b) for A, B, Y of one numeric dtype; f gets compute-type values.
template <class F>
Result<void> binary_numeric(KernelCtx& c, F f) {
  return dispatch_numeric(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    map_binary<T, T, T>(c.input(0), c.input(1), c.out[0], f);
    return {};
  });
}

// Integer Div/Mod: a zero divisor would trap; report it instead.
template <class T>
Result<void> check_no_zero_divisor(KernelCtx& c, const Tensor& b) {
  const T* p = b.data<T>();
  for (int64_t i = 0; i < b.numel(); ++i)
    if (p[i] == T(0)) return c.fail("integer division by zero (divisor element " + std::to_string(i) + ")");
  return {};
}

// base^exp for integers, by squaring modulo 2^64 then truncated to T (equal to
// numpy's power in the wider promoted type followed by astype). Negative
// exponents give the truncated true value: 1 for base 1, +-1 for base -1, else 0.
template <class T, class E>
T int_pow(T base, E e, bool& zero_to_negative) {
  if constexpr (std::is_signed_v<E>) {
    if (e < 0) {
      if (base == T(0)) zero_to_negative = true;
      if (base == T(1)) return T(1);
      if constexpr (std::is_signed_v<T>)
        if (base == T(-1)) return e % 2 == 0 ? T(1) : T(-1);
      return T(0);
    }
  }
  uint64_t result = 1, b = uint64_t(base);
  for (uint64_t n = uint64_t(e); n; n >>= 1) {
    if (n & 1) result *= b;
    b *= b;
  }
  return T(result);
}

// Fold every input into the output in order: out = f(...f(f(x0, x1), x2)...).
// The running value is stored in Y's dtype after each step, as numpy's
// chained binary ufuncs do.
template <class F>
Result<void> fold_numeric(KernelCtx& c, bool float_only, F f) {
  DType dt = c.input(0).dtype();
  if (float_only && !is_float(dt)) return c.unsupported_dtype(dt);
  return dispatch_numeric(c, dt, [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    Tensor& y = c.out[0];
    T* out = y.data<T>();
    Operand<T> first(c.input(0), y.shape());
    for_each_row(y.shape(), [&](int64_t start, int64_t len) {
      const T* r = first.row(start);
      for (int64_t j = 0; j < len; ++j) out[start + j] = r[j * first.step()];
    });
    for (size_t k = 1; k < c.num_inputs(); ++k) {
      if (!c.has(k)) continue;
      Operand<T> in(c.input(k), y.shape());
      for_each_row(y.shape(), [&](int64_t start, int64_t len) {
        const T* r = in.row(start);
        for (int64_t j = 0; j < len; ++j)
          out[start + j] = store<T>(f(load(out[start + j]), load(r[j * in.step()])));
      });
    }
    return {};
  });
}

template <class C>
C max_nan(C a, C b) {
  if constexpr (std::is_floating_point_v<C>)
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? a : b;
  return a < b ? b : a;
}
template <class C>
C min_nan(C a, C b) {
  if constexpr (std::is_floating_point_v<C>)
    if (std::isnan(a) || std::isnan(b)) return std::isnan(a) ? a : b;
  return b < a ? b : a;
}

}  // namespace

Result<void> run_add(KernelCtx& c) {
  return binary_numeric(c, [](auto a, auto b) {
    if constexpr (std::is_floating_point_v<decltype(a)>)
      return a + b;
    else
      return wrap_add(a, b);
  });
}

Result<void> run_sub(KernelCtx& c) {
  return binary_numeric(c, [](auto a, auto b) {
    if constexpr (std::is_floating_point_v<decltype(a)>)
      return a - b;
    else
      return wrap_sub(a, b);
  });
}

Result<void> run_mul(KernelCtx& c) {
  return binary_numeric(c, [](auto a, auto b) {
    if constexpr (std::is_floating_point_v<decltype(a)>)
      return a * b;
    else
      return wrap_mul(a, b);
  });
}

Result<void> run_div(KernelCtx& c) {
  return dispatch_numeric(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    if constexpr (is_int_v<T>) {
      KILN_TRY(check_no_zero_divisor<T>(c, c.input(1)));
      map_binary<T, T, T>(c.input(0), c.input(1), c.out[0], [](T a, T b) {
        // INT_MIN / -1 overflows (and traps on x86); it wraps to INT_MIN.
        if constexpr (std::is_signed_v<T>)
          if (b == T(-1)) return wrap_neg(a);
        return T(a / b);
      });
    } else {
      map_binary<T, T, T>(c.input(0), c.input(1), c.out[0], [](auto a, auto b) { return a / b; });
    }
    return {};
  });
}

// Mod: fmod=1 takes the dividend's sign (C fmod); fmod=0 the divisor's (Python %),
// for integers only (ONNX requires fmod=1 for floating point).
Result<void> run_mod(KernelCtx& c) {
  bool c_fmod = c.attr<ir::ModAttrs>().fmod != 0;
  DType dt = c.input(0).dtype();
  if (is_float(dt) && !c_fmod) return c.fail("Mod of floating-point inputs requires fmod=1 (ONNX spec)");
  return dispatch_numeric(c, dt, [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    if constexpr (is_int_v<T>) {
      KILN_TRY(check_no_zero_divisor<T>(c, c.input(1)));
      map_binary<T, T, T>(c.input(0), c.input(1), c.out[0], [=](T a, T b) {
        if constexpr (std::is_signed_v<T>) {
          if (b == T(-1)) return T(0);  // INT_MIN % -1 would trap
          T r = T(a % b);
          if (!c_fmod && r != 0 && ((r < 0) != (b < 0))) r = T(r + b);
          return r;
        } else {
          return T(a % b);
        }
      });
    } else {
      map_binary<T, T, T>(c.input(0), c.input(1), c.out[0], [](auto a, auto b) { return std::fmod(a, b); });
    }
    return {};
  });
}

// Pow: Y has the base's dtype. Same-dtype floats compute in that float (powf
// for f32, as numpy); any other float mix computes in double, as numpy's type
// promotion does, then rounds once; integer bases with float exponents
// truncate the double result; integer^integer is exact modulo 2^bits.
Result<void> run_pow(KernelCtx& c) {
  const Tensor& x = c.input(0);
  const Tensor& e = c.input(1);
  bool zero_to_negative = false;
  KILN_TRY(dispatch_numeric(c, x.dtype(), [&](auto xtag) -> Result<void> {
    using T = decltype(xtag);
    return dispatch_numeric(c, e.dtype(), [&](auto etag) -> Result<void> {
      using E = decltype(etag);
      if constexpr (std::is_same_v<T, E> && is_float_v<T>) {
        map_binary<T, T, T>(x, e, c.out[0], [](auto a, auto b) { return std::pow(a, b); });
      } else if constexpr (is_int_v<T> && is_int_v<E>) {
        map_binary<T, E, T>(x, e, c.out[0], [&](T a, E b) { return int_pow(a, b, zero_to_negative); });
      } else {
        map_binary<T, E, T>(x, e, c.out[0], [](auto a, auto b) {
          return load(cast_value<T>(std::pow(double(a), double(b))));
        });
      }
      return {};
    });
  }));
  if (zero_to_negative) return c.fail("integer Pow raises 0 to a negative power");
  return {};
}

Result<void> run_bit_shift(KernelCtx& c) {
  bool left = c.attr<ir::BitShiftAttrs>().direction == ir::ShiftDir::kLeft;
  DType dt = c.input(0).dtype();
  if (!is_integer(dt) || dtype_info(dt).is_signed) return c.unsupported_dtype(dt);
  return dispatch_int(c, dt, [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    if constexpr (std::is_unsigned_v<T>) {
      // Shifting by the bit width or more is UB in C++; numpy gives 0.
      constexpr T kBits = T(sizeof(T) * 8);
      map_binary<T, T, T>(c.input(0), c.input(1), c.out[0], [=](T a, T b) {
        if (b >= kBits) return T(0);
        return left ? T(a << b) : T(a >> b);
      });
    }
    return {};
  });
}

Result<void> run_bitwise_and(KernelCtx& c) {
  return dispatch_int(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    map_binary<T, T, T>(c.input(0), c.input(1), c.out[0], [](T a, T b) { return T(a & b); });
    return {};
  });
}
Result<void> run_bitwise_or(KernelCtx& c) {
  return dispatch_int(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    map_binary<T, T, T>(c.input(0), c.input(1), c.out[0], [](T a, T b) { return T(a | b); });
    return {};
  });
}
Result<void> run_bitwise_xor(KernelCtx& c) {
  return dispatch_int(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    map_binary<T, T, T>(c.input(0), c.input(1), c.out[0], [](T a, T b) { return T(a ^ b); });
    return {};
  });
}

Result<void> run_prelu(KernelCtx& c) {
  return binary_numeric(c, [](auto x, auto slope) {
    using C = decltype(x);
    if constexpr (std::is_floating_point_v<C>)
      return x < C(0) ? slope * x : x;
    else
      return x < C(0) ? wrap_mul(slope, x) : x;
  });
}

Result<void> run_max(KernelCtx& c) {
  return fold_numeric(c, false, [](auto a, auto b) { return max_nan(a, b); });
}

Result<void> run_min(KernelCtx& c) {
  return fold_numeric(c, false, [](auto a, auto b) { return min_nan(a, b); });
}

Result<void> run_sum(KernelCtx& c) {
  return fold_numeric(c, false, [](auto a, auto b) {
    if constexpr (std::is_floating_point_v<decltype(a)>)
      return a + b;
    else
      return wrap_add(a, b);
  });
}

Result<void> run_mean(KernelCtx& c) {
  KILN_TRY(fold_numeric(c, true, [](auto a, auto b) { return a + b; }));
  int64_t n = 0;
  for (size_t k = 0; k < c.num_inputs(); ++k) n += c.has(k) ? 1 : 0;
  return visit_float(c.out[0].dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* out = c.out[0].data<T>();
    for (int64_t i = 0; i < c.out[0].numel(); ++i) out[i] = store<T>(load(out[i]) / C(n));
    return {};
  });
}

}  // namespace kiln::ref
