#include "prune/channel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "ir/edit.h"
#include "ir/infer.h"
#include "ir/op_table.h"
#include "ir/ops/nn.h"
#include "ir/ops/shape_ops.h"

namespace kiln::prune {
namespace {

using ir::OpKind;

bool channelwise(OpKind k) {
  switch (k) {
    case OpKind::kRelu: case OpKind::kLeakyRelu: case OpKind::kSigmoid: case OpKind::kTanh:
    case OpKind::kHardSwish: case OpKind::kHardSigmoid: case OpKind::kGelu: case OpKind::kElu:
    case OpKind::kSoftplus: case OpKind::kMaxPool: case OpKind::kAveragePool: case OpKind::kGlobalAveragePool:
    case OpKind::kGlobalMaxPool: case OpKind::kIdentity: case OpKind::kDropout: case OpKind::kClip:
      return true;
    default:
      return false;
  }
}

bool is_const(const ir::Graph& g, ir::ValueId id) { return id != ir::kNoValue && g.value(id).is_constant(); }

// Output-channel axis of a layer's weight, or -1 when the layer cannot be a
// pruned producer.
int out_axis(const ir::Graph& g, const ir::Node& n) {
  if (n.inputs.size() < 2 || !is_const(g, n.inputs[1])) return -1;
  const Tensor& w = g.value(n.inputs[1]).constant;
  if (w.dtype() != DType::kF32) return -1;
  if (n.op == OpKind::kConv) return n.attr<ir::ConvAttrs>().group == 1 && w.rank() >= 3 ? 0 : -1;
  if (n.op == OpKind::kGemm) {
    const auto& a = n.attr<ir::GemmAttrs>();
    return !a.transA && w.rank() == 2 ? (a.transB ? 0 : 1) : -1;
  }
  if (n.op == OpKind::kMatMul) {
    const auto& x = g.value(n.inputs[0]).type;
    return w.rank() == 2 && x.rank_known && x.shape.size() == 2 ? 1 : -1;
  }
  return -1;
}

// Input-channel axis of a consumer layer's weight, or -1 when it cannot absorb pruned inputs.
int in_axis(const ir::Graph& g, const ir::Node& n) {
  if (n.inputs.size() < 2 || !is_const(g, n.inputs[1])) return -1;
  const Tensor& w = g.value(n.inputs[1]).constant;
  if (w.dtype() != DType::kF32) return -1;
  if (n.op == OpKind::kConv) return n.attr<ir::ConvAttrs>().group == 1 && w.rank() >= 3 ? 1 : -1;
  if (n.op == OpKind::kGemm) {
    const auto& a = n.attr<ir::GemmAttrs>();
    return !a.transA && w.rank() == 2 ? (a.transB ? 1 : 0) : -1;
  }
  if (n.op == OpKind::kMatMul) return w.rank() == 2 ? 0 : -1;
  return -1;
}

Tensor take(const Tensor& t, int axis, const std::vector<int64_t>& idx) {
  Shape s = t.shape();
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= s[size_t(i)];
  for (size_t i = size_t(axis) + 1; i < s.size(); ++i) inner *= s[i];
  int64_t dim = s[size_t(axis)];
  s[size_t(axis)] = int64_t(idx.size());
  Tensor out = Tensor::create(t.dtype(), s).value();
  int64_t es = dtype_bytes(t.dtype(), 1);
  const char* src = static_cast<const char*>(t.raw());
  char* dst = static_cast<char*>(out.raw());
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < idx.size(); ++k)
      std::memcpy(dst + ((o * int64_t(idx.size()) + int64_t(k)) * inner) * es, src + ((o * dim + idx[k]) * inner) * es,
                  size_t(inner * es));
  return out;
}

std::vector<int64_t> spread_indices(const std::vector<int64_t>& kept, int64_t spread) {
  std::vector<int64_t> out;
  for (auto c : kept)
    for (int64_t j = 0; j < spread; ++j) out.push_back(c * spread + j);
  return out;
}

// Follows the output of producer node `p` to its consumer layers; empty
// reason on success.
std::string trace(const ir::Graph& g, int p, const std::vector<int32_t>& uses, PrunedLayer* layer) {
  const ir::Node& pn = g.nodes[size_t(p)];
  if (uses[size_t(pn.inputs[1])] != 1) return "its weight is shared";
  if (pn.inputs.size() > 2 && pn.inputs[2] != ir::kNoValue) {
    if (!is_const(g, pn.inputs[2])) return "its bias is not constant";
    if (uses[size_t(pn.inputs[2])] != 1) return "its bias is shared";
  }
  std::vector<std::pair<ir::ValueId, int64_t>> work = {{pn.outputs[0], 1}};
  while (!work.empty()) {
    auto [v, spread] = work.back();
    work.pop_back();
    for (auto o : g.outputs)
      if (o == v) return "its output reaches the graph output '" + g.value(v).name + "'";
    for (int c : ir::consumers(g, v)) {
      const ir::Node& cn = g.nodes[size_t(c)];
      std::string where = "node '" + cn.name + "' (" + std::string(ir::op_name(cn.op)) + ")";
      int slots = 0;
      for (size_t k = 0; k < cn.inputs.size(); ++k) slots += cn.inputs[k] == v ? int(k) + 1 : 0;
      if (slots != 1) return "its output reaches " + where + " other than as its first input";
      if (channelwise(cn.op)) {
        if (cn.op == OpKind::kClip)
          for (size_t k = 1; k < cn.inputs.size(); ++k)
            if (cn.inputs[k] != ir::kNoValue && !is_const(g, cn.inputs[k])) return "its output reaches " + where + " with non-constant bounds";
        for (size_t k = 1; k < cn.outputs.size(); ++k)
          if (cn.outputs[k] != ir::kNoValue && uses[size_t(cn.outputs[k])] > 0) return "its output reaches " + where + " whose second output is used";
        work.push_back({cn.outputs[0], spread});
      } else if (cn.op == OpKind::kBatchNormalization) {
        for (size_t k = 1; k < 5; ++k)
          if (!is_const(g, cn.inputs[k]) || uses[size_t(cn.inputs[k])] != 1) return "its output reaches " + where + " with non-constant or shared parameters";
        layer->batchnorms.push_back(cn.name);
        work.push_back({cn.outputs[0], spread});
      } else if (cn.op == OpKind::kFlatten) {
        const auto& t = g.value(v).type;
        bool static_tail = t.rank_known && t.shape.size() >= 2;
        for (size_t k = 1; static_tail && k < t.shape.size(); ++k) static_tail = t.shape[k] >= 0;
        if (spread != 1 || cn.attr<ir::FlattenAttrs>().axis != 1 || !static_tail)
          return "its output reaches " + where + " that does not flatten a [N, C, ...] tensor of static C, H, W at axis 1";
        int64_t s = 1;
        for (size_t k = 2; k < t.shape.size(); ++k) s *= t.shape[k];
        work.push_back({cn.outputs[0], s});
      } else if (in_axis(g, cn) >= 0) {
        if (cn.op == OpKind::kConv && spread != 1) return "its output reaches " + where + " after a Flatten";
        if (uses[size_t(cn.inputs[1])] != 1) return "its output reaches " + where + " whose weight is shared";
        layer->sinks.push_back({cn.name, spread});
      } else {
        return "its output reaches " + where + ", which channel pruning does not handle";
      }
    }
  }
  if (layer->sinks.empty()) return "its output reaches no layer that could absorb removed channels";
  return "";
}

int node_index(const ir::Graph& g, const std::string& name) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].name == name) return int(i);
  return -1;
}

void replace_constant(ir::Graph& g, ir::ValueId id, Tensor t) {
  g.value(id).type = {t.dtype(), t.shape(), true};
  g.value(id).constant = std::move(t);
}

}  // namespace

ChannelPruneResult find_prunable_channels(const ir::Graph& g, const std::set<std::string>& exclude) {
  ChannelPruneResult r;
  auto uses = g.use_counts();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (n.op != OpKind::kConv && n.op != OpKind::kGemm && n.op != OpKind::kMatMul) continue;
    if (exclude.count(n.name) || exclude.count(std::string(ir::op_name(n.op)))) continue;
    int ax = out_axis(g, n);
    if (ax < 0) {
      r.skipped.push_back(n.name + ": not a group-1 Conv / plain Gemm / 2-D MatMul with a constant float32 weight");
      continue;
    }
    PrunedLayer layer;
    layer.node = n.name;
    layer.before = g.value(n.inputs[1]).constant.dim(ax);
    std::string why = trace(g, int(i), uses, &layer);
    if (!why.empty()) {
      r.skipped.push_back(n.name + ": " + why);
      continue;
    }
    r.layers.push_back(std::move(layer));
  }
  return r;
}

Result<ChannelPruneResult> apply_channel_plan(ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& keep) {
  ChannelPruneResult all = find_prunable_channels(g);
  ChannelPruneResult done;
  done.skipped = all.skipped;
  for (const auto& [name, kept] : keep) {
    auto it = std::find_if(all.layers.begin(), all.layers.end(), [&](const PrunedLayer& l) { return l.node == name; });
    if (it == all.layers.end()) return make_error("layer '" + name + "' cannot be channel-pruned");
    if (kept.empty()) return make_error("layer '" + name + "': at least one channel must stay");
    for (size_t k = 0; k < kept.size(); ++k)
      if (kept[k] < 0 || kept[k] >= it->before || (k && kept[k] <= kept[k - 1]))
        return make_error("layer '" + name + "': kept channels must be ascending indices below " + std::to_string(it->before));
    PrunedLayer l = *it;
    l.kept = kept;
    done.layers.push_back(l);
  }
  for (const auto& l : done.layers) {
    ir::Node& p = g.nodes[size_t(node_index(g, l.node))];
    int ax = out_axis(g, p);
    replace_constant(g, p.inputs[1], take(g.value(p.inputs[1]).constant, ax, l.kept));
    if (p.inputs.size() > 2 && p.inputs[2] != ir::kNoValue) {
      const Tensor& b = g.value(p.inputs[2]).constant;
      if (b.numel() == l.before) replace_constant(g, p.inputs[2], take(b, b.rank() - 1, l.kept));
    }
    for (const auto& bn : l.batchnorms) {
      ir::Node& n = g.nodes[size_t(node_index(g, bn))];
      for (size_t k = 1; k < 5; ++k) replace_constant(g, n.inputs[k], take(g.value(n.inputs[k]).constant, 0, l.kept));
    }
  }
  // Consumers last: a layer can be both a pruned producer and a sink.
  for (const auto& l : done.layers)
    for (const auto& s : l.sinks) {
      ir::Node& n = g.nodes[size_t(node_index(g, s.node))];
      int ax = in_axis(g, n);
      replace_constant(g, n.inputs[1], take(g.value(n.inputs[1]).constant, ax, spread_indices(l.kept, s.spread)));
    }
  KILN_TRY(ir::infer_graph(g));
  return done;
}

Result<ChannelPruneResult> prune_channels(ir::Graph& g, const ChannelPruneOptions& o) {
  if (!(o.ratio >= 0 && o.ratio < 1)) return make_error("channel ratio " + std::to_string(o.ratio) + " is outside [0, 1)");
  if (o.norm != 1 && o.norm != 2) return make_error("norm must be 1 (L1) or 2 (L2)");
  ChannelPruneResult found = find_prunable_channels(g, o.exclude);
  for (const auto& [name, r] : o.layer_ratio) {
    if (!(r >= 0 && r < 1)) return make_error("layer '" + name + "': ratio " + std::to_string(r) + " is outside [0, 1)");
    bool ok = std::any_of(found.layers.begin(), found.layers.end(), [&](const PrunedLayer& l) { return l.node == name; });
    if (!ok) return make_error("layer '" + name + "' cannot be channel-pruned");
  }
  if (found.layers.empty())
    return make_error("no layer can be channel-pruned" + (found.skipped.empty() ? std::string() : " (" + found.skipped[0] + ")"));
  std::map<std::string, std::vector<int64_t>> keep;
  for (const auto& l : found.layers) {
    auto it = o.layer_ratio.find(l.node);
    double r = it != o.layer_ratio.end() ? it->second : o.ratio;
    int64_t remove = std::min<int64_t>(l.before - 1, int64_t(std::llround(r * double(l.before))));
    if (remove <= 0) continue;
    const ir::Node& n = g.nodes[size_t(node_index(g, l.node))];
    const Tensor& w = g.value(n.inputs[1]).constant;
    int ax = out_axis(g, n);
    std::vector<double> norm(size_t(l.before), 0.0);
    int64_t inner = 1;
    for (int64_t k = ax + 1; k < w.rank(); ++k) inner *= w.dim(k);
    for (int64_t i = 0; i < w.numel(); ++i) {
      double x = w.data<float>()[i];
      norm[size_t((i / inner) % l.before)] += o.norm == 1 ? std::fabs(x) : x * x;
    }
    std::vector<int64_t> order(size_t(l.before));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return norm[size_t(a)] > norm[size_t(b)]; });
    std::vector<int64_t> kept(order.begin(), order.end() - remove);
    std::sort(kept.begin(), kept.end());
    keep[l.node] = kept;
  }
  if (keep.empty()) return make_error("the ratio removes no channel from any layer");
  auto r = apply_channel_plan(g, keep);
  if (r.ok()) r->skipped = found.skipped;
  return r;
}

}  // namespace kiln::prune
