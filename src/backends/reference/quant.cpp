// Reference kernels for QuantizeLinear, DequantizeLinear and
// DynamicQuantizeLinear: per-tensor, per-axis and blocked scales; y =
// saturate(round_half_even(x / scale) + zero_point) and x = (q - zp) * scale,
// with the intermediate precisions of ONNX's numpy reference.
// Tests: tests/unit/test_ref_reduce_quant.cpp.
#include <algorithm>
#include <limits>

#include "backends/reference/kernels.h"
#include "backends/reference/quant_common.h"
#include "ir/ops/quant.h"

namespace kiln::ref {
namespace {

using quant::QRange;

// Maps a flat element index of x to the index of its scale / zero point.
struct QParamIndex {
  enum Mode { kTensor, kAxis, kBlocked } mode = kTensor;
  int64_t inner = 1, axis_dim = 1, block = 1, nblocks = 1;
  int64_t operator()(int64_t i) const {
    if (mode == kTensor) return 0;
    int64_t in = i % inner, rest = i / inner;
    int64_t a = rest % axis_dim;
    if (mode == kAxis) return a;
    return ((rest / axis_dim) * nblocks + a / block) * inner + in;
  }
};

Result<QParamIndex> make_qindex(const KernelCtx& c, const Shape& x, const Tensor& scale, const Tensor* zp,
                                int64_t axis, int64_t block) {
  if (zp && zp->shape() != scale.shape())
    return c.fail("zero point shape " + shape_str(zp->shape()) + " differs from scale shape " +
                  shape_str(scale.shape()));
  QParamIndex q;
  if (scale.numel() == 1) return q;
  if (block < 0) return c.fail("block_size must be >= 0");
  auto ax = normalize_axis(axis, int64_t(x.size()), "quantization axis");
  if (!ax.ok()) return c.fail(ax.error().message);
  q.axis_dim = x[size_t(*ax)];
  for (size_t i = size_t(*ax) + 1; i < x.size(); ++i) q.inner *= x[i];
  if (block == 0) {
    if (scale.rank() != 1 || scale.dim(0) != q.axis_dim)
      return c.fail("per-axis scale must be 1-D of size " + std::to_string(q.axis_dim) + ", got shape " +
                    shape_str(scale.shape()));
    q.mode = QParamIndex::kAxis;
    return q;
  }
  q.mode = QParamIndex::kBlocked;
  q.block = block;
  q.nblocks = (q.axis_dim + block - 1) / block;
  Shape want = x;
  want[size_t(*ax)] = q.nblocks;
  if (scale.shape() != want)
    return c.fail("blocked scale must have shape " + shape_str(want) + ", got " + shape_str(scale.shape()));
  return q;
}

}  // namespace

Result<void> run_quantize_linear(KernelCtx& c) {
  const auto& a = c.attr<ir::QuantizeLinearAttrs>();
  const Tensor& x = c.input(0);
  const Tensor& s = c.input(1);
  const Tensor* zp = c.has(2) ? &c.input(2) : nullptr;
  KILN_ASSIGN(QParamIndex qi, make_qindex(c, x.shape(), s, zp, a.axis, a.block_size));
  Tensor& y = c.out[0];
  QRange r = quant::qrange(y.dtype());
  if (r.lo == r.hi) return c.unsupported_dtype(y.dtype());
  std::vector<double> sv = quant::to_double(s);
  std::vector<int32_t> zv = zp ? quant::to_int32(*zp) : std::vector<int32_t>(sv.size(), 0);
  std::vector<int32_t> q(size_t(x.numel()));
  // numpy divides in x's dtype when scale shares it (float32, or float16 with a
  // rounding after the division); int32 x or an f64 operand divide in double.
  bool wide = x.dtype() == DType::kF64 || x.dtype() == DType::kI32 || s.dtype() == DType::kF64;
  DType narrow = x.dtype() == s.dtype() ? x.dtype() : DType::kF32;
  auto quantize = [&](int64_t i, double xv) {
    int64_t j = qi(i);
    double quot = wide ? xv / sv[size_t(j)] : double(quant::round_to(narrow, float(xv) / float(sv[size_t(j)])));
    double rq = std::isnan(quot) ? quot : std::nearbyint(quot);
    q[size_t(i)] = int32_t(quant::round_saturate(rq + double(zv[size_t(j)]), r));
  };
  if (x.dtype() == DType::kI32) {
    const int32_t* in = x.data<int32_t>();
    for (int64_t i = 0; i < x.numel(); ++i) quantize(i, double(in[i]));
  } else {
    KILN_TRY(visit_float(x.dtype(), [&](auto tag) -> Result<void> {
      using T = decltype(tag);
      const T* in = x.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) quantize(i, double(load(in[i])));
      return {};
    }));
  }
  quant::pack_ints(q, y);
  return {};
}

Result<void> run_dequantize_linear(KernelCtx& c) {
  const auto& a = c.attr<ir::DequantizeLinearAttrs>();
  const Tensor& x = c.input(0);
  const Tensor& s = c.input(1);
  const Tensor* zp = c.has(2) ? &c.input(2) : nullptr;
  if (quant::qrange(x.dtype()).lo == quant::qrange(x.dtype()).hi) return c.unsupported_dtype(x.dtype());
  KILN_ASSIGN(QParamIndex qi, make_qindex(c, x.shape(), s, zp, a.axis, a.block_size));
  std::vector<double> sv = quant::to_double(s);
  std::vector<int32_t> zv = zp ? quant::to_int32(*zp) : std::vector<int32_t>(sv.size(), 0);
  if (x.dtype() == DType::kI32 && std::any_of(zv.begin(), zv.end(), [](int32_t z) { return z != 0; }))
    return c.fail("the zero point of an i32 input must be 0");
  std::vector<int32_t> xv = quant::to_int32(x);
  Tensor& y = c.out[0];
  return visit_float(y.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    T* out = y.data<T>();
    // numpy: float32(x) - zp, times the scale, rounded to float32 and then to
    // the scale's dtype. The double product of these operands is exact.
    for (int64_t i = 0; i < x.numel(); ++i) {
      int64_t j = qi(i);
      double d = (double(float(xv[size_t(i)])) - double(zv[size_t(j)])) * sv[size_t(j)];
      out[i] = store<T>(float(d));
    }
    return {};
  });
}

Result<void> run_dynamic_quantize_linear(KernelCtx& c) {
  const Tensor& x = c.input(0);
  if (x.dtype() != DType::kF32) return c.unsupported_dtype(x.dtype());
  const float* in = x.data<float>();
  // The range always includes 0 so that 0 is exactly representable; NaNs are
  // left out of the range.
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (in[i] < lo) lo = in[i];
    if (in[i] > hi) hi = in[i];
  }
  // All float32 arithmetic, as in the ONNX reference. An all-zero input has
  // scale 0; it then quantizes to zero point 0 and all-zero y.
  float scale = (hi - lo) / 255.0f;
  const QRange r{0, 255};
  int64_t zp = scale == 0.0f ? 0 : quant::round_saturate(double((0.0f - lo) / scale), r);
  std::vector<int32_t> q(size_t(x.numel()), 0);
  if (scale != 0.0f)
    for (int64_t i = 0; i < x.numel(); ++i) {
      float t = std::nearbyint(in[i] / scale) + float(zp);
      q[size_t(i)] = int32_t(quant::round_saturate(double(t), r));
    }
  quant::pack_ints(q, c.out[0]);
  if (c.out.size() > 1 && c.out[1].defined()) *c.out[1].data<float>() = scale;
  if (c.out.size() > 2 && c.out[2].defined()) *c.out[2].data<uint8_t>() = uint8_t(zp);
  return {};
}

}  // namespace kiln::ref
