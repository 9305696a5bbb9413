#include "passes/fuse_elementwise_chain.h"

#include <limits>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::ChainOperand;
using ir::ChainStep;
using ir::kNoValue;
using ir::OpKind;
using ir::ValueId;

struct StepMatch {
  ChainStep step;
  float a = 0, b = 0;
  ValueId x = kNoValue;  // the input the step transforms
};

// Node `n` as one step of ir::kChainSteps, or nullopt.
std::optional<StepMatch> step_of(const Snapshot& s, const ir::Node& n) {
  if (n.outputs.size() != 1 || n.inputs.empty() || n.inputs[0] == kNoValue) return std::nullopt;
  for (const auto& r : ir::kChainSteps) {
    if (r.op != n.op) continue;
    if (r.constant == ChainOperand::kNone) {
      StepMatch m{r.step, 0, 0, n.inputs[0]};
      if (n.op == OpKind::kLeakyRelu) m.a = n.attr<ir::LeakyReluAttrs>().alpha;
      if (n.op == OpKind::kHardSigmoid) {
        m.a = n.attr<ir::HardSigmoidAttrs>().alpha;
        m.b = n.attr<ir::HardSigmoidAttrs>().beta;
      }
      if (n.op == OpKind::kClip) {
        m.a = -std::numeric_limits<float>::infinity();
        m.b = std::numeric_limits<float>::infinity();
        for (size_t k = 1; k < n.inputs.size(); ++k) {
          if (n.inputs[k] == kNoValue) continue;
          auto v = scalar_value(s.constant(n.inputs[k]));
          if (!v) return std::nullopt;  // bounds computed at run time
          (k == 1 ? m.a : m.b) = float(*v);
        }
      }
      return m;
    }
    if (n.inputs.size() != 2) return std::nullopt;
    for (size_t k = 0; k < 2; ++k) {  // k: position of x
      bool fits = r.constant == ChainOperand::kEither || (k == 0) == (r.constant == ChainOperand::kRight);
      if (!fits) continue;
      if (auto c = f32_scalar_operand(s, n.inputs[1 - k], n.inputs[k])) return StepMatch{r.step, *c, 0, n.inputs[k]};
    }
  }
  return std::nullopt;
}

}  // namespace

Result<int> fuse_elementwise_chain(ir::Graph& g) {
  Snapshot s(g);
  int fused = 0;
  // Nodes are in topological order, so the first step met is a chain's head.
  for (size_t i = 0; i < s.killed.size(); ++i) {
    if (s.touched[i]) continue;
    auto first = step_of(s, g.nodes[i]);
    if (!first || g.value(first->x).type.dtype != DType::kF32 || s.constant(first->x)) continue;
    std::vector<int> members = {int(i)};
    ir::ElementwiseChainAttrs a;
    auto add = [&](const StepMatch& m) {
      a.steps.emplace_back(ir::kChainSteps[size_t(m.step)].name);
      a.params.push_back(m.a);
      a.params.push_back(m.b);
    };
    add(*first);
    ValueId y = g.nodes[i].outputs[0];
    for (int next; (next = s.sole_consumer(y)) >= 0;) {
      auto m = step_of(s, g.nodes[size_t(next)]);
      if (!m || m->x != y) break;
      members.push_back(next);
      add(*m);
      y = g.nodes[size_t(next)].outputs[0];
    }
    if (members.size() < 2) continue;
    ir::Node chain;
    chain.name = g.nodes[i].name + "_chain";
    chain.op = OpKind::kElementwiseChain;
    chain.inputs = {first->x};
    chain.outputs = {y};
    chain.attrs = std::move(a);
    for (int k : members) s.kill(k);
    g.nodes.push_back(std::move(chain));
    ++fused;
  }
  if (fused) KILN_TRY(s.finish());
  return fused;
}

}  // namespace kiln::passes
