// kiln's integer ops on the CPU: QConv and QGemm (ir/ops/kiln_quant.h) on the
// exact int8 GEMM (qgemm.h) with the requantization in its epilogue, and
// per-tensor QuantizeLinear / DequantizeLinear between f32 and 8-bit values.
// Results are bit-identical to the reference backend (quant_kiln.cpp,
// quant.cpp); anything else (per-axis scales, 16-bit activations) declines
// with its reason and runs on the reference kernels.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/qgemm.h"
#include "backends/cpu/step.h"
#include "ir/ops/conv_geometry.h"
#include "ir/ops/kiln_quant.h"
#include "quant/quant_params.h"

namespace kiln::cpu {
namespace {

bool is_8bit(DType t) { return t == DType::kU8 || t == DType::kI8; }

// A constant one-element parameter as double (false: not a constant scalar).
bool const_scalar(const BuildCtx& b, size_t i, double* v) {
  const Tensor* t = b.constant(i);
  if (!t || t->numel() != 1) return false;
  *v = t->as_double(0);
  return true;
}

// The per-output-channel requantization of QConv / QGemm, computed as the
// reference's output_params does (quant_kiln.cpp), plus the int32 bias.
// Inputs: 1 x_scale, 2 x_zp, 4 w_scale, 5 w_zp (all 0), 6 y_scale, 7 y_zp, 8 bias.
Result<std::vector<QRow>> make_rows(const BuildCtx& b, int64_t channels, bool fused_relu, int32_t* x_zp,
                                    std::string* why) {
  std::vector<QRow> rows;
  double xs, xz, ys, yz;
  if (!const_scalar(b, 1, &xs) || !const_scalar(b, 2, &xz) || !const_scalar(b, 6, &ys) || !const_scalar(b, 7, &yz)) {
    *why = "scales or zero points are not constant scalars";
    return rows;
  }
  const Tensor* ws = b.constant(4);
  const Tensor* wz = b.constant(5);
  if (!ws || !wz || (ws->numel() != 1 && ws->numel() != channels)) {
    *why = "weight scales are not constant per tensor or per output channel";
    return rows;
  }
  for (int64_t i = 0; i < wz->numel(); ++i)
    if (wz->as_int(i) != 0) {
      *why = "weight zero points are not 0";
      return rows;
    }
  const Tensor* bias = b.has(8) ? b.constant(8) : nullptr;
  if (b.has(8) && (!bias || bias->dtype() != DType::kI32 || bias->numel() != channels)) {
    *why = "bias is not a constant int32 vector per output channel";
    return rows;
  }
  const DType yt = b.in_type(7).dtype;
  const int64_t qlo = yt == DType::kI8 ? -128 : 0, qhi = yt == DType::kI8 ? 127 : 255;
  rows.resize(size_t(channels));
  for (int64_t ch = 0; ch < channels; ++ch) {
    const double real = xs * ws->as_double(ws->numel() == 1 ? 0 : ch) / ys;
    auto r = kiln::quant::make_requant(real);
    if (!r.ok()) {  // the reference kernel reports it
      *why = "output channel " + std::to_string(ch) + ": " + r.error().message;
      return std::vector<QRow>();
    }
    QRow& q = rows[size_t(ch)];
    q.set_requant(r->multiplier, r->shift);
    q.zero_point = int32_t(yz);
    q.hi = int32_t(qhi);
    q.lo = int32_t(fused_relu ? std::max<int64_t>(qlo, q.zero_point) : qlo);
    q.bias = bias ? bias->data<int32_t>()[ch] : 0;
  }
  *x_zp = int32_t(xz);
  return rows;
}

// Operand and output types every integer op here needs.
bool int8_types(const BuildCtx& b, std::string* why) {
  if (!is_8bit(b.in_type(0).dtype) || !is_8bit(b.out_type().dtype) || b.in_type(3).dtype != DType::kI8) {
    *why = "operands are not 8-bit (u8/i8 activations, i8 weights)";
    return false;
  }
  for (size_t i = 0; i < 8; ++i)
    if (!b.has(i)) {
      *why = "input " + std::to_string(i) + " is missing";
      return false;
    }
  return true;
}

class QConvStep final : public Step {
 public:
  int64_t n = 0, c = 0, h = 0, w = 0, m = 0, group = 1, oh = 0, ow = 0, hp = 0, wp = 0, pt = 0, pl = 0;
  ir::ValueId x, y;
  bool x_signed = false, y_signed = false;
  int32_t x_zp = 0;
  std::vector<QPacked> weights;  // per group
  const int8_t* wsrc = nullptr;   // [m, c/group, kh, kw], alive as long as the graph
  std::vector<QRow> rows;
  MatrixView view;                // im2col of one group of one padded image
  std::vector<uint8_t> scratch;   // the padded input (padding = the zero point)
  const QKernels* qk = nullptr;

  Result<void> run(RunCtx& rc) override {
    const uint8_t* in = static_cast<const uint8_t*>(rc.addr[size_t(x)]);
    if (hp != h || wp != w) {
      scratch.resize(size_t(n * c * hp * wp));
      pad(in, rc.pool);
      in = scratch.data();
    }
    const int64_t cg = c / group, mg = m / group;
    std::vector<QGemmJob> jobs;
    jobs.reserve(size_t(n * group));
    for (int64_t b = 0; b < n; ++b)
      for (int64_t g = 0; g < group; ++g) {
        QGemmJob j;
        j.m = mg;
        j.n = oh * ow;
        j.k = weights[size_t(g)].k;
        j.w = &weights[size_t(g)];
        j.x = in + (b * c + g * cg) * hp * wp;
        j.x_view = &view;
        j.x_signed = x_signed;
        j.x_zp = x_zp;
        j.rows = rows.data() + g * mg;
        j.out = static_cast<uint8_t*>(rc.addr[size_t(y)]) + (b * m + g * mg) * oh * ow;
        j.ld_ch = oh * ow;
        j.out_signed = y_signed;
        jobs.push_back(j);
      }
    qgemm(jobs.data(), int64_t(jobs.size()), *qk, rc.pool);
    return {};
  }

 private:
  void pad(const uint8_t* in, ThreadPool* pool) {
    const uint8_t fill = uint8_t(x_zp);  // the bit pattern of the zero point in either signedness
    parallel_ranges(pool, n * c, 4, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        uint8_t* dst = scratch.data() + p * hp * wp;
        std::memset(dst, fill, size_t(hp * wp));
        for (int64_t yy = 0; yy < h; ++yy) std::memcpy(dst + (yy + pt) * wp + pl, in + (p * h + yy) * w, size_t(w));
      }
    });
  }
};

class QGemmStep final : public Step {
 public:
  ir::ValueId a, y;
  QPacked weights;  // B^T: [n out channels x k]
  std::vector<QRow> rows;
  MatrixView view;  // A^T: k rows x `rows` columns
  int64_t rows_ = 0, k = 0, nout = 0;
  bool a_signed = false, y_signed = false;
  int32_t a_zp = 0;
  const QKernels* qk = nullptr;

  Result<void> run(RunCtx& rc) override {
    QGemmJob j;
    j.m = nout;
    j.n = rows_;
    j.k = k;
    j.w = &weights;
    j.x = rc.addr[size_t(a)];
    j.x_view = &view;
    j.x_signed = a_signed;
    j.x_zp = a_zp;
    j.rows = rows.data();
    j.out = rc.addr[size_t(y)];
    j.ld_ch = 1;
    j.ld_col = nout;
    j.out_signed = y_signed;
    qgemm(&j, 1, *qk, rc.pool);
    return {};
  }
};

class QuantizeStep final : public Step {
 public:
  ir::ValueId x, y;
  int64_t count = 0;
  float scale = 1;
  int32_t zp = 0, lo = 0, hi = 255;
  bool is_signed = false;
  const QKernels* qk = nullptr;
  Result<void> run(RunCtx& rc) override {
    const float* in = rc.f(x);
    uint8_t* out = static_cast<uint8_t*>(rc.addr[size_t(y)]);
    parallel_ranges(rc.pool, count, 16384, [&](int64_t b, int64_t e) {
      qk->quantize_row(in + b, e - b, scale, zp, lo, hi, out + b, is_signed);
    });
    return {};
  }
};

class DequantizeStep final : public Step {
 public:
  ir::ValueId x, y;
  int64_t count = 0;
  float scale = 1;
  int32_t zp = 0;
  bool is_signed = false;
  const QKernels* qk = nullptr;
  Result<void> run(RunCtx& rc) override {
    const uint8_t* in = static_cast<const uint8_t*>(rc.addr[size_t(x)]);
    float* out = rc.f(y);
    parallel_ranges(rc.pool, count, 16384,
                    [&](int64_t b, int64_t e) { qk->dequantize_row(in + b, is_signed, e - b, zp, scale, out + b); });
    return {};
  }
};

// The f32 scale and 8-bit zero point of a per-tensor QuantizeLinear /
// DequantizeLinear (inputs 1 and 2); false with *why otherwise.
// The scale and zero point at inputs `at` and `at` + 1 (Q/DQ: 1 and 2).
bool per_tensor_params(const BuildCtx& b, float* scale, int32_t* zp, std::string* why, size_t at = 1) {
  const Tensor* s = b.constant(at);
  if (!s || s->numel() != 1 || s->dtype() != DType::kF32) {
    *why = "scale is not a constant f32 scalar (per-axis and blocked run on the reference)";
    return false;
  }
  *scale = s->data<float>()[0];
  *zp = 0;
  if (b.has(at + 1)) {
    const Tensor* z = b.constant(at + 1);
    if (!z || z->shape() != s->shape()) {
      *why = "zero point is not a constant of the scale's shape";
      return false;
    }
    *zp = int32_t(z->as_int(0));
  }
  return true;
}

// QAdd: the float chain DQ(a) + DQ(b) [-> Relu] -> Q over chunks that stay
// in L1, with the kernel set's DQ and Q rows (bit-identical to the ONNX ops:
// qkernels.h) and the float add and Relu between them.
class QAddStep final : public Step {
 public:
  ir::ValueId a, b, y;
  int64_t count = 0;
  float sa = 1, sb = 1, sy = 1;
  int32_t za = 0, zb = 0, zy = 0, lo = 0, hi = 255;
  bool a_signed = false, b_signed = false, y_signed = false, relu = false;
  const QKernels* qk = nullptr;
  Result<void> run(RunCtx& rc) override {
    const uint8_t* pa = static_cast<const uint8_t*>(rc.addr[size_t(a)]);
    const uint8_t* pb = static_cast<const uint8_t*>(rc.addr[size_t(b)]);
    uint8_t* out = static_cast<uint8_t*>(rc.addr[size_t(y)]);
    constexpr int64_t kChunk = 1024;
    parallel_ranges(rc.pool, count, 16384, [&](int64_t lo_i, int64_t hi_i) {
      alignas(64) float fa[kChunk], fb[kChunk];
      for (int64_t i0 = lo_i; i0 < hi_i; i0 += kChunk) {
        const int64_t n = std::min(kChunk, hi_i - i0);
        qk->dequantize_row(pa + i0, a_signed, n, za, sa, fa);
        qk->dequantize_row(pb + i0, b_signed, n, zb, sb, fb);
        for (int64_t i = 0; i < n; ++i) fa[i] += fb[i];
        if (relu)
          for (int64_t i = 0; i < n; ++i) fa[i] = fa[i] > 0.0f ? fa[i] : 0.0f;
        qk->quantize_row(fa, n, sy, zy, lo, hi, out + i0, y_signed);
      }
    });
    return {};
  }
};

}  // namespace

Result<std::unique_ptr<Step>> build_qadd(const BuildCtx& b, std::string* why) {
  auto st = std::make_unique<QAddStep>();
  if (b.in_type(0).shape != b.in_type(3).shape || !is_static(b.in_type(0).shape))
    return decline(why, "a and b differ in shape or are not static");
  if (!per_tensor_params(b, &st->sa, &st->za, why, 1) || !per_tensor_params(b, &st->sb, &st->zb, why, 4) ||
      !per_tensor_params(b, &st->sy, &st->zy, why, 6))
    return std::unique_ptr<Step>();
  st->a = b.n.inputs[0];
  st->b = b.n.inputs[3];
  st->y = b.n.outputs[0];
  st->count = numel(b.in_type(0).shape);
  st->a_signed = b.in_type(0).dtype == DType::kI8;
  st->b_signed = b.in_type(3).dtype == DType::kI8;
  st->y_signed = b.out_type().dtype == DType::kI8;
  st->lo = st->y_signed ? -128 : 0;
  st->hi = st->y_signed ? 127 : 255;
  st->relu = b.n.attr<ir::QAddAttrs>().fused_relu != 0;
  st->qk = &qkernels(b.ks.isa);
  st->kernel = std::string("add_qs8 (dequantize, add, ") + (st->relu ? "relu, " : "") + "quantize)";
  return std::unique_ptr<Step>(std::move(st));
}

namespace {

// Depthwise QConv (one input and one output channel per group, MobileNet's
// 3x3 layers): each plane is widened to int16 minus the zero point into a
// per-thread zero-bordered buffer, every output row is accumulated tap by tap
// in int32 (contiguous along the row for stride 1, so the loop vectorizes),
// then requantized with its channel's QRow. Exact like the GEMM path.
class QDepthwiseStep final : public Step {
 public:
  int64_t n = 0, c = 0, h = 0, w = 0, kh = 0, kw = 0, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, oh = 0, ow = 0,
          hp = 0, wp = 0;
  ir::ValueId x, y;
  bool x_signed = false, y_signed = false;
  int32_t x_zp = 0;
  std::vector<int16_t> weights;  // [c][kh * kw]
  std::vector<QRow> rows;
  const QKernels* qk = nullptr;

  Result<void> run(RunCtx& rc) override {
    const uint8_t* in = static_cast<const uint8_t*>(rc.addr[size_t(x)]);
    uint8_t* out = static_cast<uint8_t*>(rc.addr[size_t(y)]);
    parallel_ranges(rc.pool, n * c, 1, [&](int64_t b, int64_t e) {
      thread_local std::vector<int16_t> pad;
      thread_local std::vector<int32_t> acc;
      pad.resize(size_t(hp * wp));
      acc.resize(size_t(ow));
      for (int64_t p = b; p < e; ++p) {
        const int64_t ch = p % c;
        std::fill(pad.begin(), pad.end(), int16_t(0));
        const uint8_t* src = in + p * h * w;
        for (int64_t yy = 0; yy < h; ++yy) {
          int16_t* row = pad.data() + (yy + pt) * wp + pl;
          const uint8_t* s = src + yy * w;
          if (x_signed)
            for (int64_t xx = 0; xx < w; ++xx) row[xx] = int16_t(int32_t(int8_t(s[xx])) - x_zp);
          else
            for (int64_t xx = 0; xx < w; ++xx) row[xx] = int16_t(int32_t(s[xx]) - x_zp);
        }
        const int16_t* wt = weights.data() + ch * kh * kw;
        uint8_t* dst = out + p * oh * ow;
        for (int64_t oy = 0; oy < oh; ++oy) {
          int32_t* a = acc.data();
          std::fill(a, a + ow, 0);
          for (int64_t ky = 0; ky < kh; ++ky)
            for (int64_t kx = 0; kx < kw; ++kx) {
              const int32_t wv = wt[ky * kw + kx];
              const int16_t* r = pad.data() + (oy * sh + ky * dh) * wp + kx * dw;
              if (sw == 1)
                for (int64_t ox = 0; ox < ow; ++ox) a[ox] += wv * int32_t(r[ox]);
              else
                for (int64_t ox = 0; ox < ow; ++ox) a[ox] += wv * int32_t(r[ox * sw]);
            }
          qk->requant_row(a, ow, rows[size_t(ch)], dst + oy * ow, y_signed);
        }
      }
    });
    return {};
  }
};

// The direct kernel's weights, im2col view and plan text.
void finish_qconv_direct(QConvStep& s, const ir::WindowGeometry& geo, int64_t cg, int64_t mg, int64_t kh, int64_t kw,
                         bool relu) {
  const int8_t* wd = s.wsrc;
  const int64_t kk = cg * kh * kw;
  for (int64_t g = 0; g < s.group; ++g) {
    s.weights.push_back(qpack_w(wd + g * mg * kk, mg, kk, kk, 1, *s.qk));
    fold_x_zero_point(s.weights.back(), s.x_zp, s.x_signed, s.rows.data() + g * mg);
  }
  MatrixView& v = s.view;
  for (int64_t ci = 0; ci < cg; ++ci)
    for (int64_t ky = 0; ky < kh; ++ky)
      for (int64_t kx = 0; kx < kw; ++kx)
        v.row_off.push_back(ci * s.hp * s.wp + ky * geo.dilations[0] * s.wp + kx * geo.dilations[1]);
  for (int64_t oy = 0; oy < s.oh; ++oy)
    for (int64_t ox = 0; ox < s.ow; ++ox) v.col_off.push_back(oy * geo.strides[0] * s.wp + ox * geo.strides[1]);
  s.kernel = std::string("conv2d_qs8_implicit_gemm(") + s.qk->qgemm_name + ") " + std::to_string(kh) + "x" +
               std::to_string(kw) + "s" + std::to_string(geo.strides[0]) +
               (s.group > 1 ? " group " + std::to_string(s.group) : "") + " +requant" +
               (relu ? " +relu" : "");
}

}  // namespace

Result<std::unique_ptr<Step>> build_qconv(const BuildCtx& b, std::string* why) {
  if (!int8_types(b, why)) return std::unique_ptr<Step>();
  const Tensor* w = b.constant(3);
  if (!w) return decline(why, "weights are not a constant");
  const Shape& xs = b.in_type(0).shape;
  if (xs.size() != 4) return decline(why, "not a 2-D convolution");
  const auto& a = b.n.attr<ir::QConvAttrs>();
  KILN_ASSIGN(auto geo, ir::conv_geometry(a, xs, w->shape()));
  auto st = std::make_unique<QConvStep>();
  st->n = xs[0];
  st->c = xs[1];
  st->h = xs[2];
  st->w = xs[3];
  st->m = w->shape()[0];
  st->group = a.group;
  if (st->group < 1 || st->c % st->group || st->m % st->group || w->shape()[1] != st->c / st->group)
    return decline(why, "channel groups do not match the weights");
  const int64_t cg = st->c / st->group, mg = st->m / st->group;
  int32_t x_zp = 0;
  KILN_ASSIGN(st->rows, make_rows(b, st->m, a.fused_relu != 0, &x_zp, why));
  if (st->rows.empty()) return std::unique_ptr<Step>();
  if (cg == 1 && mg == 1 && st->group > 1) {
    auto dw = std::make_unique<QDepthwiseStep>();
    dw->n = xs[0];
    dw->c = xs[1];
    dw->h = xs[2];
    dw->w = xs[3];
    dw->kh = geo.kernel[0];
    dw->kw = geo.kernel[1];
    dw->sh = geo.strides[0];
    dw->sw = geo.strides[1];
    dw->dh = geo.dilations[0];
    dw->dw = geo.dilations[1];
    dw->pt = geo.pads_begin[0];
    dw->pl = geo.pads_begin[1];
    dw->oh = geo.out[0];
    dw->ow = geo.out[1];
    dw->hp = geo.padded(0);
    dw->wp = geo.padded(1);
    dw->x = b.n.inputs[0];
    dw->y = b.n.outputs[0];
    dw->x_signed = b.in_type(0).dtype == DType::kI8;
    dw->y_signed = b.out_type().dtype == DType::kI8;
    dw->x_zp = x_zp;
    dw->rows = std::move(st->rows);
    dw->qk = &qkernels(b.ks.isa);
    dw->weights.assign(w->data<int8_t>(), w->data<int8_t>() + w->numel());
    dw->kernel = "conv2d_qs8_depthwise_direct " + std::to_string(dw->kh) + "x" + std::to_string(dw->kw) + "s" +
                 std::to_string(dw->sh) + " +requant" + (a.fused_relu ? " +relu" : "");
    return std::unique_ptr<Step>(std::move(dw));
  }
  st->x_zp = x_zp;
  st->oh = geo.out[0];
  st->ow = geo.out[1];
  st->pt = geo.pads_begin[0];
  st->pl = geo.pads_begin[1];
  st->hp = geo.padded(0);
  st->wp = geo.padded(1);
  st->x = b.n.inputs[0];
  st->y = b.n.outputs[0];
  st->x_signed = b.in_type(0).dtype == DType::kI8;
  st->y_signed = b.out_type().dtype == DType::kI8;
  st->qk = &qkernels(b.ks.isa);
  const int64_t kh = geo.kernel[0], kw = geo.kernel[1];
  st->wsrc = w->data<int8_t>();
  if (st->group == 1 && kh == 3 && kw == 3 && geo.strides[0] == 1 && geo.strides[1] == 1 && geo.dilations[0] == 1 &&
      geo.dilations[1] == 1 && b.conv3x3 != "direct") {
    int64_t max_w = 0;
    for (int64_t i = 0; i < w->numel(); ++i) max_w = std::max<int64_t>(max_w, std::abs(int64_t(w->data<int8_t>()[i])));
    const int64_t xlo = st->x_signed ? -128 : 0, xhi = st->x_signed ? 127 : 255;
    const int64_t max_x = std::max(int64_t(x_zp) - xlo, xhi - int64_t(x_zp));
    if (qwinograd_exact(st->c, max_x, max_w)) {
      QWinogradDesc d{st->n, st->c, st->h, st->w, st->m, st->pt, st->pl, st->oh, st->ow, w->data<int8_t>(),
                      st->rows, st->x, st->y, st->x_signed, st->y_signed, x_zp};
      const QKernels& pairs = qkernels_pairs(b.ks.isa);
      std::unique_ptr<Step> wino = make_qwinograd_conv(d, pairs);
      if (a.fused_relu) wino->kernel += " +relu";
      if (b.conv3x3 == "winograd") return wino;
      // As for fp32 (ops_conv.cpp): at half the direct multiplies or less, no
      // timing, when both run on the same pair kernel. A quad (VNNI) direct
      // kernel does four times the multiply-adds per instruction: timed.
      const int nr = pairs.nr;
      auto up = [&](int64_t v) { return (v + nr - 1) / nr * nr; };
      const double ratio = 16.0 * double(up(((st->oh + 1) / 2) * ((st->ow + 1) / 2))) / (9.0 * double(up(st->oh * st->ow)));
      if (ratio <= 0.5 && st->qk->kg == 2) {
        char note[64];
        std::snprintf(note, sizeof note, " [%.2fx the direct multiplies: not timed]", ratio);
        wino->kernel += note;
        return wino;
      }
      if (b.probe) {
        finish_qconv_direct(*st, geo, cg, mg, kh, kw, a.fused_relu != 0);
        // Both kernels on the real shapes, once: the faster is kept (the plan shows both times).
        const double tw = time_step(*wino, *b.probe), td = time_step(*st, *b.probe);
        char note[96];
        std::snprintf(note, sizeof note, " [measured winograd %.3f ms, direct %.3f ms]", tw, td);
        if (tw < td) {
          wino->kernel += note;
          return wino;
        }
        st->kernel += note;
        return std::unique_ptr<Step>(std::move(st));
      }
    }
  }
  finish_qconv_direct(*st, geo, cg, mg, kh, kw, a.fused_relu != 0);
  return std::unique_ptr<Step>(std::move(st));
}

Result<std::unique_ptr<Step>> build_qgemm(const BuildCtx& b, std::string* why) {
  if (!int8_types(b, why)) return std::unique_ptr<Step>();
  const Tensor* w = b.constant(3);
  if (!w || w->rank() != 2) return decline(why, "weights are not a constant matrix");
  const auto& at = b.n.attr<ir::QGemmAttrs>();
  const Shape& as = b.in_type(0).shape;
  if (as.size() < 2) return decline(why, "a has rank < 2");
  auto st = std::make_unique<QGemmStep>();
  st->k = as.back();
  st->nout = w->shape()[at.transB ? 0 : 1];
  if (w->shape()[at.transB ? 1 : 0] != st->k) return decline(why, "inner dimensions differ");
  st->rows_ = numel(as) / std::max<int64_t>(1, st->k);
  int32_t a_zp = 0;
  KILN_ASSIGN(st->rows, make_rows(b, st->nout, at.fused_relu != 0, &a_zp, why));
  if (st->rows.empty()) return std::unique_ptr<Step>();
  st->a_zp = a_zp;
  st->a = b.n.inputs[0];
  st->y = b.n.outputs[0];
  st->a_signed = b.in_type(0).dtype == DType::kI8;
  st->y_signed = b.out_type().dtype == DType::kI8;
  st->qk = &qkernels(b.ks.isa);
  // Output channel ch, input k: W^T[ch, k] = w[k, ch] (or w[ch, k] when transB).
  st->weights = at.transB ? qpack_w(w->data<int8_t>(), st->nout, st->k, st->k, 1, *st->qk)
                          : qpack_w(w->data<int8_t>(), st->nout, st->k, 1, st->nout, *st->qk);
  fold_x_zero_point(st->weights, st->a_zp, st->a_signed, st->rows.data());
  st->view = MatrixView::dense(st->k, st->rows_, st->k, /*transposed=*/true);
  st->kernel = std::string("gemm_qs8(") + st->qk->qgemm_name + ") +requant" + (at.fused_relu ? " +relu" : "");
  return std::unique_ptr<Step>(std::move(st));
}

Result<std::unique_ptr<Step>> build_quantize(const BuildCtx& b, std::string* why) {
  const DType yt = b.out_type().dtype;
  if (b.in_type(0).dtype != DType::kF32 || !is_8bit(yt)) return decline(why, "not f32 -> u8/i8");
  auto st = std::make_unique<QuantizeStep>();
  if (!per_tensor_params(b, &st->scale, &st->zp, why)) return std::unique_ptr<Step>();
  st->x = b.n.inputs[0];
  st->y = b.n.outputs[0];
  st->count = numel(b.in_type(0).shape);
  st->is_signed = yt == DType::kI8;
  st->lo = st->is_signed ? -128 : 0;
  st->hi = st->is_signed ? 127 : 255;
  st->qk = &qkernels(b.ks.isa);
  st->kernel = std::string("quantize_f32_") + (st->is_signed ? "s8" : "u8");
  return std::unique_ptr<Step>(std::move(st));
}

Result<std::unique_ptr<Step>> build_dequantize(const BuildCtx& b, std::string* why) {
  const DType xt = b.in_type(0).dtype;
  if (!is_8bit(xt) || b.out_type().dtype != DType::kF32) return decline(why, "not u8/i8 -> f32");
  auto st = std::make_unique<DequantizeStep>();
  if (!per_tensor_params(b, &st->scale, &st->zp, why)) return std::unique_ptr<Step>();
  st->x = b.n.inputs[0];
  st->y = b.n.outputs[0];
  st->count = numel(b.in_type(0).shape);
  st->is_signed = xt == DType::kI8;
  st->qk = &qkernels(b.ks.isa);
  st->kernel = std::string("dequantize_") + (st->is_signed ? "s8" : "u8") + "_f32";
  return std::unique_ptr<Step>(std::move(st));
}

}  // namespace kiln::cpu
