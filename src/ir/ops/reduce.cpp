// Shape inference for reductions (Reduce*, axes as input), ArgMax/ArgMin and
// TopK. Unknown axes or k give fresh dims (or an unknown rank) statically; at
// run time every input value is known and shapes come out exact.
// Kernels: backends/reference/reduce.cpp. Tests: tests/unit/test_ref_reduce_quant.cpp.
#include <string>

#include "ir/ops/infer_fns.h"
#include "ir/ops/reduce.h"

namespace kiln::ir {
namespace {

std::string dt_str(DType t) { return std::string(dtype_name(t)); }

bool is_numeric(DType t) { return t != DType::kBool && t != DType::kUndefined; }

// Dims of `s` with the marked axes set to 1 (keepdims) or dropped.
Shape reduced_shape(const Shape& s, const std::vector<bool>& reduce, bool keepdims) {
  Shape out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!reduce[i]) out.push_back(s[i]);
    else if (keepdims) out.push_back(1);
  }
  return out;
}

}  // namespace

Result<void> infer_reduce(InferCtx& c) {
  const auto& a = c.attr<ReduceAttrs>();
  DType dt = c.in[0].dtype;
  // ReduceMax/ReduceMin accept bool since opset 20; the others are numeric only.
  bool bool_ok = c.node.op == OpKind::kReduceMax || c.node.op == OpKind::kReduceMin;
  if (!is_numeric(dt) && !(bool_ok && dt == DType::kBool))
    return c.fail("data has dtype " + dt_str(dt) + ", expected a numeric dtype");
  bool keep = a.keepdims != 0;
  if (c.has(1)) {
    if (c.in[1].dtype != DType::kI64) return c.fail("axes must be int64, got " + dt_str(c.in[1].dtype));
    if (c.in[1].rank_known && c.in[1].shape.size() != 1)
      return c.fail("axes must be a 1-D tensor, got rank " + std::to_string(c.in[1].shape.size()));
  }
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  int64_t r = int64_t(s.size());
  std::vector<bool> reduce(size_t(r), false);

  // An axes input of length 0 means the same as no axes input.
  bool axes_empty = !c.has(1) || (c.in[1].rank_known && c.in[1].shape.size() == 1 && c.in[1].shape[0] == 0);
  if (axes_empty) {
    // Reducing over no axes (noop) reduces each element on its own: same shape.
    if (!a.noop_with_empty_axes) reduce.assign(size_t(r), true);
  } else if (const Tensor* ax = c.value(1)) {
    for (int64_t i = 0; i < ax->numel(); ++i) {
      auto n = normalize_axis(ax->as_int(i), r, "reduce axis");
      if (!n.ok()) return c.fail(n.error().message);
      if (reduce[size_t(*n)]) return c.fail("axis " + std::to_string(*n) + " appears twice in axes");
      reduce[size_t(*n)] = true;
    }
  } else {
    // Axes not known yet: rank is known only when keepdims or when the axes count is.
    if (keep) {
      c.set_unknown(0, dt, r);
      for (int64_t i = 0; i < r; ++i)
        if (s[size_t(i)] == 1) c.out[0].shape[size_t(i)] = 1;
    } else if (c.in[1].rank_known && c.in[1].shape[0] >= 0 && c.in[1].shape[0] <= r) {
      c.set_unknown(0, dt, r - c.in[1].shape[0]);
    } else {
      c.set_unknown(0, dt, -1);
    }
    return {};
  }
  c.out[0].dtype = dt;
  c.out[0].rank_known = true;
  c.out[0].shape = reduced_shape(s, reduce, keep);
  return {};
}

Result<void> infer_arg_reduce(InferCtx& c) {
  const auto& a = c.attr<ArgReduceAttrs>();
  DType dt = c.in[0].dtype;
  if (!is_numeric(dt)) return c.fail("data has dtype " + dt_str(dt) + ", expected a numeric dtype");
  if (!c.in[0].rank_known) {
    c.set_unknown(0, DType::kI64, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  auto axis = normalize_axis(a.axis, int64_t(s.size()));
  if (!axis.ok()) return c.fail(axis.error().message);
  if (s[size_t(*axis)] == 0) return c.fail("cannot take the arg-extreme of an empty axis " + std::to_string(*axis));
  std::vector<bool> reduce(s.size(), false);
  reduce[size_t(*axis)] = true;
  c.out[0].dtype = DType::kI64;
  c.out[0].rank_known = true;
  c.out[0].shape = reduced_shape(s, reduce, a.keepdims != 0);
  return {};
}

Result<void> infer_topk(InferCtx& c) {
  const auto& a = c.attr<TopKAttrs>();
  DType dt = c.in[0].dtype;
  if (!is_numeric(dt)) return c.fail("X has dtype " + dt_str(dt) + ", expected a numeric dtype");
  if (c.in[1].dtype != DType::kI64) return c.fail("K must be int64, got " + dt_str(c.in[1].dtype));
  if (c.in[1].rank_known && is_static(c.in[1].shape) && numel(c.in[1].shape) != 1)
    return c.fail("K must hold exactly one value, got shape " + shape_str(c.in[1].shape));
  for (size_t o = 0; o < c.out.size(); ++o) c.set_unknown(o, o == 0 ? dt : DType::kI64, -1);
  if (!c.in[0].rank_known) return {};
  Shape s = c.in[0].shape;
  auto axis = normalize_axis(a.axis, int64_t(s.size()));
  if (!axis.ok()) return c.fail(axis.error().message);
  int64_t& d = s[size_t(*axis)];
  if (const Tensor* k = c.value(1); k && k->numel() == 1) {
    int64_t kv = k->as_int(0);
    if (kv < 0) return c.fail("K must be non-negative, got " + std::to_string(kv));
    if (d >= 0 && kv > d)
      return c.fail("K = " + std::to_string(kv) + " exceeds the size " + std::to_string(d) + " of axis " +
                    std::to_string(*axis));
    d = kv;
  } else {
    d = c.fresh_dim();
  }
  for (size_t o = 0; o < c.out.size(); ++o) {
    c.out[o].rank_known = true;
    c.out[o].shape = s;
  }
  return {};
}

}  // namespace kiln::ir
