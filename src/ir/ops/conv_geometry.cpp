// Sliding-window geometry for Conv, ConvTranspose and the pools (see
// conv_geometry.h). Messages carry no node prefix: callers add it.
#include "ir/ops/conv_geometry.h"

#include <algorithm>
#include <string>

namespace kiln::ir {
namespace {

// Attribute values beyond this are rejected, so extent and index arithmetic
// ((k - 1) * d + 1, o * s + k * d) can never overflow int64.
constexpr int64_t kMaxAttr = int64_t(1) << 31;

int64_t floor_div(int64_t a, int64_t b) {  // b > 0
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }

std::string list_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  s += ']';
  return s;
}

// Fills `out` with `n` copies of `dflt` when `given` is empty, else checks its
// length and range.
Result<void> per_axis(const char* name, const std::vector<int64_t>& given, size_t n, int64_t dflt, int64_t min_value,
                      std::vector<int64_t>& out) {
  if (given.empty()) {
    out.assign(n, dflt);
    return {};
  }
  if (given.size() != n)
    return make_error(std::string(name) + " " + list_str(given) + " has " + std::to_string(given.size()) +
                      " entries, expected " + std::to_string(n));
  for (int64_t v : given)
    if (v < min_value || v > kMaxAttr)
      return make_error(std::string(name) + " " + list_str(given) + " has an entry outside [" +
                        std::to_string(min_value) + ", 2^31]");
  out = given;
  return {};
}

// Splits a total SAME padding: SAME_UPPER puts the odd extra at the end,
// SAME_LOWER (and ConvTranspose with output_shape but no auto_pad) at the start.
void split_pad(int64_t total, bool upper, int64_t* begin, int64_t* end) {
  *begin = upper ? total / 2 : total - total / 2;
  *end = total - *begin;
}

// Kernel sizes from W's spatial dims, cross-checked with kernel_shape.
// Unknown (symbolic) entries stay negative.
Result<std::vector<int64_t>> kernel_from_weight(const std::vector<int64_t>& kernel_shape, const Shape& w) {
  size_t n = w.size() - 2;
  std::vector<int64_t> k(w.begin() + 2, w.end());
  if (kernel_shape.empty()) return k;
  if (kernel_shape.size() != n)
    return make_error("kernel_shape " + list_str(kernel_shape) + " has " + std::to_string(kernel_shape.size()) +
                      " entries, expected " + std::to_string(n));
  for (size_t i = 0; i < n; ++i) {
    if (k[i] >= 0 && k[i] != kernel_shape[i])
      return make_error("kernel_shape " + list_str(kernel_shape) + " does not match weight shape " + shape_str(w));
    k[i] = kernel_shape[i];
  }
  return k;
}

Result<void> check_ranks(const Shape& x, const Shape& w) {
  if (x.size() < 3)
    return make_error("input X has rank " + std::to_string(x.size()) + ", expected at least 3 (N, C, spatial...)");
  if (w.size() != x.size())
    return make_error("weight W has shape " + shape_str(w) + ", expected rank " + std::to_string(x.size()) +
                      " like X " + shape_str(x));
  return {};
}

}  // namespace

void strided_valid_range(int64_t count, int64_t stride, int64_t offset, int64_t limit, int64_t* lo, int64_t* hi) {
  *lo = offset >= 0 ? 0 : ceil_div(-offset, stride);
  *hi = limit - 1 - offset < 0 ? 0 : std::min(count, floor_div(limit - 1 - offset, stride) + 1);
  if (*hi < *lo) *hi = *lo;
}

Result<WindowGeometry> window_geometry(const Shape& in_spatial, const std::vector<int64_t>& kernel, AutoPad auto_pad,
                                       const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                                       const std::vector<int64_t>& pads, bool ceil_mode) {
  size_t n = in_spatial.size();
  WindowGeometry g;
  g.in = in_spatial;
  KILN_TRY(per_axis("kernel_shape", kernel, n, 1, 1, g.kernel));
  if (kernel.empty() && n > 0) return make_error("kernel_shape is empty");
  KILN_TRY(per_axis("strides", strides, n, 1, 1, g.strides));
  KILN_TRY(per_axis("dilations", dilations, n, 1, 1, g.dilations));
  std::vector<int64_t> p;
  if (auto_pad == AutoPad::kNotSet) KILN_TRY(per_axis("pads", pads, 2 * n, 0, 0, p));
  else p.assign(2 * n, 0);  // explicit pads are ignored when auto_pad is set
  g.pads_begin.assign(p.begin(), p.begin() + long(n));
  g.pads_end.assign(p.begin() + long(n), p.end());
  g.out.assign(n, kUnknownDim);
  for (size_t i = 0; i < n; ++i) {
    int64_t in = in_spatial[i], e = g.extent(i), s = g.strides[i];
    int64_t& pb = g.pads_begin[i];
    int64_t& pe = g.pads_end[i];
    std::string axis = "spatial axis " + std::to_string(i);
    if (in < 0) {  // symbolic: only a size-keeping window has a known output
      bool same = auto_pad == AutoPad::kSameUpper || auto_pad == AutoPad::kSameLower;
      bool keeps = s == 1 && (same || (auto_pad == AutoPad::kNotSet && pb + pe == e - 1) ||
                              (auto_pad == AutoPad::kValid && e == 1));
      g.out[i] = keeps ? in : kUnknownDim;
      continue;
    }
    switch (auto_pad) {
      case AutoPad::kNotSet: {
        int64_t padded = in + pb + pe;
        if (padded < e)
          return make_error("window of extent " + std::to_string(e) + " (kernel " + std::to_string(g.kernel[i]) +
                            ", dilation " + std::to_string(g.dilations[i]) + ") does not fit the padded input size " +
                            std::to_string(padded) + " on " + axis);
        int64_t out = ceil_mode ? ceil_div(padded - e, s) + 1 : (padded - e) / s + 1;
        // A last window that starts in the end padding covers no input: dropped.
        if (ceil_mode && (out - 1) * s >= in + pb) --out;
        g.out[i] = out;
        break;
      }
      case AutoPad::kValid:
        if (in < e)
          return make_error("window of extent " + std::to_string(e) + " does not fit the input size " +
                            std::to_string(in) + " on " + axis + " (auto_pad VALID)");
        g.out[i] = (in - e) / s + 1;
        break;
      case AutoPad::kSameUpper:
      case AutoPad::kSameLower: {
        g.out[i] = ceil_div(in, s);
        int64_t total = std::max<int64_t>(0, (g.out[i] - 1) * s + e - in);
        split_pad(total, auto_pad == AutoPad::kSameUpper, &pb, &pe);
        break;
      }
    }
  }
  return g;
}

Result<WindowGeometry> conv_geometry(const ConvAttrs& a, const Shape& x, const Shape& w) {
  KILN_TRY(check_ranks(x, w));
  if (a.group < 1) return make_error("group " + std::to_string(a.group) + " must be at least 1");
  int64_t c = x[1], cg = w[1], m = w[0];
  if (c >= 0 && cg >= 0 && c != cg * a.group)
    return make_error("X has " + std::to_string(c) + " channels but W " + shape_str(w) + " with group " +
                      std::to_string(a.group) + " expects " + std::to_string(cg * a.group));
  if (m >= 0 && m % a.group != 0)
    return make_error("W has " + std::to_string(m) + " output channels, not divisible by group " +
                      std::to_string(a.group));
  KILN_ASSIGN(auto kernel, kernel_from_weight(a.kernel_shape, w));
  Shape in(x.begin() + 2, x.end());
  for (size_t i = 0; i < kernel.size(); ++i)
    if (kernel[i] < 0) {  // kernel unknown: only SAME keeps the size without knowing it
      kernel[i] = 1;
      if (a.auto_pad == AutoPad::kNotSet || a.auto_pad == AutoPad::kValid) in[i] = kUnknownDim;
    }
  return window_geometry(in, kernel, a.auto_pad, a.strides, a.dilations, a.pads, false);
}

Result<Shape> conv_output_shape(const ConvAttrs& a, const Shape& x, const Shape& w,
                                const std::function<int64_t()>& fresh) {
  KILN_ASSIGN(auto g, conv_geometry(a, x, w));
  Shape out = {x[0], w[0]};
  for (int64_t d : g.out) out.push_back(d == kUnknownDim && fresh ? fresh() : d);
  return out;
}

Result<WindowGeometry> conv_transpose_geometry(const ConvTransposeAttrs& a, const Shape& x, const Shape& w) {
  KILN_TRY(check_ranks(x, w));
  if (a.group < 1) return make_error("group " + std::to_string(a.group) + " must be at least 1");
  size_t n = x.size() - 2;
  int64_t c = x[1];
  if (c >= 0 && w[0] >= 0 && c != w[0])
    return make_error("X has " + std::to_string(c) + " channels but W " + shape_str(w) +
                      " (layout [C, M/group, k...]) has " + std::to_string(w[0]));
  if (c >= 0 && c % a.group != 0)
    return make_error("X has " + std::to_string(c) + " channels, not divisible by group " + std::to_string(a.group));
  KILN_ASSIGN(auto kernel, kernel_from_weight(a.kernel_shape, w));
  WindowGeometry g;
  g.in.assign(x.begin() + 2, x.end());
  g.kernel = kernel;
  for (auto& k : g.kernel)
    if (k < 0) k = 1;  // placeholder; such axes get an unknown output below
  for (int64_t k : kernel)
    if (k == 0 || k > kMaxAttr) return make_error("kernel sizes " + list_str(kernel) + " must be in [1, 2^31]");
  KILN_TRY(per_axis("strides", a.strides, n, 1, 1, g.strides));
  KILN_TRY(per_axis("dilations", a.dilations, n, 1, 1, g.dilations));
  std::vector<int64_t> out_pad, p;
  KILN_TRY(per_axis("output_padding", a.output_padding, n, 0, 0, out_pad));
  if (a.auto_pad == AutoPad::kNotSet) KILN_TRY(per_axis("pads", a.pads, 2 * n, 0, 0, p));
  else p.assign(2 * n, 0);
  g.pads_begin.assign(p.begin(), p.begin() + long(n));
  g.pads_end.assign(p.begin() + long(n), p.end());
  // output_shape may list spatial dims only or the whole output shape.
  std::vector<int64_t> out_shape;
  if (!a.output_shape.empty()) {
    if (a.output_shape.size() == n) out_shape = a.output_shape;
    else if (a.output_shape.size() == n + 2) out_shape.assign(a.output_shape.begin() + 2, a.output_shape.end());
    else
      return make_error("output_shape " + list_str(a.output_shape) + " has " +
                        std::to_string(a.output_shape.size()) + " entries, expected " + std::to_string(n));
    for (int64_t d : out_shape)
      if (d < 0 || d > (int64_t(1) << 40)) return make_error("output_shape " + list_str(a.output_shape) + " is invalid");
  }
  g.out.assign(n, kUnknownDim);
  for (size_t i = 0; i < n; ++i) {
    int64_t in = g.in[i], s = g.strides[i];
    if (in < 0 || kernel[i] < 0) {
      if (!out_shape.empty()) g.out[i] = out_shape[i];
      else if ((a.auto_pad == AutoPad::kSameUpper || a.auto_pad == AutoPad::kSameLower) && s == 1) g.out[i] = in;
      continue;
    }
    // Size of the full (unpadded) scatter result along this axis.
    int64_t full = s * (in - 1) + out_pad[i] + g.extent(i);
    bool same = a.auto_pad == AutoPad::kSameUpper || a.auto_pad == AutoPad::kSameLower;
    if (!out_shape.empty() || same) {
      g.out[i] = out_shape.empty() ? in * s : out_shape[i];
      // A requested size larger than the full result is zero-filled at the end.
      int64_t total = std::max<int64_t>(0, full - g.out[i]);
      split_pad(total, a.auto_pad == AutoPad::kSameUpper, &g.pads_begin[i], &g.pads_end[i]);
    } else {
      if (a.auto_pad == AutoPad::kValid) g.pads_begin[i] = g.pads_end[i] = 0;
      g.out[i] = full - g.pads_begin[i] - g.pads_end[i];
      if (g.out[i] < 0)
        return make_error("pads " + list_str(a.pads) + " remove more than the full output size " +
                          std::to_string(full) + " on spatial axis " + std::to_string(i));
    }
  }
  return g;
}

Result<Shape> conv_transpose_output_shape(const ConvTransposeAttrs& a, const Shape& x, const Shape& w,
                                          const std::function<int64_t()>& fresh) {
  KILN_ASSIGN(auto g, conv_transpose_geometry(a, x, w));
  int64_t m = w[1] >= 0 ? w[1] * a.group : (a.group == 1 ? w[1] : kUnknownDim);
  Shape out = {x[0], m};
  for (int64_t d : g.out) out.push_back(d);
  for (auto& d : out)
    if (d == kUnknownDim && fresh) d = fresh();
  return out;
}

Result<WindowGeometry> pool_geometry(const PoolWindow& a, const Shape& x) {
  if (x.size() < 3)
    return make_error("input X has rank " + std::to_string(x.size()) + ", expected at least 3 (N, C, spatial...)");
  Shape in(x.begin() + 2, x.end());
  return window_geometry(in, a.kernel_shape, a.auto_pad, a.strides, a.dilations, a.pads, a.ceil_mode != 0);
}

}  // namespace kiln::ir
