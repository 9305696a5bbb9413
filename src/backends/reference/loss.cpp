// Reference kernels for SoftmaxCrossEntropyLoss and NegativeLogLikelihoodLoss:
// inputs [N, C, D...], class targets [N, D...], optional class weights [C],
// ignore_index, reductions none/sum/mean (mean divides by the summed weights
// of the targets that count). Computed in double, rounded once on store.
#include <cmath>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

struct LossDims {
  int64_t n = 0, c = 0, d = 1;  // [N, C, D] with D the product of the trailing dims
};

Result<LossDims> loss_dims(KernelCtx& c) {
  const Tensor& x = c.input(0);
  const Tensor& t = c.input(1);
  if (x.rank() < 2) return c.fail("input must have shape [N, C, D...], got " + shape_str(x.shape()));
  LossDims v{x.dim(0), x.dim(1), 1};
  for (int64_t i = 2; i < x.rank(); ++i) v.d *= x.dim(i);
  if (t.numel() != v.n * v.d) return c.fail("target shape " + shape_str(t.shape()) + " does not match input " + shape_str(x.shape()));
  if (c.has(2) && c.input(2).numel() != v.c)
    return c.fail("weight has shape " + shape_str(c.input(2).shape()) + ", expected [" + std::to_string(v.c) + "]");
  return v;
}

Result<void> write_values(Tensor& t, const std::vector<double>& v) {
  return visit_float(t.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = store<T>(v[size_t(i)]);
    return {};
  });
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.as_double(i);
  return v;
}

// loss[n,d] = -weight[t] * logp[n, t, d] with t = target[n,d]; then the reduction.
Result<void> nll(KernelCtx& c, const LossDims& v, const std::vector<double>& logp) {
  const auto& at = c.attr<ir::LossAttrs>();
  const Tensor& target = c.input(1);
  std::vector<double> w = c.has(2) ? to_doubles(c.input(2)) : std::vector<double>();
  const bool has_ignore = at.ignore_index != ir::kAbsent;
  std::vector<double> loss(size_t(v.n * v.d), 0.0);
  double loss_sum = 0, weight_sum = 0;
  for (int64_t i = 0; i < v.n * v.d; ++i) {
    int64_t t = target.as_int(i);
    if (has_ignore && t == at.ignore_index) continue;  // contributes neither loss nor weight
    if (t < 0 || t >= v.c)
      return c.fail("target value " + std::to_string(t) + " at flat index " + std::to_string(i) +
                    " is not a class in [0, " + std::to_string(v.c) + ")");
    const int64_t n = i / v.d, d = i % v.d;
    const double wt = w.empty() ? 1.0 : w[size_t(t)];
    loss[size_t(i)] = -wt * logp[size_t((n * v.c + t) * v.d + d)];
    loss_sum += loss[size_t(i)];
    weight_sum += wt;
  }
  switch (at.reduction) {
    case ir::LossReduction::kNone: return write_values(c.out[0], loss);
    case ir::LossReduction::kSum: return write_values(c.out[0], {loss_sum});
    case ir::LossReduction::kMean: return write_values(c.out[0], {loss_sum / weight_sum});
  }
  return c.fail("unknown reduction");
}

}  // namespace

Result<void> run_sce_loss(KernelCtx& c) {
  KILN_ASSIGN(LossDims v, loss_dims(c));
  // log_softmax over the class axis (axis 1).
  std::vector<double> logp = to_doubles(c.input(0));
  for (int64_t n = 0; n < v.n; ++n)
    for (int64_t d = 0; d < v.d; ++d) {
      double* p = logp.data() + n * v.c * v.d + d;
      double mx = -INFINITY;
      for (int64_t k = 0; k < v.c; ++k) mx = std::isnan(mx) || p[k * v.d] <= mx ? mx : p[k * v.d];
      double sum = 0;
      for (int64_t k = 0; k < v.c; ++k) sum += std::exp(p[k * v.d] - mx);
      double lse = mx + std::log(sum);
      for (int64_t k = 0; k < v.c; ++k) p[k * v.d] -= lse;
    }
  if (c.out.size() > 1 && c.out[1].defined()) KILN_TRY(write_values(c.out[1], logp));
  return nll(c, v, logp);
}

Result<void> run_nll_loss(KernelCtx& c) {
  KILN_ASSIGN(LossDims v, loss_dims(c));
  return nll(c, v, to_doubles(c.input(0)));
}

}  // namespace kiln::ref
