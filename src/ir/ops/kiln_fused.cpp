// Shape and dtype inference for kiln's FusedConv and FusedGemm (domain "kiln",
// attributes in ir/ops/kiln_fused.h): exactly Conv's and Gemm's, run on the
// node seen with its plain ConvAttrs / GemmAttrs; the activation keeps the
// shape. Kernels: backends/reference/fused.cpp. Tests: tests/unit/test_passes.cpp.
#include "ir/ops/infer_fns.h"
#include "ir/ops/kiln_fused.h"

namespace kiln::ir {
namespace {

// Runs `infer` on a copy of the node carrying the base attribute struct.
template <class Base, class Fused>
Result<void> infer_as_base(InferCtx& c, OpKind base_op, InferFn infer) {
  const auto& a = c.attr<Fused>();
  if (size_t(a.activation) >= kFusedActivationNames.size()) return c.fail("activation out of range");
  Node plain;
  plain.name = c.node.name;
  plain.op = base_op;
  plain.inputs = c.node.inputs;
  plain.outputs = c.node.outputs;
  plain.attrs = static_cast<const Base&>(a);
  InferCtx pc{plain, c.in, c.in_value, {}, c.fresh_dim, c.where};
  pc.out.resize(c.out.size());
  KILN_TRY(infer(pc));
  c.out = std::move(pc.out);
  return {};
}

}  // namespace

Result<void> infer_fused_conv(InferCtx& c) {
  return infer_as_base<ConvAttrs, FusedConvAttrs>(c, OpKind::kConv, &infer_conv);
}

Result<void> infer_fused_gemm(InferCtx& c) {
  return infer_as_base<GemmAttrs, FusedGemmAttrs>(c, OpKind::kGemm, &infer_gemm);
}

}  // namespace kiln::ir
