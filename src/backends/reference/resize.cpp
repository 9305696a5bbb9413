// Reference kernel for Resize (and Upsample, which the importer turns into
// Resize): nearest, linear and cubic, every coordinate_transformation_mode,
// exclude_outside, antialias, axes and keep_aspect_ratio_policy. Follows the
// ONNX numpy reference: per output coordinate on each axis, a short list of
// (input index, weight) taps; the axes are then applied one after the other,
// which equals the reference's nested 1-D interpolation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "backends/reference/copy_util.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

using ir::ResizeAttrs;
using ir::ResizeCoord;
using ir::ResizeMode;
using ir::ResizeNearest;

// Taps of one axis: output coordinate x reads in[idx[x*n + t]] * w[x*n + t]
// for t < n, or is the extrapolation value when extrap[x].
struct AxisTaps {
  int64_t n = 0;
  std::vector<int64_t> idx;
  std::vector<double> w;
  std::vector<char> extrap;
  bool identity = false;  // every x reads exactly in[x]
};

struct AxisParams {
  int64_t in = 0, out = 0;
  double scale = 1;  // the scale of the coordinate transform (given, or out/in)
  double roi_start = 0, roi_end = 1;
};

// Input coordinate of output coordinate x, in double as the numpy reference
// computes it; nullopt when tf_crop_and_resize lands outside the input.
std::optional<double> original_coord(const ResizeAttrs& a, const AxisParams& p, int64_t x) {
  double in = double(p.in), s = p.scale;
  double out_w = s * in;  // not rounded: align_corners and crop use it so (ONNX's reference, test data)
  switch (a.coordinate_transformation_mode) {
    case ResizeCoord::kHalfPixel: return (double(x) + 0.5) / s - 0.5;
    case ResizeCoord::kHalfPixelSymmetric: {
      double adjustment = double(p.out) / out_w;
      double offset = in / 2 * (1 - adjustment);
      return offset + (double(x) + 0.5) / s - 0.5;
    }
    // The spec's rule (output length 1 maps to 0). ONNX's numpy reference tests the
    // unrounded scale * in == 1 and uses -0.5; the two agree except for cubic.
    case ResizeCoord::kPytorchHalfPixel: return p.out > 1 ? (double(x) + 0.5) / s - 0.5 : 0.0;
    case ResizeCoord::kAsymmetric: return double(x) / s;
    case ResizeCoord::kTfHalfPixelForNN: return (double(x) + 0.5) / s;
    case ResizeCoord::kAlignCorners: return out_w == 1 ? 0.0 : double(x) * (in - 1) / (out_w - 1);
    case ResizeCoord::kTfCropAndResize: {
      double span = p.roi_end - p.roi_start;
      double v = out_w == 1 ? span * (in - 1) / 2 : double(x) * span * (in - 1) / (out_w - 1);
      v += p.roi_start * (in - 1);
      if (v < 0 || v > in - 1) return std::nullopt;
      return v;
    }
  }
  return std::nullopt;
}

// Keys' cubic convolution kernel with parameter A.
double cubic_kernel(double t, double A) {
  t = std::abs(t);
  if (t <= 1) return ((A + 2) * t - (A + 3)) * t * t + 1;
  if (t < 2) return ((A * t - 5 * A) * t + 8 * A) * t - 4 * A;
  return 0;
}

AxisTaps make_taps(const ResizeAttrs& a, const AxisParams& p) {
  AxisTaps taps;
  bool nearest = a.mode == ResizeMode::kNearest;
  bool cubic = a.mode == ResizeMode::kCubic;
  // Antialias widens the filter by 1/scale when downsampling.
  double fs = (a.antialias && !nearest) ? std::min(p.scale, 1.0) : 1.0;
  // Tap offsets [k0, k1) relative to `base`: the filter's support (1 for linear,
  // 2 for cubic, stretched by 1/fs) on both sides.
  int64_t k0 = 0, k1 = 1;
  if (!nearest) {
    k0 = int64_t(std::floor((cubic ? -2 : -1) / fs)) + 1;
    k1 = 2 - k0;
  }
  taps.n = nearest ? 1 : k1 - k0;
  taps.idx.assign(size_t(p.out * taps.n), 0);
  taps.w.assign(size_t(p.out * taps.n), 0.0);
  taps.extrap.assign(size_t(p.out), 0);
  taps.identity = p.in == p.out;
  for (int64_t x = 0; x < p.out; ++x) {
    auto xo = original_coord(a, p, x);
    int64_t* ix = &taps.idx[size_t(x * taps.n)];
    double* w = &taps.w[size_t(x * taps.n)];
    if (!xo) {
      taps.extrap[size_t(x)] = 1;
      taps.identity = false;
      continue;
    }
    // The reference picks neighbours left of x_original on ties: for an integer
    // coordinate the "ratio" is 1 from the point below, not 0 from the point itself.
    double fl = std::floor(*xo);
    int64_t base = int64_t(fl);
    double ratio = *xo - fl;
    if (ratio == 0) {
      base -= 1;
      ratio = 1;
    }
    if (nearest) {
      bool up = true;
      if (ratio != 1) {
        switch (a.nearest_mode) {
          case ResizeNearest::kRoundPreferFloor: up = ratio > 0.5; break;
          case ResizeNearest::kRoundPreferCeil: up = ratio >= 0.5; break;
          case ResizeNearest::kFloor: up = false; break;
          case ResizeNearest::kCeil: up = true; break;
        }
      }
      ix[0] = std::clamp<int64_t>(base + (up ? 1 : 0), 0, p.in - 1);
      w[0] = 1;
      taps.identity &= ix[0] == x;
      continue;
    }
    double sum = 0;
    for (int64_t k = k0; k < k1; ++k) {
      double t = (double(k) - ratio) * fs;
      double wk = cubic ? cubic_kernel(t, a.cubic_coeff_a) : std::max(0.0, 1 - std::abs(t));
      int64_t i = base + k;
      if (a.exclude_outside && (i < 0 || i >= p.in)) wk = 0;
      ix[k - k0] = std::clamp<int64_t>(i, 0, p.in - 1);  // edge padding
      w[k - k0] = wk;
      sum += wk;
    }
    if ((a.antialias || a.exclude_outside) && sum != 0)
      for (int64_t t = 0; t < taps.n; ++t) w[t] /= sum;
    for (int64_t t = 0; t < taps.n; ++t)
      if (w[t] != 0 && !(ix[t] == x && w[t] == 1)) taps.identity = false;
  }
  return taps;
}

// One separable pass: resample axis `axis` of `in` (shape `s`) into `out`.
void apply_axis(const std::vector<double>& in, const Shape& s, size_t axis, const AxisTaps& taps, int64_t out_len,
                double extrap, std::vector<double>& out) {
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) inner *= s[i];
  int64_t in_len = s[axis];
  out.assign(size_t(outer * out_len * inner), 0.0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t x = 0; x < out_len; ++x) {
      double* dst = &out[size_t((o * out_len + x) * inner)];
      if (taps.extrap[size_t(x)]) {
        std::fill(dst, dst + inner, extrap);
        continue;
      }
      for (int64_t t = 0; t < taps.n; ++t) {
        double w = taps.w[size_t(x * taps.n + t)];
        if (w == 0) continue;
        const double* src = &in[size_t((o * in_len + taps.idx[size_t(x * taps.n + t)]) * inner)];
        for (int64_t j = 0; j < inner; ++j) dst[j] += w * src[j];
      }
    }
}

// Per-axis sizes, scales and roi from the node's inputs and attributes.
Result<std::vector<AxisParams>> axis_params(KernelCtx& c, const Tensor& x, const Tensor& y) {
  const auto& a = c.attr<ResizeAttrs>();
  int64_t r = x.rank();
  std::vector<int64_t> axes = a.axes;
  if (axes.empty())
    for (int64_t i = 0; i < r; ++i) axes.push_back(i);
  for (auto& ax : axes) ax = ax < 0 ? ax + r : ax;  // inference has checked the range
  size_t n = axes.size();
  std::vector<AxisParams> p(static_cast<size_t>(r));
  for (int64_t i = 0; i < r; ++i) p[size_t(i)] = {x.dim(i), y.dim(i), 1.0, 0.0, 1.0};
  const Tensor* scales = c.has(2) && c.input(2).numel() > 0 ? &c.input(2) : nullptr;
  const Tensor* sizes = c.has(3) && c.input(3).numel() > 0 ? &c.input(3) : nullptr;
  const Tensor* roi = c.has(1) && c.input(1).numel() > 0 ? &c.input(1) : nullptr;
  if (a.coordinate_transformation_mode == ResizeCoord::kTfCropAndResize) {
    if (!roi) return c.fail("tf_crop_and_resize needs the roi input");
    if (roi->numel() != int64_t(2 * n))
      return c.fail("roi has " + std::to_string(roi->numel()) + " values, expected " + std::to_string(2 * n));
  }
  double common = a.keep_aspect_ratio_policy == ir::AspectPolicy::kNotLarger ? HUGE_VAL : 0.0;
  for (size_t i = 0; i < n; ++i) {
    AxisParams& q = p[size_t(axes[i])];
    if (q.in == 0 && q.out > 0) return c.fail("cannot resize an empty axis to size " + std::to_string(q.out));
    if (scales) q.scale = scales->as_double(int64_t(i));
    else q.scale = double(sizes->as_int(int64_t(i))) / double(q.in);
    if (a.keep_aspect_ratio_policy == ir::AspectPolicy::kNotLarger) common = std::min(common, q.scale);
    if (a.keep_aspect_ratio_policy == ir::AspectPolicy::kNotSmaller) common = std::max(common, q.scale);
    if (roi && a.coordinate_transformation_mode == ResizeCoord::kTfCropAndResize) {
      q.roi_start = roi->as_double(int64_t(i));
      q.roi_end = roi->as_double(int64_t(n + i));
    }
  }
  if (sizes && a.keep_aspect_ratio_policy != ir::AspectPolicy::kStretch)
    for (auto ax : axes) p[size_t(ax)].scale = common;
  return p;
}

}  // namespace

Result<void> run_resize(KernelCtx& c) {
  if (!c.out[0].defined()) return c.fail("output has no inferred shape");
  const Tensor& x = c.input(0);
  Tensor& y = c.out[0];
  const auto& a = c.attr<ResizeAttrs>();
  KILN_ASSIGN(auto params, axis_params(c, x, y));
  if (y.numel() == 0) return {};
  size_t r = params.size();
  std::vector<AxisTaps> taps(r);
  for (size_t i = 0; i < r; ++i) taps[i] = make_taps(a, params[i]);

  if (a.mode == ResizeMode::kNearest) {
    // Pure copying: any dtype; an extrapolated point is -1 on its axis.
    std::vector<std::vector<int64_t>> src(r);
    for (size_t i = 0; i < r; ++i)
      for (int64_t o = 0; o < params[i].out; ++o) src[i].push_back(taps[i].extrap[size_t(o)] ? -1 : taps[i].idx[size_t(o)]);
    auto res = visit_bytes(x.dtype(), [&](auto tag) -> Result<void> {
      using U = decltype(tag);
      U fill = value_bits<U>(x.dtype(), a.extrapolation_value);
      gather_axes<U>(x.data<U>(), x.shape(), y.data<U>(), y.shape(), src, fill);
      return {};
    });
    if (!res.ok()) return c.unsupported_dtype(x.dtype());
    return {};
  }

  if (x.dtype() == DType::kBool) return c.unsupported_dtype(x.dtype());
  // Linear/cubic: interpolate in double, one axis at a time, then store once.
  std::vector<double> cur(size_t(x.numel())), next;
  for (int64_t i = 0; i < x.numel(); ++i) cur[size_t(i)] = x.as_double(i);
  Shape s = x.shape();
  for (size_t ax = 0; ax < r; ++ax) {
    if (taps[ax].identity && params[ax].in == params[ax].out) continue;
    apply_axis(cur, s, ax, taps[ax], params[ax].out, a.extrapolation_value, next);
    cur.swap(next);
    s[ax] = params[ax].out;
  }
  auto res = visit_numeric(y.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    T* out = y.data<T>();
    for (size_t i = 0; i < cur.size(); ++i) {
      double v = cur[i];
      if constexpr (std::is_integral_v<T>) {
        // As the reference's astype: truncate, here after saturating to the type's range.
        v = std::clamp(v, double(std::numeric_limits<T>::lowest()), double(std::numeric_limits<T>::max()));
        out[i] = std::isnan(v) ? T(0) : T(v);
      } else {
        out[i] = store<T>(static_cast<compute_t<T>>(v));
      }
    }
    return {};
  });
  if (!res.ok()) return c.unsupported_dtype(y.dtype());
  return {};
}

}  // namespace kiln::ref
