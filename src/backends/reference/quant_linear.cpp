// Reference kernels for integer matrix products and convolutions:
// MatMulInteger, ConvInteger (int32 out) and QLinearMatMul, QLinearConv
// (requantized out). Zero points are subtracted first, products accumulate
// exactly and wrap to int32; requantization multiplies by the float32 real
// multiplier a_scale * b_scale / y_scale in double (as ONNX's reference does),
// rounds half to even, adds the output zero point and saturates.
// Integer sums: quant_int.h. Tests: tests/unit/test_ref_reduce_quant.cpp.
#include "backends/reference/kernels.h"
#include "backends/reference/quant_common.h"
#include "backends/reference/quant_int.h"

namespace kiln::ref {
namespace {

using quant::QRange;

// An optional input (an omitted zero point means 0).
const Tensor* opt_input(const KernelCtx& c, size_t i) { return c.has(i) ? &c.input(i) : nullptr; }

// Side of a matrix product a per-row / per-column parameter belongs to.
enum class Side { kRow, kCol };

// Index of parameter `p` (scale or zero point) for each element of `target`.
// One element: per tensor. Otherwise numpy broadcasting, with a 1-D per-row
// parameter [M] read as [M, 1]; a per-row parameter must be constant along
// the last axis and a per-column one along the second-to-last.
Result<BroadcastIndex> param_index(const KernelCtx& c, const Tensor& p, const Shape& target, Side side,
                                   const char* what) {
  Shape ps = p.shape();
  if (p.numel() == 1) ps.clear();
  else if (ps.size() == 1 && side == Side::kRow) ps = {ps[0], 1};
  bool along_ok = ps.size() < 2 || (side == Side::kRow ? ps.back() == 1 : ps[ps.size() - 2] == 1);
  auto b = broadcast_shapes(ps, target);
  if (!along_ok || ps.size() > target.size() || !b.ok() || *b != target)
    return c.fail(std::string(what) + " of shape " + shape_str(p.shape()) + " does not fit a per-tensor or per-" +
                  (side == Side::kRow ? "row" : "column") + " layout for shape " + shape_str(target));
  return BroadcastIndex(ps, target);
}

// x - zp as int32 (zp absent: x), zp laid out per `side` against x's shape.
Result<std::vector<int32_t>> minus_zero_point(const KernelCtx& c, const Tensor& x, const Shape& shape,
                                              const Tensor* zp, Side side, const char* what) {
  std::vector<int32_t> v = quant::to_int32(x);
  if (!zp) return v;
  KILN_ASSIGN(BroadcastIndex zi, param_index(c, *zp, shape, side, what));
  std::vector<int32_t> z = quant::to_int32(*zp);
  for (size_t i = 0; i < v.size(); ++i) v[i] -= z[size_t(zi(int64_t(i)))];
  return v;
}

// The shapes of a numpy.matmul with rank-1 operands promoted to matrices.
struct MatMulDims {
  Shape sa, sb, full;  // full: batch + [M, N], the output before rank-1 dims are dropped
  Shape batch_a, batch_b, batch;
  int64_t m = 0, k = 0, n = 0;
};

Result<MatMulDims> matmul_dims(const KernelCtx& c, const Shape& a, const Shape& b) {
  if (a.empty() || b.empty()) return c.fail("matrix operands must have rank >= 1");
  MatMulDims d;
  d.sa = a.size() == 1 ? Shape{1, a[0]} : a;
  d.sb = b.size() == 1 ? Shape{b[0], 1} : b;
  d.m = d.sa[d.sa.size() - 2];
  d.k = d.sa.back();
  d.n = d.sb.back();
  if (d.sb[d.sb.size() - 2] != d.k)
    return c.fail("inner dimensions differ: " + shape_str(a) + " x " + shape_str(b));
  d.batch_a.assign(d.sa.begin(), d.sa.end() - 2);
  d.batch_b.assign(d.sb.begin(), d.sb.end() - 2);
  auto bt = broadcast_shapes(d.batch_a, d.batch_b);
  if (!bt.ok()) return c.fail(bt.error().message);
  d.batch = *bt;
  d.full = d.batch;
  d.full.push_back(d.m);
  d.full.push_back(d.n);
  return d;
}

// (a - a_zp) x (b - b_zp) over broadcast batches; exact sums wrapped to int32.
Result<std::vector<int32_t>> int_matmul(const KernelCtx& c, const MatMulDims& d, const Tensor& a, const Tensor* azp,
                                        const Tensor& b, const Tensor* bzp) {
  KILN_ASSIGN(std::vector<int32_t> av, minus_zero_point(c, a, d.sa, azp, Side::kRow, "a zero point"));
  KILN_ASSIGN(std::vector<int32_t> bv, minus_zero_point(c, b, d.sb, bzp, Side::kCol, "b zero point"));
  BroadcastIndex ia(d.batch_a, d.batch), ib(d.batch_b, d.batch);
  int64_t nb = numel(d.batch);
  std::vector<int32_t> out(size_t(nb * d.m * d.n));
  std::vector<int64_t> row;
  for (int64_t bi = 0; bi < nb; ++bi)
    int_matmul_2d(av.data() + ia(bi) * d.m * d.k, bv.data() + ib(bi) * d.k * d.n, d.m, d.k, d.n,
                  out.data() + bi * d.m * d.n, row);
  return out;
}

// Real multiplier as numpy computes it: (s1 * s2) / s3 in float32, or in
// float16 steps when all three scales are float16 (bfloat16 likewise).
double real_multiplier(double s1, double s2, double s3, DType common) {
  float p = quant::round_to(common, float(s1) * float(s2));
  return double(quant::round_to(common, p / float(s3)));
}

DType common_scale_dtype(const Tensor& a, const Tensor& b, const Tensor& y) {
  return a.dtype() == b.dtype() && b.dtype() == y.dtype() ? a.dtype() : DType::kF32;
}

// y = saturate(round_half_even(acc * multiplier) + y_zp) into y's dtype: the
// QuantizeLinear rule (and DESIGN.md's Q(w)). ONNX's numpy reference adds y_zp
// before rounding, which differs only on an exact .5 tie with an odd zero point.
void requantize(const std::vector<int32_t>& acc, Tensor& y, auto multiplier, auto zero_point) {
  QRange r = quant::qrange(y.dtype());
  std::vector<int32_t> q(acc.size());
  for (size_t i = 0; i < acc.size(); ++i)
    q[i] = int32_t(quant::round_saturate(std::nearbyint(double(acc[i]) * multiplier(i)) + zero_point(i), r));
  quant::pack_ints(q, y);
}

}  // namespace

Result<void> run_matmul_integer(KernelCtx& c) {
  const Tensor& a = c.input(0);
  const Tensor& b = c.input(1);
  KILN_ASSIGN(MatMulDims d, matmul_dims(c, a.shape(), b.shape()));
  KILN_ASSIGN(std::vector<int32_t> acc, int_matmul(c, d, a, opt_input(c, 2), b, opt_input(c, 3)));
  quant::pack_ints(acc, c.out[0]);
  return {};
}

Result<void> run_qlinear_matmul(KernelCtx& c) {
  // a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point
  const Tensor& a = c.input(0);
  const Tensor& b = c.input(3);
  KILN_ASSIGN(MatMulDims d, matmul_dims(c, a.shape(), b.shape()));
  KILN_ASSIGN(std::vector<int32_t> acc, int_matmul(c, d, a, opt_input(c, 2), b, opt_input(c, 5)));
  const Tensor &as = c.input(1), &bs = c.input(4), &ys = c.input(6), &yz = c.input(7);
  // Per-row/column parameters are broadcast against the full [batch.., M, N].
  KILN_ASSIGN(BroadcastIndex ias, param_index(c, as, d.full, Side::kRow, "a_scale"));
  KILN_ASSIGN(BroadcastIndex ibs, param_index(c, bs, d.full, Side::kCol, "b_scale"));
  KILN_ASSIGN(BroadcastIndex iys, param_index(c, ys, d.full, Side::kCol, "y_scale"));
  KILN_ASSIGN(BroadcastIndex iyz, param_index(c, yz, d.full, Side::kCol, "y_zero_point"));
  std::vector<double> asv = quant::to_double(as), bsv = quant::to_double(bs), ysv = quant::to_double(ys);
  std::vector<int32_t> yzv = quant::to_int32(yz);
  DType common = common_scale_dtype(as, bs, ys);
  requantize(
      acc, c.out[0],
      [&](size_t i) {
        int64_t f = int64_t(i);
        return real_multiplier(asv[size_t(ias(f))], bsv[size_t(ibs(f))], ysv[size_t(iys(f))], common);
      },
      [&](size_t i) { return double(yzv[size_t(iyz(int64_t(i)))]); });
  return {};
}

Result<void> run_conv_integer(KernelCtx& c) {
  KILN_ASSIGN(std::vector<int32_t> acc, int_conv(c, c.attr<ir::ConvAttrs>(), c.input(0), opt_input(c, 2), c.input(1),
                                                 opt_input(c, 3), nullptr));
  quant::pack_ints(acc, c.out[0]);
  return {};
}

Result<void> run_qlinear_conv(KernelCtx& c) {
  // x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B
  const Tensor& w = c.input(3);
  KILN_ASSIGN(std::vector<int32_t> acc, int_conv(c, c.attr<ir::ConvAttrs>(), c.input(0), opt_input(c, 2), w,
                                                 opt_input(c, 5), opt_input(c, 8)));
  KILN_ASSIGN(double xs, scalar_param(c, c.input(1), "x_scale"));
  KILN_ASSIGN(double ys, scalar_param(c, c.input(6), "y_scale"));
  KILN_ASSIGN(double yz, scalar_param(c, c.input(7), "y_zero_point"));
  const Tensor& ws = c.input(4);
  int64_t m = w.dim(0);
  if (ws.numel() != 1 && (ws.rank() != 1 || ws.numel() != m))
    return c.fail("w_scale must be a scalar or 1-D of " + std::to_string(m) + " output channels, got shape " +
                  shape_str(ws.shape()));
  DType common = common_scale_dtype(c.input(1), ws, c.input(6));
  std::vector<double> mult(static_cast<size_t>(m));
  for (int64_t i = 0; i < m; ++i) mult[size_t(i)] = real_multiplier(xs, ws.as_double(ws.numel() == 1 ? 0 : i), ys, common);
  size_t per_channel = acc.size() / size_t(std::max<int64_t>(m, 1) * std::max<int64_t>(c.input(0).dim(0), 1));
  requantize(
      acc, c.out[0], [&](size_t i) { return mult[per_channel ? (i / per_channel) % size_t(m) : 0]; },
      [&](size_t) { return yz; });
  return {};
}

}  // namespace kiln::ref
