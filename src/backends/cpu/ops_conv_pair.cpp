// An expansion 1x1 convolution and the depthwise convolution that reads it
// (MobileNet-v2's inverted residual blocks) as one step: the expanded tensor
// never leaves cache. A task takes one image, one band of output rows and a
// run of chunks of expanded channels; per chunk it computes the expansion
// rows that the band's depthwise windows read into a per-thread buffer (the
// GEMM driver, bias and activation in its epilogue) and runs the
// channel-blocked depthwise kernel over that buffer straight into the
// output. Bands overlap by the window's extra rows, which are computed
// twice; chunks and bands are sized so that a chunk's buffer and its input
// rows fit in half of L2 (expand_depthwise_tiling).
//
// Separately, the expansion wrote its output to memory and the depthwise
// read it back: at batch 32 MobileNet-v2's 16 -> 96 expansion at 112x112
// writes 154 MiB. The pair is chosen in cpu_backend.cpp before the memory
// plan, which then gives the intermediate no bytes.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "backends/cpu/cpu_info.h"
#include "backends/cpu/step.h"
#include "ir/ops/conv_geometry.h"
#include "ir/ops/kiln_fused.h"

namespace kiln::cpu {
namespace {

struct ConvParts {
  const Tensor* w = nullptr;
  const Tensor* bias = nullptr;
  Act act = Act::kNone;
  float alpha = 0, beta = 0;
  ir::WindowGeometry geo;
};

// The pieces of a Conv / FusedConv that this step takes: f32, 2-D, constant
// weights and bias, no residual, an activation the kernels apply in
// registers (none, Relu, Clip). False for anything else.
bool conv_parts(const ir::Graph& g, const ir::Node& n, ConvParts* p) {
  if (n.op != ir::OpKind::kConv && n.op != ir::OpKind::kFusedConv) return false;
  if (n.inputs.size() < 2 || n.outputs.size() != 1 || n.outputs[0] == ir::kNoValue) return false;
  const ir::Value& x = g.value(n.inputs[0]);
  if (x.type.dtype != DType::kF32 || !x.type.rank_known || x.type.shape.size() != 4 || !is_static(x.type.shape))
    return false;
  const ir::Value& w = g.value(n.inputs[1]);
  if (!w.is_constant() || w.constant.dtype() != DType::kF32) return false;
  p->w = &w.constant;
  if (n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
    const ir::Value& b = g.value(n.inputs[2]);
    if (!b.is_constant() || b.constant.dtype() != DType::kF32) return false;
    p->bias = &b.constant;
  }
  if (n.inputs.size() > 3 && n.inputs[3] != ir::kNoValue) return false;  // a residual
  const ir::ConvAttrs& a = n.op == ir::OpKind::kFusedConv
                               ? static_cast<const ir::ConvAttrs&>(n.attr<ir::FusedConvAttrs>())
                               : n.attr<ir::ConvAttrs>();
  if (n.op == ir::OpKind::kFusedConv) {
    const auto& f = n.attr<ir::FusedConvAttrs>();
    p->act = act_of(f.activation);
    p->alpha = f.activation_alpha;
    p->beta = f.activation_beta;
    if (p->act != Act::kNone && p->act != Act::kRelu && p->act != Act::kClip) return false;
  }
  auto geo = ir::conv_geometry(a, x.type.shape, w.constant.shape());
  if (!geo.ok() || geo->rank() != 2) return false;
  p->geo = std::move(geo).value();
  return true;
}

bool is_expansion(const ConvParts& p, const ir::Node& n) {
  const ir::WindowGeometry& g = p.geo;
  const ir::ConvAttrs& a = n.op == ir::OpKind::kFusedConv
                               ? static_cast<const ir::ConvAttrs&>(n.attr<ir::FusedConvAttrs>())
                               : n.attr<ir::ConvAttrs>();
  for (size_t i = 0; i < 2; ++i)
    if (g.kernel[i] != 1 || g.strides[i] != 1 || g.pads_begin[i] != 0 || g.pads_end[i] != 0) return false;
  return a.group == 1;
}

class ExpandDepthwiseStep final : public Step {
 public:
  int64_t n, c, e, h, w, k, s, pt, pl, wp, oh, ow;
  ExpandDepthwiseTiling t;
  ir::ValueId x, y;
  std::vector<Packed> expand;  // per chunk: its rows of the [e, c] weights
  std::vector<float> expand_bias, dw_weights, dw_bias;  // dw_weights: [e / 8][k * k][8]
  MatrixView view;                                       // rows: input planes; columns: pixels of a band
  Act act1 = Act::kNone, act2 = Act::kNone;
  float alpha1 = 0, beta1 = 0, alpha2 = 0, beta2 = 0;

  Result<void> run(RunCtx& ctx) override {
    const float* in = ctx.f(x);
    float* out = ctx.f(y);
    const int64_t bands = (oh + t.band - 1) / t.band, chunks = (e + t.chunk - 1) / t.chunk;
    const int64_t units = n * bands * t.groups;
    auto body = [&](int64_t u, int) {
      thread_local std::vector<float> buf, scratch;
      const int64_t grp = u % t.groups, band = u / t.groups % bands, img = u / t.groups / bands;
      const int64_t oy0 = band * t.band, oy1 = std::min(oh, oy0 + t.band);
      const int64_t top = oy0 * s - pt, iy0 = std::max<int64_t>(0, top), iy1 = std::min(h, (oy1 - 1) * s - pt + k);
      const int64_t rows = std::max<int64_t>(0, iy1 - iy0), px = rows * w;
      if (buf.size() < size_t(t.chunk * px)) buf.resize(size_t(t.chunk * px));
      for (int64_t ch = grp * chunks / t.groups; ch < (grp + 1) * chunks / t.groups; ++ch) {
        const int64_t e0 = ch * t.chunk, ce = std::min(t.chunk, e - e0);
        if (px > 0) {
          GemmJob j;
          j.m = ce;
          j.n = px;
          j.k = c;
          j.a_packed = &expand[size_t(ch)];
          j.b = in + img * c * h * w + iy0 * w;
          j.b_view = &view;
          j.c = buf.data();
          j.ldc = px;
          j.epi.bias = expand_bias.data() + e0;
          j.epi.act = act1;
          j.epi.alpha = alpha1;
          j.epi.beta = beta1;
          gemm_f32(&j, 1, ctx.ks, nullptr);
        }
        for (int64_t q = 0; q < ce; q += 8) {
          Depthwise8Args a{buf.data() + q * px, out + ((img * e + e0 + q) * oh + oy0) * ow, px, oh * ow,
                           dw_weights.data() + (e0 + q) * k * k, dw_bias.data() + e0 + q,
                           rows, w, iy0 - top, pl, (oy1 - oy0 - 1) * s + k, wp, oy1 - oy0, ow, k, s,
                           act2, alpha2, beta2, nullptr};
          if (scratch.size() < size_t(depthwise8_scratch_floats(a))) scratch.resize(size_t(depthwise8_scratch_floats(a)));
          a.scratch = scratch.data();
          ctx.ks.depthwise8(a);
        }
      }
    };
    if (ctx.pool) ctx.pool->parallel_for(units, body);
    else
      for (int64_t u = 0; u < units; ++u) body(u, 0);
    return {};
  }
};

}  // namespace

ExpandDepthwiseTiling expand_depthwise_tiling(int64_t n, int64_t c, int64_t e, int64_t h, int64_t w, int64_t oh,
                                              int64_t k, int64_t s, int mr, int threads, int64_t budget_bytes) {
  const int64_t step = std::lcm<int64_t>(8, mr), least = std::min(e, step);
  auto in_rows = [&](int64_t band) { return std::min(h, (band - 1) * s + k); };
  auto bytes = [&](int64_t chunk, int64_t band) { return (chunk + c) * in_rows(band) * w * int64_t(sizeof(float)); };
  ExpandDepthwiseTiling t{least, oh, 1};
  if (bytes(least, oh) <= budget_bytes) {
    while (t.chunk + step <= e && bytes(t.chunk + step, oh) <= budget_bytes) t.chunk += step;
    if (t.chunk + step > e && bytes(e, oh) <= budget_bytes) t.chunk = e;
  } else {
    while (t.band > 1 && bytes(least, t.band) > budget_bytes) --t.band;
  }
  // Enough tasks for the threads (4 each evens out the tail): smaller
  // chunks first, then thinner bands.
  const int64_t want = 4 * int64_t(threads);
  auto bands = [&] { return (oh + t.band - 1) / t.band; };
  auto chunks = [&] { return (e + t.chunk - 1) / t.chunk; };
  if (n * bands() * chunks() < want) {
    const int64_t parts = (want + n * bands() - 1) / (n * bands());
    t.chunk = std::max(least, ((e + parts - 1) / parts + step - 1) / step * step);
    if (t.chunk >= e) t.chunk = e;
  }
  if (n * bands() * chunks() < want) {
    const int64_t parts = std::min(oh, (want + n * chunks() - 1) / (n * chunks()));
    t.band = std::max<int64_t>(1, std::min(t.band, (oh + parts - 1) / parts));
  }
  if (n * bands() < want) t.groups = std::min(chunks(), (want + n * bands() - 1) / (n * bands()));
  return t;
}

bool expand_depthwise_fusable(const ir::Graph& g, const ir::Node& a, const ir::Node& b) {
  ConvParts pa, pb;
  if (!conv_parts(g, a, &pa) || !conv_parts(g, b, &pb) || !is_expansion(pa, a)) return false;
  if (b.inputs[0] != a.outputs[0]) return false;
  const Shape& xs = g.value(a.inputs[0]).type.shape;
  const Shape& ws = pa.w->shape();
  const int64_t e = ws[0];
  const Shape& ys = g.value(a.outputs[0]).type.shape;
  if (ys.size() != 4 || ys[1] != e || ys[2] != xs[2] || ys[3] != xs[3]) return false;
  const ir::ConvAttrs& ab = b.op == ir::OpKind::kFusedConv
                                ? static_cast<const ir::ConvAttrs&>(b.attr<ir::FusedConvAttrs>())
                                : b.attr<ir::ConvAttrs>();
  const ir::WindowGeometry& gb = pb.geo;
  if (ab.group != e || pb.w->shape()[0] != e || pb.w->shape()[1] != 1 || e % 8 != 0) return false;
  if (!depthwise8_takes(gb.kernel[0], gb.kernel[1], gb.strides[0], gb.strides[1], gb.dilations[0], gb.dilations[1]))
    return false;
  // The padded plane the depthwise kernel reads: pads on both sides, no
  // window past the bottom or right edge beyond them.
  return gb.padded(0) == gb.in[0] + gb.pads_begin[0] + gb.pads_end[0] &&
         gb.padded(1) == gb.in[1] + gb.pads_begin[1] + gb.pads_end[1];
}

Result<std::unique_ptr<Step>> build_expand_depthwise(const BuildCtx& b, const ir::Node& dw) {
  ConvParts pa, pb;
  if (!expand_depthwise_fusable(b.g, b.n, dw) || !conv_parts(b.g, b.n, &pa) || !conv_parts(b.g, dw, &pb))
    return make_error(b.g.describe(b.n) + ": not an expansion + depthwise pair");
  const Shape& xs = b.in_type(0).shape;
  auto st = std::make_unique<ExpandDepthwiseStep>();
  ExpandDepthwiseStep& p = *st;
  const ir::WindowGeometry& g = pb.geo;
  p.n = xs[0];
  p.c = xs[1];
  p.h = xs[2];
  p.w = xs[3];
  p.e = pa.w->shape()[0];
  p.k = g.kernel[0];
  p.s = g.strides[0];
  p.pt = g.pads_begin[0];
  p.pl = g.pads_begin[1];
  p.wp = g.padded(1);
  p.oh = g.out[0];
  p.ow = g.out[1];
  p.x = b.n.inputs[0];
  p.y = dw.outputs[0];
  p.act1 = pa.act;
  p.alpha1 = pa.alpha;
  p.beta1 = pa.beta;
  p.act2 = pb.act;
  p.alpha2 = pb.alpha;
  p.beta2 = pb.beta;
  p.t = expand_depthwise_tiling(p.n, p.c, p.e, p.h, p.w, p.oh, p.k, p.s, b.ks.mr, b.threads,
                                cpu_info().l2_bytes / 2);
  const float* w1 = pa.w->data<float>();
  for (int64_t e0 = 0; e0 < p.e; e0 += p.t.chunk) {
    const int64_t ce = std::min(p.t.chunk, p.e - e0);
    p.expand.push_back(pack_a(w1 + e0 * p.c, MatrixView::dense(ce, p.c, p.c), b.ks.mr));
  }
  p.expand_bias.assign(size_t(p.e), 0.0f);
  if (pa.bias) std::memcpy(p.expand_bias.data(), pa.bias->data<float>(), sizeof(float) * size_t(p.e));
  p.dw_bias.assign(size_t(p.e), 0.0f);
  if (pb.bias) std::memcpy(p.dw_bias.data(), pb.bias->data<float>(), sizeof(float) * size_t(p.e));
  const float* w2 = pb.w->data<float>();
  const int64_t taps = p.k * p.k;
  p.dw_weights.resize(size_t(p.e * taps));
  for (int64_t ch = 0; ch < p.e; ++ch)
    for (int64_t t = 0; t < taps; ++t) p.dw_weights[size_t((ch / 8 * taps + t) * 8 + ch % 8)] = w2[ch * taps + t];
  for (int64_t ci = 0; ci < p.c; ++ci) p.view.row_off.push_back(ci * p.h * p.w);
  const int64_t max_rows = std::min(p.h, (p.t.band - 1) * p.s + p.k);
  for (int64_t i = 0; i < max_rows * p.w; ++i) p.view.col_off.push_back(i);
  p.kernel = "conv2d_f32_expand_depthwise(" + std::string(b.ks.gemm_name) + " + depthwise nchw8c " +
             std::to_string(p.k) + "x" + std::to_string(p.k) + "s" + std::to_string(p.s) + ", " +
             std::to_string(p.t.chunk) + " channels x " + std::to_string(p.t.band) + " rows per task" +
             (p.t.groups > 1 ? ", " + std::to_string(p.t.groups) + " tasks per band" : "") + ")" +
             (p.act1 != Act::kNone || p.act2 != Act::kNone ? " +act" : "");
  return std::unique_ptr<Step>(std::move(st));
}

}  // namespace kiln::cpu
