// Shape inference for convolution and pooling ops (Conv, ConvTranspose,
// MaxPool, AveragePool, LpPool, the global pools) and DepthToSpace /
// SpaceToDepth. Window arithmetic lives in ir/ops/conv_geometry.cpp.
#include <string>

#include "ir/ops/conv_geometry.h"
#include "ir/ops/infer_fns.h"

namespace kiln::ir {
namespace {

std::string dt_str(DType t) { return std::string(dtype_name(t)); }

Result<void> expect_float(InferCtx& c, size_t i, const char* what) {
  if (!is_float(c.in[i].dtype))
    return c.fail(std::string(what) + " has dtype " + dt_str(c.in[i].dtype) + ", expected a floating-point type");
  return {};
}

Result<void> expect_same_dtype(InferCtx& c, size_t i, const char* what) {
  if (c.has(i) && c.in[i].dtype != c.in[0].dtype)
    return c.fail(std::string(what) + " has dtype " + dt_str(c.in[i].dtype) + ", expected " +
                  dt_str(c.in[0].dtype) + " like X");
  return {};
}

// Rank of the output when one of X / W has an unknown shape (-1: unknown).
int64_t known_rank(const InferCtx& c) {
  if (c.in[0].rank_known) return int64_t(c.in[0].shape.size());
  if (c.in[1].rank_known) return int64_t(c.in[1].shape.size());
  return -1;
}

// Bias B must be [M] when present.
Result<void> check_bias(InferCtx& c, int64_t m) {
  if (!c.has(2) || !c.in[2].rank_known) return {};
  const Shape& b = c.in[2].shape;
  if (b.size() != 1 || (b[0] >= 0 && m >= 0 && b[0] != m))
    return c.fail("bias B has shape " + shape_str(b) + ", expected [" + std::to_string(m) + "] (one per output channel)");
  return {};
}

const PoolWindow& pool_window(const InferCtx& c) {
  switch (c.node.op) {
    case OpKind::kMaxPool: return c.attr<MaxPoolAttrs>();
    case OpKind::kAveragePool: return c.attr<AveragePoolAttrs>();
    default: return c.attr<LpPoolAttrs>();
  }
}

int64_t mul_or_unknown(InferCtx& c, int64_t d, int64_t k) { return d >= 0 ? d * k : c.fresh_dim(); }
int64_t div_or_unknown(InferCtx& c, int64_t d, int64_t k) { return d >= 0 ? d / k : c.fresh_dim(); }

// DepthToSpace / SpaceToDepth: rank-4 input and a positive blocksize.
Result<bool> check_space_depth(InferCtx& c, int64_t blocksize) {
  if (blocksize <= 0 || blocksize > (int64_t(1) << 20))
    return c.fail("blocksize " + std::to_string(blocksize) + " must be positive");
  if (!c.in[0].rank_known) {
    c.set_unknown(0, c.in[0].dtype, 4);
    return false;
  }
  if (c.in[0].shape.size() != 4)
    return c.fail("input has shape " + shape_str(c.in[0].shape) + ", expected rank 4 (N, C, H, W)");
  return true;
}

}  // namespace

Result<void> infer_conv(InferCtx& c) {
  KILN_TRY(expect_float(c, 0, "X"));
  KILN_TRY(expect_same_dtype(c, 1, "W"));
  KILN_TRY(expect_same_dtype(c, 2, "B"));
  if (!c.in[0].rank_known || !c.in[1].rank_known) {
    c.set_unknown(0, c.in[0].dtype, known_rank(c));
    return {};
  }
  auto shape = conv_output_shape(c.attr<ConvAttrs>(), c.in[0].shape, c.in[1].shape, c.fresh_dim);
  if (!shape.ok()) return c.fail(shape.error().message);
  KILN_TRY(check_bias(c, c.in[1].shape[0]));
  c.out[0] = {c.in[0].dtype, std::move(*shape), true};
  return {};
}

Result<void> infer_conv_transpose(InferCtx& c) {
  KILN_TRY(expect_float(c, 0, "X"));
  KILN_TRY(expect_same_dtype(c, 1, "W"));
  KILN_TRY(expect_same_dtype(c, 2, "B"));
  if (!c.in[0].rank_known || !c.in[1].rank_known) {
    c.set_unknown(0, c.in[0].dtype, known_rank(c));
    return {};
  }
  const auto& a = c.attr<ConvTransposeAttrs>();
  auto shape = conv_transpose_output_shape(a, c.in[0].shape, c.in[1].shape, c.fresh_dim);
  if (!shape.ok()) return c.fail(shape.error().message);
  int64_t w1 = c.in[1].shape[1];
  KILN_TRY(check_bias(c, w1 >= 0 ? w1 * a.group : -1));
  c.out[0] = {c.in[0].dtype, std::move(*shape), true};
  return {};
}

Result<void> infer_pool(InferCtx& c) {
  DType dt = c.in[0].dtype;
  bool is_max = c.node.op == OpKind::kMaxPool;
  if (is_max) {
    if (!is_float(dt) && !is_integer(dt))
      return c.fail("X has dtype " + dt_str(dt) + ", expected a numeric type");
    int64_t order = c.attr<MaxPoolAttrs>().storage_order;
    if (order != 0 && order != 1) return c.fail("storage_order " + std::to_string(order) + " must be 0 or 1");
  } else {
    KILN_TRY(expect_float(c, 0, "X"));
  }
  if (c.node.op == OpKind::kLpPool && c.attr<LpPoolAttrs>().p <= 0)
    return c.fail("p " + std::to_string(c.attr<LpPoolAttrs>().p) + " must be positive");
  const PoolWindow& w = pool_window(c);
  if (w.ceil_mode != 0 && w.ceil_mode != 1) return c.fail("ceil_mode " + std::to_string(w.ceil_mode) + " must be 0 or 1");
  if (!c.in[0].rank_known) {
    int64_t rank = int64_t(w.kernel_shape.size()) + 2;
    c.set_unknown(0, dt, rank);
    if (c.out.size() > 1) c.set_unknown(1, DType::kI64, rank);
    return {};
  }
  const Shape& x = c.in[0].shape;
  auto g = pool_geometry(w, x);
  if (!g.ok()) return c.fail(g.error().message);
  Shape out = {x[0], x[1]};
  for (int64_t d : g->out) out.push_back(d == kUnknownDim ? c.fresh_dim() : d);
  c.out[0] = {dt, out, true};
  if (c.out.size() > 1) c.out[1] = {DType::kI64, out, true};  // MaxPool Indices
  return {};
}

Result<void> infer_global_pool(InferCtx& c) {
  DType dt = c.in[0].dtype;
  if (c.node.op == OpKind::kGlobalMaxPool) {
    if (!is_float(dt) && !is_integer(dt)) return c.fail("X has dtype " + dt_str(dt) + ", expected a numeric type");
  } else {
    KILN_TRY(expect_float(c, 0, "X"));
  }
  if (c.node.op == OpKind::kGlobalLpPool && c.attr<LpNormAttrs>().p <= 0)
    return c.fail("p " + std::to_string(c.attr<LpNormAttrs>().p) + " must be positive");
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  const Shape& x = c.in[0].shape;
  if (x.size() < 2) return c.fail("input has shape " + shape_str(x) + ", expected at least rank 2 (N, C, ...)");
  Shape out = {x[0], x[1]};
  out.resize(x.size(), 1);
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_depth_to_space(InferCtx& c) {
  int64_t b = c.attr<DepthToSpaceAttrs>().blocksize;
  KILN_ASSIGN(bool known, check_space_depth(c, b));
  if (!known) return {};
  const Shape& x = c.in[0].shape;
  if (x[1] >= 0 && x[1] % (b * b) != 0)
    return c.fail("channels " + std::to_string(x[1]) + " are not divisible by blocksize^2 = " + std::to_string(b * b));
  c.out[0] = {c.in[0].dtype,
              {x[0], div_or_unknown(c, x[1], b * b), mul_or_unknown(c, x[2], b), mul_or_unknown(c, x[3], b)},
              true};
  return {};
}

Result<void> infer_space_to_depth(InferCtx& c) {
  int64_t b = c.attr<SpaceToDepthAttrs>().blocksize;
  KILN_ASSIGN(bool known, check_space_depth(c, b));
  if (!known) return {};
  const Shape& x = c.in[0].shape;
  for (int i = 2; i < 4; ++i)
    if (x[i] >= 0 && x[i] % b != 0)
      return c.fail("input " + shape_str(x) + ": spatial dim " + std::to_string(x[i]) +
                    " is not divisible by blocksize " + std::to_string(b));
  c.out[0] = {c.in[0].dtype,
              {x[0], mul_or_unknown(c, x[1], b * b), div_or_unknown(c, x[2], b), div_or_unknown(c, x[3], b)},
              true};
  return {};
}

}  // namespace kiln::ir
