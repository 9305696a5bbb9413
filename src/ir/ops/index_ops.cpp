// Shape inference for indexing and resampling ops: Gather, GatherElements,
// GatherND, Pad, OneHot, NonZero, Compress, Resize. (ScatterElements,
// ScatterND, Trilu and ReverseSequence keep their input's shape: infer_unary.)
#include <algorithm>
#include <cmath>

#include "ir/ops/infer_fns.h"
#include "ir/ops/shape_infer_util.h"

namespace kiln::ir {
using namespace shape_infer;

namespace {
Result<void> require_index(const InferCtx& c, size_t i) {
  DType t = c.in[i].dtype;
  if (t != DType::kI32 && t != DType::kI64)
    return c.fail("indices must be int32 or int64, got " + std::string(dtype_name(t)));
  return {};
}
}  // namespace

Result<void> infer_gather(InferCtx& c) {
  KILN_TRY(require_index(c, 1));
  DType dt = c.in[0].dtype;
  const ValueType &x = c.in[0], &idx = c.in[1];
  if (!x.rank_known || !idx.rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  if (x.shape.empty()) return c.fail("data must have rank >= 1");
  auto na = normalize_axis(c.attr<AxisAttrs>().axis, int64_t(x.shape.size()));
  if (!na.ok()) return c.fail(na.error().message);
  size_t ax = size_t(*na);
  Shape out(x.shape.begin(), x.shape.begin() + ptrdiff_t(ax));
  out.insert(out.end(), idx.shape.begin(), idx.shape.end());
  out.insert(out.end(), x.shape.begin() + ptrdiff_t(ax) + 1, x.shape.end());
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_gather_elements(InferCtx& c) {
  KILN_TRY(require_index(c, 1));
  DType dt = c.in[0].dtype;
  const ValueType &x = c.in[0], &idx = c.in[1];
  if (x.rank_known && idx.rank_known) {
    if (x.shape.size() != idx.shape.size())
      return c.fail("data " + shape_str(x.shape) + " and indices " + shape_str(idx.shape) + " must have the same rank");
    if (x.shape.empty()) return c.fail("data must have rank >= 1");
    auto na = normalize_axis(c.attr<AxisAttrs>().axis, int64_t(x.shape.size()));
    if (!na.ok()) return c.fail(na.error().message);
  }
  c.out[0] = idx;
  c.out[0].dtype = dt;
  return {};
}

Result<void> infer_gather_nd(InferCtx& c) {
  if (c.in[1].dtype != DType::kI64) return c.fail("indices must be int64, got " + std::string(dtype_name(c.in[1].dtype)));
  DType dt = c.in[0].dtype;
  const ValueType &x = c.in[0], &idx = c.in[1];
  int64_t b = c.attr<GatherNDAttrs>().batch_dims;
  if (!x.rank_known || !idx.rank_known || (!idx.shape.empty() && idx.shape.back() < 0)) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  int64_t r = int64_t(x.shape.size()), q = int64_t(idx.shape.size());
  if (r < 1 || q < 1) return c.fail("data and indices must have rank >= 1");
  if (b < 0 || b >= std::min(r, q))
    return c.fail("batch_dims " + std::to_string(b) + " must be in [0, min(rank(data), rank(indices)))");
  int64_t m = idx.shape.back();
  if (m < 1 || m > r - b)
    return c.fail("indices' last dimension " + std::to_string(m) + " must be in [1, " + std::to_string(r - b) + "]");
  for (int64_t i = 0; i < b; ++i)
    if (x.shape[size_t(i)] >= 0 && idx.shape[size_t(i)] >= 0 && x.shape[size_t(i)] != idx.shape[size_t(i)])
      return c.fail("batch dimension " + std::to_string(i) + " differs between data " + shape_str(x.shape) +
                    " and indices " + shape_str(idx.shape));
  Shape out(idx.shape.begin(), idx.shape.end() - 1);
  out.insert(out.end(), x.shape.begin() + b + m, x.shape.end());
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_pad(InferCtx& c) {
  DType dt = c.in[0].dtype;
  KILN_TRY(require_int(c, 1, "pads"));
  // Before opset 11 the value was a float attribute (now an f32 input) whatever the data's float type.
  if (c.has(2) && c.in[2].dtype != dt && c.node.opset >= 11)
    return c.fail("constant_value has dtype " + std::string(dtype_name(c.in[2].dtype)) + ", expected " +
                  std::string(dtype_name(dt)));
  if (c.has(3)) KILN_TRY(require_int(c, 3, "axes"));
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  int64_t r = int64_t(s.size());
  KILN_ASSIGN(auto pads, known_ints(c, 1, "pads"));
  std::optional<std::vector<int64_t>> axes;
  if (c.has(3)) {
    KILN_ASSIGN(axes, known_ints(c, 3, "axes"));
    if (!axes) {
      c.set_unknown(0, dt, r);
      return {};
    }
  } else {
    axes.emplace();
    for (int64_t i = 0; i < r; ++i) axes->push_back(i);
  }
  KILN_ASSIGN(auto na, normalize_axes(c, *axes, r, "axes"));
  Shape out = s;
  if (!pads) {
    for (auto ax : na) out[size_t(ax)] = c.fresh_dim();
    c.out[0] = {dt, out, true};
    return {};
  }
  size_t n = na.size();
  if (pads->size() != 2 * n)
    return c.fail("pads " + ints_str(*pads) + " must have 2 * " + std::to_string(n) + " entries");
  for (size_t i = 0; i < n; ++i) {
    size_t ax = size_t(na[i]);
    int64_t add = (*pads)[i] + (*pads)[i + n];
    if (s[ax] >= 0) {
      out[ax] = s[ax] + add;
      if (out[ax] < 0)
        return c.fail("pads " + ints_str(*pads) + " remove more than the " + std::to_string(s[ax]) +
                      " elements of axis " + std::to_string(ax));
    } else if (add != 0) {
      out[ax] = c.fresh_dim();
    }
  }
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_onehot(InferCtx& c) {
  DType vt = c.in[2].dtype;
  for (size_t i = 0; i < 2; ++i)
    if (c.in[i].dtype == DType::kBool || c.in[i].dtype == DType::kUndefined)
      return c.fail(std::string(i == 0 ? "indices" : "depth") + " must be numeric");
  if (c.in[2].rank_known && (c.in[2].shape.size() != 1 || (c.in[2].shape[0] >= 0 && c.in[2].shape[0] != 2)))
    return c.fail("values must be a 1-D tensor of [off_value, on_value], got shape " + shape_str(c.in[2].shape));
  int64_t depth = -1;
  if (const Tensor* d = c.value(1)) {
    if (d->numel() != 1) return c.fail("depth must hold one element, got " + std::to_string(d->numel()));
    double dv = d->as_double(0);
    if (!(dv >= 1 && dv < 9.0e18)) return c.fail("depth must be at least 1, got " + std::to_string(dv));
    depth = int64_t(dv);
  }
  if (!c.in[0].rank_known) {
    c.set_unknown(0, vt, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  int64_t r = int64_t(s.size()), axis = c.attr<OneHotAttrs>().axis;
  if (axis < -(r + 1) || axis > r)
    return c.fail("axis " + std::to_string(axis) + " is out of range for output rank " + std::to_string(r + 1));
  if (axis < 0) axis += r + 1;
  Shape out = s;
  out.insert(out.begin() + axis, depth >= 0 ? depth : c.fresh_dim());
  c.out[0] = {vt, out, true};
  return {};
}

Result<void> infer_nonzero(InferCtx& c) {
  // The count is data-dependent: the kernel allocates its output.
  int64_t rank = c.in[0].rank_known ? int64_t(c.in[0].shape.size()) : c.fresh_dim();
  c.out[0] = {DType::kI64, {rank, c.fresh_dim()}, true};
  return {};
}

Result<void> infer_compress(InferCtx& c) {
  if (c.in[1].dtype != DType::kBool) return c.fail("condition must be bool, got " + std::string(dtype_name(c.in[1].dtype)));
  if (c.in[1].rank_known && c.in[1].shape.size() != 1)
    return c.fail("condition must be 1-D, got shape " + shape_str(c.in[1].shape));
  DType dt = c.in[0].dtype;
  int64_t axis = c.attr<CompressAttrs>().axis;
  // The kept count is data-dependent: the kernel allocates its output.
  if (axis == kAbsent) {
    c.set_unknown(0, dt, 1);
    return {};
  }
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  Shape out = c.in[0].shape;
  auto na = normalize_axis(axis, int64_t(out.size()));
  if (!na.ok() || out.empty()) return c.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(out.size()));
  out[size_t(*na)] = c.fresh_dim();
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_resize(InferCtx& c) {
  const auto& a = c.attr<ResizeAttrs>();
  DType dt = c.in[0].dtype;
  if (c.has(2) && !is_float(c.in[2].dtype)) return c.fail("scales must be a float tensor");
  if (c.has(3) && c.in[3].dtype != DType::kI64) return c.fail("sizes must be an int64 tensor");
  if (a.antialias && a.mode == ResizeMode::kNearest) return c.fail("antialias is only defined for linear and cubic modes");
  // Opset 11-12 pass an empty tensor for the unused one; statically its size may be unknown.
  bool scales_given = !is_empty_input(c, 2), sizes_given = !is_empty_input(c, 3);
  bool scales_sure = scales_given && is_nonempty_input(c, 2), sizes_sure = sizes_given && is_nonempty_input(c, 3);
  if (scales_sure && sizes_sure) return c.fail("only one of scales and sizes may be given");
  if (!scales_given && !sizes_given) return c.fail("one of scales or sizes is required");
  if (scales_given && sizes_given) {
    // Ambiguous until run time: trust the one known to hold values, else sizes.
    scales_given = scales_sure;
    sizes_given = !scales_sure;
  }
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  int64_t r = int64_t(s.size());
  std::vector<int64_t> axes = a.axes;
  if (axes.empty())
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  KILN_ASSIGN(axes, normalize_axes(c, axes, r, "axes"));
  Shape out = s;
  const Tensor* v = c.value(scales_given ? 2 : 3);
  if (!v) {
    for (auto ax : axes) out[size_t(ax)] = c.fresh_dim();
    c.out[0] = {dt, out, true};
    return {};
  }
  if (v->rank() != 1 || v->numel() != int64_t(axes.size()))
    return c.fail(std::string(scales_given ? "scales" : "sizes") + " has shape " + shape_str(v->shape()) + ", expected [" +
                  std::to_string(axes.size()) + "]");
  if (scales_given) {
    for (size_t i = 0; i < axes.size(); ++i) {
      double sc = v->as_double(int64_t(i));
      if (!(sc > 0) || !std::isfinite(sc)) return c.fail("scales must be positive, got " + std::to_string(sc));
      size_t ax = size_t(axes[i]);
      if (s[ax] >= 0) out[ax] = int64_t(std::floor(sc * double(s[ax])));
      else if (sc != 1.0) out[ax] = c.fresh_dim();
    }
  } else {
    for (size_t i = 0; i < axes.size(); ++i)
      if (v->as_int(int64_t(i)) < 0) return c.fail("sizes must not be negative");
    if (a.keep_aspect_ratio_policy == AspectPolicy::kStretch) {
      for (size_t i = 0; i < axes.size(); ++i) out[size_t(axes[i])] = v->as_int(int64_t(i));
    } else {
      // One scale for all resized axes (the smallest or largest ratio), output sizes rounded half up.
      bool all_static = true;
      double scale = a.keep_aspect_ratio_policy == AspectPolicy::kNotLarger ? HUGE_VAL : 0.0;
      for (size_t i = 0; i < axes.size(); ++i) {
        int64_t in = s[size_t(axes[i])];
        if (in < 0) {
          all_static = false;
          continue;
        }
        if (in == 0) return c.fail("cannot keep the aspect ratio of an empty axis");
        double ratio = double(v->as_int(int64_t(i))) / double(in);
        scale = a.keep_aspect_ratio_policy == AspectPolicy::kNotLarger ? std::min(scale, ratio) : std::max(scale, ratio);
      }
      for (auto ax : axes)
        out[size_t(ax)] = all_static ? int64_t(scale * double(s[size_t(ax)]) + 0.5) : c.fresh_dim();
    }
  }
  c.out[0] = {dt, out, true};
  return {};
}

}  // namespace kiln::ir
