// MobileNet-v2's inverted residual block as one step: an expansion 1x1
// convolution, the depthwise convolution that reads it and, where the batch
// gives every thread whole images, the projection 1x1 that reads that (with
// its residual); also a depthwise convolution and its projection alone (the
// first block, which has no expansion). The tensors between the stages
// never leave cache.
//
// A task takes one image, one band of output rows and a run of chunks of
// the block's middle channels. Per chunk it computes the expansion rows
// that the band's depthwise windows read into a per-thread buffer (the GEMM
// driver, bias and activation in its epilogue) and runs the channel-blocked
// depthwise kernel over them, into the output or, with a projection, into a
// second per-thread buffer that the projection GEMM then reads for the
// whole band. Bands overlap by the window's extra rows, whose expansion is
// computed twice; chunks and bands are sized so that the buffers and the
// band's input rows fit in half of L2 (conv_block_tiling).
//
// Run separately, the expansion wrote its output to memory and the
// depthwise read it back: at batch 32 MobileNet-v2's 16 -> 96 expansion at
// 112x112 writes 154 MiB. The groups are chosen in cpu_backend.cpp before
// the memory plan, which then gives the inner tensors no bytes.
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
  ir::ValueId residual = ir::kNoValue;
  int64_t group = 1;
  Act act = Act::kNone;
  float alpha = 0, beta = 0;
  ir::WindowGeometry geo;
};

// The pieces of a Conv / FusedConv that a block takes: f32, 2-D, static
// shapes, constant weights and bias, an activation the kernels apply in
// registers (none, Relu, Clip), a residual only where allowed. False for
// anything else.
bool conv_parts(const ir::Graph& g, const ir::Node& n, bool residual_ok, ConvParts* p) {
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
  const ir::ConvAttrs& a = n.op == ir::OpKind::kFusedConv
                               ? static_cast<const ir::ConvAttrs&>(n.attr<ir::FusedConvAttrs>())
                               : n.attr<ir::ConvAttrs>();
  if (n.op == ir::OpKind::kFusedConv) {
    const auto& f = n.attr<ir::FusedConvAttrs>();
    p->act = act_of(f.activation);
    p->alpha = f.activation_alpha;
    p->beta = f.activation_beta;
    if (p->act != Act::kNone && p->act != Act::kRelu && p->act != Act::kClip) return false;
    if (n.inputs.size() > 3 && n.inputs[3] != ir::kNoValue) {
      if (!residual_ok || g.value(n.inputs[3]).type.shape != g.value(n.outputs[0]).type.shape ||
          g.value(n.inputs[3]).type.dtype != DType::kF32)
        return false;
      p->residual = n.inputs[3];
    }
  }
  auto geo = ir::conv_geometry(a, x.type.shape, w.constant.shape());
  if (!geo.ok() || geo->rank() != 2) return false;
  p->geo = std::move(geo).value();
  p->group = a.group;
  return true;
}

bool is_pointwise(const ConvParts& p) {
  for (size_t i = 0; i < 2; ++i)
    if (p.geo.kernel[i] != 1 || p.geo.strides[i] != 1 || p.geo.pads_begin[i] != 0 || p.geo.pads_end[i] != 0)
      return false;
  return p.group == 1;
}

// A depthwise conv over a multiple of 8 channels that the channel-blocked
// kernel takes, no window reaching past its pads.
bool is_blocked_depthwise(const ConvParts& p) {
  const int64_t e = p.w->shape()[0];
  const ir::WindowGeometry& g = p.geo;
  return p.group == e && p.w->shape()[1] == 1 && e % 8 == 0 && p.residual == ir::kNoValue &&
         depthwise8_takes(g.kernel[0], g.kernel[1], g.strides[0], g.strides[1], g.dilations[0], g.dilations[1]) &&
         g.padded(0) == g.in[0] + g.pads_begin[0] + g.pads_end[0] &&
         g.padded(1) == g.in[1] + g.pads_begin[1] + g.pads_end[1];
}

// The stages of a block starting at node i, without regard to who else
// reads the values between them (the caller checks that).
struct Stages {
  bool expand = false, project = false;
  ConvParts ex, dw, pr;
};

bool read_once(const ir::Graph& g, ir::ValueId v, const std::vector<int32_t>& readers) {
  return readers[size_t(v)] == 1 && std::find(g.outputs.begin(), g.outputs.end(), v) == g.outputs.end();
}

ConvBlockShape block_shape(const ir::Graph& g, const ir::Node& first, const Stages& st) {
  const Shape& xs = g.value(first.inputs[0]).type.shape;
  const ir::WindowGeometry& d = st.dw.geo;
  return {xs[0], xs[1], st.dw.w->shape()[0], xs[2], xs[3], d.out[0], d.out[1], d.kernel[0], d.strides[0],
          st.expand, st.project ? st.pr.w->shape()[0] : 0};
}

class ConvBlockStep final : public Step {
 public:
  ConvBlockShape b;
  ConvBlockTiling t;
  int64_t pt = 0, pl = 0, wp = 0;
  ir::ValueId x = ir::kNoValue, z = ir::kNoValue, y = ir::kNoValue;
  std::vector<Packed> expand;  // per chunk: its rows of the [e, c] weights
  Packed project;              // [p, e]
  std::vector<float> expand_bias, dw_weights, dw_bias, project_bias;  // dw_weights: [e / 8][k * k][8]
  MatrixView expand_view;   // rows: input planes; columns: pixels of a band's input rows
  MatrixView project_view;  // rows: the middle buffer's planes; columns: pixels of a band
  Act act[3] = {Act::kNone, Act::kNone, Act::kNone};
  float lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};

  Result<void> run(RunCtx& ctx) override {
    const float* in = ctx.f(x);
    const float* res = z == ir::kNoValue ? nullptr : ctx.f(z);
    float* out = ctx.f(y);
    const int64_t bands = (b.oh + t.band - 1) / t.band, chunks = (b.e + t.chunk - 1) / t.chunk;
    const int64_t units = b.n * bands * t.groups, plane = b.oh * b.ow;
    auto body = [&](int64_t u, int) {
      thread_local std::vector<float> buf, mid, scratch;
      const int64_t grp = u % t.groups, band = u / t.groups % bands, img = u / t.groups / bands;
      const int64_t oy0 = band * t.band, oy1 = std::min(b.oh, oy0 + t.band);
      const int64_t top = oy0 * b.s - pt, iy0 = std::max<int64_t>(0, top);
      const int64_t iy1 = std::min(b.h, (oy1 - 1) * b.s - pt + b.k);
      const int64_t rows = std::max<int64_t>(0, iy1 - iy0), px = rows * b.w;
      const float* img_in = in + img * b.c * b.h * b.w;
      if (b.expand && buf.size() < size_t(t.chunk * px)) buf.resize(size_t(t.chunk * px));
      // With a projection the depthwise output goes to `mid`, [e][t.band * ow].
      const int64_t mid_plane = t.band * b.ow;
      if (b.p && mid.size() < size_t(b.e * mid_plane)) mid.resize(size_t(b.e * mid_plane));
      for (int64_t ch = grp * chunks / t.groups; ch < (grp + 1) * chunks / t.groups; ++ch) {
        const int64_t e0 = ch * t.chunk, ce = std::min(t.chunk, b.e - e0);
        const float* src = img_in + e0 * b.h * b.w + iy0 * b.w;  // no expansion: the input's planes
        int64_t src_plane = b.h * b.w;
        if (b.expand) {
          src = buf.data();
          src_plane = px;
          if (px > 0) {
            GemmJob j;
            j.m = ce;
            j.n = px;
            j.k = b.c;
            j.a_packed = &expand[size_t(ch)];
            j.b = img_in + iy0 * b.w;
            j.b_view = &expand_view;
            j.c = buf.data();
            j.ldc = px;
            j.epi.bias = expand_bias.data() + e0;
            j.epi.act = act[0];
            j.epi.alpha = lo[0];
            j.epi.beta = hi[0];
            gemm_f32(&j, 1, ctx.ks, nullptr);
          }
        }
        for (int64_t q = 0; q < ce; q += 8) {
          float* dst = b.p ? mid.data() + (e0 + q) * mid_plane : out + ((img * b.e + e0 + q) * b.oh + oy0) * b.ow;
          Depthwise8Args a{src + q * src_plane, dst, src_plane, b.p ? mid_plane : plane,
                           dw_weights.data() + (e0 + q) * b.k * b.k, dw_bias.data() + e0 + q,
                           rows, b.w, iy0 - top, pl, (oy1 - oy0 - 1) * b.s + b.k, wp, oy1 - oy0, b.ow, b.k, b.s,
                           act[1], lo[1], hi[1], nullptr};
          const int64_t need = depthwise8_scratch_floats(a);
          if (scratch.size() < size_t(need)) scratch.resize(size_t(need));
          a.scratch = scratch.data();
          ctx.ks.depthwise8(a);
        }
      }
      if (b.p) {
        const int64_t at = img * b.p * plane + oy0 * b.ow;
        GemmJob j;
        j.m = b.p;
        j.n = (oy1 - oy0) * b.ow;
        j.k = b.e;
        j.a_packed = &project;
        j.b = mid.data();
        j.b_view = &project_view;
        j.c = out + at;
        j.ldc = plane;
        j.epi.bias = project_bias.data();
        j.epi.residual = res ? res + at : nullptr;
        j.epi.act = act[2];
        j.epi.alpha = lo[2];
        j.epi.beta = hi[2];
        gemm_f32(&j, 1, ctx.ks, nullptr);
      }
    };
    if (ctx.pool) ctx.pool->parallel_for(units, body);
    else
      for (int64_t u = 0; u < units; ++u) body(u, 0);
    return {};
  }
};

// Whether the stages starting at node i qualify (shapes and kinds only).
bool match_stages(const ir::Graph& g, size_t i, const std::vector<int32_t>& readers, Stages* st, int* count) {
  const auto& nodes = g.nodes;
  ConvParts first;
  if (!conv_parts(g, nodes[i], false, &first)) return false;
  size_t at = i;
  if (is_pointwise(first)) {
    st->expand = true;
    st->ex = first;
    if (at + 1 >= nodes.size() || !read_once(g, nodes[at].outputs[0], readers)) return false;
    ++at;
    if (nodes[at].inputs.empty() || nodes[at].inputs[0] != nodes[at - 1].outputs[0]) return false;
    if (!conv_parts(g, nodes[at], false, &st->dw) || !is_blocked_depthwise(st->dw)) return false;
    if (st->ex.w->shape()[0] != st->dw.w->shape()[0]) return false;
  } else {
    st->dw = first;
    if (!is_blocked_depthwise(st->dw)) return false;
  }
  st->project = false;
  if (at + 1 < nodes.size() && read_once(g, nodes[at].outputs[0], readers) && !nodes[at + 1].inputs.empty() &&
      nodes[at + 1].inputs[0] == nodes[at].outputs[0] && conv_parts(g, nodes[at + 1], true, &st->pr) &&
      is_pointwise(st->pr))
    st->project = true;
  *count = int(at - i) + 1 + (st->project ? 1 : 0);
  return true;
}

}  // namespace

// The projection joins the block only where the batch gives each thread 2
// images or more (every chunk of a band is in one task; thinner bands for
// more tasks would compute the expansion's overlap rows again and again),
// and where a band's pixels outweigh the projection's weights, which every
// band reads again: MobileNet-v2's last blocks at 7x7 (960 -> 320, 1.2 MiB
// of weights against 49 pixels) ran 10% slower with it at batch 32.
bool project_pays(const ConvBlockShape& b, int mr, int threads) {
  if (b.p == 0 || b.n < 2 * int64_t(threads)) return false;
  const ConvBlockTiling t = conv_block_tiling(b, mr, threads, cpu_info().l2_bytes / 2);
  return b.p * b.e <= t.band * b.ow * (b.e + b.p);
}

ConvBlockTiling conv_block_tiling(const ConvBlockShape& b, int mr, int threads, int64_t budget_bytes) {
  const int64_t step = std::lcm<int64_t>(8, mr), least = b.expand ? std::min(b.e, step) : b.e;
  auto in_rows = [&](int64_t band) { return std::min(b.h, (band - 1) * b.s + b.k); };
  auto bytes = [&](int64_t chunk, int64_t band) {
    return ((b.expand ? (chunk + b.c) * in_rows(band) * b.w : 0) + (b.p ? b.e * band * b.ow : 0)) *
           int64_t(sizeof(float));
  };
  ConvBlockTiling t{least, b.oh, 1};
  while (t.band > 1 && bytes(least, t.band) > budget_bytes) --t.band;
  if (b.expand) {
    while (t.chunk + step <= b.e && bytes(t.chunk + step, t.band) <= budget_bytes) t.chunk += step;
    if (t.chunk + step > b.e && bytes(b.e, t.band) <= budget_bytes) t.chunk = b.e;
  }
  // Enough tasks for the threads (4 each evens out the tail). Without a
  // projection: smaller chunks first, then thinner bands, and a band's
  // chunks over several tasks; with one (every chunk of a band in one
  // task), thinner bands only.
  const int64_t want = 4 * int64_t(threads);
  auto bands = [&] { return (b.oh + t.band - 1) / t.band; };
  auto chunks = [&] { return (b.e + t.chunk - 1) / t.chunk; };
  if (!b.p && b.expand && b.n * bands() * chunks() < want) {
    const int64_t parts = (want + b.n * bands() - 1) / (b.n * bands());
    t.chunk = std::min(b.e, std::max(least, ((b.e + parts - 1) / parts + step - 1) / step * step));
  }
  const int64_t per_band = b.p ? 1 : chunks();
  if (b.n * bands() * per_band < want) {
    const int64_t parts = std::min(b.oh, (want + b.n * per_band - 1) / (b.n * per_band));
    t.band = std::max<int64_t>(1, std::min(t.band, (b.oh + parts - 1) / parts));
  }
  if (!b.p && b.n * bands() < want) t.groups = std::min(chunks(), (want + b.n * bands() - 1) / (b.n * bands()));
  return t;
}

std::vector<int32_t> count_readers(const ir::Graph& g) {
  std::vector<int32_t> readers(g.values.size(), 0);
  for (const ir::Node& n : g.nodes)
    for (ir::ValueId id : n.inputs)
      if (id != ir::kNoValue) ++readers[size_t(id)];
  for (ir::ValueId id : g.outputs) ++readers[size_t(id)];
  return readers;
}

ConvBlockMatch match_conv_block(const ir::Graph& g, size_t i, const std::vector<int32_t>& readers, int mr,
                                int threads) {
  ConvBlockMatch m;
  Stages st;
  int count = 0;
  if (!match_stages(g, i, readers, &st, &count)) return m;
  if (st.project && !project_pays(block_shape(g, g.nodes[i], st), mr, threads)) {
    st.project = false;
    --count;
  }
  if (count < 2) return m;  // a depthwise alone: the ordinary step
  m.nodes = count;
  for (int j = 0; j + 1 < count; ++j) m.elide.push_back(g.nodes[i + size_t(j)].outputs[0]);
  m.input = g.nodes[i].inputs[0];
  return m;
}

Result<std::unique_ptr<Step>> build_conv_block(const BuildCtx& bc, int count) {
  const ir::Graph& g = bc.g;
  const size_t i = size_t(&bc.n - g.nodes.data());
  const std::vector<int32_t> readers = count_readers(g);
  Stages st;
  int matched = 0;
  if (i >= g.nodes.size() || !match_stages(g, i, readers, &st, &matched) || matched < count)
    return make_error(g.describe(bc.n) + ": not the convolution block the plan chose");
  if (st.project && count < matched) st.project = false;
  auto step = std::make_unique<ConvBlockStep>();
  ConvBlockStep& p = *step;
  p.b = block_shape(g, bc.n, st);
  const ir::WindowGeometry& d = st.dw.geo;
  p.pt = d.pads_begin[0];
  p.pl = d.pads_begin[1];
  p.wp = d.padded(1);
  p.t = conv_block_tiling(p.b, bc.ks.mr, bc.threads, cpu_info().l2_bytes / 2);
  p.x = bc.n.inputs[0];
  const ir::Node& last = g.nodes[i + size_t(count) - 1];
  p.y = last.outputs[0];
  const ConvParts* parts[3] = {st.expand ? &st.ex : nullptr, &st.dw, st.project ? &st.pr : nullptr};
  for (int s = 0; s < 3; ++s)
    if (parts[s]) {
      p.act[s] = parts[s]->act;
      p.lo[s] = parts[s]->alpha;
      p.hi[s] = parts[s]->beta;
    }
  auto bias_of = [](const ConvParts& c, int64_t len) {
    std::vector<float> v(size_t(len), 0.0f);
    if (c.bias) std::memcpy(v.data(), c.bias->data<float>(), sizeof(float) * size_t(len));
    return v;
  };
  const int64_t e = p.b.e, taps = p.b.k * p.b.k;
  if (st.expand) {
    const float* w1 = st.ex.w->data<float>();
    for (int64_t e0 = 0; e0 < e; e0 += p.t.chunk) {
      const int64_t ce = std::min(p.t.chunk, e - e0);
      p.expand.push_back(pack_a(w1 + e0 * p.b.c, MatrixView::dense(ce, p.b.c, p.b.c), bc.ks.mr));
    }
    p.expand_bias = bias_of(st.ex, e);
    for (int64_t ci = 0; ci < p.b.c; ++ci) p.expand_view.row_off.push_back(ci * p.b.h * p.b.w);
    const int64_t max_rows = std::min(p.b.h, (p.t.band - 1) * p.b.s + p.b.k);
    for (int64_t q = 0; q < max_rows * p.b.w; ++q) p.expand_view.col_off.push_back(q);
  }
  p.dw_bias = bias_of(st.dw, e);
  const float* w2 = st.dw.w->data<float>();
  p.dw_weights.resize(size_t(e * taps));
  for (int64_t ch = 0; ch < e; ++ch)
    for (int64_t t = 0; t < taps; ++t) p.dw_weights[size_t((ch / 8 * taps + t) * 8 + ch % 8)] = w2[ch * taps + t];
  if (st.project) {
    p.project = pack_a(st.pr.w->data<float>(), MatrixView::dense(p.b.p, e, e), bc.ks.mr);
    p.project_bias = bias_of(st.pr, p.b.p);
    p.z = st.pr.residual;
    const int64_t mid_plane = p.t.band * p.b.ow;
    for (int64_t ch = 0; ch < e; ++ch) p.project_view.row_off.push_back(ch * mid_plane);
    for (int64_t q = 0; q < mid_plane; ++q) p.project_view.col_off.push_back(q);
  }
  p.kernel = std::string("conv2d_f32_") + (st.expand ? "expand_" : "") + "depthwise" + (st.project ? "_project" : "") +
             "(" + bc.ks.gemm_name + " + depthwise nchw8c " + std::to_string(p.b.k) + "x" + std::to_string(p.b.k) +
             "s" + std::to_string(p.b.s) + ", " + std::to_string(p.t.chunk) + " channels x " +
             std::to_string(p.t.band) + " rows per task" +
             (p.t.groups > 1 ? ", " + std::to_string(p.t.groups) + " tasks per band" : "") + ")" +
             (p.z != ir::kNoValue ? " +residual" : "") +
             (p.act[0] != Act::kNone || p.act[1] != Act::kNone || p.act[2] != Act::kNone ? " +act" : "");
  return std::unique_ptr<Step>(std::move(step));
}

}  // namespace kiln::cpu
