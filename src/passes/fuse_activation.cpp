#include "passes/fuse_activation.h"

#include <limits>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::FusedActivation;
using ir::kNoValue;
using ir::OpKind;

struct Act {
  FusedActivation kind;
  float alpha = 0, beta = 0;
};

// The fused form of activation node `a`, or nullopt.
std::optional<Act> activation_of(const Snapshot& s, const ir::Node& a) {
  switch (a.op) {
    case OpKind::kRelu: return Act{FusedActivation::kRelu};
    case OpKind::kHardSwish: return Act{FusedActivation::kHardSwish};
    case OpKind::kSigmoid: return Act{FusedActivation::kSigmoid};
    case OpKind::kGelu:
      return Act{a.attr<ir::GeluAttrs>().approximate == ir::GeluApprox::kTanh ? FusedActivation::kGeluTanh
                                                                              : FusedActivation::kGelu};
    case OpKind::kLeakyRelu: return Act{FusedActivation::kLeakyRelu, a.attr<ir::LeakyReluAttrs>().alpha};
    case OpKind::kClip: {
      const float inf = std::numeric_limits<float>::infinity();
      Act r{FusedActivation::kClip, -inf, inf};
      for (size_t k = 1; k < a.inputs.size(); ++k) {
        if (a.inputs[k] == kNoValue) continue;
        auto v = scalar_value(s.constant(a.inputs[k]));
        if (!v) return std::nullopt;  // bounds computed at run time
        (k == 1 ? r.alpha : r.beta) = float(*v);
      }
      return r;
    }
    default: return std::nullopt;
  }
}

}  // namespace

Result<int> fuse_activation(ir::Graph& g) {
  Snapshot s(g);
  int fused = 0;
  for (size_t i = 0; i < s.killed.size(); ++i) {
    const ir::Node& a = g.nodes[i];
    if (s.touched[i] || a.inputs.empty()) continue;
    int p = s.producer(a.inputs[0]);
    if (p < 0 || !s.single_use(a.inputs[0])) continue;
    // A Gemm seen through a Reshape (fuse_matmul_bias's rows view of a
    // MatMul): the activation is elementwise, so it moves before the view.
    int view = -1;
    if (g.nodes[size_t(p)].op == OpKind::kReshape) {
      const ir::ValueId vin = g.nodes[size_t(p)].inputs[0];
      const int q = s.producer(vin, OpKind::kGemm);
      if (q < 0 || !s.single_use(vin)) continue;
      view = p;
      p = q;
    }
    ir::Node& n = g.nodes[size_t(p)];
    const bool residual_conv =
        n.op == OpKind::kFusedConv && n.attr<ir::FusedConvAttrs>().activation == FusedActivation::kNone;
    if (n.op != OpKind::kConv && n.op != OpKind::kGemm && !residual_conv) continue;
    if (g.value(a.inputs[0]).type.dtype != DType::kF32) continue;
    auto act = activation_of(s, a);
    if (!act) continue;
    if (residual_conv) {
      auto& f = std::get<ir::FusedConvAttrs>(n.attrs);
      f.activation = act->kind;
      f.activation_alpha = act->alpha;
      f.activation_beta = act->beta;
    } else if (n.op == OpKind::kConv) {
      ir::FusedConvAttrs f;
      static_cast<ir::ConvAttrs&>(f) = n.attr<ir::ConvAttrs>();
      f.activation = act->kind;
      f.activation_alpha = act->alpha;
      f.activation_beta = act->beta;
      n.op = OpKind::kFusedConv;
      n.attrs = f;
    } else {
      ir::FusedGemmAttrs f;
      static_cast<ir::GemmAttrs&>(f) = n.attr<ir::GemmAttrs>();
      f.activation = act->kind;
      f.activation_alpha = act->alpha;
      f.activation_beta = act->beta;
      n.op = OpKind::kFusedGemm;
      n.attrs = f;
    }
    if (view >= 0) {
      g.nodes[size_t(view)].outputs[0] = a.outputs[0];
      s.touched[size_t(view)] = 1;
    } else {
      n.outputs[0] = a.outputs[0];
    }
    s.touched[size_t(p)] = 1;
    s.kill(int(i));
    ++fused;
  }
  if (fused) KILN_TRY(s.finish());
  return fused;
}

}  // namespace kiln::passes
