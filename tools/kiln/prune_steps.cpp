#include "prune_steps.h"

#include <cstdio>

#include "common.h"
#include "ir/bind.h"
#include "prune/channel.h"
#include "prune/magnitude.h"
#include "prune/recover.h"
#include "report/cost.h"

namespace kiln::cli {

ModelCounts count_model(const ir::Graph& g) {
  ModelCounts c;
  auto uses = g.use_counts();
  for (size_t i = 0; i < g.values.size(); ++i) {
    const ir::Value& v = g.values[i];
    if (!v.is_constant() || uses[i] == 0 || v.constant.numel() < 2 || !is_float(v.constant.dtype()) && !is_integer(v.constant.dtype()))
      continue;
    c.params += v.constant.numel();
    for (int64_t k = 0; k < v.constant.numel(); ++k) c.nonzeros += v.constant.as_double(k) != 0.0;
  }
  ir::Graph b = g;
  if (ir::bind_symbols(b, {}, 1).ok()) {
    for (const auto& n : b.nodes) {
      auto cost = report::node_cost(b, n);
      c.macs += cost.macs;
      if (n.op == ir::OpKind::kConv || n.op == ir::OpKind::kQConv) c.conv_macs += cost.macs;
    }
  }
  return c;
}

void apply_prune_steps(ir::Graph& g, const PruneSteps& s, const quant::CalibSource& calib, ir::Graph* unrecovered) {
  if (s.channels >= 0) {
    ir::Graph original = g;
    prune::ChannelPruneOptions co;
    co.ratio = s.channels;
    co.norm = s.norm;
    co.exclude = s.exclude;
    auto r = unwrap(prune::prune_channels(g, co));
    for (const auto& l : r.layers)
      std::printf("channels   %-24s %lld -> %zu output channels%s\n", l.node.c_str(), (long long)l.before, l.kept.size(),
                  l.producers.size() > 1 ? (" (group of " + std::to_string(l.producers.size()) + " layers joined by residual Adds)").c_str() : "");
    for (const auto& why : r.skipped) std::printf("kept whole %s\n", why.c_str());
    if (unrecovered) *unrecovered = g;
    if (s.recover) {
      prune::RecoverOptions ro;
      ro.samples = s.recover_samples;
      auto rec = unwrap(prune::recover_least_squares(g, original, r, calib, ro));
      for (const auto& l : rec)
        if (l.skipped.empty())
          std::printf("re-fit     %-24s output error %.4f -> %.4f (relative, %s)\n", l.node.c_str(), l.error_before,
                      l.error_after, calib.description().c_str());
        else
          std::printf("re-fit     %-24s skipped: %s\n", l.node.c_str(), l.skipped.c_str());
    }
    if (s.recalibrate_bn) {
      int n = unwrap(prune::recalibrate_batchnorm(g, calib, s.recover_samples));
      std::printf("batchnorm  %d node(s): mean and variance recomputed on %s\n", n, calib.description().c_str());
    }
  }
  auto apply_unstructured = [&](ir::Graph& x, bool print) {
    if (s.sparsity >= 0) {
      prune::MagnitudeOptions mo;
      mo.sparsity = s.sparsity;
      mo.global = !s.per_layer;
      mo.exclude = s.exclude;
      auto layers = unwrap(prune::prune_magnitude(x, mo));
      if (print)
        for (const auto& l : layers)
          std::printf("sparsity   %-24s %5.1f%% of %lld weights\n", l.node.c_str(), 100 * l.sparsity(), (long long)l.params);
    }
    if (!s.nm.empty()) {
      int n = 0, m = 0;
      char extra = 0;
      if (std::sscanf(s.nm.c_str(), "%d:%d%c", &n, &m, &extra) != 2) throw CliError{"--nm must look like N:M (e.g. 2:4), got '" + s.nm + "'", 2};
      std::vector<std::string> skipped;
      auto layers = unwrap(prune::prune_n_m(x, n, m, s.exclude, &skipped));
      if (print) {
        for (const auto& l : layers)
          std::printf("%d:%d        %-24s %5.1f%% of %lld weights\n", n, m, l.node.c_str(), 100 * l.sparsity(), (long long)l.params);
        for (const auto& k : skipped) std::printf("kept dense %s\n", k.c_str());
      }
    }
  };
  if (unrecovered && s.channels < 0) {
    apply_unstructured(g, true);
    *unrecovered = g;
    return;
  }
  apply_unstructured(g, true);
  if (unrecovered && s.channels >= 0) apply_unstructured(*unrecovered, false);
}

}  // namespace kiln::cli
