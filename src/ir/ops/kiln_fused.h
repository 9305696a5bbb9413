// Attributes of kiln's fused ops (domain "kiln"): FusedConv = Conv then an
// activation, FusedGemm = Gemm then an activation (passes/fuse_activation);
// Attention = the scaled-dot-product attention core (passes/fuse_attention);
// ElementwiseChain = a run of single-input elementwise ops
// (passes/fuse_elementwise_chain). No ONNX form (the exporter refuses them;
// the .kiln container keeps them). Shape inference: ir/ops/kiln_fused.cpp.
// Kernels: backends/reference/{fused,attention,elementwise_chain}.cpp.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/op_kind.h"
#include "ir/ops/nn.h"

namespace kiln::ir {

// The activation applied to the Conv/Gemm result, exactly as the ONNX op of
// that name computes it: Relu, Clip(alpha, beta) (bounds as attributes;
// Relu6 is Clip(0, 6)), HardSwish, Sigmoid, Gelu (erf), GeluTanh (Gelu with
// approximate="tanh"), LeakyRelu(alpha).
// None: no activation (a FusedConv that only adds its residual).
enum class FusedActivation { kRelu, kClip, kHardSwish, kSigmoid, kGelu, kGeluTanh, kLeakyRelu, kNone };
inline constexpr std::array<const char*, 8> kFusedActivationNames = {"Relu",     "Clip",     "HardSwish", "Sigmoid",
                                                                     "Gelu",     "GeluTanh", "LeakyRelu", "None"};

// FusedConv(X, W[, B[, Z]]): Y = act(Conv(X, W, B) + Z); Z (the residual of
// a skip connection, passes/fuse_conv_add) has Y's shape.
struct FusedConvAttrs : ConvAttrs {
  FusedActivation activation = FusedActivation::kRelu;
  float activation_alpha = 0.0f;  // Clip: lower bound; LeakyRelu: slope
  float activation_beta = 0.0f;   // Clip: upper bound
  template <class V> void fields(V& v) {
    ConvAttrs::fields(v);
    v("activation", activation, kFusedActivationNames, true);
    v("activation_alpha", activation_alpha);
    v("activation_beta", activation_beta);
  }
};

struct FusedGemmAttrs : GemmAttrs {
  FusedActivation activation = FusedActivation::kRelu;
  float activation_alpha = 0.0f;  // as in FusedConvAttrs
  float activation_beta = 0.0f;
  template <class V> void fields(V& v) {
    GemmAttrs::fields(v);
    v("activation", activation, kFusedActivationNames, true);
    v("activation_alpha", activation_alpha);
    v("activation_beta", activation_beta);
  }
};

// Attention(Q, K, V[, mask]) -> Y = Softmax(S + mask, axis=-1) . V with
// S = Q . K^T scaled; Q [..., Sq, D], K [..., Sk, D] (k_transposed: K^T,
// [..., D, Sk]), V [..., Sk, Dv], mask broadcasting to [..., Sq, Sk], Y
// [..., Sq, Dv]; leading dims broadcast as MatMul's do. `scale_form` says
// where the constant `scale` was applied in the graph the node replaces, so
// that the kernel rounds exactly as that graph did: the scores times or
// divided by it, or the queries times or divided by it before the product.
enum class AttentionScale { kScoresMul, kScoresDiv, kQueryMul, kQueryDiv };
inline constexpr std::array<const char*, 4> kAttentionScaleNames = {"ScoresMul", "ScoresDiv", "QueryMul", "QueryDiv"};

struct AttentionAttrs {
  float scale = 1.0f;
  AttentionScale scale_form = AttentionScale::kScoresMul;
  int64_t k_transposed = 0;
  template <class V> void fields(V& v) {
    v("scale", scale);
    v("scale_form", scale_form, kAttentionScaleNames);
    v("k_transposed", k_transposed);
  }
};

// ElementwiseChain(x) applies its steps in order to each element, each one
// exactly as the op it replaces computes (and rounds) it. The one table of
// steps: name (as printed in the `steps` attribute), the op it comes from,
// and where that op's constant scalar operand c sits (binary ops only).
// Parameters: two floats per step in `params` (LeakyRelu: alpha; HardSigmoid:
// alpha, beta; Clip: min, max (+-inf when absent); the binary steps: c).
enum class ChainStep {
  kRelu, kSigmoid, kTanh, kExp, kLog, kNeg, kAbs, kSqrt, kErf, kHardSwish, kHardSigmoid, kLeakyRelu, kClip,
  kAdd, kSub, kSubFrom, kMul, kDiv, kDivInto
};
enum class ChainOperand { kNone, kRight, kLeft, kEither };  // x op c, c op x, both (commutative)
struct ChainStepInfo {
  ChainStep step;
  const char* name;
  OpKind op;
  ChainOperand constant;
};
inline constexpr std::array<ChainStepInfo, 19> kChainSteps = {{
    {ChainStep::kRelu, "Relu", OpKind::kRelu, ChainOperand::kNone},
    {ChainStep::kSigmoid, "Sigmoid", OpKind::kSigmoid, ChainOperand::kNone},
    {ChainStep::kTanh, "Tanh", OpKind::kTanh, ChainOperand::kNone},
    {ChainStep::kExp, "Exp", OpKind::kExp, ChainOperand::kNone},
    {ChainStep::kLog, "Log", OpKind::kLog, ChainOperand::kNone},
    {ChainStep::kNeg, "Neg", OpKind::kNeg, ChainOperand::kNone},
    {ChainStep::kAbs, "Abs", OpKind::kAbs, ChainOperand::kNone},
    {ChainStep::kSqrt, "Sqrt", OpKind::kSqrt, ChainOperand::kNone},
    {ChainStep::kErf, "Erf", OpKind::kErf, ChainOperand::kNone},
    {ChainStep::kHardSwish, "HardSwish", OpKind::kHardSwish, ChainOperand::kNone},
    {ChainStep::kHardSigmoid, "HardSigmoid", OpKind::kHardSigmoid, ChainOperand::kNone},
    {ChainStep::kLeakyRelu, "LeakyRelu", OpKind::kLeakyRelu, ChainOperand::kNone},
    {ChainStep::kClip, "Clip", OpKind::kClip, ChainOperand::kNone},
    {ChainStep::kAdd, "Add", OpKind::kAdd, ChainOperand::kEither},
    {ChainStep::kSub, "Sub", OpKind::kSub, ChainOperand::kRight},
    {ChainStep::kSubFrom, "SubFrom", OpKind::kSub, ChainOperand::kLeft},
    {ChainStep::kMul, "Mul", OpKind::kMul, ChainOperand::kEither},
    {ChainStep::kDiv, "Div", OpKind::kDiv, ChainOperand::kRight},
    {ChainStep::kDivInto, "DivInto", OpKind::kDiv, ChainOperand::kLeft},
}};

constexpr bool chain_rows_in_order() {
  for (size_t i = 0; i < kChainSteps.size(); ++i)
    if (size_t(kChainSteps[i].step) != i) return false;
  return true;
}
static_assert(chain_rows_in_order(), "kChainSteps rows out of step with enum ChainStep");

inline std::optional<ChainStep> chain_step(std::string_view name) {
  for (const auto& r : kChainSteps)
    if (name == r.name) return r.step;
  return std::nullopt;
}

struct ElementwiseChainAttrs {
  std::vector<std::string> steps;  // names from kChainSteps, applied first to last
  std::vector<float> params;       // 2 per step
  template <class V> void fields(V& v) {
    v("steps", steps, true);
    v("params", params);
  }
};

}  // namespace kiln::ir
