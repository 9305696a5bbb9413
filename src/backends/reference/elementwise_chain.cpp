// Reference kernel for kiln's ElementwiseChain (ir/ops/kiln_fused.h), from
// passes/fuse_elementwise_chain: each element goes through the steps in
// order, each step written exactly as the op's own kernel in
// elementwise_{unary,activation,binary}.cpp computes it (same compute type,
// same formula) and rounded to the tensor dtype after every step, as the
// separate nodes stored it: the chain is bit for bit the ops it replaces.
// Tests: tests/unit/test_passes.cpp (FuseElementwiseChain).
#include "backends/reference/elementwise_loops.h"
#include "backends/reference/kernels.h"
#include "ir/ops/kiln_fused.h"

namespace kiln::ref {
namespace {

struct Step {
  ir::ChainStep op;
  float a, b;
};

template <class C>
C clamp01(C t) {
  return t < C(0) ? C(0) : (t > C(1) ? C(1) : t);
}

template <class C>
C apply(const Step& s, C v) {
  using ir::ChainStep;
  const C a = C(s.a), b = C(s.b);
  switch (s.op) {
    case ChainStep::kRelu: return v < C(0) ? C(0) : v;
    case ChainStep::kSigmoid: {
      if (v >= C(0)) return C(1) / (C(1) + std::exp(-v));
      C e = std::exp(v);
      return e / (C(1) + e);
    }
    case ChainStep::kTanh: return std::tanh(v);
    case ChainStep::kExp: return std::exp(v);
    case ChainStep::kLog: return std::log(v);
    case ChainStep::kNeg: return -v;
    case ChainStep::kAbs: return std::fabs(v);
    case ChainStep::kSqrt: return std::sqrt(v);
    case ChainStep::kErf: return std::erf(v);
    case ChainStep::kHardSwish: return v * clamp01(C(1.0 / 6.0) * v + C(0.5));
    case ChainStep::kHardSigmoid: return clamp01(a * v + b);
    case ChainStep::kLeakyRelu: return v < C(0) ? a * v : v;
    case ChainStep::kClip:  // absent bounds are -inf / +inf
      if (v < a) v = a;
      if (v > b) v = b;
      return v;
    case ChainStep::kAdd: return v + a;
    case ChainStep::kSub: return v - a;
    case ChainStep::kSubFrom: return a - v;
    case ChainStep::kMul: return v * a;
    case ChainStep::kDiv: return v / a;
    case ChainStep::kDivInto: return a / v;
  }
  return v;
}

}  // namespace

Result<void> run_elementwise_chain(KernelCtx& c) {
  const auto& at = c.attr<ir::ElementwiseChainAttrs>();
  if (at.params.size() != 2 * at.steps.size()) return c.fail("params must hold 2 values per step");
  std::vector<Step> steps;
  for (size_t i = 0; i < at.steps.size(); ++i) {
    auto op = ir::chain_step(at.steps[i]);
    if (!op) return c.fail("unknown step '" + at.steps[i] + "'");
    steps.push_back({*op, at.params[2 * i], at.params[2 * i + 1]});
  }
  return dispatch_float(c, c.input(0).dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    using C = compute_t<T>;
    map_unary<T, T>(c.input(0), c.out[0], [&](C v) {
      for (const Step& s : steps) v = load(store<T>(apply(s, v)));
      return v;
    });
    return {};
  });
}

}  // namespace kiln::ref
