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

const PrunedLayer* ChannelPruneResult::group_of(const std::string& node) const {
  for (const auto& l : layers)
    if (std::find(l.producers.begin(), l.producers.end(), node) != l.producers.end()) return &l;
  return nullptr;
}

namespace {

// A depthwise Conv (group = input channels = output channels, constant
// unshared weight [C, 1, ...]) maps channel c to channel c: it passes a
// channel group through, its weights and bias sliced along.
bool is_depthwise(const ir::Graph& g, const ir::Node& n, const std::vector<int32_t>& uses) {
  if (n.op != OpKind::kConv || n.inputs.size() < 2 || !is_const(g, n.inputs[1]) || uses[size_t(n.inputs[1])] != 1) return false;
  const Tensor& w = g.value(n.inputs[1]).constant;
  int64_t grp = n.attr<ir::ConvAttrs>().group;
  if (w.rank() < 3 || w.dim(1) != 1 || grp <= 1 || w.dim(0) != grp) return false;
  if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue && (!is_const(g, n.inputs[2]) || uses[size_t(n.inputs[2])] != 1)) return false;
  return true;
}

bool is_merge(OpKind k) {
  return k == OpKind::kAdd || k == OpKind::kSub || k == OpKind::kMul || k == OpKind::kMax || k == OpKind::kMin;
}

// Channel groups by union-find over "channel spaces": every prunable layer's
// output opens one; channel-wise ops carry it on; merges join two.
struct GroupBuilder {
  const ir::Graph& g;
  std::vector<int32_t> uses;
  std::vector<int> space, parent;
  std::vector<int64_t> spread;
  struct Space {
    std::vector<int> producers, channelwise;
    std::vector<ChannelSink> sinks;
    std::string invalid;
  };
  std::vector<Space> spaces;

  explicit GroupBuilder(const ir::Graph& graph)
      : g(graph), uses(graph.use_counts()), space(graph.values.size(), -1), spread(graph.values.size(), 1) {}

  int find(int s) { return parent[size_t(s)] == s ? s : parent[size_t(s)] = find(parent[size_t(s)]); }
  void invalidate(int s, const std::string& why) {
    Space& sp = spaces[size_t(find(s))];
    if (sp.invalid.empty()) sp.invalid = why;
  }
  int open() {
    parent.push_back(int(spaces.size()));
    spaces.emplace_back();
    return int(spaces.size()) - 1;
  }
  int join(int a, int b) {
    a = find(a), b = find(b);
    if (a == b) return a;
    parent[size_t(b)] = a;
    Space& x = spaces[size_t(a)];
    Space& y = spaces[size_t(b)];
    x.producers.insert(x.producers.end(), y.producers.begin(), y.producers.end());
    x.channelwise.insert(x.channelwise.end(), y.channelwise.begin(), y.channelwise.end());
    x.sinks.insert(x.sinks.end(), y.sinks.begin(), y.sinks.end());
    if (x.invalid.empty()) x.invalid = y.invalid;
    return a;
  }

  bool producer(const ir::Node& n) {
    if (out_axis(g, n) < 0 || uses[size_t(n.inputs[1])] != 1) return false;
    if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue && (!is_const(g, n.inputs[2]) || uses[size_t(n.inputs[2])] != 1))
      return false;
    return true;
  }

  void run() {
    for (size_t i = 0; i < g.nodes.size(); ++i) visit(int(i));
    for (auto o : g.outputs)
      if (space[size_t(o)] >= 0) invalidate(space[size_t(o)], "its channels reach the graph output '" + g.value(o).name + "'");
  }

  void visit(int i) {
    const ir::Node& n = g.nodes[size_t(i)];
    std::string where = "node '" + n.name + "' (" + std::string(ir::op_name(n.op)) + ")";
    int out = -1;  // the space n's first output carries on, if any
    int64_t out_spread = 1;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      ir::ValueId v = n.inputs[k];
      if (v == ir::kNoValue || space[size_t(v)] < 0) continue;
      int s = find(space[size_t(v)]);
      int64_t sp = spread[size_t(v)];
      if (k == 0 && (channelwise(n.op) || is_depthwise(g, n, uses) || n.op == OpKind::kBatchNormalization)) {
        bool ok = true;
        if (n.op == OpKind::kClip)
          for (size_t j = 1; j < n.inputs.size(); ++j) ok &= n.inputs[j] == ir::kNoValue || is_const(g, n.inputs[j]);
        if (n.op == OpKind::kBatchNormalization)
          for (size_t j = 1; j < 5; ++j) ok &= is_const(g, n.inputs[j]) && uses[size_t(n.inputs[j])] == 1;
        for (size_t j = 1; j < n.outputs.size(); ++j) ok &= n.outputs[j] == ir::kNoValue || uses[size_t(n.outputs[j])] == 0;
        if (!ok || sp != 1) {
          invalidate(s, "its channels reach " + where + " with non-constant or shared parameters, or after a Flatten");
          continue;
        }
        if (n.op == OpKind::kBatchNormalization || n.op == OpKind::kConv) spaces[size_t(s)].channelwise.push_back(i);
        out = s;
      } else if (is_merge(n.op) && n.inputs.size() == 2) {
        ir::ValueId a = n.inputs[0], b = n.inputs[1];
        const auto& ta = g.value(a).type;
        const auto& tb = g.value(b).type;
        if (space[size_t(a)] < 0 || space[size_t(b)] < 0 || ta.shape != tb.shape || spread[size_t(a)] != spread[size_t(b)]) {
          invalidate(s, "its channels reach " + where + " with an operand outside the group (graph input, constant or broadcast)");
          if (space[size_t(a)] >= 0 && space[size_t(b)] >= 0) join(space[size_t(a)], space[size_t(b)]);
          continue;
        }
        out = join(space[size_t(a)], space[size_t(b)]);
        out_spread = sp;
        break;  // both operands handled
      } else if (k == 0 && n.op == OpKind::kFlatten) {
        const auto& t = g.value(v).type;
        bool static_tail = t.rank_known && t.shape.size() >= 2;
        for (size_t d = 1; static_tail && d < t.shape.size(); ++d) static_tail = t.shape[d] >= 0;
        if (sp != 1 || n.attr<ir::FlattenAttrs>().axis != 1 || !static_tail) {
          invalidate(s, "its channels reach " + where + " that does not flatten a [N, C, ...] tensor of static C, H, W at axis 1");
          continue;
        }
        out = s;
        out_spread = 1;
        for (size_t d = 2; d < t.shape.size(); ++d) out_spread *= t.shape[d];
      } else if (k == 0 && in_axis(g, n) >= 0 && uses[size_t(n.inputs[1])] == 1) {
        if (n.op == OpKind::kConv && sp != 1) {
          invalidate(s, "its channels reach " + where + " after a Flatten");
          continue;
        }
        spaces[size_t(s)].sinks.push_back({n.name, sp});
      } else {
        invalidate(s, "its channels reach " + where + ", which channel pruning does not handle");
      }
    }
    if (producer(n)) {
      int s = open();
      spaces[size_t(s)].producers.push_back(i);
      space[size_t(n.outputs[0])] = s;
    } else if (out >= 0) {
      space[size_t(n.outputs[0])] = find(out);
      spread[size_t(n.outputs[0])] = out_spread;
    }
  }
};

std::string group_label(const ir::Graph& g, const std::vector<int>& producers) {
  std::string s = g.nodes[size_t(producers[0])].name;
  if (producers.size() > 1) s += " (+" + std::to_string(producers.size() - 1) + " joined by residual connections)";
  return s;
}

}  // namespace

ChannelPruneResult find_prunable_channels(const ir::Graph& g, const std::set<std::string>& exclude) {
  GroupBuilder b(g);
  b.run();
  ChannelPruneResult r;
  std::vector<char> skip_reported(g.nodes.size(), 0);
  for (size_t s = 0; s < b.spaces.size(); ++s) {
    if (b.find(int(s)) != int(s)) continue;
    auto& sp = b.spaces[s];
    std::sort(sp.producers.begin(), sp.producers.end());
    std::sort(sp.channelwise.begin(), sp.channelwise.end());
    if (sp.producers.empty()) continue;
    std::string label = group_label(g, sp.producers);
    for (int p : sp.producers) {
      const ir::Node& n = g.nodes[size_t(p)];
      if (exclude.count(n.name) || exclude.count(std::string(ir::op_name(n.op)))) sp.invalid = "excluded";
    }
    if (sp.invalid.empty() && sp.sinks.empty()) sp.invalid = "its channels reach no layer that could absorb removed channels";
    if (!sp.invalid.empty()) {
      if (sp.invalid != "excluded") r.skipped.push_back(label + ": " + sp.invalid);
      continue;
    }
    PrunedLayer l;
    l.node = g.nodes[size_t(sp.producers[0])].name;
    for (int p : sp.producers) l.producers.push_back(g.nodes[size_t(p)].name);
    for (int c : sp.channelwise) l.channelwise.push_back(g.nodes[size_t(c)].name);
    const ir::Node& first = g.nodes[size_t(sp.producers[0])];
    l.before = g.value(first.inputs[1]).constant.dim(out_axis(g, first));
    l.sinks = sp.sinks;
    r.layers.push_back(std::move(l));
  }
  // Graph order of the groups' first layers.
  std::sort(r.layers.begin(), r.layers.end(),
            [&](const PrunedLayer& a, const PrunedLayer& c) { return node_index(g, a.node) < node_index(g, c.node); });
  // Layers that are no group's producer at all (e.g. a shared weight).
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (n.op != OpKind::kConv && n.op != OpKind::kGemm && n.op != OpKind::kMatMul) continue;
    if (b.producer(n) || is_depthwise(g, n, b.uses)) continue;
    if (exclude.count(n.name) || exclude.count(std::string(ir::op_name(n.op)))) continue;
    r.skipped.push_back(n.name + ": not a group-1 Conv / plain Gemm / 2-D MatMul with its own constant float32 weight");
  }
  return r;
}

Result<ChannelPruneResult> apply_channel_plan(ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& keep) {
  ChannelPruneResult all = find_prunable_channels(g);
  ChannelPruneResult done;
  done.skipped = all.skipped;
  for (const auto& [name, kept] : keep) {
    const PrunedLayer* grp = all.group_of(name);
    if (!grp) return make_error("layer '" + name + "' cannot be channel-pruned");
    if (kept.empty()) return make_error("layer '" + name + "': at least one channel must stay");
    for (size_t k = 0; k < kept.size(); ++k)
      if (kept[k] < 0 || kept[k] >= grp->before || (k && kept[k] <= kept[k - 1]))
        return make_error("layer '" + name + "': kept channels must be ascending indices below " + std::to_string(grp->before));
    if (done.group_of(grp->node)) return make_error("layer '" + name + "': its channel group is given twice");
    PrunedLayer l = *grp;
    l.kept = kept;
    done.layers.push_back(l);
  }
  for (const auto& l : done.layers) {
    for (const auto& pname : l.producers) {
      ir::Node& p = g.nodes[size_t(node_index(g, pname))];
      int ax = out_axis(g, p);
      replace_constant(g, p.inputs[1], take(g.value(p.inputs[1]).constant, ax, l.kept));
      if (p.inputs.size() > 2 && p.inputs[2] != ir::kNoValue) {
        const Tensor& b = g.value(p.inputs[2]).constant;
        if (b.numel() == l.before) replace_constant(g, p.inputs[2], take(b, b.rank() - 1, l.kept));
      }
    }
    for (const auto& cname : l.channelwise) {
      ir::Node& n = g.nodes[size_t(node_index(g, cname))];
      if (n.op == OpKind::kBatchNormalization) {
        for (size_t k = 1; k < 5; ++k) replace_constant(g, n.inputs[k], take(g.value(n.inputs[k]).constant, 0, l.kept));
      } else {  // depthwise Conv: one filter per channel
        for (size_t k = 1; k < n.inputs.size(); ++k)
          if (n.inputs[k] != ir::kNoValue) replace_constant(g, n.inputs[k], take(g.value(n.inputs[k]).constant, 0, l.kept));
        std::get<ir::ConvAttrs>(n.attrs).group = int64_t(l.kept.size());
      }
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
  std::map<std::string, double> group_ratio;
  for (const auto& [name, r] : o.layer_ratio) {
    if (!(r >= 0 && r < 1)) return make_error("layer '" + name + "': ratio " + std::to_string(r) + " is outside [0, 1)");
    const PrunedLayer* grp = found.group_of(name);
    if (!grp) return make_error("layer '" + name + "' cannot be channel-pruned");
    group_ratio[grp->node] = r;
  }
  if (found.layers.empty())
    return make_error("no layer can be channel-pruned" + (found.skipped.empty() ? std::string() : " (" + found.skipped[0] + ")"));
  std::map<std::string, std::vector<int64_t>> keep;
  for (const auto& l : found.layers) {
    auto it = group_ratio.find(l.node);
    double r = it != group_ratio.end() ? it->second : o.ratio;
    int64_t remove = std::min<int64_t>(l.before - 1, int64_t(std::llround(r * double(l.before))));
    if (remove <= 0) continue;
    // Importance: the sum over the group's layers of each channel's weight norm.
    std::vector<double> norm(size_t(l.before), 0.0);
    for (const auto& pname : l.producers) {
      const ir::Node& n = g.nodes[size_t(node_index(g, pname))];
      const Tensor& w = g.value(n.inputs[1]).constant;
      int ax = out_axis(g, n);
      int64_t inner = 1;
      for (int64_t k = ax + 1; k < w.rank(); ++k) inner *= w.dim(k);
      for (int64_t i = 0; i < w.numel(); ++i) {
        double x = w.data<float>()[i];
        norm[size_t((i / inner) % l.before)] += o.norm == 1 ? std::fabs(x) : x * x;
      }
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
