// Shape inference for elementwise ops: same-shape unary ops, numpy-broadcast
// binary/variadic ops, comparisons and logic (bool out), Where, Cast, Clip,
// Dropout. Each op's input dtypes are checked against its ONNX type constraint.
// Kernels: backends/reference/elementwise_*.cpp; tests: tests/unit/test_ref_elementwise.cpp.
#include "ir/ops/infer_fns.h"

namespace kiln::ir {
namespace {

// The dtype classes ONNX type constraints of elementwise ops fall into.
enum class Allow { kAny, kFloat, kSigned, kNumeric, kInt, kUnsigned, kBool };

bool allowed(Allow a, DType t) {
  switch (a) {
    case Allow::kAny: return t != DType::kI4 && t != DType::kU4;
    case Allow::kFloat: return is_float(t);
    case Allow::kSigned: return is_float(t) || (is_integer(t) && dtype_info(t).is_signed && t != DType::kI4);
    case Allow::kNumeric: return is_float(t) || (is_integer(t) && t != DType::kI4 && t != DType::kU4);
    case Allow::kInt: return is_integer(t) && t != DType::kI4 && t != DType::kU4;
    case Allow::kUnsigned: return is_integer(t) && !dtype_info(t).is_signed && t != DType::kU4;
    case Allow::kBool: return t == DType::kBool;
  }
  return false;
}

const char* allow_name(Allow a) {
  switch (a) {
    case Allow::kAny: return "any non-packed dtype";
    case Allow::kFloat: return "a floating-point dtype";
    case Allow::kSigned: return "a floating-point or signed integer dtype";
    case Allow::kNumeric: return "a numeric dtype";
    case Allow::kInt: return "an integer dtype";
    case Allow::kUnsigned: return "an unsigned integer dtype";
    case Allow::kBool: return "bool";
  }
  return "?";
}

// The constraint on the main (first) input of each elementwise op; ops of other
// families that share infer_unary get kAny and are not checked here.
Allow main_constraint(OpKind op) {
  switch (op) {
    case OpKind::kAcos: case OpKind::kAcosh: case OpKind::kAsin: case OpKind::kAsinh:
    case OpKind::kAtan: case OpKind::kAtanh: case OpKind::kCos: case OpKind::kCosh:
    case OpKind::kSin: case OpKind::kSinh: case OpKind::kTan: case OpKind::kTanh:
    case OpKind::kSqrt: case OpKind::kExp: case OpKind::kLog: case OpKind::kReciprocal:
    case OpKind::kFloor: case OpKind::kCeil: case OpKind::kRound: case OpKind::kSigmoid:
    case OpKind::kSoftsign: case OpKind::kSoftplus: case OpKind::kMish: case OpKind::kGelu:
    case OpKind::kElu: case OpKind::kCelu: case OpKind::kSelu: case OpKind::kLeakyRelu:
    case OpKind::kThresholdedRelu: case OpKind::kHardSigmoid: case OpKind::kHardSwish:
    case OpKind::kIsNaN: case OpKind::kIsInf: case OpKind::kSum: case OpKind::kMean:
    case OpKind::kDropout:
      return Allow::kFloat;
    case OpKind::kNeg: case OpKind::kRelu:
      return Allow::kSigned;
    case OpKind::kAbs: case OpKind::kSign: case OpKind::kErf: case OpKind::kShrink:
    case OpKind::kAdd: case OpKind::kSub: case OpKind::kMul: case OpKind::kDiv: case OpKind::kMod:
    case OpKind::kPow: case OpKind::kMax: case OpKind::kMin: case OpKind::kPRelu: case OpKind::kClip:
    case OpKind::kLess: case OpKind::kLessOrEqual: case OpKind::kGreater: case OpKind::kGreaterOrEqual:
      return Allow::kNumeric;
    case OpKind::kBitwiseAnd: case OpKind::kBitwiseOr: case OpKind::kBitwiseXor: case OpKind::kBitwiseNot:
      return Allow::kInt;
    case OpKind::kBitShift:
      return Allow::kUnsigned;
    case OpKind::kNot: case OpKind::kAnd: case OpKind::kOr: case OpKind::kXor:
      return Allow::kBool;
    default:
      return Allow::kAny;
  }
}

// Checks input i against `a`; an unknown dtype (static inference) passes.
Result<void> check_input(InferCtx& c, size_t i, Allow a) {
  if (!c.has(i)) return {};
  DType t = c.in[i].dtype;
  if (allowed(a, t)) return {};
  return c.fail("input " + std::to_string(i) + " has dtype " + std::string(dtype_name(t)) + ", expected " +
                allow_name(a));
}

Result<void> check_main(InferCtx& c) { return check_input(c, 0, main_constraint(c.node.op)); }

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

// A scalar operand (Clip bounds, Dropout ratio/training_mode): one element when
// its shape is known. ONNX says rank 0; exporters also write shape [1].
Result<void> check_scalar(InferCtx& c, size_t i, const char* what) {
  if (!c.has(i) || !c.in[i].rank_known || !is_static(c.in[i].shape)) return {};
  if (numel(c.in[i].shape) != 1)
    return c.fail(std::string(what) + " must be a scalar, got shape " + shape_str(c.in[i].shape));
  return {};
}

}  // namespace

Result<void> infer_unary(InferCtx& c) {
  KILN_TRY(check_main(c));
  if (c.node.op == OpKind::kClip) {
    // Bounds may differ in dtype from x only because opset < 11 Clip's float
    // attributes became f32 constants; the kernel converts them.
    for (size_t i = 1; i < 3; ++i) {
      KILN_TRY(check_input(c, i, Allow::kNumeric));
      KILN_TRY(check_scalar(c, i, i == 1 ? "min" : "max"));
    }
  }
  c.out[0] = c.in[0];
  return {};
}

Result<void> infer_unary_bool(InferCtx& c) {
  KILN_TRY(check_main(c));
  c.out[0] = c.in[0];
  c.out[0].dtype = DType::kBool;
  return {};
}

Result<void> infer_broadcast(InferCtx& c) {
  KILN_TRY(check_main(c));
  if (c.node.op == OpKind::kMod && c.attr<ModAttrs>().fmod == 0 && c.has(0) && is_float(c.in[0].dtype))
    return c.fail("Mod of floating-point inputs requires fmod=1 (ONNX spec)");
  KILN_ASSIGN(c.out[0], broadcast_all(c, true));
  if (c.node.op == OpKind::kPRelu && c.in[0].rank_known && c.out[0].rank_known) {
    // ONNX PRelu broadcasts slope to X one way only: the output has X's shape.
    const Shape& xs = c.in[0].shape;
    const Shape& ys = c.out[0].shape;
    bool grew = xs.size() != ys.size();
    for (size_t i = 0; !grew && i < xs.size(); ++i) grew = xs[i] >= 0 && ys[i] >= 0 && xs[i] != ys[i];
    if (grew)
      return c.fail("slope of shape " + shape_str(c.in[1].shape) + " does not broadcast to X of shape " +
                    shape_str(xs));
    c.out[0].shape = xs;
  }
  return {};
}

Result<void> infer_pow(InferCtx& c) {
  KILN_TRY(check_main(c));
  KILN_TRY(check_input(c, 1, Allow::kNumeric));
  KILN_ASSIGN(c.out[0], broadcast_all(c, false));
  c.out[0].dtype = c.in[0].dtype;
  return {};
}

Result<void> infer_compare(InferCtx& c) {
  // Equal also takes bool; the ordering comparisons take numbers only.
  KILN_TRY(check_input(c, 0, c.node.op == OpKind::kEqual ? Allow::kAny : Allow::kNumeric));
  KILN_ASSIGN(c.out[0], broadcast_all(c, true));
  c.out[0].dtype = DType::kBool;
  return {};
}

Result<void> infer_logical(InferCtx& c) {
  for (size_t i = 0; i < c.in.size(); ++i)
    if (c.in[i].dtype != DType::kBool)
      return c.fail("input " + std::to_string(i) + " has dtype " + std::string(dtype_name(c.in[i].dtype)) +
                    "; logical ops take bool inputs");
  KILN_ASSIGN(c.out[0], broadcast_all(c, true));
  return {};
}

Result<void> infer_where(InferCtx& c) {
  if (c.in[0].dtype != DType::kBool)
    return c.fail("condition has dtype " + std::string(dtype_name(c.in[0].dtype)) + ", expected bool");
  if (c.in[1].dtype != c.in[2].dtype)
    return c.fail("X and Y must have the same dtype, got " + std::string(dtype_name(c.in[1].dtype)) + " and " +
                  std::string(dtype_name(c.in[2].dtype)));
  KILN_TRY(check_input(c, 1, Allow::kAny));
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
  KILN_TRY(check_main(c));
  KILN_TRY(check_input(c, 1, Allow::kFloat));
  KILN_TRY(check_input(c, 2, Allow::kBool));
  KILN_TRY(check_scalar(c, 1, "ratio"));
  KILN_TRY(check_scalar(c, 2, "training_mode"));
  // kiln runs inference only. Training mode with ratio 0 is still the identity;
  // with any other (or the default 0.5) ratio it would need random masks.
  const Tensor* training = c.value(2);
  if (training && training->numel() == 1 && training->as_int(0) != 0) {
    const Tensor* ratio = c.value(1);
    bool ratio_known = !c.has(1) || (ratio && ratio->numel() == 1);
    double r = !c.has(1) ? 0.5 : (ratio_known ? ratio->as_double(0) : 0.0);
    if (ratio_known && r != 0.0)
      return c.fail("training mode is not supported (training_mode is true, ratio " + std::to_string(r) +
                    "); kiln runs Dropout for inference only");
  }
  c.out[0] = c.in[0];
  if (c.out.size() > 1) {
    c.out[1] = c.in[0];
    // Dropout-7..9 returned the mask in X's dtype; opset 10 made it bool.
    c.out[1].dtype = (c.node.opset > 0 && c.node.opset < 10) ? c.in[0].dtype : DType::kBool;
  }
  return {};
}

}  // namespace kiln::ir
