// Shape and dtype inference for kiln's fused ops (domain "kiln", attributes
// in ir/ops/kiln_fused.h). FusedConv / FusedGemm: exactly Conv's and Gemm's,
// run on the node seen with its plain ConvAttrs / GemmAttrs; the activation
// keeps the shape. Attention: [..., Sq, Dv], leading dims of Q, K, V and the
// mask broadcast. ElementwiseChain: the input's type, steps checked against
// the table. Kernels: backends/reference/{fused,attention,elementwise_chain}.cpp.
// Tests: tests/unit/test_passes.cpp.
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
  // Inputs past the base op's own (FusedConv's residual Z) are checked by the caller.
  const size_t base_inputs = std::min<size_t>(c.node.inputs.size(), 3);
  plain.inputs.assign(c.node.inputs.begin(), c.node.inputs.begin() + int64_t(base_inputs));
  plain.outputs = c.node.outputs;
  plain.attrs = static_cast<const Base&>(a);
  std::vector<ValueType> in(c.in.begin(), c.in.begin() + int64_t(std::min(base_inputs, c.in.size())));
  std::vector<const Tensor*> in_value(c.in_value.begin(),
                                      c.in_value.begin() + int64_t(std::min(base_inputs, c.in_value.size())));
  InferCtx pc{plain, in, in_value, {}, c.fresh_dim, c.where};
  pc.out.resize(c.out.size());
  KILN_TRY(infer(pc));
  c.out = std::move(pc.out);
  return {};
}

}  // namespace

Result<void> infer_fused_conv(InferCtx& c) {
  KILN_TRY((infer_as_base<ConvAttrs, FusedConvAttrs>(c, OpKind::kConv, &infer_conv)));
  if (c.has(3)) {
    const ValueType& z = c.in[3];
    if (z.dtype != c.out[0].dtype)
      return c.fail("residual Z has dtype " + std::string(dtype_name(z.dtype)) + ", the output " +
                    std::string(dtype_name(c.out[0].dtype)));
    if (z.rank_known && c.out[0].rank_known && is_static(z.shape) && is_static(c.out[0].shape) &&
        z.shape != c.out[0].shape)
      return c.fail("residual Z has shape " + shape_str(z.shape) + ", the output " + shape_str(c.out[0].shape));
  }
  return {};
}

Result<void> infer_fused_gemm(InferCtx& c) {
  return infer_as_base<GemmAttrs, FusedGemmAttrs>(c, OpKind::kGemm, &infer_gemm);
}

Result<void> infer_attention(InferCtx& c) {
  const auto& a = c.attr<AttentionAttrs>();
  if (size_t(a.scale_form) >= kAttentionScaleNames.size()) return c.fail("scale_form out of range");
  DType dt = c.in[0].dtype;
  if (!is_float(dt)) return c.fail("Q must be a float tensor, got " + std::string(dtype_name(dt)));
  const char* names[] = {"Q", "K", "V", "mask"};
  for (size_t i = 1; i < c.in.size(); ++i)
    if (c.has(i) && c.in[i].dtype != dt)
      return c.fail(std::string(names[i]) + " has dtype " + std::string(dtype_name(c.in[i].dtype)) + ", expected " +
                    std::string(dtype_name(dt)) + " like Q");
  if (!c.has(1) || !c.has(2)) return c.fail("K and V are required");
  const bool mask = c.has(3);
  for (size_t i = 0; i < (mask ? 4u : 3u); ++i)
    if (!c.in[i].rank_known) {
      c.set_unknown(0, dt, -1);
      return {};
    }
  const Shape &q = c.in[0].shape, &k = c.in[1].shape, &v = c.in[2].shape;
  if (q.size() < 2 || k.size() < 2 || v.size() < 2)
    return c.fail("Q, K and V need rank >= 2, got " + shape_str(q) + ", " + shape_str(k) + ", " + shape_str(v));
  const int64_t sq = q[q.size() - 2], d = q.back();
  const int64_t sk = a.k_transposed ? k.back() : k[k.size() - 2], dk = a.k_transposed ? k[k.size() - 2] : k.back();
  auto differ = [](int64_t x, int64_t y) { return x >= 0 && y >= 0 && x != y; };
  if (differ(d, dk) || differ(sk, v[v.size() - 2]))
    return c.fail("Q " + shape_str(q) + ", K " + shape_str(k) + " (k_transposed=" + std::to_string(a.k_transposed) +
                  ") and V " + shape_str(v) + " do not fit");
  auto batch = broadcast_shapes(Shape(q.begin(), q.end() - 2), Shape(k.begin(), k.end() - 2));
  if (batch.ok()) batch = broadcast_shapes(*batch, Shape(v.begin(), v.end() - 2));
  if (batch.ok() && mask) {
    Shape m = c.in[3].shape;
    while (m.size() < 2) m.insert(m.begin(), 1);
    int64_t ms = m[m.size() - 2], mk = m.back();
    if ((ms != 1 && differ(ms, sq)) || (mk != 1 && differ(mk, sk)))
      return c.fail("mask " + shape_str(c.in[3].shape) + " does not broadcast to the scores [..., " +
                    std::to_string(sq) + ", " + std::to_string(sk) + "]");
    batch = broadcast_shapes(*batch, Shape(m.begin(), m.end() - 2));
  }
  if (!batch.ok()) return c.fail("leading dims do not broadcast: " + batch.error().message);
  Shape out = *batch;
  out.push_back(sq);
  out.push_back(v.back());
  c.out[0] = ValueType{dt, out, true};
  return {};
}

Result<void> infer_elementwise_chain(InferCtx& c) {
  const auto& a = c.attr<ElementwiseChainAttrs>();
  if (a.steps.empty()) return c.fail("no steps");
  for (const auto& s : a.steps) {
    if (chain_step(s)) continue;
    std::string known;
    for (const auto& r : kChainSteps) known += (known.empty() ? "" : ", ") + std::string(r.name);
    return c.fail("unknown step '" + s + "' (known: " + known + ")");
  }
  if (a.params.size() != 2 * a.steps.size())
    return c.fail("params must hold 2 values per step: " + std::to_string(a.params.size()) + " for " +
                  std::to_string(a.steps.size()) + " steps");
  if (!is_float(c.in[0].dtype)) return c.fail("input must be a float tensor, got " + std::string(dtype_name(c.in[0].dtype)));
  c.out[0] = c.in[0];
  return {};
}

}  // namespace kiln::ir
