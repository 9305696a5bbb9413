// Reference kernels for normalization: BatchNormalization (inference),
// LayerNormalization (+ optional Mean / InvStdDev), InstanceNormalization,
// LRN, MeanVarianceNormalization, LpNormalization. Statistics are taken in
// double (two passes: mean, then mean squared deviation) and every output is
// rounded once, so results do not depend on summation order.
#include <cmath>
#include <cstring>

#include "backends/reference/kernel.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

// A small per-channel parameter tensor as doubles (any float dtype).
std::vector<double> param_values(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.as_double(i);
  return v;
}

// Writes doubles into a float tensor of any float dtype, rounding once.
Result<void> write_values(Tensor& t, const std::vector<double>& v) {
  return visit_float(t.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = store<T>(v[size_t(i)]);
    return {};
  });
}

// [N, C, rest...] viewed as N x C x inner.
struct NCView {
  int64_t n = 1, c = 1, inner = 1;
};
NCView nc_view(const Shape& s) {
  NCView v;
  if (s.size() == 1) {
    v.c = s[0];
    return v;
  }
  v.n = s[0];
  v.c = s[1];
  for (size_t i = 2; i < s.size(); ++i) v.inner *= s[i];
  return v;
}

Result<void> check_channel_param(KernelCtx& c, size_t i, const char* name, int64_t channels) {
  const Tensor& t = c.input(i);
  if (t.rank() != 1 || t.dim(0) != channels)
    return c.fail(std::string(name) + " has shape " + shape_str(t.shape()) + ", expected [" + std::to_string(channels) +
                  "] (one value per channel)");
  if (!is_float(t.dtype())) return c.fail(std::string(name) + " must have a float dtype");
  return {};
}

}  // namespace

Result<void> run_batchnorm(KernelCtx& c) {
  const auto& at = c.attr<ir::BatchNormAttrs>();
  if (at.training_mode) return c.fail("training_mode=1 is not supported (inference only)");
  const Tensor& X = c.input(0);
  if (X.rank() < 1) return c.fail("X must have rank >= 1");
  NCView v = nc_view(X.shape());
  static const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
  for (size_t i = 1; i < 5; ++i) KILN_TRY(check_channel_param(c, i, names[i], v.c));
  auto scale = param_values(c.input(1)), bias = param_values(c.input(2));
  auto mean = param_values(c.input(3)), var = param_values(c.input(4));
  std::vector<double> inv(size_t(v.c));
  for (int64_t ch = 0; ch < v.c; ++ch) inv[size_t(ch)] = 1.0 / std::sqrt(var[size_t(ch)] + double(at.epsilon));
  KILN_TRY(visit_float(X.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* x = X.data<T>();
    T* y = c.out[0].data<T>();
    for (int64_t n = 0; n < v.n; ++n)
      for (int64_t ch = 0; ch < v.c; ++ch) {
        size_t k = size_t(ch);
        int64_t base = (n * v.c + ch) * v.inner;
        for (int64_t i = base; i < base + v.inner; ++i)
          y[i] = store<T>((double(load(x[i])) - mean[k]) * inv[k] * scale[k] + bias[k]);
      }
    return {};
  }));
  // Inference leaves the running statistics as they were.
  for (size_t o = 1; o < 3 && o < c.out.size(); ++o)
    if (c.out[o].defined()) std::memcpy(c.out[o].raw(), c.input(o + 2).raw(), size_t(c.input(o + 2).nbytes()));
  return {};
}

Result<void> run_layernorm(KernelCtx& c) {
  const auto& at = c.attr<ir::LayerNormAttrs>();
  const Tensor& X = c.input(0);
  auto axis = normalize_axis(at.axis, X.rank());
  if (!axis.ok()) return c.fail(axis.error().message);
  int64_t rows = 1, cols = 1;
  for (int64_t d = 0; d < X.rank(); ++d) (d < *axis ? rows : cols) *= X.dim(d);
  std::vector<double> means(static_cast<size_t>(rows)), invs(static_cast<size_t>(rows));
  const Tensor& S = c.input(1);
  const Tensor* B = c.has(2) ? &c.input(2) : nullptr;
  BroadcastIndex si(S.shape(), X.shape()), bi(B ? B->shape() : Shape{}, X.shape());
  KILN_TRY(visit_float(X.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* x = X.data<T>();
    const T* s = S.data<T>();
    const T* b = B ? B->data<T>() : nullptr;
    T* y = c.out[0].data<T>();
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x + r * cols;
      double sum = 0, sq = 0;
      for (int64_t j = 0; j < cols; ++j) sum += double(load(xr[j]));
      double mean = cols ? sum / double(cols) : 0.0;
      for (int64_t j = 0; j < cols; ++j) {
        double d = double(load(xr[j])) - mean;
        sq += d * d;
      }
      double inv = 1.0 / std::sqrt((cols ? sq / double(cols) : 0.0) + double(at.epsilon));
      means[size_t(r)] = mean;
      invs[size_t(r)] = inv;
      for (int64_t j = 0; j < cols; ++j) {
        int64_t i = r * cols + j;
        double v = (double(load(xr[j])) - mean) * inv * double(load(s[si(i)]));
        if (b) v += double(load(b[bi(i)]));
        y[i] = store<T>(v);
      }
    }
    return {};
  }));
  if (c.out.size() > 1 && c.out[1].defined()) KILN_TRY(write_values(c.out[1], means));
  if (c.out.size() > 2 && c.out[2].defined()) KILN_TRY(write_values(c.out[2], invs));
  return {};
}

Result<void> run_instancenorm(KernelCtx& c) {
  const float eps = c.attr<ir::InstanceNormAttrs>().epsilon;
  const Tensor& X = c.input(0);
  if (X.rank() < 2) return c.fail("X must have shape [N, C, D...], got " + shape_str(X.shape()));
  NCView v = nc_view(X.shape());
  KILN_TRY(check_channel_param(c, 1, "scale", v.c));
  KILN_TRY(check_channel_param(c, 2, "B", v.c));
  auto scale = param_values(c.input(1)), bias = param_values(c.input(2));
  return visit_float(X.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* x = X.data<T>();
    T* y = c.out[0].data<T>();
    for (int64_t n = 0; n < v.n; ++n)
      for (int64_t ch = 0; ch < v.c; ++ch) {
        int64_t base = (n * v.c + ch) * v.inner;
        double sum = 0, sq = 0;
        for (int64_t i = base; i < base + v.inner; ++i) sum += double(load(x[i]));
        double mean = v.inner ? sum / double(v.inner) : 0.0;
        for (int64_t i = base; i < base + v.inner; ++i) {
          double d = double(load(x[i])) - mean;
          sq += d * d;
        }
        double inv = 1.0 / std::sqrt((v.inner ? sq / double(v.inner) : 0.0) + double(eps));
        for (int64_t i = base; i < base + v.inner; ++i)
          y[i] = store<T>((double(load(x[i])) - mean) * inv * scale[size_t(ch)] + bias[size_t(ch)]);
      }
    return {};
  });
}

Result<void> run_lrn(KernelCtx& c) {
  const auto& at = c.attr<ir::LrnAttrs>();
  const Tensor& X = c.input(0);
  if (at.size <= 0) return c.fail("size must be positive, got " + std::to_string(at.size));
  if (X.rank() < 2) return c.fail("X must have shape [N, C, D...], got " + shape_str(X.shape()));
  NCView v = nc_view(X.shape());
  // Window over channels [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped.
  const int64_t before = (at.size - 1) / 2, after = at.size - 1 - before;
  const double scale = double(at.alpha) / double(at.size);
  return visit_float(X.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* x = X.data<T>();
    T* y = c.out[0].data<T>();
    for (int64_t n = 0; n < v.n; ++n)
      for (int64_t ch = 0; ch < v.c; ++ch) {
        int64_t lo = std::max<int64_t>(0, ch - before), hi = std::min(v.c - 1, ch + after);
        for (int64_t s = 0; s < v.inner; ++s) {
          double sq = 0;
          for (int64_t k = lo; k <= hi; ++k) {
            double e = double(load(x[(n * v.c + k) * v.inner + s]));
            sq += e * e;
          }
          int64_t i = (n * v.c + ch) * v.inner + s;
          y[i] = store<T>(double(load(x[i])) / std::pow(double(at.bias) + scale * sq, double(at.beta)));
        }
      }
    return {};
  });
}

Result<void> run_mvn(KernelCtx& c) {
  const Tensor& X = c.input(0);
  // Reduced shape (kept dims 1 on the normalized axes): element i belongs to group g(i).
  Shape kept = X.shape();
  std::vector<bool> seen(size_t(X.rank()), false);
  for (int64_t a : c.attr<ir::MvnAttrs>().axes) {
    auto ax = normalize_axis(a, X.rank(), "axes");
    if (!ax.ok()) return c.fail(ax.error().message);
    if (seen[size_t(*ax)]) return c.fail("axes lists axis " + std::to_string(*ax) + " twice");
    seen[size_t(*ax)] = true;
    kept[size_t(*ax)] = 1;
  }
  const int64_t groups = numel(kept);
  const int64_t count = groups ? X.numel() / groups : 0;
  BroadcastIndex group(kept, X.shape());
  std::vector<double> mean(size_t(groups), 0.0), sq(size_t(groups), 0.0);
  return visit_float(X.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* x = X.data<T>();
    T* y = c.out[0].data<T>();
    for (int64_t i = 0; i < X.numel(); ++i) mean[size_t(group(i))] += double(load(x[i]));
    for (auto& m : mean) m /= double(count);
    for (int64_t i = 0; i < X.numel(); ++i) {
      double d = double(load(x[i])) - mean[size_t(group(i))];
      sq[size_t(group(i))] += d * d;
    }
    // ONNX's definition: (X - mean) / (sqrt(variance) + 1e-9).
    for (int64_t i = 0; i < X.numel(); ++i) {
      size_t g = size_t(group(i));
      y[i] = store<T>((double(load(x[i])) - mean[g]) / (std::sqrt(sq[g] / double(count)) + 1e-9));
    }
    return {};
  });
}

Result<void> run_lpnorm(KernelCtx& c) {
  const auto& at = c.attr<ir::LpNormAttrs>();
  const Tensor& X = c.input(0);
  if (at.p != 1 && at.p != 2) return c.fail("p must be 1 or 2, got " + std::to_string(at.p));
  auto axis = normalize_axis(at.axis, X.rank());
  if (!axis.ok()) return c.fail(axis.error().message);
  int64_t outer = 1, len = X.dim(*axis), inner = 1;
  for (int64_t d = 0; d < X.rank(); ++d) {
    if (d < *axis) outer *= X.dim(d);
    if (d > *axis) inner *= X.dim(d);
  }
  return visit_float(X.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* x = X.data<T>();
    T* y = c.out[0].data<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t in = 0; in < inner; ++in) {
        const int64_t base = o * len * inner + in;
        double norm = 0;
        for (int64_t k = 0; k < len; ++k) {
          double e = double(load(x[base + k * inner]));
          norm += at.p == 1 ? std::abs(e) : e * e;
        }
        if (at.p == 2) norm = std::sqrt(norm);
        // A zero vector stays zero (as in ONNX Runtime and torch.nn.functional.normalize), not 0/0 = NaN.
        for (int64_t k = 0; k < len; ++k) {
          int64_t i = base + k * inner;
          y[i] = store<T>(norm == 0 ? 0.0 : double(load(x[i])) / norm);
        }
      }
    return {};
  });
}

}  // namespace kiln::ref
