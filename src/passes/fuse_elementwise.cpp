#include "passes/fuse_elementwise.h"

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::kNoValue;
using ir::OpKind;
using ir::ValueId;

bool fold_one(Snapshot& s, int ei) {
  ir::Graph& g = s.g;
  const ir::Node& e = g.nodes[size_t(ei)];
  bool mul = e.op == OpKind::kMul || e.op == OpKind::kDiv;
  bool commutes = e.op == OpKind::kMul || e.op == OpKind::kAdd;
  for (size_t side = 0; side < (commutes ? 2u : 1u); ++side) {
    ValueId x = e.inputs[side];
    const Tensor* c = s.constant(e.inputs[1 - side]);
    int p = s.producer(x);
    if (!c || p < 0 || !s.single_use(x)) continue;
    ir::Node& n = g.nodes[size_t(p)];
    if (n.op != OpKind::kConv && n.op != OpKind::kGemm) continue;
    const ir::ValueType& xt = g.value(x).type;
    const ir::ValueType& yt = g.value(e.outputs[0]).type;
    if (!xt.rank_known || !yt.rank_known || xt.shape != yt.shape || xt.dtype != DType::kF32 || yt.dtype != xt.dtype)
      continue;
    const Tensor* wp = s.constant(n.inputs[1]);
    bool has_b = n.inputs.size() > 2 && n.inputs[2] != kNoValue;
    const Tensor* bp = has_b ? s.constant(n.inputs[2]) : nullptr;
    if (!wp || wp->dtype() != DType::kF32 || (has_b && (!bp || bp->dtype() != DType::kF32))) continue;
    // Copies (cheap views): add_constant below may move the graph's values.
    Tensor w_copy = *wp, b_copy = bp ? *bp : Tensor();
    const Tensor* w = &w_copy;
    const Tensor* b = bp ? &b_copy : nullptr;
    bool trans_b = false, gemm = n.op == OpKind::kGemm;
    double beta = 1.0;
    if (gemm) {
      const auto& a = n.attr<ir::GemmAttrs>();
      trans_b = a.transB != 0;
      beta = a.beta;
      if (w->rank() != 2 || xt.shape.size() != 2) continue;
    } else if (w->rank() < 3 || xt.shape.size() < 2) {
      continue;
    }
    size_t w_axis = gemm && !trans_b ? 1 : 0;
    int64_t channels = w->dim(int64_t(w_axis));
    auto k = per_channel(*c, xt.shape, 1, channels);
    if (!k) continue;
    bool zero = false;
    for (double v : *k) zero = zero || v == 0.0;
    if (zero && e.op == OpKind::kDiv) continue;
    // the existing bias as one value per channel
    std::vector<double> bias(size_t(channels), 0.0);
    if (b) {
      if (b->numel() != 1 && !(b->numel() == channels && b->shape().back() == channels)) continue;
      for (int64_t j = 0; j < channels; ++j) bias[size_t(j)] = beta * b->as_double(b->numel() == 1 ? 0 : j);
    }
    std::vector<double> wv = to_doubles(*w);
    if (mul) {
      int64_t inner = 1;
      for (size_t d = w_axis + 1; d < w->shape().size(); ++d) inner *= w->dim(int64_t(d));
      for (int64_t j = 0; j < channels; ++j) {
        double f = e.op == OpKind::kDiv ? 1.0 / (*k)[size_t(j)] : (*k)[size_t(j)];
        (*k)[size_t(j)] = f;
        bias[size_t(j)] *= f;
      }
      for (size_t i = 0; i < wv.size(); ++i) wv[i] *= (*k)[size_t((int64_t(i) / inner) % channels)];
      n.inputs.resize(2);
      n.inputs[1] = g.add_constant(g.unique_name(n.name + "_w_scaled"), f32_tensor(w->shape(), wv));
    } else {
      for (int64_t j = 0; j < channels; ++j) bias[size_t(j)] += (e.op == OpKind::kSub ? -1 : 1) * (*k)[size_t(j)];
      n.inputs.resize(2);
    }
    n.inputs.push_back(g.add_constant(g.unique_name(n.name + "_b_folded"), f32_tensor({channels}, bias)));
    if (gemm) std::get<ir::GemmAttrs>(n.attrs).beta = 1.0f;
    n.outputs[0] = e.outputs[0];
    s.touched[size_t(p)] = 1;
    s.kill(ei);
    return true;
  }
  return false;
}

}  // namespace

Result<int> fuse_elementwise(ir::Graph& g) {
  Snapshot s(g);
  int fused = 0;
  for (size_t i = 0; i < s.killed.size(); ++i) {
    OpKind op = g.nodes[i].op;
    bool arith = op == OpKind::kMul || op == OpKind::kDiv || op == OpKind::kAdd || op == OpKind::kSub;
    if (arith && !s.touched[i] && fold_one(s, int(i))) ++fused;
  }
  if (fused) KILN_TRY(s.finish());
  return fused;
}

}  // namespace kiln::passes
