// Reference kernels for elementwise ops. Unary float ops compute in float
// (double for f64) and round once on store, as numpy does per op.
#include <cmath>

#include "backends/reference/kernel.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

// out[i] = f(in[i]) for float dtypes.
template <class F>
Result<void> unary_float(KernelCtx& c, F f) {
  const Tensor& x = c.input(0);
  Tensor& y = c.out[0];
  return visit_float(x.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* in = x.data<T>();
    T* out = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) out[i] = store<T>(f(load(in[i])));
    return {};
  });
}

// out[i] = f(a[bi(i)], b[bi(i)]) for numeric dtypes (same dtype in and out).
template <class F>
Result<void> binary_numeric(KernelCtx& c, F f) {
  const Tensor& a = c.input(0);
  const Tensor& b = c.input(1);
  Tensor& y = c.out[0];
  BroadcastIndex ia(a.shape(), y.shape()), ib(b.shape(), y.shape());
  return visit_numeric(a.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* out = y.data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) out[i] = store<T>(f(load(pa[ia(i)]), load(pb[ib(i)])));
    return {};
  });
}

}  // namespace

Result<void> run_relu(KernelCtx& c) {
  if (is_integer(c.input(0).dtype())) {
    return visit_int(c.input(0).dtype(), [&](auto tag) -> Result<void> {
      using T = decltype(tag);
      const T* in = c.input(0).data<T>();
      T* out = c.out[0].data<T>();
      for (int64_t i = 0; i < c.input(0).numel(); ++i) out[i] = in[i] > T(0) ? in[i] : T(0);
      return {};
    });
  }
  return unary_float(c, [](auto v) { return v > 0 ? v : decltype(v)(0); });
}

Result<void> run_add(KernelCtx& c) {
  return binary_numeric(c, [](auto a, auto b) { return a + b; });
}

}  // namespace kiln::ref
