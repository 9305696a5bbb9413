// Shape inference for layout ops: Shape, Size, Reshape, Flatten, Transpose,
// Concat, Split, Slice, Squeeze, Unsqueeze, Expand, Tile, ConstantOfShape,
// Range, EyeLike. Symbolic dims are kept wherever the op provably keeps them
// (PyTorch's Shape->Gather->Concat->Reshape chains rely on it).
#include <algorithm>
#include <cmath>
#include <limits>

#include "ir/ops/infer_fns.h"
#include "ir/ops/shape_infer_util.h"

namespace kiln::ir {
using namespace shape_infer;

Result<void> infer_shape(InferCtx& c) {
  const auto& a = c.attr<ShapeAttrs>();
  if (!c.in[0].rank_known) {
    c.set_unknown(0, DType::kI64, 1);
    return {};
  }
  int64_t r = int64_t(c.in[0].shape.size());
  auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  int64_t start = clampi(a.start);
  int64_t end = a.end == kAbsent ? r : clampi(a.end);
  c.out[0] = {DType::kI64, {std::max<int64_t>(end - start, 0)}, true};
  return {};
}

Result<void> infer_size(InferCtx& c) {
  c.out[0] = {DType::kI64, {}, true};
  return {};
}

namespace {
// Output dim for the -1 entry of Reshape, or a fresh symbol when it cannot be
// known. Symbolic dims present in both the input and the rest of the target
// cancel (e.g. [N,3,4] -> [N,-1] gives 12; [N,3,4] -> [-1,12] gives N).
Result<int64_t> reshape_inferred_dim(InferCtx& c, const Shape& in, const Shape& out, size_t skip, bool* consistent) {
  std::vector<int64_t> rest_in(in.begin(), in.end());
  int64_t out_static = 1;
  bool out_symbolic = false;
  *consistent = true;
  for (size_t i = 0; i < out.size(); ++i) {
    if (i == skip) continue;
    if (out[i] >= 0) {
      out_static *= out[i];
      continue;
    }
    auto it = std::find(rest_in.begin(), rest_in.end(), out[i]);
    if (it != rest_in.end()) rest_in.erase(it);
    else out_symbolic = true;
  }
  int64_t in_static = 1, sym = 0;
  int nsym = 0;
  for (auto d : rest_in) {
    if (d >= 0) in_static *= d;
    else {
      ++nsym;
      sym = d;
    }
  }
  if (out_symbolic) return skip < out.size() ? c.fresh_dim() : 0;
  if (nsym == 0) {
    if (skip == out.size()) {
      *consistent = in_static == out_static;
      return 0;
    }
    if (out_static == 0 || in_static % out_static != 0) {
      *consistent = false;
      return 0;
    }
    return in_static / out_static;
  }
  if (skip < out.size() && nsym == 1 && in_static == out_static) return sym;
  return skip < out.size() ? c.fresh_dim() : 0;
}
}  // namespace

Result<void> infer_reshape(InferCtx& c) {
  const auto& a = c.attr<ReshapeAttrs>();
  KILN_TRY(require_int(c, 1, "shape"));
  DType dt = c.in[0].dtype;
  KILN_ASSIGN(auto spec, known_ints(c, 1, "shape"));
  if (!spec) {
    int64_t n = static_len(c, 1);
    if (n == 1 && c.in[0].rank_known) {
      // Whatever the target value, a 1-D result holds every element.
      c.out[0] = {dt, {dim_product(c, c.in[0].shape, 0, c.in[0].shape.size())}, true};
      return {};
    }
    c.set_unknown(0, dt, n);
    return {};
  }
  const ValueType& x = c.in[0];
  Shape out(spec->size());
  size_t infer_at = spec->size();
  bool has_zero = false;
  for (size_t i = 0; i < spec->size(); ++i) {
    int64_t v = (*spec)[i];
    if (v == -1) {
      if (infer_at != spec->size()) return c.fail("shape " + ints_str(*spec) + " has more than one -1");
      infer_at = i;
      out[i] = 0;
    } else if (v < -1) {
      return c.fail("shape " + ints_str(*spec) + " has invalid entry " + std::to_string(v));
    } else if (v == 0 && !a.allowzero) {
      if (!x.rank_known) out[i] = c.fresh_dim();
      else if (i >= x.shape.size())
        return c.fail("shape " + ints_str(*spec) + ": 0 at position " + std::to_string(i) +
                      " copies a dimension the input (rank " + std::to_string(x.shape.size()) + ") does not have");
      else out[i] = x.shape[i];
    } else {
      has_zero |= v == 0;
      out[i] = v;
    }
  }
  if (has_zero && infer_at != spec->size())
    return c.fail("shape " + ints_str(*spec) + " has both 0 and -1, which allowzero=1 forbids");
  if (!x.rank_known) {
    if (infer_at != spec->size()) out[infer_at] = c.fresh_dim();
    c.out[0] = {dt, out, true};
    return {};
  }
  bool consistent = true;
  KILN_ASSIGN(int64_t d, reshape_inferred_dim(c, x.shape, out, infer_at, &consistent));
  if (!consistent)
    return c.fail("cannot reshape " + shape_str(x.shape) + " to " + ints_str(*spec) + ": element counts differ");
  if (infer_at != spec->size()) out[infer_at] = d;
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_flatten(InferCtx& c) {
  int64_t axis = c.attr<FlattenAttrs>().axis;
  if (!c.in[0].rank_known) {
    c.set_unknown(0, c.in[0].dtype, 2);
    return {};
  }
  const Shape& s = c.in[0].shape;
  int64_t r = int64_t(s.size());
  if (axis < -r || axis > r)
    return c.fail("axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(r));
  if (axis < 0) axis += r;
  c.out[0] = {c.in[0].dtype, {dim_product(c, s, 0, size_t(axis)), dim_product(c, s, size_t(axis), s.size())}, true};
  return {};
}

Result<void> infer_transpose(InferCtx& c) {
  std::vector<int64_t> perm = c.attr<TransposeAttrs>().perm;
  DType dt = c.in[0].dtype;
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, perm.empty() ? -1 : int64_t(perm.size()));
    return {};
  }
  const Shape& s = c.in[0].shape;
  int64_t r = int64_t(s.size());
  if (perm.empty())
    for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
  if (int64_t(perm.size()) != r)
    return c.fail("perm " + ints_str(perm) + " has " + std::to_string(perm.size()) + " entries for rank " +
                  std::to_string(r));
  KILN_ASSIGN(auto p, normalize_axes(c, perm, r, "perm"));
  Shape out(s.size());
  for (size_t i = 0; i < p.size(); ++i) out[i] = s[size_t(p[i])];
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_concat(InferCtx& c) {
  int64_t axis = c.attr<ConcatAttrs>().axis;
  DType dt = c.in[0].dtype;
  const ValueType* ref = nullptr;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    if (!c.has(i)) return c.fail("input " + std::to_string(i) + " is missing");
    if (c.in[i].dtype != dt)
      return c.fail("input " + std::to_string(i) + " has dtype " + std::string(dtype_name(c.in[i].dtype)) +
                    ", expected " + std::string(dtype_name(dt)));
    if (!ref && c.in[i].rank_known) ref = &c.in[i];
  }
  if (!ref) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  int64_t r = int64_t(ref->shape.size());
  if (r == 0) return c.fail("cannot concatenate scalars (rank 0)");
  auto na = normalize_axis(axis, r);
  if (!na.ok()) return c.fail(na.error().message);
  size_t ax = size_t(*na);
  Shape out = ref->shape;
  bool sum_known = true;
  int64_t sum = 0;
  for (size_t i = 0; i < c.num_inputs(); ++i) {
    const ValueType& t = c.in[i];
    if (!t.rank_known) {
      sum_known = false;
      continue;
    }
    if (int64_t(t.shape.size()) != r)
      return c.fail("input " + std::to_string(i) + " has rank " + std::to_string(t.shape.size()) + ", expected " +
                    std::to_string(r));
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (d == ax) continue;
      if (out[d] >= 0 && t.shape[d] >= 0 && out[d] != t.shape[d])
        return c.fail("input " + std::to_string(i) + " has shape " + shape_str(t.shape) + ", which differs from " +
                      shape_str(ref->shape) + " outside axis " + std::to_string(ax));
      if (out[d] < 0 && t.shape[d] >= 0) out[d] = t.shape[d];
    }
    if (t.shape[ax] < 0) sum_known = false;
    else sum += t.shape[ax];
  }
  out[ax] = sum_known ? sum : c.fresh_dim();
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_split(InferCtx& c) {
  const auto& a = c.attr<SplitAttrs>();
  DType dt = c.in[0].dtype;
  size_t n = c.out.size();
  if (!c.in[0].rank_known) {
    for (size_t i = 0; i < n; ++i) c.set_unknown(i, dt, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  auto na = normalize_axis(a.axis, int64_t(s.size()));
  if (!na.ok()) return c.fail(na.error().message);
  size_t ax = size_t(*na);
  int64_t d = s[ax];
  std::vector<int64_t> sizes(n, -1);  // -1: unknown
  if (c.has(1)) {
    if (a.num_outputs != kAbsent) return c.fail("split input and num_outputs attribute are both given");
    KILN_TRY(require_int(c, 1, "split"));
    KILN_ASSIGN(auto sp, known_ints(c, 1, "split"));
    if (sp) {
      if (sp->size() != n)
        return c.fail("split " + ints_str(*sp) + " has " + std::to_string(sp->size()) + " entries for " +
                      std::to_string(n) + " outputs");
      int64_t sum = 0;
      for (auto v : *sp) {
        if (v < 0) return c.fail("split " + ints_str(*sp) + " has a negative size");
        sum += v;
      }
      if (d >= 0 && sum != d)
        return c.fail("split " + ints_str(*sp) + " sums to " + std::to_string(sum) + " but axis " +
                      std::to_string(ax) + " has size " + std::to_string(d));
      sizes = *sp;
    }
  } else if (a.num_outputs != kAbsent) {
    int64_t k = a.num_outputs;
    if (k < 1 || int64_t(n) > k)
      return c.fail("num_outputs " + std::to_string(k) + " does not fit the node's " + std::to_string(n) + " outputs");
    if (d >= 0) {
      // Opset 18: chunks of ceil(d / k); only the last may be smaller.
      int64_t chunk = (d + k - 1) / k;
      if (d - chunk * (k - 1) < 0)
        return c.fail("cannot split size " + std::to_string(d) + " into " + std::to_string(k) + " chunks of " +
                      std::to_string(chunk) + " with only the last smaller");
      for (size_t i = 0; i < n; ++i) sizes[i] = std::min(chunk, d - chunk * int64_t(i));
    }
  } else if (d >= 0) {
    if (d % int64_t(n) != 0)
      return c.fail("axis " + std::to_string(ax) + " of size " + std::to_string(d) + " does not split evenly into " +
                    std::to_string(n) + " outputs");
    std::fill(sizes.begin(), sizes.end(), d / int64_t(n));
  }
  for (size_t i = 0; i < n; ++i) {
    Shape o = s;
    o[ax] = sizes[i] >= 0 ? sizes[i] : (n == 1 ? d : c.fresh_dim());
    c.out[i] = {dt, o, true};
  }
  return {};
}

namespace {
// Elements a slice of one axis of static size d selects, after ONNX's clamping.
int64_t slice_count(int64_t d, int64_t start, int64_t end, int64_t step) {
  if (d == 0) return 0;
  start = slice_start(d, start, step);
  if (end < 0) end += d;
  if (step > 0) {
    end = std::clamp<int64_t>(end, 0, d);
    return end > start ? 1 + (end - start - 1) / step : 0;
  }
  end = std::clamp<int64_t>(end, -1, d - 1);
  int64_t mag = step == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -step;
  return start > end ? 1 + (start - end - 1) / mag : 0;
}
}  // namespace

Result<void> infer_slice(InferCtx& c) {
  DType dt = c.in[0].dtype;
  for (size_t i = 1; i < c.num_inputs(); ++i)
    if (c.has(i)) KILN_TRY(require_int(c, i, i == 1 ? "starts" : i == 2 ? "ends" : i == 3 ? "axes" : "steps"));
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  int64_t r = int64_t(s.size());
  KILN_ASSIGN(auto starts, known_ints(c, 1, "starts"));
  KILN_ASSIGN(auto ends, known_ints(c, 2, "ends"));
  std::optional<std::vector<int64_t>> axes, steps;
  if (c.has(3)) {
    KILN_ASSIGN(axes, known_ints(c, 3, "axes"));
  }
  if (c.has(4)) {
    KILN_ASSIGN(steps, known_ints(c, 4, "steps"));
  }
  Shape out = s;
  if (!starts || !ends || (c.has(3) && !axes) || (c.has(4) && !steps)) {
    // Values unknown: only the sliced axes change, and we may not know which.
    if (axes) {
      KILN_ASSIGN(auto na, normalize_axes(c, *axes, r, "axes"));
      for (auto ax : na) out[size_t(ax)] = c.fresh_dim();
    } else {
      for (auto& d : out) d = c.fresh_dim();
    }
    c.out[0] = {dt, out, true};
    return {};
  }
  size_t n = starts->size();
  if (ends->size() != n) return c.fail("starts and ends have different lengths");
  if (!axes) {
    axes.emplace();
    for (size_t i = 0; i < n; ++i) axes->push_back(int64_t(i));
  }
  if (!steps) steps = std::vector<int64_t>(n, 1);
  if (axes->size() != n || steps->size() != n) return c.fail("starts, ends, axes and steps must have equal lengths");
  KILN_ASSIGN(auto na, normalize_axes(c, *axes, r, "axes"));
  for (size_t i = 0; i < n; ++i) {
    int64_t st = (*steps)[i], b = (*starts)[i], e = (*ends)[i];
    if (st == 0) return c.fail("steps must not be 0");
    size_t ax = size_t(na[i]);
    int64_t d = s[ax];
    if (d >= 0) out[ax] = slice_count(d, b, e, st);
    else if (!(st == 1 && b == 0 && e >= std::numeric_limits<int32_t>::max())) out[ax] = c.fresh_dim();
  }
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_squeeze(InferCtx& c) {
  DType dt = c.in[0].dtype;
  std::optional<std::vector<int64_t>> axes;
  if (c.has(1)) {
    KILN_TRY(require_int(c, 1, "axes"));
    KILN_ASSIGN(axes, known_ints(c, 1, "axes"));
  }
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  int64_t r = int64_t(s.size());
  if (c.has(1) && !axes) {
    int64_t n = static_len(c, 1);
    c.set_unknown(0, dt, n >= 0 && n <= r ? r - n : -1);
    return {};
  }
  Shape out;
  if (!axes || axes->empty()) {
    // Squeeze every 1; a symbolic dim might be 1, so the rank is then unknown.
    for (auto d : s) {
      if (d < 0) {
        c.set_unknown(0, dt, -1);
        return {};
      }
      if (d != 1) out.push_back(d);
    }
  } else {
    KILN_ASSIGN(auto na, normalize_axes(c, *axes, r, "axes"));
    std::vector<bool> drop(s.size(), false);
    for (auto ax : na) {
      if (s[size_t(ax)] >= 0 && s[size_t(ax)] != 1)
        return c.fail("cannot squeeze axis " + std::to_string(ax) + " of size " + std::to_string(s[size_t(ax)]) +
                      " (shape " + shape_str(s) + ")");
      drop[size_t(ax)] = true;
    }
    for (size_t i = 0; i < s.size(); ++i)
      if (!drop[i]) out.push_back(s[i]);
  }
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_unsqueeze(InferCtx& c) {
  DType dt = c.in[0].dtype;
  KILN_TRY(require_int(c, 1, "axes"));
  KILN_ASSIGN(auto axes, known_ints(c, 1, "axes"));
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  if (!axes) {
    int64_t n = static_len(c, 1);
    c.set_unknown(0, dt, n >= 0 ? int64_t(s.size()) + n : -1);
    return {};
  }
  int64_t r = int64_t(s.size() + axes->size());
  KILN_ASSIGN(auto na, normalize_axes(c, *axes, r, "axes"));
  Shape out(size_t(r), -1);
  std::vector<bool> inserted(size_t(r), false);
  for (auto ax : na) inserted[size_t(ax)] = true;
  size_t k = 0;
  for (size_t i = 0; i < out.size(); ++i) out[i] = inserted[i] ? 1 : s[k++];
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_expand(InferCtx& c) {
  DType dt = c.in[0].dtype;
  KILN_TRY(require_int(c, 1, "shape"));
  KILN_ASSIGN(auto shape, known_ints(c, 1, "shape"));
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  const Shape& s = c.in[0].shape;
  if (shape) {
    for (auto v : *shape)
      if (v < 0) return c.fail("shape " + ints_str(*shape) + " has a negative dimension");
    auto b = broadcast_shapes(s, *shape);
    if (!b.ok()) return c.fail("cannot expand: " + b.error().message);
    c.out[0] = {dt, *b, true};
    return {};
  }
  int64_t n = static_len(c, 1);
  if (n < 0) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  // Unknown target: an input dim that is static and not 1 survives broadcasting.
  size_t r = std::max(s.size(), size_t(n));
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    size_t off = r - s.size();
    int64_t d = i >= off ? s[i - off] : 1;
    out[i] = d >= 0 && d != 1 ? d : c.fresh_dim();
  }
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_tile(InferCtx& c) {
  DType dt = c.in[0].dtype;
  KILN_TRY(require_int(c, 1, "repeats"));
  KILN_ASSIGN(auto reps, known_ints(c, 1, "repeats"));
  if (!c.in[0].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  Shape out = c.in[0].shape;
  if (!reps) {
    for (auto& d : out) d = c.fresh_dim();
    c.out[0] = {dt, out, true};
    return {};
  }
  if (reps->size() != out.size())
    return c.fail("repeats " + ints_str(*reps) + " has " + std::to_string(reps->size()) + " entries for rank " +
                  std::to_string(out.size()));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t k = (*reps)[i];
    if (k < 0) return c.fail("repeats " + ints_str(*reps) + " has a negative entry");
    if (out[i] >= 0) out[i] *= k;
    else if (k == 0) out[i] = 0;
    else if (k != 1) out[i] = c.fresh_dim();
  }
  c.out[0] = {dt, out, true};
  return {};
}

Result<void> infer_constant_of_shape(InferCtx& c) {
  const Tensor& v = c.attr<ConstantOfShapeAttrs>().value;
  DType dt = DType::kF32;
  if (v.defined()) {
    if (v.numel() != 1) return c.fail("value attribute must hold exactly one element, got " + std::to_string(v.numel()));
    dt = v.dtype();
  }
  KILN_TRY(require_int(c, 0, "shape"));
  KILN_ASSIGN(auto shape, known_ints(c, 0, "shape"));
  if (!shape) {
    c.set_unknown(0, dt, static_len(c, 0));
    return {};
  }
  for (auto d : *shape)
    if (d < 0) return c.fail("shape " + ints_str(*shape) + " has a negative dimension");
  c.out[0] = {dt, *shape, true};
  return {};
}

Result<void> infer_range(InferCtx& c) {
  DType dt = c.in[0].dtype;
  for (size_t i = 0; i < 3; ++i) {
    if (c.in[i].dtype != dt) return c.fail("start, limit and delta must have the same dtype");
    if (c.in[i].rank_known && !c.in[i].shape.empty() && !(c.in[i].shape.size() == 1 && c.in[i].shape[0] == 1))
      return c.fail("start, limit and delta must be scalars, input " + std::to_string(i) + " has shape " +
                    shape_str(c.in[i].shape));
  }
  if (dt == DType::kBool || dt == DType::kI4 || dt == DType::kU4)
    return c.fail("Range does not take " + std::string(dtype_name(dt)));
  const Tensor *s = c.value(0), *l = c.value(1), *d = c.value(2);
  if (!s || !l || !d) {
    c.set_unknown(0, dt, 1);
    return {};
  }
  int64_t n = 0;
  if (is_float(dt)) {
    double delta = d->as_double(0);
    if (delta == 0) return c.fail("delta must not be 0");
    double count = std::ceil((l->as_double(0) - s->as_double(0)) / delta);
    if (!(count < 9.0e18)) return c.fail("range has too many elements");
    n = std::max<int64_t>(int64_t(count), 0);
  } else {
    int64_t start = s->as_int(0), limit = l->as_int(0), delta = d->as_int(0);
    if (delta == 0) return c.fail("delta must not be 0");
    // Computed in 128 bits so extreme int64 limits cannot overflow.
    __int128 diff = __int128(limit) - start;
    __int128 cnt = delta > 0 ? (diff > 0 ? (diff + delta - 1) / delta : 0) : (diff < 0 ? (diff + delta + 1) / delta : 0);
    n = int64_t(cnt);
  }
  c.out[0] = {dt, {n}, true};
  return {};
}

Result<void> infer_eyelike(InferCtx& c) {
  int64_t code = c.attr<EyeLikeAttrs>().dtype;
  DType dt = c.in[0].dtype;
  if (code != kAbsent) {
    auto d = dtype_from_onnx(int(code));
    if (!d) return c.fail("dtype " + std::to_string(code) + " is not supported");
    dt = *d;
  }
  if (c.in[0].rank_known && c.in[0].shape.size() != 2)
    return c.fail("input must be 2-D, got shape " + shape_str(c.in[0].shape));
  c.out[0] = c.in[0];
  c.out[0].dtype = dt;
  if (!c.out[0].rank_known) c.set_unknown(0, dt, 2);
  return {};
}

}  // namespace kiln::ir
