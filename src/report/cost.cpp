#include "report/cost.h"

namespace kiln::report {
namespace {

const ir::ValueType* type_of(const ir::Graph& g, ir::ValueId id) {
  return id == ir::kNoValue ? nullptr : &g.value(id).type;
}

int64_t static_numel(const ir::ValueType* t) {
  if (!t || !t->rank_known || !is_static(t->shape)) return -1;
  return numel(t->shape);
}

}  // namespace

Cost node_cost(const ir::Graph& g, const ir::Node& n) {
  using ir::OpKind;
  Cost c;
  const ir::ValueType* out = n.outputs.empty() ? nullptr : type_of(g, n.outputs[0]);
  const ir::ValueType* in0 = n.inputs.empty() ? nullptr : type_of(g, n.inputs[0]);
  int64_t out_n = static_numel(out), in_n = static_numel(in0);
  if (out_n < 0) return Cost{0, 0, false};
  switch (n.op) {
    case OpKind::kConv:
    case OpKind::kConvInteger:
    case OpKind::kQLinearConv:
    case OpKind::kQConv:
    case OpKind::kFusedConv: {
      // each output element: (Cin/group) * prod(kernel) MACs; weight is [Cout, Cin/group, k...]
      bool q = n.op == OpKind::kQLinearConv || n.op == OpKind::kQConv;
      const ir::ValueType* w = type_of(g, n.inputs[q ? 3 : 1]);
      int64_t wn = static_numel(w);
      if (wn < 0) return Cost{0, 0, false};
      c.macs = out_n * (wn / w->shape[0]);
      c.flops = 2 * c.macs;
      break;
    }
    case OpKind::kConvTranspose: {
      // each input element scatters into Cout/group * prod(kernel) outputs; weight is [Cin, Cout/group, k...]
      const ir::ValueType* w = type_of(g, n.inputs[1]);
      int64_t wn = static_numel(w);
      if (wn < 0 || in_n < 0) return Cost{0, 0, false};
      c.macs = in_n * (wn / w->shape[0]);
      c.flops = 2 * c.macs;
      break;
    }
    case OpKind::kGemm:
    case OpKind::kMatMul:
    case OpKind::kMatMulInteger:
    case OpKind::kQLinearMatMul:
    case OpKind::kQGemm:
    case OpKind::kFusedGemm: {
      // K = the contracted dim of A
      if (!in0 || !in0->rank_known || in0->shape.empty() || in0->shape.back() < 0) return Cost{0, 0, false};
      int64_t k = in0->shape.back();
      if (n.op == OpKind::kGemm && n.attr<ir::GemmAttrs>().transA) k = in0->shape[0];
      if (n.op == OpKind::kFusedGemm && n.attr<ir::FusedGemmAttrs>().transA) k = in0->shape[0];
      c.macs = out_n * k;
      c.flops = 2 * c.macs;
      break;
    }
    case OpKind::kAttention: {
      // Y [..., Sq, Dv]: Sk * (D + Dv) MACs per output row element pair, plus
      // scale, mask and softmax (~5 flops) per score.
      const ir::ValueType* v = type_of(g, n.inputs[2]);
      if (!in0 || !in0->rank_known || in0->shape.size() < 2 || !v || !v->rank_known || v->shape.size() < 2 ||
          in0->shape.back() < 0 || v->shape.back() <= 0 || v->shape[v->shape.size() - 2] < 0)
        return Cost{0, 0, false};
      const int64_t d = in0->shape.back(), dv = v->shape.back(), sk = v->shape[v->shape.size() - 2];
      const int64_t scores = out_n / dv * sk;
      c.macs = scores * (d + dv);
      c.flops = 2 * c.macs + 5 * scores;
      break;
    }
    case OpKind::kElementwiseChain:
      c.flops = out_n * int64_t(n.attr<ir::ElementwiseChainAttrs>().steps.size());
      break;
    case OpKind::kMaxPool:
    case OpKind::kAveragePool:
    case OpKind::kLpPool: {
      const auto& ks = n.op == OpKind::kMaxPool       ? n.attr<ir::MaxPoolAttrs>().kernel_shape
                       : n.op == OpKind::kAveragePool ? n.attr<ir::AveragePoolAttrs>().kernel_shape
                                                      : n.attr<ir::LpPoolAttrs>().kernel_shape;
      int64_t window = 1;
      for (auto k : ks) window *= k;
      c.flops = out_n * window;
      break;
    }
    case OpKind::kReduceSum:
    case OpKind::kReduceMean:
    case OpKind::kReduceMax:
    case OpKind::kReduceMin:
    case OpKind::kGlobalAveragePool:
    case OpKind::kGlobalMaxPool:
      c.flops = std::max<int64_t>(in_n, 0);
      break;
    case OpKind::kSoftmax:
    case OpKind::kLogSoftmax:
    case OpKind::kLayerNormalization:
    case OpKind::kBatchNormalization:
    case OpKind::kInstanceNormalization:
      c.flops = 4 * out_n;  // roughly: subtract/exp or normalize, scale, shift per element
      break;
    case OpKind::kShape:
    case OpKind::kSize:
    case OpKind::kReshape:
    case OpKind::kFlatten:
    case OpKind::kSqueeze:
    case OpKind::kUnsqueeze:
    case OpKind::kIdentity:
    case OpKind::kTranspose:
    case OpKind::kConcat:
    case OpKind::kSplit:
    case OpKind::kSlice:
    case OpKind::kGather:
    case OpKind::kExpand:
    case OpKind::kCast:
    case OpKind::kConstantOfShape:
    case OpKind::kDropout:
      break;  // data movement: no arithmetic
    default:
      c.flops = out_n;  // elementwise: one op per output element
  }
  if (n.op == OpKind::kFusedConv || n.op == OpKind::kFusedGemm) c.flops += out_n;  // the fused activation
  return c;
}

Cost graph_cost(const ir::Graph& g) {
  Cost total;
  for (const auto& n : g.nodes) {
    Cost c = node_cost(g, n);
    total.macs += c.macs;
    total.flops += c.flops;
    total.known = total.known && c.known;
  }
  return total;
}

}  // namespace kiln::report
