#include "passes/fold_batchnorm.h"

#include <cmath>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::kNoValue;
using ir::OpKind;
using ir::ValueId;

// Per-channel affine form y = x * s + t of an inference BN, or nullopt.
struct Affine {
  std::vector<double> s, t;
};

std::optional<Affine> bn_affine(const Snapshot& s, const ir::Node& bn) {
  const auto& a = bn.attr<ir::BatchNormAttrs>();
  if (a.training_mode != 0) return std::nullopt;
  for (size_t o = 1; o < bn.outputs.size(); ++o)
    if (bn.outputs[o] != kNoValue && (s.uses[size_t(bn.outputs[o])] > 0 || s.is_output[size_t(bn.outputs[o])]))
      return std::nullopt;
  const Tensor *scale = s.constant(bn.inputs[1]), *b = s.constant(bn.inputs[2]), *mean = s.constant(bn.inputs[3]),
               *var = s.constant(bn.inputs[4]);
  if (!scale || !b || !mean || !var) return std::nullopt;
  int64_t c = scale->numel();
  for (const Tensor* t : {scale, b, mean, var})
    if (!is_float(t->dtype()) || t->rank() != 1 || t->numel() != c) return std::nullopt;
  Affine f;
  for (int64_t k = 0; k < c; ++k) {
    double sk = scale->as_double(k) / std::sqrt(var->as_double(k) + double(a.epsilon));
    f.s.push_back(sk);
    f.t.push_back(b->as_double(k) - mean->as_double(k) * sk);
  }
  return f;
}

// W scaled along `axis` (the output-channel axis) by s, as f32.
Tensor scale_axis(const Tensor& w, size_t axis, const std::vector<double>& s) {
  std::vector<double> v = to_doubles(w);
  int64_t inner = 1;
  for (size_t d = axis + 1; d < w.shape().size(); ++d) inner *= w.dim(int64_t(d));
  int64_t c = w.dim(int64_t(axis));
  for (size_t i = 0; i < v.size(); ++i) v[i] *= s[size_t((int64_t(i) / inner) % c)];
  return f32_tensor(w.shape(), v);
}

// New bias: (b - 0) * s + t, b optional (per channel or one element).
Tensor new_bias(const Tensor* b, double beta, const Affine& f) {
  std::vector<double> v(f.s.size());
  for (size_t k = 0; k < v.size(); ++k) {
    double bk = b ? beta * b->as_double(b->numel() == 1 ? 0 : int64_t(k)) : 0.0;
    v[k] = bk * f.s[k] + f.t[k];
  }
  return f32_tensor({int64_t(v.size())}, v);
}

bool fold_one(Snapshot& s, int bi) {
  ir::Graph& g = s.g;
  const ir::Node& bn = g.nodes[size_t(bi)];
  ValueId x = bn.inputs[0];
  int p = s.producer(x);
  if (p < 0 || !s.single_use(x)) return false;
  auto f = bn_affine(s, bn);
  if (!f) return false;
  int64_t c = int64_t(f->s.size());
  ir::Node& n = g.nodes[size_t(p)];
  // Copies (cheap views): add_constant below may move the graph's values.
  const Tensor* wp = n.inputs.size() > 1 ? s.constant(n.inputs[1]) : nullptr;
  const Tensor* bp = n.inputs.size() > 2 ? s.constant(n.inputs[2]) : nullptr;
  bool has_b = n.inputs.size() > 2 && n.inputs[2] != kNoValue;
  if (!wp || wp->dtype() != DType::kF32 || (has_b && (!bp || bp->dtype() != DType::kF32))) return false;
  Tensor w_copy = *wp, b_copy = bp ? *bp : Tensor();
  const Tensor* w = &w_copy;
  const Tensor* b = bp ? &b_copy : nullptr;
  std::string base = n.name;
  if (n.op == OpKind::kConv) {
    if (w->rank() < 3 || w->dim(0) != c || (b && b->numel() != c)) return false;
    n.inputs.resize(3);
    n.inputs[1] = g.add_constant(g.unique_name(base + "_w_bn"), scale_axis(*w, 0, f->s));
    n.inputs[2] = g.add_constant(g.unique_name(base + "_b_bn"), new_bias(b, 1.0, *f));
  } else if (n.op == OpKind::kGemm || n.op == OpKind::kMatMul) {
    if (w->rank() != 2) return false;
    bool trans_b = false;
    double beta = 1.0;
    if (n.op == OpKind::kGemm) {
      auto& a = std::get<ir::GemmAttrs>(n.attrs);
      trans_b = a.transB != 0;
      beta = a.beta;
      if (b && b->numel() != 1 && !(b->numel() == c && b->shape().back() == c)) return false;
      a.beta = 1.0f;
    } else {
      const auto& xt = g.value(n.inputs[0]).type;
      if (!xt.rank_known || xt.shape.size() != 2) return false;  // BN's channel axis 1 must be the columns
      n.op = OpKind::kGemm;
      n.attrs = ir::GemmAttrs{};
    }
    if (w->dim(trans_b ? 0 : 1) != c) return false;
    n.inputs.resize(3);
    n.inputs[1] = g.add_constant(g.unique_name(base + "_w_bn"), scale_axis(*w, trans_b ? 0 : 1, f->s));
    n.inputs[2] = g.add_constant(g.unique_name(base + "_b_bn"), new_bias(b, beta, *f));
  } else {
    return false;
  }
  n.outputs[0] = bn.outputs[0];
  s.touched[size_t(p)] = 1;
  s.kill(bi);
  return true;
}

}  // namespace

Result<int> fold_batchnorm(ir::Graph& g) { return rewrite_each(g, OpKind::kBatchNormalization, &fold_one); }

}  // namespace kiln::passes
