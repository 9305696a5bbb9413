// Helpers for the reference backend's data-movement kernels (shape_ops.cpp,
// gather_scatter.cpp, resize.cpp): copying elements of any dtype by width, and
// building an output whose every axis reads from a per-axis table of input
// coordinates (Slice, Tile, Pad, Expand and nearest Resize are all that).
#pragma once
#include <cstring>
#include <vector>

#include "backends/reference/kernel.h"

namespace kiln::ref {

// Calls f(U{}) with an unsigned type as wide as one element of `t`, so a kernel
// that only moves elements handles every dtype (bool, f16, i64 ...) alike.
// Packed sub-byte types (int4) have no such type: the caller reports them.
template <class F>
Result<void> visit_bytes(DType t, F&& f) {
  switch (dtype_info(t).bits) {
    case 8: return f(uint8_t{});
    case 16: return f(uint16_t{});
    case 32: return f(uint32_t{});
    case 64: return f(uint64_t{});
    default: return make_error("dtype " + std::string(dtype_name(t)) + " cannot be moved element by element");
  }
}

// Integer contents of a small metadata tensor (shape, axes, pads ...).
std::vector<int64_t> read_ints(const Tensor& t);

// out[o_0, ..., o_{r-1}] = in[src[0][o_0], ..., src[r-1][o_{r-1}]], or `fill`
// where any src entry is -1. in and out have the same rank; src[a] has
// out_shape[a] entries, each -1 or in [0, in_shape[a]).
template <class U>
void gather_axes(const U* in, const Shape& in_shape, U* out, const Shape& out_shape,
                 const std::vector<std::vector<int64_t>>& src, U fill) {
  size_t r = out_shape.size();
  int64_t total = numel(out_shape);
  if (total == 0) return;
  if (r == 0) {
    out[0] = in[0];
    return;
  }
  std::vector<int64_t> st = strides_of(in_shape), idx(r, 0);
  int64_t inner = out_shape[r - 1];
  const std::vector<int64_t>& last = src[r - 1];
  for (int64_t o = 0; o < total; o += inner) {
    int64_t base = 0;
    bool outside = false;
    for (size_t a = 0; a + 1 < r; ++a) {
      int64_t s = src[a][size_t(idx[a])];
      outside |= s < 0;
      base += s * st[a];
    }
    U* dst = out + o;
    for (int64_t i = 0; i < inner; ++i) {
      int64_t s = last[size_t(i)];
      dst[i] = (outside || s < 0) ? fill : in[base + s];
    }
    for (size_t a = r - 1; a-- > 0;) {
      if (++idx[a] < out_shape[a]) break;
      idx[a] = 0;
    }
  }
}

// The one element of `t` (any dtype) as a U of the same width.
template <class U>
U element_bits(const Tensor& t, int64_t i) {
  U u;
  std::memcpy(&u, static_cast<const char*>(t.raw()) + i * int64_t(sizeof(U)), sizeof(U));
  return u;
}

// A value of dtype `t` holding `v` (converted), as raw bits of width sizeof(U).
template <class U>
U value_bits(DType t, double v) {
  U u{};
  auto put = [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    T x = store<T>(static_cast<compute_t<T>>(v));
    if constexpr (sizeof(T) == sizeof(U)) std::memcpy(&u, &x, sizeof(U));
    return {};
  };
  (void)visit_all(t, put);
  return u;
}

}  // namespace kiln::ref
