// Reference kernels for Softmax, LogSoftmax and Hardmax along any axis
// (opset 13 semantics; the importer rewrites older forms). The input is seen
// as [outer, len, inner]; exponentials and sums are taken in double after
// subtracting the maximum, so large inputs do not overflow.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

struct AxisView {
  int64_t outer = 1, len = 1, inner = 1;
};

Result<AxisView> axis_view(KernelCtx& c, const Tensor& x) {
  auto axis = normalize_axis(c.attr<ir::SoftmaxAttrs>().axis, x.rank());
  if (!axis.ok()) return c.fail(axis.error().message);
  AxisView v;
  v.len = x.dim(*axis);
  for (int64_t d = 0; d < x.rank(); ++d) {
    if (d < *axis) v.outer *= x.dim(d);
    if (d > *axis) v.inner *= x.dim(d);
  }
  return v;
}

// NaN wins, so that a NaN anywhere along the axis makes the whole slice NaN.
inline bool takes_max(double v, double best) { return !std::isnan(best) && (std::isnan(v) || v > best); }

// Softmax (log_out=false) or LogSoftmax (log_out=true). For each outer index
// the per-inner maxima and sums live in small buffers, so the passes over the
// data stay contiguous whatever the axis.
Result<void> softmax_impl(KernelCtx& c, bool log_out) {
  const Tensor& X = c.input(0);
  KILN_ASSIGN(AxisView v, axis_view(c, X));
  return visit_float(X.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* x = X.data<T>();
    T* y = c.out[0].data<T>();
    std::vector<double> mx(size_t(v.inner)), sum(size_t(v.inner));
    for (int64_t o = 0; o < v.outer; ++o) {
      const int64_t base = o * v.len * v.inner;
      std::fill(mx.begin(), mx.end(), -std::numeric_limits<double>::infinity());
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t k = 0; k < v.len; ++k)
        for (int64_t i = 0; i < v.inner; ++i) {
          double e = double(load(x[base + k * v.inner + i]));
          if (takes_max(e, mx[size_t(i)])) mx[size_t(i)] = e;
        }
      for (int64_t k = 0; k < v.len; ++k)
        for (int64_t i = 0; i < v.inner; ++i) sum[size_t(i)] += std::exp(double(load(x[base + k * v.inner + i])) - mx[size_t(i)]);
      if (log_out)
        for (auto& s : sum) s = std::log(s);
      for (int64_t k = 0; k < v.len; ++k)
        for (int64_t i = 0; i < v.inner; ++i) {
          int64_t j = base + k * v.inner + i;
          double d = double(load(x[j])) - mx[size_t(i)];
          y[j] = store<T>(log_out ? d - sum[size_t(i)] : std::exp(d) / sum[size_t(i)]);
        }
    }
    return {};
  });
}

}  // namespace

Result<void> run_softmax(KernelCtx& c) { return softmax_impl(c, false); }

Result<void> run_logsoftmax(KernelCtx& c) { return softmax_impl(c, true); }

Result<void> run_hardmax(KernelCtx& c) {
  const Tensor& X = c.input(0);
  KILN_ASSIGN(AxisView v, axis_view(c, X));
  return visit_float(X.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* x = X.data<T>();
    T* y = c.out[0].data<T>();
    for (int64_t o = 0; o < v.outer; ++o)
      for (int64_t i = 0; i < v.inner; ++i) {
        const int64_t base = o * v.len * v.inner + i;
        // 1 at the first maximum along the axis (numpy argmax), 0 elsewhere.
        int64_t arg = 0;
        double best = -std::numeric_limits<double>::infinity();
        for (int64_t k = 0; k < v.len; ++k) {
          double e = double(load(x[base + k * v.inner]));
          if (k == 0 || takes_max(e, best)) {
            best = e;
            arg = k;
          }
        }
        for (int64_t k = 0; k < v.len; ++k) y[base + k * v.inner] = store<T>(k == arg ? 1.0 : 0.0);
      }
    return {};
  });
}

}  // namespace kiln::ref
