// Reference kernels for kiln's FusedConv and FusedGemm (ir/ops/kiln_fused.h):
// the Conv / Gemm kernel writes the output, then the activation's own kernel
// runs over it in place, so the fused node computes bit for bit what the two
// ONNX nodes it replaces computed. Tests: tests/unit/test_passes.cpp.
#include "backends/reference/kernels.h"
#include "ir/ops/kiln_fused.h"

namespace kiln::ref {
namespace {

Tensor f32_scalar(float v) {
  Tensor t = Tensor::create(DType::kF32, {}).value();
  *t.data<float>() = v;
  return t;
}

// Applies `act` to c.out[0] in place through the plain activation kernel.
Result<void> activate(KernelCtx& c, ir::FusedActivation act, float alpha, float beta) {
  using ir::FusedActivation;
  if (act == FusedActivation::kNone) return {};
  ir::Node n;
  n.name = c.node.name;
  n.inputs = c.node.outputs;
  n.outputs = c.node.outputs;
  KernelFn fn = nullptr;
  Tensor lo, hi;
  Tensor y = c.out[0];  // shares the buffer
  std::vector<const Tensor*> in = {&y};
  switch (act) {
    case FusedActivation::kRelu: fn = run_relu; break;
    case FusedActivation::kHardSwish: fn = run_hard_swish; break;
    case FusedActivation::kSigmoid: fn = run_sigmoid; break;
    case FusedActivation::kGelu:
    case FusedActivation::kGeluTanh:
      fn = run_gelu;
      n.attrs = ir::GeluAttrs{act == FusedActivation::kGelu ? ir::GeluApprox::kNone : ir::GeluApprox::kTanh};
      break;
    case FusedActivation::kLeakyRelu:
      fn = run_leaky_relu;
      n.attrs = ir::LeakyReluAttrs{alpha};
      break;
    case FusedActivation::kNone: return {};
    case FusedActivation::kClip: {
      // Clip computes in the output dtype; the bounds are cast to it there.
      fn = run_clip;
      lo = f32_scalar(alpha);
      hi = f32_scalar(beta);
      in.push_back(&lo);
      in.push_back(&hi);
      break;
    }
  }
  if (!fn) return c.fail("unknown activation");
  std::vector<Tensor> outs = {y};
  KernelCtx ac{n, in, outs, c.where};
  return fn(ac);
}

template <class Base, class Fused>
Result<void> run_fused(KernelCtx& c, ir::OpKind base_op, KernelFn base) {
  const auto& a = c.attr<Fused>();
  ir::Node plain;
  plain.name = c.node.name;
  plain.op = base_op;
  const size_t base_inputs = std::min<size_t>(c.node.inputs.size(), 3);
  plain.inputs.assign(c.node.inputs.begin(), c.node.inputs.begin() + int64_t(base_inputs));
  plain.outputs = c.node.outputs;
  plain.attrs = static_cast<const Base&>(a);
  std::vector<const Tensor*> in(c.in.begin(), c.in.begin() + int64_t(std::min(base_inputs, c.in.size())));
  KernelCtx pc{plain, in, c.out, c.where};
  KILN_TRY(base(pc));
  if (c.has(3)) {
    // FusedConv's residual: added in the output dtype, as the Add it replaces.
    const Tensor& z = c.input(3);
    Tensor& y = c.out[0];
    if (z.dtype() != DType::kF32 || y.dtype() != DType::kF32 || z.shape() != y.shape())
      return c.fail("residual Z must be f32 with the output's shape");
    const float* zp = z.data<float>();
    float* yp = y.data<float>();
    for (int64_t i = 0; i < y.numel(); ++i) yp[i] += zp[i];
  }
  return activate(c, a.activation, a.activation_alpha, a.activation_beta);
}

}  // namespace

Result<void> run_fused_conv(KernelCtx& c) { return run_fused<ir::ConvAttrs, ir::FusedConvAttrs>(c, ir::OpKind::kConv, run_conv); }
Result<void> run_fused_gemm(KernelCtx& c) { return run_fused<ir::GemmAttrs, ir::FusedGemmAttrs>(c, ir::OpKind::kGemm, run_gemm); }

}  // namespace kiln::ref
