#include "passes/fuse_layernorm.h"

#include <cmath>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::kNoValue;
using ir::OpKind;
using ir::ValueId;

// The first axis (as a non-negative index) when ReduceMean node `r` reduces
// exactly the trailing axes of its rank-`rank` input with keepdims, else -1.
int64_t trailing_axis(const Snapshot& s, const ir::Node& r, int64_t rank) {
  if (r.attr<ir::ReduceAttrs>().keepdims != 1 || r.inputs.size() < 2) return -1;
  const Tensor* axes = s.constant(r.inputs[1]);
  if (!axes || axes->numel() == 0 || axes->numel() > rank) return -1;
  std::vector<char> seen(size_t(rank), 0);
  for (int64_t k = 0; k < axes->numel(); ++k) {
    int64_t a = axes->as_int(k);
    if (a < 0) a += rank;
    if (a < 0 || a >= rank || seen[size_t(a)]) return -1;
    seen[size_t(a)] = 1;
  }
  int64_t first = rank - axes->numel();
  for (int64_t a = first; a < rank; ++a)
    if (!seen[size_t(a)]) return -1;
  return first;
}

// Constant `id` as a tensor of shape `norm` (leading 1s dropped), or undefined.
Tensor as_norm_shape(const Snapshot& s, ValueId id, const Shape& norm) {
  const Tensor* t = s.constant(id);
  if (!t || t->dtype() != DType::kF32) return {};
  Shape sh = t->shape();
  while (sh.size() > norm.size() && sh.front() == 1) sh.erase(sh.begin());
  if (sh != norm) return {};
  return t->reshaped(norm);
}

bool fuse_one(Snapshot& s, int r1) {
  ir::Graph& g = s.g;
  const ir::Node& mean = g.nodes[size_t(r1)];
  ValueId x = mean.inputs[0];
  const ir::ValueType& xt = g.value(x).type;
  if (!xt.rank_known || xt.dtype != DType::kF32) return false;
  int64_t rank = int64_t(xt.shape.size());
  int64_t axis = trailing_axis(s, mean, rank);
  if (axis < 0) return false;
  Shape norm(xt.shape.begin() + axis, xt.shape.end());
  if (!is_static(norm)) return false;
  std::vector<int> nodes = {r1};
  // d = x - m
  int sub = next(s, mean.outputs[0], OpKind::kSub);
  if (sub < 0 || g.nodes[size_t(sub)].inputs[0] != x) return false;
  ValueId d = g.nodes[size_t(sub)].outputs[0];
  nodes.push_back(sub);
  if (s.is_output[size_t(d)]) return false;
  int sq = -1, div = -1;
  for (size_t i = 0; i < s.killed.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (s.touched[i]) continue;
    if (n.op == OpKind::kPow && n.inputs[0] == d) {
      auto e = scalar_value(s.constant(n.inputs[1]));
      if (e && *e == 2.0) sq = int(i);
    } else if (n.op == OpKind::kMul && n.inputs.size() == 2 && n.inputs[0] == d && n.inputs[1] == d) {
      sq = int(i);
    } else if (n.op == OpKind::kDiv && n.inputs[0] == d) {
      div = int(i);
    }
  }
  if (sq < 0 || div < 0) return false;
  // d is read by the square (twice for d*d) and the Div, nothing else
  if (s.uses[size_t(d)] != (g.nodes[size_t(sq)].op == OpKind::kMul ? 3 : 2)) return false;
  nodes.push_back(sq);
  int var = next(s, g.nodes[size_t(sq)].outputs[0], OpKind::kReduceMean);
  if (var < 0 || trailing_axis(s, g.nodes[size_t(var)], rank) != axis) return false;
  nodes.push_back(var);
  int add = next(s, g.nodes[size_t(var)].outputs[0], OpKind::kAdd);
  if (add < 0) return false;
  auto eps = scalar_value(s.constant(other_input(g.nodes[size_t(add)], g.nodes[size_t(var)].outputs[0])));
  if (!eps || !(*eps >= 0)) return false;
  nodes.push_back(add);
  int sqrt = next(s, g.nodes[size_t(add)].outputs[0], OpKind::kSqrt);
  if (sqrt < 0 || next(s, g.nodes[size_t(sqrt)].outputs[0], OpKind::kDiv) != div) return false;
  nodes.push_back(sqrt);
  nodes.push_back(div);
  ValueId y = g.nodes[size_t(div)].outputs[0];
  // optional * gamma, + beta
  Tensor gamma, beta;
  if (int mul = next(s, y, OpKind::kMul); mul >= 0) {
    gamma = as_norm_shape(s, other_input(g.nodes[size_t(mul)], y), norm);
    if (gamma.defined()) {
      nodes.push_back(mul);
      y = g.nodes[size_t(mul)].outputs[0];
    }
  }
  if (int badd = next(s, y, OpKind::kAdd); badd >= 0) {
    beta = as_norm_shape(s, other_input(g.nodes[size_t(badd)], y), norm);
    if (beta.defined()) {
      nodes.push_back(badd);
      y = g.nodes[size_t(badd)].outputs[0];
    }
  }
  if (!gamma.defined()) {
    gamma = Tensor::create(DType::kF32, norm).value();
    for (int64_t i = 0; i < gamma.numel(); ++i) gamma.data<float>()[i] = 1.0f;
  }
  std::string name = g.nodes[size_t(div)].name + "_layernorm";
  ir::Node ln;
  ln.name = name;
  ln.op = OpKind::kLayerNormalization;
  ln.inputs = {x, g.add_constant(g.unique_name(name + "_scale"), gamma)};
  if (beta.defined()) ln.inputs.push_back(g.add_constant(g.unique_name(name + "_bias"), beta));
  ln.outputs = {y};
  ir::LayerNormAttrs a;
  a.axis = axis - rank;
  a.epsilon = float(*eps);
  ln.attrs = a;
  for (int k : nodes) s.kill(k);
  g.nodes.push_back(std::move(ln));
  return true;
}

}  // namespace

Result<int> fuse_layernorm(ir::Graph& g) { return rewrite_each(g, OpKind::kReduceMean, &fuse_one); }

}  // namespace kiln::passes
