// The CPU backend's one kernel table: op -> step builder. An op not listed
// here, or one whose builder declines (with a reason), runs on the reference
// kernels inside the CPU plan.
#include "backends/cpu/step.h"
#include "ir/ops/kiln_fused.h"

namespace kiln::cpu {

namespace {
struct Row {
  ir::OpKind op;
  StepBuilder build;
};
using ir::OpKind;
constexpr Row kRows[] = {
    {OpKind::kConv, &build_conv},
    {OpKind::kFusedConv, &build_conv},
    {OpKind::kGemm, &build_gemm},
    {OpKind::kFusedGemm, &build_gemm},
    {OpKind::kMatMul, &build_matmul},
    {OpKind::kAttention, &build_attention},
    {OpKind::kAdd, &build_binary},
    {OpKind::kSub, &build_binary},
    {OpKind::kMul, &build_binary},
    {OpKind::kDiv, &build_binary},
    {OpKind::kRelu, &build_unary},
    {OpKind::kClip, &build_unary},
    {OpKind::kSigmoid, &build_unary},
    {OpKind::kHardSwish, &build_unary},
    {OpKind::kGelu, &build_unary},
    {OpKind::kLeakyRelu, &build_unary},
    {OpKind::kMaxPool, &build_pool},
    {OpKind::kAveragePool, &build_pool},
    {OpKind::kGlobalAveragePool, &build_global_pool},
    {OpKind::kReshape, &build_view},
    {OpKind::kFlatten, &build_view},
    {OpKind::kSqueeze, &build_view},
    {OpKind::kUnsqueeze, &build_view},
    {OpKind::kIdentity, &build_view},
    {OpKind::kTranspose, &build_transpose},
    {OpKind::kSlice, &build_slice},
    {OpKind::kSoftmax, &build_softmax},
    {OpKind::kLayerNormalization, &build_layernorm},
    {OpKind::kQConv, &build_qconv},
    {OpKind::kQGemm, &build_qgemm},
    {OpKind::kQAdd, &build_qadd},
    {OpKind::kQuantizeLinear, &build_quantize},
    {OpKind::kDequantizeLinear, &build_dequantize},
};
}  // namespace

StepBuilder find_builder(ir::OpKind op) {
  for (const Row& r : kRows)
    if (r.op == op) return r.build;
  return nullptr;
}

Act act_of(ir::FusedActivation a) {
  using F = ir::FusedActivation;
  switch (a) {
    case F::kRelu: return Act::kRelu;
    case F::kClip: return Act::kClip;
    case F::kHardSwish: return Act::kHardSwish;
    case F::kSigmoid: return Act::kSigmoid;
    case F::kGelu: return Act::kGelu;
    case F::kGeluTanh: return Act::kGeluTanh;
    case F::kLeakyRelu: return Act::kLeakyRelu;
    case F::kNone: return Act::kNone;
  }
  return Act::kNone;
}

}  // namespace kiln::cpu
