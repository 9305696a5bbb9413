// Shape and dtype inference for kiln's integer ops QConv, QGemm and QAdd (domain
// "kiln", attributes in ir/ops/kiln_quant.h). Beyond shapes they check what the
// integer kernels rely on: 8-bit activations, scalar activation parameters,
// per-tensor or per-output-channel weight scales, zero weight zero points.
// Kernels: backends/reference/quant_kiln.cpp. Tests: tests/unit/test_lower_qdq.cpp.
#include <string>

#include "ir/ops/conv_geometry.h"
#include "ir/ops/infer_fns.h"
#include "ir/ops/kiln_quant.h"

namespace kiln::ir {
namespace {

std::string dt_str(DType t) { return std::string(dtype_name(t)); }

bool is_8bit(DType t) { return t == DType::kI8 || t == DType::kU8; }
// Weights may also be 4-bit (packed), as the quantizer stores them.
bool is_weight_dt(DType t) { return is_8bit(t) || t == DType::kI4 || t == DType::kU4; }
bool is_scale_dt(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

Result<void> require(InferCtx& c, size_t i, const char* what) {
  if (!c.has(i)) return c.fail(std::string(what) + " is required");
  return {};
}

// Element count of input i when its shape is static, else -1.
int64_t static_count(const InferCtx& c, size_t i) {
  const ValueType& t = c.in[i];
  return t.rank_known && is_static(t.shape) ? numel(t.shape) : -1;
}

// A one-element parameter (activation scale or zero point).
Result<void> check_scalar(InferCtx& c, size_t i, const char* what) {
  int64_t n = static_count(c, i);
  if (n >= 0 && n != 1) return c.fail(std::string(what) + " must have one element, got shape " + shape_str(c.in[i].shape));
  return {};
}

Result<void> check_scale(InferCtx& c, size_t i, const char* what) {
  KILN_TRY(require(c, i, what));
  if (!is_scale_dt(c.in[i].dtype))
    return c.fail(std::string(what) + " has dtype " + dt_str(c.in[i].dtype) + ", expected f32, f16 or bf16");
  return {};
}

// Zero point i of quantized input `of`: present, same dtype.
Result<void> check_zp(InferCtx& c, size_t i, size_t of, const char* what) {
  KILN_TRY(require(c, i, what));
  if (c.in[i].dtype != c.in[of].dtype)
    return c.fail(std::string(what) + " has dtype " + dt_str(c.in[i].dtype) + ", expected " + dt_str(c.in[of].dtype));
  return {};
}

// A weight parameter: one element, or 1-D with one entry per output channel
// (`channels` < 0 when unknown).
Result<void> check_per_channel(InferCtx& c, size_t i, int64_t channels, const char* what) {
  const ValueType& t = c.in[i];
  int64_t n = static_count(c, i);
  if (n < 0 || n == 1) return {};
  if (t.shape.size() != 1 || (channels >= 0 && t.shape[0] != channels))
    return c.fail(std::string(what) + " of shape " + shape_str(t.shape) + " must have one element or one per output channel (" +
                  (channels >= 0 ? std::to_string(channels) : std::string("?")) + ")");
  return {};
}

// Weights are symmetric: every weight zero point must be 0 (checked when known).
Result<void> check_zero_weight_zp(InferCtx& c, size_t i, const char* what) {
  const Tensor* z = c.value(i);
  if (!z) return {};
  for (int64_t k = 0; k < z->numel(); ++k)
    if (z->as_int(k) != 0)
      return c.fail(std::string(what) + " must be 0 (kiln's integer ops take symmetric weights), got " +
                    std::to_string(z->as_int(k)) + " at index " + std::to_string(k));
  return {};
}

// Inputs shared by QConv and QGemm: activation/weight/output params and bias.
// `channels` is the output channel count (-1 when unknown).
Result<void> check_common(InferCtx& c, int64_t channels, int64_t fused_relu) {
  KILN_TRY(require(c, 0, "x"));
  if (!is_8bit(c.in[0].dtype)) return c.fail("x has dtype " + dt_str(c.in[0].dtype) + ", expected i8 or u8");
  KILN_TRY(check_scale(c, 1, "x_scale"));
  KILN_TRY(check_scalar(c, 1, "x_scale"));
  KILN_TRY(check_zp(c, 2, 0, "x_zero_point"));
  KILN_TRY(check_scalar(c, 2, "x_zero_point"));
  KILN_TRY(require(c, 3, "w"));
  if (!is_weight_dt(c.in[3].dtype))
    return c.fail("w has dtype " + dt_str(c.in[3].dtype) + ", expected i8, u8, i4 or u4");
  KILN_TRY(check_scale(c, 4, "w_scale"));
  KILN_TRY(check_per_channel(c, 4, channels, "w_scale"));
  KILN_TRY(check_zp(c, 5, 3, "w_zero_point"));
  KILN_TRY(check_per_channel(c, 5, channels, "w_zero_point"));
  KILN_TRY(check_zero_weight_zp(c, 5, "w_zero_point"));
  KILN_TRY(check_scale(c, 6, "y_scale"));
  KILN_TRY(check_scalar(c, 6, "y_scale"));
  KILN_TRY(require(c, 7, "y_zero_point"));
  if (!is_8bit(c.in[7].dtype))
    return c.fail("y_zero_point has dtype " + dt_str(c.in[7].dtype) + ", expected i8 or u8 (the output dtype)");
  KILN_TRY(check_scalar(c, 7, "y_zero_point"));
  if (c.has(8)) {
    if (c.in[8].dtype != DType::kI32) return c.fail("bias has dtype " + dt_str(c.in[8].dtype) + ", expected i32");
    const ValueType& b = c.in[8];
    if (b.rank_known && (b.shape.size() != 1 || (channels >= 0 && b.shape[0] >= 0 && b.shape[0] != channels)))
      return c.fail("bias of shape " + shape_str(b.shape) + " must be 1-D with one entry per output channel (" +
                    (channels >= 0 ? std::to_string(channels) : std::string("?")) + ")");
  }
  if (fused_relu != 0 && fused_relu != 1) return c.fail("fused_relu " + std::to_string(fused_relu) + " must be 0 or 1");
  return {};
}

}  // namespace

Result<void> infer_qconv(InferCtx& c) {
  const auto& a = c.attr<QConvAttrs>();
  const ValueType& w = c.in.size() > 3 ? c.in[3] : ValueType{};
  int64_t channels = w.rank_known && !w.shape.empty() && w.shape[0] >= 0 ? w.shape[0] : -1;
  KILN_TRY(check_common(c, channels, a.fused_relu));
  DType out = c.in[7].dtype;
  const ValueType& x = c.in[0];
  if (!x.rank_known) {
    c.set_unknown(0, out, w.rank_known ? int64_t(w.shape.size()) : -1);
    return {};
  }
  if (!w.rank_known) {
    c.set_unknown(0, out, int64_t(x.shape.size()));
    return {};
  }
  auto s = conv_output_shape(a, x.shape, w.shape, c.fresh_dim);
  if (!s.ok()) return c.fail(s.error().message);
  c.out[0] = ValueType{out, *s, true};
  return {};
}

Result<void> infer_qgemm(InferCtx& c) {
  const auto& a = c.attr<QGemmAttrs>();
  if (a.transB != 0 && a.transB != 1) return c.fail("transB " + std::to_string(a.transB) + " must be 0 or 1");
  const ValueType& b = c.in.size() > 3 ? c.in[3] : ValueType{};
  int64_t n = -1, kb = -1;
  if (b.rank_known) {
    if (b.shape.size() != 2) return c.fail("b must be 2-D, got shape " + shape_str(b.shape));
    n = b.shape[a.transB ? 0 : 1];
    kb = b.shape[a.transB ? 1 : 0];
  }
  KILN_TRY(check_common(c, n >= 0 ? n : -1, a.fused_relu));
  DType out = c.in[7].dtype;
  const ValueType& x = c.in[0];
  if (!x.rank_known) {
    c.set_unknown(0, out, -1);
    return {};
  }
  if (x.shape.size() < 2) return c.fail("a must have rank >= 2 ([..., M, K]), got shape " + shape_str(x.shape));
  int64_t ka = x.shape.back();
  if (ka >= 0 && kb >= 0 && ka != kb)
    return c.fail("inner dimensions differ: a " + shape_str(x.shape) + ", b " + shape_str(b.shape) +
                  " (transB=" + std::to_string(a.transB) + ")");
  Shape s(x.shape.begin(), x.shape.end() - 1);
  s.push_back(b.rank_known ? b.shape[a.transB ? 0 : 1] : c.fresh_dim());
  c.out[0] = ValueType{out, s, true};
  return {};
}

Result<void> infer_qadd(InferCtx& c) {
  const auto& at = c.attr<QAddAttrs>();
  if (at.fused_relu != 0 && at.fused_relu != 1)
    return c.fail("fused_relu " + std::to_string(at.fused_relu) + " must be 0 or 1");
  const char* names[8] = {"a", "a_scale", "a_zero_point", "b", "b_scale", "b_zero_point", "y_scale", "y_zero_point"};
  for (size_t i = 0; i < 8; ++i) KILN_TRY(require(c, i, names[i]));
  for (size_t i : {size_t(0), size_t(3)}) {
    if (!is_8bit(c.in[i].dtype)) return c.fail(std::string(names[i]) + " has dtype " + dt_str(c.in[i].dtype) + ", expected i8 or u8");
    KILN_TRY(check_zp(c, i + 2, i, names[i + 2]));
  }
  for (size_t i : {size_t(1), size_t(4), size_t(6)}) {
    if (c.in[i].dtype != DType::kF32) return c.fail(std::string(names[i]) + " has dtype " + dt_str(c.in[i].dtype) + ", expected f32");
    KILN_TRY(check_scalar(c, i, names[i]));
  }
  for (size_t i : {size_t(2), size_t(5), size_t(7)}) KILN_TRY(check_scalar(c, i, names[i]));
  if (!is_8bit(c.in[7].dtype))
    return c.fail("y_zero_point has dtype " + dt_str(c.in[7].dtype) + ", expected i8 or u8 (the output dtype)");
  const ValueType& a = c.in[0];
  const ValueType& b = c.in[3];
  if (a.rank_known && b.rank_known && a.shape != b.shape)
    return c.fail("a " + shape_str(a.shape) + " and b " + shape_str(b.shape) + " must have one shape (QAdd does not broadcast)");
  if (!a.rank_known && !b.rank_known) {
    c.set_unknown(0, c.in[7].dtype, -1);
    return {};
  }
  c.out[0] = ValueType{c.in[7].dtype, a.rank_known ? a.shape : b.shape, true};
  return {};
}

}  // namespace kiln::ir
