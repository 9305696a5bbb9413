// Reference kernels for layout ops: Shape, Size, Reshape/Flatten/Squeeze/
// Unsqueeze (one byte copy), Transpose, Concat, Split, Slice, Expand, Tile,
// Pad, ConstantOfShape, Range, EyeLike, Trilu, ReverseSequence. They move elements
// by width only, so every dtype (bool, f16, i64 ...) takes the same path.
#include <algorithm>

#include "backends/reference/copy_util.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {

std::vector<int64_t> read_ints(const Tensor& t) {
  std::vector<int64_t> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.as_int(i);
  return v;
}

namespace {
Result<void> need_out(KernelCtx& c, size_t i = 0) {
  if (!c.out[i].defined()) return c.fail("output " + std::to_string(i) + " has no inferred shape");
  return {};
}
// Bytes per element, or an error for packed sub-byte types.
Result<int64_t> elem_bytes(KernelCtx& c, DType t) {
  int bits = dtype_info(t).bits;
  if (bits % 8 != 0) return c.unsupported_dtype(t);
  return int64_t(bits / 8);
}
}  // namespace

Result<void> run_shape(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const auto& a = c.attr<ir::ShapeAttrs>();
  const Shape& s = c.input(0).shape();
  int64_t r = int64_t(s.size());
  int64_t start = std::clamp<int64_t>(a.start < 0 ? a.start + r : a.start, 0, r);
  int64_t* out = c.out[0].data<int64_t>();
  for (int64_t i = 0; i < c.out[0].numel(); ++i) out[i] = s[size_t(start + i)];
  return {};
}

Result<void> run_size(KernelCtx& c) {
  KILN_TRY(need_out(c));
  *c.out[0].data<int64_t>() = c.input(0).numel();
  return {};
}

// Reshape, Flatten, Squeeze, Unsqueeze: same bytes, new shape.
Result<void> run_reshape(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor& x = c.input(0);
  if (c.out[0].nbytes() != x.nbytes())
    return c.fail("output shape " + shape_str(c.out[0].shape()) + " does not hold the input's " +
                  std::to_string(x.numel()) + " elements");
  if (x.nbytes() > 0) std::memcpy(c.out[0].raw(), x.raw(), size_t(x.nbytes()));
  return {};
}

Result<void> run_transpose(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor& x = c.input(0);
  Tensor& y = c.out[0];
  size_t r = size_t(x.rank());
  std::vector<int64_t> perm = c.attr<ir::TransposeAttrs>().perm;
  if (perm.empty())
    for (size_t i = r; i-- > 0;) perm.push_back(int64_t(i));
  for (auto& p : perm) p = p < 0 ? p + int64_t(r) : p;  // inference has checked the range
  auto in_st = strides_of(x.shape());
  std::vector<int64_t> st(r);  // input stride of each output axis
  for (size_t i = 0; i < r; ++i) st[i] = in_st[size_t(perm[i])];
  const Shape& os = y.shape();
  auto r2 = visit_bytes(x.dtype(), [&](auto tag) -> Result<void> {
    using U = decltype(tag);
    const U* in = x.data<U>();
    U* out = y.data<U>();
    int64_t total = y.numel();
    if (total == 0) return {};
    if (r == 0) {
      out[0] = in[0];
      return {};
    }
    std::vector<int64_t> idx(r, 0);
    int64_t inner = os[r - 1], inner_st = st[r - 1];
    for (int64_t o = 0; o < total; o += inner) {
      int64_t base = 0;
      for (size_t a = 0; a + 1 < r; ++a) base += idx[a] * st[a];
      for (int64_t i = 0; i < inner; ++i) out[o + i] = in[base + i * inner_st];
      for (size_t a = r - 1; a-- > 0;) {
        if (++idx[a] < os[a]) break;
        idx[a] = 0;
      }
    }
    return {};
  });
  if (!r2.ok()) return c.unsupported_dtype(x.dtype());
  return {};
}

Result<void> run_concat(KernelCtx& c) {
  KILN_TRY(need_out(c));
  Tensor& y = c.out[0];
  KILN_ASSIGN(int64_t eb, elem_bytes(c, y.dtype()));
  int64_t r = y.rank();
  int64_t axis = c.attr<ir::ConcatAttrs>().axis;
  if (axis < 0) axis += r;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= y.dim(i);
  for (int64_t i = axis + 1; i < r; ++i) inner *= y.dim(i);
  char* out = static_cast<char*>(y.raw());
  int64_t row = y.dim(axis) * inner * eb, off = 0;
  for (size_t k = 0; k < c.num_inputs(); ++k) {
    const Tensor& x = c.input(k);
    int64_t chunk = x.dim(axis) * inner * eb;
    const char* in = static_cast<const char*>(x.raw());
    for (int64_t o = 0; o < outer; ++o)
      if (chunk) std::memcpy(out + o * row + off, in + o * chunk, size_t(chunk));
    off += chunk;
  }
  return {};
}

Result<void> run_split(KernelCtx& c) {
  const Tensor& x = c.input(0);
  KILN_ASSIGN(int64_t eb, elem_bytes(c, x.dtype()));
  int64_t r = x.rank();
  int64_t axis = c.attr<ir::SplitAttrs>().axis;
  if (axis < 0) axis += r;
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= x.dim(i);
  for (int64_t i = axis + 1; i < r; ++i) inner *= x.dim(i);
  const char* in = static_cast<const char*>(x.raw());
  int64_t row = x.dim(axis) * inner * eb, off = 0;
  for (size_t k = 0; k < c.out.size(); ++k) {
    KILN_TRY(need_out(c, k));
    Tensor& y = c.out[k];
    int64_t chunk = y.dim(axis) * inner * eb;
    if (off + chunk > row) return c.fail("split sizes exceed the input's axis " + std::to_string(axis));
    char* out = static_cast<char*>(y.raw());
    for (int64_t o = 0; o < outer; ++o)
      if (chunk) std::memcpy(out + o * chunk, in + o * row + off, size_t(chunk));
    off += chunk;
  }
  return {};
}

namespace {
// Runs gather_axes for any element width; `fill` is one element of x's dtype (or null for zero).
Result<void> gather_any(KernelCtx& c, const Tensor& x, const Shape& in_shape, Tensor& y,
                        const std::vector<std::vector<int64_t>>& src, const Tensor* fill) {
  auto r = visit_bytes(x.dtype(), [&](auto tag) -> Result<void> {
    using U = decltype(tag);
    U f = fill ? element_bits<U>(*fill, 0) : U{};
    gather_axes<U>(x.data<U>(), in_shape, y.data<U>(), y.shape(), src, f);
    return {};
  });
  if (!r.ok()) return c.unsupported_dtype(x.dtype());
  return {};
}
std::vector<std::vector<int64_t>> identity_maps(const Shape& s) {
  std::vector<std::vector<int64_t>> m(s.size());
  for (size_t a = 0; a < s.size(); ++a)
    for (int64_t i = 0; i < s[a]; ++i) m[a].push_back(i);
  return m;
}
}  // namespace

Result<void> run_slice(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor& x = c.input(0);
  Tensor& y = c.out[0];
  auto starts = read_ints(c.input(1));
  size_t n = starts.size();
  std::vector<int64_t> axes, steps(n, 1);
  if (c.has(3)) axes = read_ints(c.input(3));
  else
    for (size_t i = 0; i < n; ++i) axes.push_back(int64_t(i));
  if (c.has(4)) steps = read_ints(c.input(4));
  auto src = identity_maps(y.shape());
  for (size_t i = 0; i < n; ++i) {
    int64_t ax = axes[i] < 0 ? axes[i] + x.rank() : axes[i];
    int64_t d = x.dim(ax), st = steps[i];
    if (d == 0) continue;  // nothing selected; the output axis is empty too
    const int64_t b = ir::slice_start(d, starts[i], st);
    auto& m = src[size_t(ax)];
    for (int64_t o = 0; o < int64_t(m.size()); ++o) m[size_t(o)] = b + o * st;
  }
  return gather_any(c, x, x.shape(), y, src, nullptr);
}

Result<void> run_expand(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor& x = c.input(0);
  Tensor& y = c.out[0];
  Shape in_shape(size_t(y.rank() - x.rank()), 1);
  in_shape.insert(in_shape.end(), x.shape().begin(), x.shape().end());
  auto src = identity_maps(y.shape());
  for (size_t a = 0; a < src.size(); ++a)
    if (in_shape[a] == 1) std::fill(src[a].begin(), src[a].end(), 0);
  return gather_any(c, x, in_shape, y, src, nullptr);
}

Result<void> run_tile(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor& x = c.input(0);
  Tensor& y = c.out[0];
  auto src = identity_maps(y.shape());
  for (size_t a = 0; a < src.size(); ++a)
    for (auto& v : src[a]) v %= x.dim(int64_t(a));
  return gather_any(c, x, x.shape(), y, src, nullptr);
}

Result<void> run_pad(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor& x = c.input(0);
  Tensor& y = c.out[0];
  ir::PadMode mode = c.attr<ir::PadAttrs>().mode;
  auto pads = read_ints(c.input(1));
  int64_t r = x.rank();
  std::vector<int64_t> axes;
  if (c.has(3)) axes = read_ints(c.input(3));
  else
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  size_t n = axes.size();
  std::vector<int64_t> begin(size_t(r), 0);
  for (size_t i = 0; i < n; ++i) begin[size_t(axes[i] < 0 ? axes[i] + r : axes[i])] = pads[i];
  const Tensor* fill = nullptr;
  Tensor converted;
  if (mode == ir::PadMode::kConstant && c.has(2) && c.input(2).numel() > 0) {
    if (c.input(2).numel() != 1) return c.fail("constant_value must hold one element");
    fill = &c.input(2);
    if (fill->dtype() != x.dtype()) {
      // Pad-2's float `value` attribute becomes an f32 input whatever the data's float type.
      KILN_ASSIGN(converted, Tensor::create(x.dtype(), {}));
      auto r2 = visit_all(x.dtype(), [&](auto tag) -> Result<void> {
        using T = decltype(tag);
        *converted.data<T>() = store<T>(static_cast<compute_t<T>>(fill->as_double(0)));
        return {};
      });
      if (!r2.ok()) return c.unsupported_dtype(x.dtype());
      fill = &converted;
    }
  }
  // Per axis: the input coordinate each output coordinate reads (-1: the constant).
  std::vector<std::vector<int64_t>> src(static_cast<size_t>(r));
  for (int64_t a = 0; a < r; ++a) {
    int64_t d = x.dim(a), od = y.dim(a);
    if (d == 0 && od > 0 && mode != ir::PadMode::kConstant)
      return c.fail("cannot pad empty axis " + std::to_string(a) + " in " +
                    std::string(ir::kPadModeNames[size_t(mode)]) + " mode");
    auto& m = src[size_t(a)];
    m.resize(size_t(od));
    for (int64_t o = 0; o < od; ++o) {
      int64_t i = o - begin[size_t(a)];
      switch (mode) {
        case ir::PadMode::kConstant: m[size_t(o)] = i >= 0 && i < d ? i : -1; break;
        case ir::PadMode::kEdge: m[size_t(o)] = std::clamp<int64_t>(i, 0, d - 1); break;
        case ir::PadMode::kWrap: m[size_t(o)] = ((i % d) + d) % d; break;
        case ir::PadMode::kReflect: {
          // Mirror about the edges without repeating them (numpy 'reflect'), period 2(d-1).
          if (d == 1) {
            m[size_t(o)] = 0;
            break;
          }
          int64_t p = 2 * (d - 1), k = ((i % p) + p) % p;
          m[size_t(o)] = k < d ? k : p - k;
          break;
        }
      }
    }
  }
  return gather_any(c, x, x.shape(), y, src, fill);
}

Result<void> run_constant_of_shape(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor& v = c.attr<ir::ConstantOfShapeAttrs>().value;
  if (!v.defined()) return {};  // float32 zeros: the fresh output already is
  Tensor& y = c.out[0];
  auto r = visit_bytes(y.dtype(), [&](auto tag) -> Result<void> {
    using U = decltype(tag);
    U f = element_bits<U>(v, 0);
    U* out = y.data<U>();
    for (int64_t i = 0; i < y.numel(); ++i) out[i] = f;
    return {};
  });
  if (!r.ok()) return c.unsupported_dtype(y.dtype());
  return {};
}

Result<void> run_range(KernelCtx& c) {
  KILN_TRY(need_out(c));
  Tensor& y = c.out[0];
  const Tensor &s = c.input(0), &d = c.input(2);
  auto r = visit_numeric(y.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    T* out = y.data<T>();
    if constexpr (std::is_integral_v<T>) {
      int64_t start = s.as_int(0), delta = d.as_int(0);
      for (int64_t i = 0; i < y.numel(); ++i) out[i] = T(start + i * delta);
    } else {
      double start = s.as_double(0), delta = d.as_double(0);
      for (int64_t i = 0; i < y.numel(); ++i) out[i] = store<T>(start + double(i) * delta);
    }
    return {};
  });
  if (!r.ok()) return c.unsupported_dtype(y.dtype());
  return {};
}

Result<void> run_eyelike(KernelCtx& c) {
  KILN_TRY(need_out(c));
  Tensor& y = c.out[0];
  int64_t k = c.attr<ir::EyeLikeAttrs>().k, rows = y.dim(0), cols = y.dim(1);
  auto r = visit_all(y.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    T* out = y.data<T>();
    for (int64_t i = 0; i < rows; ++i)
      if (i + k >= 0 && i + k < cols) out[i * cols + i + k] = store<T>(compute_t<T>(1));
    return {};
  });
  if (!r.ok()) return c.unsupported_dtype(y.dtype());
  return {};
}

Result<void> run_trilu(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor& x = c.input(0);
  Tensor& y = c.out[0];
  if (x.rank() < 2) return c.fail("input must have rank >= 2, got shape " + shape_str(x.shape()));
  int64_t k = 0;
  if (c.has(1)) {
    if (c.input(1).numel() != 1 || !is_integer(c.input(1).dtype())) return c.fail("k must be an integer scalar");
    k = c.input(1).as_int(0);
  }
  bool upper = c.attr<ir::TriluAttrs>().upper != 0;
  int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
  int64_t mats = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
  // The fresh output is zero, which is every dtype's zero; copy only what is kept.
  auto r = visit_bytes(x.dtype(), [&](auto tag) -> Result<void> {
    using U = decltype(tag);
    const U* in = x.data<U>();
    U* out = y.data<U>();
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          int64_t off = (m * rows + i) * cols + j;
          bool keep = upper ? j - i >= k : j - i <= k;
          if (keep) out[off] = in[off];
        }
    return {};
  });
  if (!r.ok()) return c.unsupported_dtype(x.dtype());
  return {};
}

Result<void> run_reverse_sequence(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor& x = c.input(0);
  const Tensor& lens = c.input(1);
  Tensor& y = c.out[0];
  const auto& a = c.attr<ir::ReverseSequenceAttrs>();
  if (x.rank() < 2) return c.fail("input must have rank >= 2, got shape " + shape_str(x.shape()));
  if (!((a.batch_axis == 0 && a.time_axis == 1) || (a.batch_axis == 1 && a.time_axis == 0)))
    return c.fail("batch_axis and time_axis must be 0 and 1 in some order");
  if (lens.dtype() != DType::kI64) return c.fail("sequence_lens must be int64");
  int64_t batch = x.dim(a.batch_axis), time = x.dim(a.time_axis);
  if (lens.rank() != 1 || lens.numel() != batch)
    return c.fail("sequence_lens has shape " + shape_str(lens.shape()) + ", expected [" + std::to_string(batch) + "]");
  KILN_ASSIGN(int64_t eb, elem_bytes(c, x.dtype()));
  int64_t inner = 1;
  for (int64_t i = 2; i < x.rank(); ++i) inner *= x.dim(i);
  int64_t chunk = inner * eb;
  // Offset of (t, b) in elements of `inner`.
  auto at = [&](int64_t t, int64_t b) { return a.time_axis == 0 ? t * batch + b : b * time + t; };
  const char* in = static_cast<const char*>(x.raw());
  char* out = static_cast<char*>(y.raw());
  for (int64_t b = 0; b < batch; ++b) {
    int64_t len = lens.as_int(b);
    if (len < 0 || len > time)
      return c.fail("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(len) + " is outside [0, " +
                    std::to_string(time) + "]");
    for (int64_t t = 0; t < time; ++t) {
      int64_t from = t < len ? len - 1 - t : t;
      if (chunk) std::memcpy(out + at(t, b) * chunk, in + at(from, b) * chunk, size_t(chunk));
    }
  }
  return {};
}

}  // namespace kiln::ref
