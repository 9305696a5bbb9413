// Shape and dtype inference for the ONNX quantization ops: QuantizeLinear,
// DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
// ConvInteger, QLinearConv. Convolution geometry comes from conv_geometry.h.
// Kernels: backends/reference/quant*.cpp. Tests: tests/unit/test_ref_reduce_quant.cpp.
#include <string>

#include "ir/ops/conv_geometry.h"
#include "ir/ops/infer_fns.h"
#include "ir/ops/quant.h"

namespace kiln::ir {
namespace {

std::string dt_str(DType t) { return std::string(dtype_name(t)); }

bool is_quant_int(DType t) {
  switch (t) {
    case DType::kI8:
    case DType::kU8:
    case DType::kI16:
    case DType::kU16:
    case DType::kI4:
    case DType::kU4: return true;
    default: return false;
  }
}
bool is_8bit(DType t) { return t == DType::kI8 || t == DType::kU8; }
bool is_scale_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// Checks the scale (and zero point) layout of QuantizeLinear/DequantizeLinear
// against x where shapes are known: per-tensor (one element), per-axis (1-D of
// x.shape[axis]) or blocked (x's rank, ceil(x.shape[axis] / block_size) on axis).
Result<void> check_qparams(InferCtx& c, int64_t axis, int64_t block_size) {
  if (block_size < 0) return c.fail("block_size must be >= 0, got " + std::to_string(block_size));
  const ValueType& x = c.in[0];
  const ValueType& s = c.in[1];
  if (c.has(2) && s.rank_known && c.in[2].rank_known && s.shape != c.in[2].shape)
    return c.fail("zero point shape " + shape_str(c.in[2].shape) + " differs from scale shape " + shape_str(s.shape));
  if (!s.rank_known || !is_static(s.shape) || numel(s.shape) == 1) return {};
  if (!x.rank_known) return {};
  auto ax = normalize_axis(axis, int64_t(x.shape.size()), "quantization axis");
  if (!ax.ok()) return c.fail(ax.error().message);
  int64_t xd = x.shape[size_t(*ax)];
  if (block_size == 0) {
    if (s.shape.size() != 1)
      return c.fail("scale of shape " + shape_str(s.shape) +
                    " needs block_size > 0 (per-tensor scales have one element, per-axis scales are 1-D)");
    if (xd >= 0 && s.shape[0] != xd)
      return c.fail("per-axis scale has " + std::to_string(s.shape[0]) + " elements but axis " +
                    std::to_string(*ax) + " of x has size " + std::to_string(xd));
    return {};
  }
  if (s.shape.size() != x.shape.size())
    return c.fail("blocked scale must have x's rank " + std::to_string(x.shape.size()) + ", got shape " +
                  shape_str(s.shape));
  for (size_t i = 0; i < s.shape.size(); ++i) {
    int64_t want = x.shape[i];
    if (want < 0) continue;
    if (int64_t(i) == *ax) want = (want + block_size - 1) / block_size;
    if (s.shape[i] != want)
      return c.fail("blocked scale shape " + shape_str(s.shape) + " does not match x shape " + shape_str(x.shape) +
                    " with block_size " + std::to_string(block_size) + " on axis " + std::to_string(*ax));
  }
  return {};
}

// numpy.matmul output shape (rank-1 operands get a dim added and removed).
Result<void> infer_matmul_like(InferCtx& c, size_t ia, size_t ib, DType out_dt) {
  const ValueType& a = c.in[ia];
  const ValueType& b = c.in[ib];
  if (!a.rank_known || !b.rank_known) {
    c.set_unknown(0, out_dt, -1);
    return {};
  }
  if (a.shape.empty() || b.shape.empty()) return c.fail("matrix operands must have rank >= 1");
  Shape sa = a.shape, sb = b.shape;
  bool a_vec = sa.size() == 1, b_vec = sb.size() == 1;
  if (a_vec) sa.insert(sa.begin(), 1);
  if (b_vec) sb.push_back(1);
  int64_t ka = sa[sa.size() - 1], kb = sb[sb.size() - 2];
  if (ka >= 0 && kb >= 0 && ka != kb)
    return c.fail("inner dimensions differ: " + shape_str(a.shape) + " x " + shape_str(b.shape));
  Shape ba(sa.begin(), sa.end() - 2), bb(sb.begin(), sb.end() - 2);
  auto batch = broadcast_shapes(ba, bb);
  if (!batch.ok()) return c.fail(batch.error().message);
  Shape out = *batch;
  if (!a_vec) out.push_back(sa[sa.size() - 2]);
  if (!b_vec) out.push_back(sb[sb.size() - 1]);
  c.out[0] = ValueType{out_dt, out, true};
  return {};
}

Result<void> infer_conv_like(InferCtx& c, size_t ix, size_t iw, DType out_dt) {
  const ValueType& x = c.in[ix];
  const ValueType& w = c.in[iw];
  if (!x.rank_known) {
    c.set_unknown(0, out_dt, w.rank_known ? int64_t(w.shape.size()) : -1);
    return {};
  }
  if (!w.rank_known) {
    c.set_unknown(0, out_dt, int64_t(x.shape.size()));
    return {};
  }
  auto s = conv_output_shape(c.attr<ConvAttrs>(), x.shape, w.shape, c.fresh_dim);
  if (!s.ok()) return c.fail(s.error().message);
  c.out[0] = ValueType{out_dt, *s, true};
  return {};
}

// Zero point i (when present) must have the dtype of its quantized tensor.
Result<void> check_zp(InferCtx& c, size_t zp, size_t of, const char* what) {
  if (c.has(zp) && c.in[zp].dtype != c.in[of].dtype)
    return c.fail(std::string(what) + " zero point has dtype " + dt_str(c.in[zp].dtype) + ", expected " +
                  dt_str(c.in[of].dtype));
  return {};
}

Result<void> check_8bit(InferCtx& c, size_t i, const char* what) {
  if (!is_8bit(c.in[i].dtype))
    return c.fail(std::string(what) + " has dtype " + dt_str(c.in[i].dtype) + ", expected i8 or u8");
  return {};
}

Result<void> check_scale(InferCtx& c, size_t i, const char* what) {
  if (!is_scale_float(c.in[i].dtype))
    return c.fail(std::string(what) + " has dtype " + dt_str(c.in[i].dtype) + ", expected f32, f16 or bf16");
  return {};
}

// QLinearMatMul / QLinearConv operands: a, a_scale, a_zero_point, b, b_scale,
// b_zero_point, y_scale, y_zero_point (a/b named x/w for Conv).
Result<void> check_qlinear_operands(InferCtx& c, const std::string& a, const std::string& b) {
  KILN_TRY(check_8bit(c, 0, a.c_str()));
  KILN_TRY(check_8bit(c, 3, b.c_str()));
  KILN_TRY(check_8bit(c, 7, "y_zero_point"));
  KILN_TRY(check_scale(c, 1, (a + "_scale").c_str()));
  KILN_TRY(check_scale(c, 4, (b + "_scale").c_str()));
  KILN_TRY(check_scale(c, 6, "y_scale"));
  KILN_TRY(check_zp(c, 2, 0, a.c_str()));
  return check_zp(c, 5, 3, b.c_str());
}

}  // namespace

Result<void> infer_quantize_linear(InferCtx& c) {
  const auto& a = c.attr<QuantizeLinearAttrs>();
  DType xt = c.in[0].dtype;
  if (!is_float(xt) && xt != DType::kI32) return c.fail("x has dtype " + dt_str(xt) + ", expected a float or i32");
  DType st = c.in[1].dtype;
  if (!is_float(st) && st != DType::kI32) return c.fail("y_scale has dtype " + dt_str(st) + ", expected a float");
  DType out = DType::kU8;
  std::optional<DType> attr_dt;
  if (a.output_dtype != 0) {
    attr_dt = dtype_from_onnx(int(a.output_dtype));
    if (!attr_dt) return c.fail("output_dtype " + std::to_string(a.output_dtype) + " is not a supported data type");
  }
  if (c.has(2)) {
    out = c.in[2].dtype;
    if (attr_dt && *attr_dt != out)
      return c.fail("output_dtype " + dt_str(*attr_dt) + " differs from the zero point's dtype " + dt_str(out));
  } else if (attr_dt) {
    out = *attr_dt;
  }
  if (!is_quant_int(out))
    return c.fail("quantized dtype " + dt_str(out) + " is not supported (expected i8, u8, i16, u16, i4 or u4)");
  KILN_TRY(check_qparams(c, a.axis, a.block_size));
  c.out[0] = ValueType{out, c.in[0].shape, c.in[0].rank_known};
  return {};
}

Result<void> infer_dequantize_linear(InferCtx& c) {
  const auto& a = c.attr<DequantizeLinearAttrs>();
  DType xt = c.in[0].dtype;
  if (!is_quant_int(xt) && xt != DType::kI32)
    return c.fail("x has dtype " + dt_str(xt) + ", expected i8, u8, i16, u16, i32, i4 or u4");
  KILN_TRY(check_scale(c, 1, "x_scale"));
  KILN_TRY(check_zp(c, 2, 0, "x"));
  KILN_TRY(check_qparams(c, a.axis, a.block_size));
  c.out[0] = ValueType{c.in[1].dtype, c.in[0].shape, c.in[0].rank_known};
  return {};
}

Result<void> infer_dynamic_quantize_linear(InferCtx& c) {
  if (c.in[0].dtype != DType::kF32) return c.fail("x has dtype " + dt_str(c.in[0].dtype) + ", expected f32");
  c.out[0] = ValueType{DType::kU8, c.in[0].shape, c.in[0].rank_known};
  if (c.out.size() > 1) c.out[1] = ValueType{DType::kF32, {}, true};
  if (c.out.size() > 2) c.out[2] = ValueType{DType::kU8, {}, true};
  return {};
}

Result<void> infer_matmul_integer(InferCtx& c) {
  KILN_TRY(check_8bit(c, 0, "A"));
  KILN_TRY(check_8bit(c, 1, "B"));
  KILN_TRY(check_zp(c, 2, 0, "A"));
  KILN_TRY(check_zp(c, 3, 1, "B"));
  return infer_matmul_like(c, 0, 1, DType::kI32);
}

Result<void> infer_qlinear_matmul(InferCtx& c) {
  KILN_TRY(check_qlinear_operands(c, "a", "b"));
  return infer_matmul_like(c, 0, 3, c.in[7].dtype);
}

Result<void> infer_conv_integer(InferCtx& c) {
  KILN_TRY(check_8bit(c, 0, "x"));
  KILN_TRY(check_8bit(c, 1, "w"));
  KILN_TRY(check_zp(c, 2, 0, "x"));
  KILN_TRY(check_zp(c, 3, 1, "w"));
  return infer_conv_like(c, 0, 1, DType::kI32);
}

Result<void> infer_qlinear_conv(InferCtx& c) {
  KILN_TRY(check_qlinear_operands(c, "x", "w"));  // then the optional int32 bias B
  if (c.has(8) && c.in[8].dtype != DType::kI32) return c.fail("bias must be i32, got " + dt_str(c.in[8].dtype));
  return infer_conv_like(c, 0, 3, c.in[7].dtype);
}

}  // namespace kiln::ir
