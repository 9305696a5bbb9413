#include "passes/fuse_conv_add.h"

#include "ir/ops/kiln_fused.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::OpKind;

bool rewrite(Snapshot& s, int i) {
  ir::Graph& g = s.g;
  const ir::Node& add = g.nodes[size_t(i)];
  if (add.inputs.size() != 2) return false;
  const ir::ValueType& yt = g.value(add.outputs[0]).type;
  if (yt.dtype != DType::kF32 || !yt.rank_known || !is_static(yt.shape)) return false;
  for (int side = 0; side < 2; ++side) {
    ir::ValueId c = add.inputs[size_t(side)], z = add.inputs[size_t(1 - side)];
    if (c == z || !s.single_use(c) || s.constant(z)) continue;
    int p = s.producer(c);
    if (p < 0) continue;
    ir::Node& conv = g.nodes[size_t(p)];
    if (conv.op == OpKind::kFusedConv) {
      const auto& f = conv.attr<ir::FusedConvAttrs>();
      if (f.activation != ir::FusedActivation::kNone || conv.inputs.size() > 3) continue;
    } else if (conv.op != OpKind::kConv) {
      continue;
    }
    if (g.value(c).type.shape != yt.shape || g.value(z).type.shape != yt.shape) continue;
    if (g.value(z).type.dtype != DType::kF32) continue;
    ir::FusedConvAttrs f;
    if (conv.op == OpKind::kConv) {
      static_cast<ir::ConvAttrs&>(f) = conv.attr<ir::ConvAttrs>();
      f.activation = ir::FusedActivation::kNone;
    } else {
      f = conv.attr<ir::FusedConvAttrs>();
    }
    conv.op = OpKind::kFusedConv;
    conv.attrs = f;
    conv.inputs.resize(3, ir::kNoValue);
    conv.inputs.push_back(z);
    conv.outputs[0] = add.outputs[0];
    s.touched[size_t(p)] = 1;
    s.kill(i);
    return true;
  }
  return false;
}

}  // namespace

Result<int> fuse_conv_add(ir::Graph& g) { return rewrite_each(g, OpKind::kAdd, &rewrite); }

}  // namespace kiln::passes
