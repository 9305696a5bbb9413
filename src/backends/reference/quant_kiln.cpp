// Reference kernels for kiln's integer ops QConv, QGemm and QAdd (ir/ops/kiln_quant.h).
// QConv and QGemm:
// exact int32 accumulation of (x - x_zp) * w (+ bias) (quant_int.h), then per
// output channel the fixed-point requantization of quant/quant_params.h:
//   y = clamp(rshift_round_half_even(acc * m_c, s_c) + y_zp, lo, qmax),
//   m_c * 2^-s_c ~= double(x_scale) * double(w_scale[c]) / double(y_scale),
//   lo = fused_relu ? max(qmin, y_zp) : qmin.
// Every backend must match these results bit for bit. Tests: tests/unit/test_lower_qdq.cpp.
#include <algorithm>

#include "backends/reference/kernels.h"
#include "backends/reference/quant_common.h"
#include "backends/reference/quant_int.h"
#include "ir/ops/kiln_quant.h"
#include "quant/quant_params.h"

namespace kiln::ref {
namespace {

// What requantizing one output channel needs, computed once per call.
struct OutputParams {
  std::vector<kiln::quant::Requant> requant;  // one per output channel
  int32_t zero_point = 0;
  int64_t lo = 0, hi = 0;
};

// Weight zero points must all be 0: the accumulation assumes symmetric weights.
Result<void> check_zero_weight_zp(const KernelCtx& c, const Tensor& z) {
  for (int64_t i = 0; i < z.numel(); ++i)
    if (z.as_int(i) != 0)
      return c.fail("w_zero_point must be 0 (symmetric weights), got " + std::to_string(z.as_int(i)) + " at index " +
                    std::to_string(i));
  return {};
}

// Inputs 1 (x_scale), 4 (w_scale), 6 (y_scale), 7 (y_zero_point) -> per-channel
// Requant for `channels` output channels and the output range.
Result<OutputParams> output_params(const KernelCtx& c, int64_t channels, int64_t fused_relu) {
  KILN_ASSIGN(double xs, scalar_param(c, c.input(1), "x_scale"));
  KILN_ASSIGN(double ys, scalar_param(c, c.input(6), "y_scale"));
  KILN_ASSIGN(double yz, scalar_param(c, c.input(7), "y_zero_point"));
  const Tensor& ws = c.input(4);
  if (ws.numel() != 1 && ws.numel() != channels)
    return c.fail("w_scale has " + std::to_string(ws.numel()) + " elements, expected 1 or " + std::to_string(channels) +
                  " (one per output channel)");
  OutputParams p;
  p.requant.resize(size_t(channels));
  for (int64_t ch = 0; ch < channels; ++ch) {
    double real = xs * ws.as_double(ws.numel() == 1 ? 0 : ch) / ys;
    auto r = kiln::quant::make_requant(real);
    if (!r.ok()) return c.fail("output channel " + std::to_string(ch) + ": " + r.error().message);
    p.requant[size_t(ch)] = *r;
  }
  quant::QRange range = quant::qrange(c.input(7).dtype());
  p.zero_point = int32_t(yz);
  p.hi = range.hi;
  p.lo = fused_relu ? std::max<int64_t>(range.lo, p.zero_point) : range.lo;
  return p;
}

// Requantizes acc laid out as [outer, channels, inner] into y (i8 or u8).
Result<void> write_output(const KernelCtx& c, const std::vector<int32_t>& acc, const OutputParams& p, int64_t outer,
                          int64_t channels, int64_t inner, Tensor& y) {
  auto put = [&](auto* out) {
    using T = std::remove_pointer_t<decltype(out)>;
    size_t i = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t ch = 0; ch < channels; ++ch) {
        const kiln::quant::Requant& r = p.requant[size_t(ch)];
        for (int64_t k = 0; k < inner; ++k, ++i) out[i] = T(kiln::quant::requantize(acc[i], r, p.zero_point, p.lo, p.hi));
      }
  };
  if (y.dtype() == DType::kI8) put(y.data<int8_t>());
  else if (y.dtype() == DType::kU8) put(y.data<uint8_t>());
  else return c.unsupported_dtype(y.dtype());
  return {};
}

// Inputs 0..7 are required (inference checks it first; this keeps the kernel safe on its own).
Result<void> check_required(const KernelCtx& c) {
  for (size_t i = 0; i < 8; ++i)
    if (!c.has(i)) return c.fail("input " + std::to_string(i) + " is required");
  return {};
}

}  // namespace

Result<void> run_qconv(KernelCtx& c) {
  // x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point[, bias]
  KILN_TRY(check_required(c));
  const auto& a = c.attr<ir::QConvAttrs>();
  const Tensor& x = c.input(0);
  const Tensor& w = c.input(3);
  KILN_TRY(check_zero_weight_zp(c, c.input(5)));
  KILN_ASSIGN(std::vector<int32_t> acc, int_conv(c, a, x, &c.input(2), w, nullptr, c.has(8) ? &c.input(8) : nullptr));
  int64_t m = w.dim(0);
  KILN_ASSIGN(OutputParams p, output_params(c, m, a.fused_relu));
  int64_t batch = x.dim(0);
  int64_t spatial = batch * m > 0 ? int64_t(acc.size()) / (batch * m) : 0;
  return write_output(c, acc, p, batch, m, spatial, c.out[0]);
}

Result<void> run_qgemm(KernelCtx& c) {
  // a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point[, bias]
  KILN_TRY(check_required(c));
  const auto& at = c.attr<ir::QGemmAttrs>();
  const Tensor& a = c.input(0);
  const Tensor& b = c.input(3);
  if (a.rank() < 2 || b.rank() != 2)
    return c.fail("a must be [..., M, K] and b 2-D, got " + shape_str(a.shape()) + " and " + shape_str(b.shape()));
  int64_t k = a.shape().back(), n = b.dim(at.transB ? 0 : 1);
  if (b.dim(at.transB ? 1 : 0) != k)
    return c.fail("inner dimensions differ: a " + shape_str(a.shape()) + ", b " + shape_str(b.shape()));
  KILN_TRY(check_zero_weight_zp(c, c.input(5)));
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < a.rank(); ++d) rows *= a.dim(d);
  std::vector<int32_t> av = quant::to_int32(a);
  KILN_ASSIGN(double az, scalar_param(c, c.input(2), "a_zero_point"));
  for (auto& v : av) v -= int32_t(az);
  std::vector<int32_t> bv = quant::to_int32(b);
  if (at.transB) {  // [N, K] -> [K, N]
    std::vector<int32_t> t(bv.size());
    for (int64_t j = 0; j < n; ++j)
      for (int64_t kk = 0; kk < k; ++kk) t[size_t(kk * n + j)] = bv[size_t(j * k + kk)];
    bv = std::move(t);
  }
  std::vector<int32_t> acc(size_t(rows * n));
  std::vector<int64_t> scratch;
  int_matmul_2d(av.data(), bv.data(), rows, k, n, acc.data(), scratch);
  if (c.has(8)) {
    const Tensor& bias = c.input(8);
    if (bias.rank() != 1 || bias.numel() != n)
      return c.fail("bias must be 1-D of " + std::to_string(n) + " elements, got shape " + shape_str(bias.shape()));
    std::vector<int32_t> bb = quant::to_int32(bias);
    // Wrapping add, as the accumulator itself wraps.
    for (size_t i = 0; i < acc.size(); ++i)
      acc[i] = int32_t(uint32_t(acc[i]) + uint32_t(bb[i % size_t(n)]));
  }
  KILN_ASSIGN(OutputParams p, output_params(c, n, at.fused_relu));
  return write_output(c, acc, p, rows, n, 1, c.out[0]);
}

Result<void> run_qadd(KernelCtx& c) {
  // a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point
  KILN_TRY(check_required(c));
  const auto& at = c.attr<ir::QAddAttrs>();
  const Tensor& a = c.input(0);
  const Tensor& b = c.input(3);
  if (a.shape() != b.shape())
    return c.fail("a " + shape_str(a.shape()) + " and b " + shape_str(b.shape()) + " must have one shape");
  KILN_ASSIGN(double as, scalar_param(c, c.input(1), "a_scale"));
  KILN_ASSIGN(double az, scalar_param(c, c.input(2), "a_zero_point"));
  KILN_ASSIGN(double bs, scalar_param(c, c.input(4), "b_scale"));
  KILN_ASSIGN(double bz, scalar_param(c, c.input(5), "b_zero_point"));
  KILN_ASSIGN(double ys, scalar_param(c, c.input(6), "y_scale"));
  KILN_ASSIGN(double yz, scalar_param(c, c.input(7), "y_zero_point"));
  const quant::QRange r = quant::qrange(c.input(7).dtype());
  const std::vector<int32_t> av = quant::to_int32(a), bv = quant::to_int32(b);
  Tensor& y = c.out[0];
  auto put = [&](auto* out) {
    using T = std::remove_pointer_t<decltype(out)>;
    for (size_t i = 0; i < av.size(); ++i) {
      // The float chain: DQ, DQ, Add[, Relu], Q (quant_params.h).
      float s = kiln::quant::dequantize_value(av[i], float(as), int32_t(az)) + kiln::quant::dequantize_value(bv[i], float(bs), int32_t(bz));
      if (at.fused_relu && !(s > 0.0f)) s = 0.0f;
      out[i] = T(kiln::quant::quantize_value(s, float(ys), int32_t(yz), r.lo, r.hi));
    }
  };
  if (y.dtype() == DType::kI8) put(y.data<int8_t>());
  else if (y.dtype() == DType::kU8) put(y.data<uint8_t>());
  else return c.unsupported_dtype(y.dtype());
  return {};
}

}  // namespace kiln::ref
