// Reference kernels for indexed reads and writes: Gather, GatherElements,
// GatherND, ScatterElements, ScatterND (reductions none/add/mul/max/min),
// OneHot, NonZero, Compress. Every index is bounds-checked (negative indices
// count from the end); an out-of-range index is an error naming it.
#include <algorithm>
#include <cmath>

#include "backends/reference/copy_util.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

Result<void> need_out(KernelCtx& c) {
  if (!c.out[0].defined()) return c.fail("output has no inferred shape");
  return {};
}

Result<int64_t> elem_bytes(KernelCtx& c, DType t) {
  int bits = dtype_info(t).bits;
  if (bits % 8 != 0) return c.unsupported_dtype(t);
  return int64_t(bits / 8);
}

// Index i of `idx` resolved against an axis of size d (negative counts from the end).
Result<int64_t> resolve(KernelCtx& c, const Tensor& idx, int64_t i, int64_t d, const char* what) {
  int64_t v = idx.as_int(i);
  int64_t k = v < 0 ? v + d : v;
  if (k < 0 || k >= d)
    return c.fail(std::string(what) + " " + std::to_string(v) + " is out of range for an axis of size " +
                  std::to_string(d));
  return k;
}

int64_t prod(const Shape& s, size_t b, size_t e) {
  int64_t p = 1;
  for (size_t i = b; i < e; ++i) p *= s[i];
  return p;
}

// Applies a scatter reduction for every dtype: dst = reduce(dst, src).
template <class T>
void reduce_into(ir::ScatterReduction red, T& dst, T src) {
  using ir::ScatterReduction;
  auto a = load(dst), b = load(src);
  switch (red) {
    case ScatterReduction::kNone: dst = src; break;
    case ScatterReduction::kAdd: dst = store<T>(a + b); break;
    case ScatterReduction::kMul: dst = store<T>(a * b); break;
    case ScatterReduction::kMax: dst = store<T>(std::max(a, b)); break;
    case ScatterReduction::kMin: dst = store<T>(std::min(a, b)); break;
  }
}

// Position in data of each element of an indices tensor of the same rank,
// with coordinate `axis` replaced by the index value (GatherElements/ScatterElements).
Result<std::vector<int64_t>> element_offsets(KernelCtx& c, const Shape& data, const Tensor& idx, int64_t axis) {
  size_t r = data.size();
  const Shape& is = idx.shape();
  for (size_t a = 0; a < r; ++a)
    if (int64_t(a) != axis && is[a] > data[a])
      return c.fail("indices shape " + shape_str(is) + " exceeds data shape " + shape_str(data) + " on axis " +
                    std::to_string(a));
  auto st = strides_of(data);
  std::vector<int64_t> offs(size_t(idx.numel())), co(r, 0);
  for (int64_t f = 0; f < idx.numel(); ++f) {
    KILN_ASSIGN(int64_t k, resolve(c, idx, f, data[size_t(axis)], "index"));
    int64_t off = 0;
    for (size_t a = 0; a < r; ++a) off += (int64_t(a) == axis ? k : co[a]) * st[a];
    offs[size_t(f)] = off;
    for (size_t a = r; a-- > 0;) {
      if (++co[a] < is[a]) break;
      co[a] = 0;
    }
  }
  return offs;
}

// Data offset of each index tuple of ScatterND/GatherND's indices [..., m],
// with `b` leading batch dims shared by data and indices.
Result<std::vector<int64_t>> nd_offsets(KernelCtx& c, const Shape& data, const Tensor& idx, int64_t b) {
  const Shape& is = idx.shape();
  int64_t m = is.back();
  int64_t tuples = prod(is, 0, is.size() - 1);
  int64_t per_batch = prod(is, size_t(b), is.size() - 1);
  int64_t batch_stride = prod(data, size_t(b), data.size());
  auto st = strides_of(data);
  std::vector<int64_t> offs(static_cast<size_t>(tuples));
  for (int64_t t = 0; t < tuples; ++t) {
    int64_t off = per_batch ? (t / per_batch) * batch_stride : 0;
    for (int64_t j = 0; j < m; ++j) {
      KILN_ASSIGN(int64_t k, resolve(c, idx, t * m + j, data[size_t(b + j)], "index"));
      off += k * st[size_t(b + j)];
    }
    offs[size_t(t)] = off;
  }
  return offs;
}

}  // namespace

Result<void> run_gather(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor &x = c.input(0), &idx = c.input(1);
  Tensor& y = c.out[0];
  KILN_ASSIGN(int64_t eb, elem_bytes(c, x.dtype()));
  int64_t axis = c.attr<ir::AxisAttrs>().axis;
  if (axis < 0) axis += x.rank();
  int64_t d = x.dim(axis);
  int64_t outer = prod(x.shape(), 0, size_t(axis)), inner = prod(x.shape(), size_t(axis) + 1, size_t(x.rank()));
  int64_t n = idx.numel(), chunk = inner * eb;
  std::vector<int64_t> ks(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    KILN_ASSIGN(ks[size_t(i)], resolve(c, idx, i, d, "index"));
  }
  const char* in = static_cast<const char*>(x.raw());
  char* out = static_cast<char*>(y.raw());
  if (chunk == 0) return {};
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(out + (o * n + i) * chunk, in + (o * d + ks[size_t(i)]) * chunk, size_t(chunk));
  return {};
}

Result<void> run_gather_elements(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor &x = c.input(0), &idx = c.input(1);
  Tensor& y = c.out[0];
  int64_t axis = c.attr<ir::AxisAttrs>().axis;
  if (axis < 0) axis += x.rank();
  KILN_ASSIGN(auto offs, element_offsets(c, x.shape(), idx, axis));
  auto r = visit_bytes(x.dtype(), [&](auto tag) -> Result<void> {
    using U = decltype(tag);
    const U* in = x.data<U>();
    U* out = y.data<U>();
    for (size_t i = 0; i < offs.size(); ++i) out[i] = in[offs[i]];
    return {};
  });
  if (!r.ok()) return c.unsupported_dtype(x.dtype());
  return {};
}

Result<void> run_gather_nd(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor &x = c.input(0), &idx = c.input(1);
  Tensor& y = c.out[0];
  KILN_ASSIGN(int64_t eb, elem_bytes(c, x.dtype()));
  int64_t b = c.attr<ir::GatherNDAttrs>().batch_dims;
  KILN_ASSIGN(auto offs, nd_offsets(c, x.shape(), idx, b));
  int64_t m = idx.shape().back();
  int64_t chunk = prod(x.shape(), size_t(b + m), size_t(x.rank())) * eb;
  const char* in = static_cast<const char*>(x.raw());
  char* out = static_cast<char*>(y.raw());
  if (chunk == 0) return {};
  for (size_t t = 0; t < offs.size(); ++t)
    std::memcpy(out + int64_t(t) * chunk, in + offs[t] * eb, size_t(chunk));
  return {};
}

Result<void> run_scatter_elements(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor &x = c.input(0), &idx = c.input(1), &upd = c.input(2);
  Tensor& y = c.out[0];
  const auto& a = c.attr<ir::ScatterElementsAttrs>();
  if (idx.dtype() != DType::kI32 && idx.dtype() != DType::kI64) return c.fail("indices must be int32 or int64");
  if (upd.dtype() != x.dtype()) return c.fail("updates must have the data's dtype");
  if (idx.rank() != x.rank() || upd.shape() != idx.shape())
    return c.fail("indices " + shape_str(idx.shape()) + " and updates " + shape_str(upd.shape()) +
                  " must have the same shape and the rank of data " + shape_str(x.shape()));
  if (x.rank() == 0) return c.fail("data must have rank >= 1");
  auto na = normalize_axis(a.axis, x.rank());
  if (!na.ok()) return c.fail(na.error().message);
  KILN_ASSIGN(auto offs, element_offsets(c, x.shape(), idx, *na));
  std::memcpy(y.raw(), x.raw(), size_t(x.nbytes()));
  auto r = visit_all(x.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* u = upd.data<T>();
    T* out = y.data<T>();
    for (size_t i = 0; i < offs.size(); ++i) reduce_into(a.reduction, out[offs[i]], u[i]);
    return {};
  });
  if (!r.ok()) return c.unsupported_dtype(x.dtype());
  return {};
}

Result<void> run_scatter_nd(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor &x = c.input(0), &idx = c.input(1), &upd = c.input(2);
  Tensor& y = c.out[0];
  if (idx.dtype() != DType::kI64) return c.fail("indices must be int64");
  if (upd.dtype() != x.dtype()) return c.fail("updates must have the data's dtype");
  if (idx.rank() < 1 || x.rank() < 1) return c.fail("data and indices must have rank >= 1");
  int64_t k = idx.shape().back();
  if (k < 1 || k > x.rank())
    return c.fail("indices' last dimension " + std::to_string(k) + " must be in [1, " + std::to_string(x.rank()) + "]");
  Shape want(idx.shape().begin(), idx.shape().end() - 1);
  want.insert(want.end(), x.shape().begin() + k, x.shape().end());
  if (upd.shape() != want)
    return c.fail("updates have shape " + shape_str(upd.shape()) + ", expected " + shape_str(want));
  KILN_ASSIGN(auto offs, nd_offsets(c, x.shape(), idx, 0));
  int64_t chunk = prod(x.shape(), size_t(k), size_t(x.rank()));
  auto red = c.attr<ir::ScatterNDAttrs>().reduction;
  std::memcpy(y.raw(), x.raw(), size_t(x.nbytes()));
  auto r = visit_all(x.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* u = upd.data<T>();
    T* out = y.data<T>();
    for (size_t t = 0; t < offs.size(); ++t)
      for (int64_t j = 0; j < chunk; ++j) reduce_into(red, out[offs[t] + j], u[int64_t(t) * chunk + j]);
    return {};
  });
  if (!r.ok()) return c.unsupported_dtype(x.dtype());
  return {};
}

Result<void> run_onehot(KernelCtx& c) {
  KILN_TRY(need_out(c));
  const Tensor &idx = c.input(0), &vals = c.input(2);
  Tensor& y = c.out[0];
  if (vals.numel() != 2) return c.fail("values must hold [off_value, on_value]");
  int64_t r = idx.rank(), axis = c.attr<ir::OneHotAttrs>().axis;
  if (axis < 0) axis += r + 1;
  int64_t depth = y.dim(axis);
  int64_t outer = prod(idx.shape(), 0, size_t(axis)), inner = prod(idx.shape(), size_t(axis), size_t(r));
  auto res = visit_bytes(y.dtype(), [&](auto tag) -> Result<void> {
    using U = decltype(tag);
    U off = element_bits<U>(vals, 0), on = element_bits<U>(vals, 1);
    U* out = y.data<U>();
    std::fill(out, out + y.numel(), off);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        // Indices outside [-depth, depth) select nothing: the row stays off_value.
        double v = idx.as_double(o * inner + i);
        if (!(std::abs(v) < 9.0e18)) continue;  // NaN or beyond int64: matches no class
        int64_t k = int64_t(v);
        if (k < 0) k += depth;
        if (k >= 0 && k < depth) out[(o * depth + k) * inner + i] = on;
      }
    return {};
  });
  if (!res.ok()) return c.unsupported_dtype(y.dtype());
  return {};
}

Result<void> run_nonzero(KernelCtx& c) {
  const Tensor& x = c.input(0);
  std::vector<int64_t> hits;  // flat positions of non-zero elements
  auto r = visit_all(x.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* in = x.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i)
      if (load(in[i]) != compute_t<T>(0)) hits.push_back(i);
    return {};
  });
  if (!r.ok()) return c.unsupported_dtype(x.dtype());
  int64_t rank = x.rank(), n = int64_t(hits.size());
  KILN_ASSIGN(Tensor * y, c.alloc(0, DType::kI64, {rank, n}));
  int64_t* out = y->data<int64_t>();
  auto st = strides_of(x.shape());
  for (int64_t j = 0; j < n; ++j)
    for (int64_t a = 0; a < rank; ++a) out[a * n + j] = (hits[size_t(j)] / st[size_t(a)]) % x.dim(a);
  return {};
}

Result<void> run_compress(KernelCtx& c) {
  const Tensor &x = c.input(0), &cond = c.input(1);
  KILN_ASSIGN(int64_t eb, elem_bytes(c, x.dtype()));
  int64_t axis = c.attr<ir::CompressAttrs>().axis;
  Shape s = x.shape();
  if (axis == ir::kAbsent) {
    s = {x.numel()};
    axis = 0;
  } else if (axis < 0) {
    axis += x.rank();
  }
  int64_t d = s[size_t(axis)];
  std::vector<int64_t> keep;
  const uint8_t* cv = cond.data<uint8_t>();
  for (int64_t i = 0; i < cond.numel(); ++i) {
    if (!cv[i]) continue;
    if (i >= d)
      return c.fail("condition selects position " + std::to_string(i) + " beyond axis size " + std::to_string(d));
    keep.push_back(i);
  }
  int64_t outer = prod(s, 0, size_t(axis)), chunk = prod(s, size_t(axis) + 1, s.size()) * eb;
  Shape os = s;
  os[size_t(axis)] = int64_t(keep.size());
  KILN_ASSIGN(Tensor * y, c.alloc(0, x.dtype(), os));
  const char* in = static_cast<const char*>(x.raw());
  char* out = static_cast<char*>(y->raw());
  int64_t n = int64_t(keep.size());
  if (chunk == 0) return {};
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < n; ++j)
      std::memcpy(out + (o * n + j) * chunk, in + (o * d + keep[size_t(j)]) * chunk, size_t(chunk));
  return {};
}

}  // namespace kiln::ref
