#include "passes/fuse_gelu.h"

#include <cmath>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::kNoValue;
using ir::OpKind;
using ir::ValueId;

bool near(std::optional<double> v, double want) { return v && std::fabs(*v - want) <= 1e-6 * std::fabs(want); }

// Binary node `i` multiplies `v` by a constant 0.5.
bool times_half(const Snapshot& s, int i, ValueId v) {
  const ir::Node& n = s.g.nodes[size_t(i)];
  return n.op == OpKind::kMul && near(scalar_value(s.constant(other_input(n, v))), 0.5);
}

bool fuse_one(Snapshot& s, int ei) {
  ir::Graph& g = s.g;
  const ir::Node& erf = g.nodes[size_t(ei)];
  // u = x / sqrt(2) or x * (1/sqrt(2))
  int u = s.producer(erf.inputs[0]);
  if (u < 0 || !s.single_use(erf.inputs[0])) return false;
  const ir::Node& un = g.nodes[size_t(u)];
  if (un.inputs.size() != 2) return false;
  ValueId x = un.inputs[0];
  auto c = scalar_value(s.constant(un.inputs[1]));
  bool ok = (un.op == OpKind::kDiv && near(c, std::sqrt(2.0))) || (un.op == OpKind::kMul && near(c, std::sqrt(0.5)));
  if (!ok || g.value(x).type.dtype != DType::kF32) return false;
  std::vector<int> nodes = {u, ei};
  int add = next(s, erf.outputs[0], OpKind::kAdd);
  if (add < 0 || !near(scalar_value(s.constant(other_input(g.nodes[size_t(add)], erf.outputs[0]))), 1.0)) return false;
  nodes.push_back(add);
  ValueId a = g.nodes[size_t(add)].outputs[0];
  int mul = next(s, a, OpKind::kMul);
  if (mul < 0) return false;
  nodes.push_back(mul);
  ValueId other = other_input(g.nodes[size_t(mul)], a);
  ValueId y = g.nodes[size_t(mul)].outputs[0];
  if (other == x) {  // (x * (1 + erf)) * 0.5
    int half = s.sole_consumer(y);
    if (half < 0 || !times_half(s, half, y)) return false;
    nodes.push_back(half);
    y = g.nodes[size_t(half)].outputs[0];
  } else {  // (x * 0.5) * (1 + erf)
    int h = s.producer(other);
    if (h < 0 || !s.single_use(other) || !times_half(s, h, x)) return false;
    nodes.push_back(h);
  }
  ir::Node gelu;
  gelu.name = erf.name + "_gelu";
  gelu.op = OpKind::kGelu;
  gelu.inputs = {x};
  gelu.outputs = {y};
  gelu.attrs = ir::GeluAttrs{};
  for (int k : nodes) s.kill(k);
  g.nodes.push_back(std::move(gelu));
  return true;
}

}  // namespace

Result<int> fuse_gelu(ir::Graph& g) { return rewrite_each(g, OpKind::kErf, &fuse_one); }

}  // namespace kiln::passes
