#include "prune/recover.h"

#include <algorithm>
#include <cmath>

#include "ir/edit.h"
#include "ir/infer.h"
#include "ir/ops/conv_geometry.h"
#include "ir/ops/nn.h"
#include "runtime/session.h"

namespace kiln::prune {
namespace {

using ir::OpKind;

int node_index(const ir::Graph& g, const std::string& name) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].name == name) return int(i);
  return -1;
}

// A session computing value `v` of `g` from the graph inputs.
Result<runtime::Session> probe(const ir::Graph& g, ir::ValueId v) {
  ir::Graph p = g;
  KILN_TRY(ir::topo_sort(p));
  p.outputs = {v};
  ir::remove_dead_nodes(p);
  KILN_TRY(ir::infer_graph(p));
  return runtime::Session::create(std::move(p));
}

// Normal equations of one layer: A = sum x x^T, B = sum x y^T, yy = sum y^2
// per output, over rows x (K values, plus a trailing 1 when `bias`).
struct Normal {
  int64_t k = 0, outs = 0;
  std::vector<double> a, b, yy;
  Normal(int64_t k_, int64_t outs_) : k(k_), outs(outs_), a(size_t(k_ * k_)), b(size_t(k_ * outs_)), yy(size_t(outs_)) {}
  void add(const double* x, const double* y) {
    for (int64_t i = 0; i < k; ++i) {
      double xi = x[i];
      if (xi == 0.0) continue;
      double* ai = a.data() + i * k;
      for (int64_t j = 0; j <= i; ++j) ai[j] += xi * x[j];
      double* bi = b.data() + i * outs;
      for (int64_t o = 0; o < outs; ++o) bi[o] += xi * y[o];
    }
    for (int64_t o = 0; o < outs; ++o) yy[size_t(o)] += y[o] * y[o];
  }
  void symmetrize() {
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = i + 1; j < k; ++j) a[size_t(i * k + j)] = a[size_t(j * k + i)];
  }
  // ||X theta - Y||^2 / ||Y||^2 with theta [k, outs].
  double rel_error(const std::vector<double>& theta) const {
    double err = 0, ref = 0;
    for (int64_t o = 0; o < outs; ++o) {
      double q = 0, lin = 0;
      for (int64_t i = 0; i < k; ++i) {
        double ti = theta[size_t(i * outs + o)];
        if (ti == 0.0) continue;
        double s = 0;
        for (int64_t j = 0; j < k; ++j) s += a[size_t(i * k + j)] * theta[size_t(j * outs + o)];
        q += ti * s;
        lin += ti * b[size_t(i * outs + o)];
      }
      err += q - 2 * lin + yy[size_t(o)];
      ref += yy[size_t(o)];
    }
    return ref > 0 ? std::sqrt(std::max(0.0, err) / ref) : 0.0;
  }
};

// Solves (A + lambda I) theta = B by Cholesky; false when not positive definite.
bool solve(const Normal& n, double ridge, std::vector<double>* theta) {
  int64_t k = n.k;
  std::vector<double> l(n.a);
  double mean_diag = 0;
  for (int64_t i = 0; i < k; ++i) mean_diag += l[size_t(i * k + i)];
  mean_diag = std::max(mean_diag / double(k), 1e-12);
  for (int64_t i = 0; i < k; ++i) l[size_t(i * k + i)] += ridge * mean_diag;
  for (int64_t j = 0; j < k; ++j) {
    double d = l[size_t(j * k + j)];
    for (int64_t p = 0; p < j; ++p) d -= l[size_t(j * k + p)] * l[size_t(j * k + p)];
    if (!(d > 0)) return false;
    d = std::sqrt(d);
    l[size_t(j * k + j)] = d;
    for (int64_t i = j + 1; i < k; ++i) {
      double s = l[size_t(i * k + j)];
      for (int64_t p = 0; p < j; ++p) s -= l[size_t(i * k + p)] * l[size_t(j * k + p)];
      l[size_t(i * k + j)] = s / d;
    }
  }
  theta->assign(n.b.begin(), n.b.end());
  for (int64_t o = 0; o < n.outs; ++o) {
    for (int64_t i = 0; i < k; ++i) {  // L z = b
      double s = (*theta)[size_t(i * n.outs + o)];
      for (int64_t p = 0; p < i; ++p) s -= l[size_t(i * k + p)] * (*theta)[size_t(p * n.outs + o)];
      (*theta)[size_t(i * n.outs + o)] = s / l[size_t(i * k + i)];
    }
    for (int64_t i = k - 1; i >= 0; --i) {  // L^T t = z
      double s = (*theta)[size_t(i * n.outs + o)];
      for (int64_t p = i + 1; p < k; ++p) s -= l[size_t(p * k + i)] * (*theta)[size_t(p * n.outs + o)];
      (*theta)[size_t(i * n.outs + o)] = s / l[size_t(i * k + i)];
    }
  }
  return true;
}

// Rows of one layer for one batch: x' (its input in the pruned model) and y
// (its output in the original model, kept channels only).
Result<void> add_rows(const ir::Node& n, const ir::WindowGeometry* geo, const Tensor& x, const Tensor& y,
                      const std::vector<int64_t>& kept, bool bias, Normal& ne) {
  int64_t outs = int64_t(kept.size());
  std::vector<double> row(static_cast<size_t>(ne.k)), target(static_cast<size_t>(outs));
  if (n.op != OpKind::kConv) {
    int64_t rows = x.dim(0), kin = x.dim(1), yo = y.dim(1);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < kin; ++i) row[size_t(i)] = x.data<float>()[r * kin + i];
      if (bias) row[size_t(kin)] = 1.0;
      for (int64_t o = 0; o < outs; ++o) target[size_t(o)] = y.data<float>()[r * yo + kept[size_t(o)]];
      ne.add(row.data(), target.data());
    }
    return {};
  }
  int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  int64_t kh = geo->kernel[0], kw = geo->kernel[1], Ho = geo->out[0], Wo = geo->out[1], yo = y.dim(1);
  if (y.dim(2) != Ho || y.dim(3) != Wo) return make_error("output size disagrees with the convolution geometry");
  const float* xp = x.data<float>();
  const float* yp = y.data<float>();
  for (int64_t b = 0; b < N; ++b)
    for (int64_t oy = 0; oy < Ho; ++oy)
      for (int64_t ox = 0; ox < Wo; ++ox) {
        int64_t i = 0;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx, ++i) {
              int64_t iy = oy * geo->strides[0] - geo->pads_begin[0] + ky * geo->dilations[0];
              int64_t ix = ox * geo->strides[1] - geo->pads_begin[1] + kx * geo->dilations[1];
              row[size_t(i)] = iy >= 0 && iy < H && ix >= 0 && ix < W ? xp[((b * C + c) * H + iy) * W + ix] : 0.0;
            }
        if (bias) row[size_t(i)] = 1.0;
        for (int64_t o = 0; o < outs; ++o) target[size_t(o)] = yp[((b * yo + kept[size_t(o)]) * Ho + oy) * Wo + ox];
        ne.add(row.data(), target.data());
      }
  return {};
}

}  // namespace

Result<std::vector<RecoveredLayer>> recover_least_squares(ir::Graph& pruned, const ir::Graph& original,
                                                          const ChannelPruneResult& pruning,
                                                          const quant::CalibSource& calib, const RecoverOptions& o) {
  // Sinks in graph order, each once.
  std::vector<std::pair<int, std::string>> sinks;
  for (const auto& l : pruning.layers)
    for (const auto& s : l.sinks)
      if (std::none_of(sinks.begin(), sinks.end(), [&](const auto& p) { return p.second == s.node; }))
        sinks.push_back({node_index(pruned, s.node), s.node});
  std::sort(sinks.begin(), sinks.end());
  std::vector<RecoveredLayer> out;
  for (const auto& [pi, name] : sinks) {
    RecoveredLayer rec;
    rec.node = name;
    int oi = node_index(original, name);
    if (pi < 0 || oi < 0) return make_error("layer '" + name + "' is missing from the pruned or original model");
    ir::Node n = pruned.nodes[size_t(pi)];
    const Tensor w = pruned.value(n.inputs[1]).constant;
    bool has_bias = n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue;
    bool fit_bias = n.op != OpKind::kMatMul;
    std::optional<ir::WindowGeometry> geo;
    if (n.op == OpKind::kConv) {
      const auto& xt = pruned.value(n.inputs[0]).type;
      if (w.rank() != 4 || !xt.rank_known || xt.shape.size() != 4) rec.skipped = "only 2-D convolutions are re-fitted";
      else {
        Shape xs = xt.shape;
        xs[0] = 1;
        auto gg = ir::conv_geometry(n.attr<ir::ConvAttrs>(), xs, w.shape());
        if (!gg.ok()) return make_error("layer '" + name + "': " + gg.error().message);
        geo = *gg;
      }
    } else if (n.op == OpKind::kGemm) {
      const auto& a = n.attr<ir::GemmAttrs>();
      if (a.alpha != 1.0f || (has_bias && a.beta != 1.0f)) rec.skipped = "Gemm with alpha or beta other than 1";
      if (has_bias && pruned.value(n.inputs[2]).constant.rank() != 1) rec.skipped = "Gemm bias that is not 1-D";
    } else if (n.op == OpKind::kMatMul) {
      if (pruned.value(n.inputs[0]).type.shape.size() != 2) rec.skipped = "MatMul on inputs of rank other than 2";
    }
    if (!rec.skipped.empty()) {
      out.push_back(rec);
      continue;
    }
    // Output channels this layer keeps (all, unless it was pruned itself).
    int out_ax = n.op == OpKind::kConv ? 0 : (n.op == OpKind::kGemm && n.attr<ir::GemmAttrs>().transB ? 0 : 1);
    int64_t outs_now = w.dim(out_ax);
    std::vector<int64_t> kept;
    if (const PrunedLayer* grp = pruning.group_of(name)) kept = grp->kept;
    if (kept.empty())
      for (int64_t c = 0; c < outs_now; ++c) kept.push_back(c);
    int64_t kin = n.op == OpKind::kConv ? w.numel() / w.dim(0) : w.dim(out_ax == 0 ? 1 : 0);
    Normal ne(kin + (fit_bias ? 1 : 0), int64_t(kept.size()));
    KILN_ASSIGN(auto xs, probe(pruned, n.inputs[0]));
    KILN_ASSIGN(auto ys, probe(original, original.nodes[size_t(oi)].outputs[0]));
    KILN_TRY(calib.for_each_batch(o.samples <= 0 ? 0 : std::min(o.samples, calib.size()), [&](std::span<const Tensor> in, int64_t, int64_t) -> Result<void> {
      KILN_ASSIGN(auto x, xs.run(in));
      KILN_ASSIGN(auto y, ys.run(in));
      return add_rows(n, geo ? &*geo : nullptr, x[0], y[0], kept, fit_bias, ne);
    }));
    ne.symmetrize();
    // The current weights as theta (rows: inputs in weight order, then bias).
    std::vector<double> cur(size_t(ne.k * ne.outs), 0.0);
    for (int64_t oc = 0; oc < ne.outs; ++oc) {
      for (int64_t i = 0; i < kin; ++i)
        cur[size_t(i * ne.outs + oc)] = out_ax == 0 ? w.data<float>()[oc * kin + i] : w.data<float>()[i * ne.outs + oc];
      if (fit_bias && has_bias) cur[size_t(kin * ne.outs + oc)] = pruned.value(n.inputs[2]).constant.data<float>()[oc];
    }
    rec.error_before = ne.rel_error(cur);
    std::vector<double> theta;
    if (!solve(ne, o.ridge, &theta)) {
      rec.skipped = "the least-squares system is singular";
      rec.error_after = rec.error_before;
      out.push_back(rec);
      continue;
    }
    rec.error_after = ne.rel_error(theta);
    if (rec.error_after >= rec.error_before) {  // never make a layer worse
      rec.skipped = "the re-fit did not reduce the error";
      rec.error_after = rec.error_before;
      out.push_back(rec);
      continue;
    }
    Tensor nw = Tensor::create(DType::kF32, w.shape()).value();
    for (int64_t oc = 0; oc < ne.outs; ++oc)
      for (int64_t i = 0; i < kin; ++i)
        (out_ax == 0 ? nw.data<float>()[oc * kin + i] : nw.data<float>()[i * ne.outs + oc]) = float(theta[size_t(i * ne.outs + oc)]);
    pruned.value(n.inputs[1]).constant = std::move(nw);
    if (fit_bias) {
      Tensor nb = Tensor::create(DType::kF32, {ne.outs}).value();
      for (int64_t oc = 0; oc < ne.outs; ++oc) nb.data<float>()[oc] = float(theta[size_t(kin * ne.outs + oc)]);
      if (has_bias) pruned.value(n.inputs[2]).constant = std::move(nb);
      else {
        ir::ValueId b = pruned.add_constant(pruned.unique_name(name + "_bias"), std::move(nb));
        pruned.nodes[size_t(pi)].inputs.resize(3);
        pruned.nodes[size_t(pi)].inputs[2] = b;
      }
    }
    out.push_back(rec);
  }
  KILN_TRY(ir::infer_graph(pruned));
  return out;
}

Result<int> recalibrate_batchnorm(ir::Graph& g, const quant::CalibSource& calib, int64_t samples) {
  int updated = 0;
  int64_t limit = samples <= 0 ? 0 : std::min(samples, calib.size());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node n = g.nodes[i];
    if (n.op != OpKind::kBatchNormalization || n.inputs.size() < 5) continue;
    bool constant = true;
    for (size_t k = 1; k < 5; ++k) constant &= g.value(n.inputs[k]).is_constant();
    if (!constant) continue;
    int64_t channels = g.value(n.inputs[3]).constant.numel();
    std::vector<double> sum(size_t(channels), 0.0), sq(size_t(channels), 0.0);
    int64_t count = 0;
    KILN_ASSIGN(auto probe_session, probe(g, n.inputs[0]));
    KILN_TRY(calib.for_each_batch(limit, [&](std::span<const Tensor> in, int64_t, int64_t) -> Result<void> {
      KILN_ASSIGN(auto x, probe_session.run(in));
      const Tensor& t = x[0];
      if (t.dtype() != DType::kF32 || t.rank() < 2 || t.dim(1) != channels)
        return make_error(g.describe(n) + ": input is not f32 [N, " + std::to_string(channels) + ", ...]");
      int64_t inner = t.numel() / (t.dim(0) * channels);
      for (int64_t b = 0; b < t.dim(0); ++b)
        for (int64_t c = 0; c < channels; ++c) {
          const float* p = t.data<float>() + (b * channels + c) * inner;
          for (int64_t k = 0; k < inner; ++k) {
            sum[size_t(c)] += p[k];
            sq[size_t(c)] += double(p[k]) * p[k];
          }
        }
      count += t.dim(0) * inner;
      return {};
    }));
    if (count == 0) continue;
    Tensor mean = Tensor::create(DType::kF32, {channels}).value(), var = Tensor::create(DType::kF32, {channels}).value();
    for (int64_t c = 0; c < channels; ++c) {
      double m = sum[size_t(c)] / double(count);
      mean.data<float>()[c] = float(m);
      var.data<float>()[c] = float(std::max(0.0, sq[size_t(c)] / double(count) - m * m));
    }
    g.value(n.inputs[3]).constant = std::move(mean);
    g.value(n.inputs[4]).constant = std::move(var);
    ++updated;
  }
  return updated;
}

}  // namespace kiln::prune
