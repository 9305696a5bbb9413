#include "passes/eliminate_noops.h"

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::kNoValue;
using ir::OpKind;

bool same_type(const ir::ValueType& a, const ir::ValueType& b) {
  return a.rank_known && b.rank_known && a.dtype == b.dtype && a.dtype != DType::kUndefined && a.shape == b.shape;
}

// Every element of constant `id` equals `v` (false when not constant).
bool all_equal(const Snapshot& s, ir::ValueId id, double v) {
  const Tensor* t = s.constant(id);
  if (!t || t->numel() == 0) return false;
  for (int64_t i = 0; i < t->numel(); ++i)
    if (t->as_double(i) != v) return false;
  return true;
}

// Input 0 when the node passes it through unchanged, else kNoValue.
ir::ValueId passthrough(const Snapshot& s, const ir::Node& n) {
  const ir::Graph& g = s.g;
  auto in_type = [&](size_t k) -> const ir::ValueType& { return g.value(n.inputs[k]).type; };
  const ir::ValueType& out = g.value(n.outputs[0]).type;
  switch (n.op) {
    case OpKind::kIdentity: return n.inputs[0];
    case OpKind::kDropout: {
      bool mask_used = n.outputs.size() > 1 && n.outputs[1] != kNoValue &&
                       (s.uses[size_t(n.outputs[1])] > 0 || s.is_output[size_t(n.outputs[1])]);
      ir::ValueId training = n.inputs.size() > 2 ? n.inputs[2] : kNoValue;
      bool inference = training == kNoValue || all_equal(s, training, 0.0);
      return !mask_used && inference ? n.inputs[0] : kNoValue;
    }
    case OpKind::kReshape:
    case OpKind::kFlatten:
    case OpKind::kSqueeze:
    case OpKind::kExpand:
      return same_type(in_type(0), out) ? n.inputs[0] : kNoValue;
    case OpKind::kTranspose: {
      const auto& perm = n.attr<ir::TransposeAttrs>().perm;
      bool identity = !in_type(0).rank_known ? false : perm.empty() ? in_type(0).shape.size() <= 1 : true;
      for (size_t k = 0; k < perm.size(); ++k) identity = identity && perm[k] == int64_t(k);
      return identity ? n.inputs[0] : kNoValue;
    }
    case OpKind::kCast: {
      auto to = dtype_from_onnx(int(n.attr<ir::CastAttrs>().to));
      return to && *to == in_type(0).dtype ? n.inputs[0] : kNoValue;
    }
    case OpKind::kPad: {
      bool zero = n.inputs.size() > 1 && all_equal(s, n.inputs[1], 0.0);
      return zero && same_type(in_type(0), out) ? n.inputs[0] : kNoValue;
    }
    case OpKind::kConcat: return n.inputs.size() == 1 ? n.inputs[0] : kNoValue;
    case OpKind::kAdd:
    case OpKind::kSub:
    case OpKind::kMul:
    case OpKind::kDiv: {
      double unit = n.op == OpKind::kAdd || n.op == OpKind::kSub ? 0.0 : 1.0;
      bool commutes = n.op == OpKind::kAdd || n.op == OpKind::kMul;
      for (size_t k = 0; k < (commutes ? 2u : 1u); ++k) {
        ir::ValueId x = n.inputs[k], c = n.inputs[1 - k];
        if (all_equal(s, c, unit) && same_type(g.value(x).type, out)) return x;
      }
      return kNoValue;
    }
    default: return kNoValue;
  }
}

}  // namespace

Result<int> eliminate_noops(ir::Graph& g) {
  Snapshot s(g);
  int removed = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (n.outputs.empty() || n.inputs.empty() || n.inputs[0] == kNoValue || n.outputs[0] == kNoValue) continue;
    ir::ValueId x = passthrough(s, n);
    if (x == kNoValue) continue;
    ir::ValueId y = n.outputs[0];
    if (!s.redirect(y, x)) continue;
    s.kill(int(i));
    ++removed;
  }
  if (removed) KILN_TRY(s.finish());
  return removed;
}

}  // namespace kiln::passes
