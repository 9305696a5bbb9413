// Shape inference for elementwise ops: same-shape unary ops, numpy-broadcast
// binary/variadic ops, comparisons and logic (bool out), Where, Cast, Dropout.
#include "ir/ops/infer_fns.h"

namespace kiln::ir {

Result<void> infer_unary(InferCtx& c) {
  c.out[0] = c.in[0];
  return {};
}

Result<void> infer_unary_bool(InferCtx& c) {
  c.out[0] = c.in[0];
  c.out[0].dtype = DType::kBool;
  return {};
}

namespace {
// Broadcast all present inputs; dtype from the first.
Result<ValueType> broadcast_all(InferCtx& c, bool same_dtype) {
  ValueType t = c.in[0];
  for (size_t i = 1; i < c.in.size(); ++i) {
    if (!c.has(i)) continue;
    if (same_dtype && c.in[i].dtype != t.dtype)
      return c.fail("input " + std::to_string(i) + " has dtype " + std::string(dtype_name(c.in[i].dtype)) +
                    ", expected " + std::string(dtype_name(t.dtype)));
    if (!t.rank_known || !c.in[i].rank_known) {
      t.rank_known = false;
      t.shape.clear();
      continue;
    }
    auto b = broadcast_shapes(t.shape, c.in[i].shape);
    if (!b.ok()) return c.fail(b.error().message);
    t.shape = std::move(*b);
  }
  return t;
}
}  // namespace

Result<void> infer_broadcast(InferCtx& c) {
  // PRelu's slope and Pow's exponent may differ in dtype only where ONNX allows; others must match.
  bool same = c.node.op != OpKind::kPow;
  KILN_ASSIGN(c.out[0], broadcast_all(c, same));
  return {};
}

Result<void> infer_pow(InferCtx& c) {
  KILN_ASSIGN(c.out[0], broadcast_all(c, false));
  c.out[0].dtype = c.in[0].dtype;
  return {};
}

Result<void> infer_compare(InferCtx& c) {
  KILN_ASSIGN(c.out[0], broadcast_all(c, true));
  c.out[0].dtype = DType::kBool;
  return {};
}

Result<void> infer_logical(InferCtx& c) {
  for (size_t i = 0; i < c.in.size(); ++i)
    if (c.in[i].dtype != DType::kBool) return c.fail("logical ops take bool inputs");
  KILN_ASSIGN(c.out[0], broadcast_all(c, true));
  return {};
}

Result<void> infer_where(InferCtx& c) {
  if (c.in[0].dtype != DType::kBool) return c.fail("condition must be bool");
  if (c.in[1].dtype != c.in[2].dtype) return c.fail("X and Y must have the same dtype");
  KILN_ASSIGN(c.out[0], broadcast_all(c, false));
  c.out[0].dtype = c.in[1].dtype;
  return {};
}

Result<void> infer_cast(InferCtx& c) {
  auto dt = dtype_from_onnx(int(c.attr<CastAttrs>().to));
  if (!dt) return c.fail("cast to unsupported data type " + std::to_string(c.attr<CastAttrs>().to));
  c.out[0] = c.in[0];
  c.out[0].dtype = *dt;
  return {};
}

Result<void> infer_castlike(InferCtx& c) {
  c.out[0] = c.in[0];
  c.out[0].dtype = c.in[1].dtype;
  return {};
}

Result<void> infer_dropout(InferCtx& c) {
  c.out[0] = c.in[0];
  if (c.out.size() > 1) {
    c.out[1] = c.in[0];
    c.out[1].dtype = DType::kBool;
  }
  return {};
}

}  // namespace kiln::ir
