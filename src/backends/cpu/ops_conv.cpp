// Conv and kiln FusedConv (2-D, f32) on the CPU: implicit GEMM for ordinary
// and grouped convolutions (weights packed once as the A operand, the image
// read through an im2col index view as B: no im2col buffer), a direct kernel
// for depthwise ones, and direct tiles (pixels broadcast from the padded
// image) for strided stems and, where the kernel set has them, for kernels
// larger than 1x1 with many input channels (the chunked tile). Bias, a residual (FusedConv's Z input) and the
// activation run in the GEMM epilogue. Inputs with padding are first copied
// into a zero-bordered scratch image so that the view needs no bounds checks.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "backends/cpu/cpu_info.h"
#include "backends/cpu/step.h"
#include "ir/ops/conv_geometry.h"
#include "ir/ops/kiln_fused.h"

namespace kiln::cpu {
namespace {

struct ConvShape {
  int64_t n, c, h, w, m, group, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, hp, wp;
  bool padded() const { return hp != h || wp != w; }
};

// Whether a batch of n images runs an image per task through the direct
// tile: the threads share the images evenly, and an image's padded copy
// and the weights (`bytes` together) fit in L2.
bool fits_per_image(int64_t n, int threads, int64_t bytes) {
  return images_share_evenly(n, threads) && bytes <= cpu_info().l2_bytes / 8 * 7;
}

class ConvStep final : public Step {
 public:
  ConvShape s;
  ir::ValueId x, z, y;
  std::vector<Packed> weights;  // per group (implicit GEMM)
  std::vector<float> dw_weights;  // depthwise: [c][kh*kw]
  std::vector<float> dw8_weights;  // depthwise, channel-blocked: [c / 8][kh*kw][8] (empty: not taken)
  std::vector<float> bias;      // [m], zeros when absent
  std::vector<float> dc_weights;  // direct strided kernel: [ceil(m / oc)][k][oc] (oc = conv_oc), zero rows past m (empty: not taken)
  std::vector<float> dc_bias;     // the same, bias padded to whole blocks of oc
  int64_t dc_px = 0, dc_oc = 0;   // the direct tile's pixels x output channels
  bool dc_chunked = false;        // the tile is KernelSet::conv_chunk (else conv_direct)
  MatrixView view;              // im2col of one group of one padded image
  std::vector<float> scratch;   // padded input
  bool depthwise = false;
  Act act = Act::kNone;
  float alpha = 0, beta = 0;

  Result<void> run(RunCtx& c) override {
    const float* in = c.f(x);
    if (!dc_weights.empty() && direct_per_image(c)) {
      run_direct_per_image(in, z == ir::kNoValue ? nullptr : c.f(z), c.f(y), c);
      return {};
    }
    if (s.padded() && !depthwise) {
      scratch.resize(size_t(s.n * s.c * s.hp * s.wp));
      pad(in, scratch.data(), c.pool);
      in = scratch.data();
    }
    float* out = c.f(y);
    const float* res = z == ir::kNoValue ? nullptr : c.f(z);
    if (depthwise) {
      run_depthwise(in, res, out, c);
      return {};
    }
    if (!dc_weights.empty()) {
      run_direct(in, res, out, c);
      return {};
    }
    const int64_t cg = s.c / s.group, mg = s.m / s.group;
    std::vector<GemmJob> jobs;
    jobs.reserve(size_t(s.n * s.group));
    for (int64_t b = 0; b < s.n; ++b)
      for (int64_t g = 0; g < s.group; ++g) {
        GemmJob j;
        j.m = mg;
        j.n = s.oh * s.ow;
        j.k = cg * s.kh * s.kw;
        j.a_packed = &weights[size_t(g)];
        j.b = in + (b * s.c + g * cg) * s.hp * s.wp;
        j.b_view = &view;
        j.c = out + (b * s.m + g * mg) * s.oh * s.ow;
        j.ldc = s.oh * s.ow;
        j.epi.bias = bias.data() + g * mg;
        j.epi.bias_per_row = true;
        j.epi.residual = res ? res + (b * s.m + g * mg) * s.oh * s.ow : nullptr;
        j.epi.act = act;
        j.epi.alpha = alpha;
        j.epi.beta = beta;
        jobs.push_back(j);
      }
    gemm_f32(jobs.data(), int64_t(jobs.size()), c.ks, c.pool);
    return {};
  }

 private:
  // Padded rows [r0, r1) of all planes (row r of plane r / hp).
  void pad_rows(const float* in, float* out, int64_t r0, int64_t r1) const {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t p = r / s.hp, yy = r % s.hp - s.pt;
      float* row = out + r * s.wp;
      if (yy < 0 || yy >= s.h) {
        std::memset(row, 0, sizeof(float) * size_t(s.wp));
        continue;
      }
      std::memset(row, 0, sizeof(float) * size_t(s.pl));
      std::memcpy(row + s.pl, in + (p * s.h + yy) * s.w, sizeof(float) * size_t(s.w));
      std::memset(row + s.pl + s.w, 0, sizeof(float) * size_t(s.wp - s.pl - s.w));
    }
  }

  // Split by rows, not planes: a stem's 3 planes were one task, and the
  // other thread waited out the copy (17% of resnet18's conv1).
  void pad(const float* in, float* out, ThreadPool* pool) const {
    parallel_ranges(pool, s.n * s.c * s.hp, 32, [&](int64_t b, int64_t e) { pad_rows(in, out, b, e); });
  }

  // The kernel set's direct tile (conv_px pixels x conv_oc output
  // channels) reads the pixels where they lie in the padded image; a block
  // of output channels runs over many tiles, so that its weights stay in
  // cache. With a batch that the threads share evenly, a whole image is one task
  // when its padded copy and every block's weights fit in L2 together: the
  // image is padded into a per-thread buffer right before use and stays in
  // L2 across the blocks (resnet18's 64->128 3x3/2 at batch 32: the
  // separately padded tensor came back from L3 a line at a time, 17.7 ->
  // 12.0 ms). Larger ones go block by block across the images instead
  // (run_direct's order).
  bool direct_per_image(const RunCtx& c) const {
    const int64_t bytes = int64_t((dc_weights.size() + size_t(s.c * s.hp * s.wp)) * sizeof(float));
    return fits_per_image(s.n, c.pool ? c.pool->size() : 1, bytes);
  }

  // Output channel block `blk` of images [b0, b0 + nimg), their padded
  // copies at img + (b - b0) * istride: pixel tiles [t0, t1), the pixels
  // counted across the images, so that a batch of small images (ResNet's
  // 7x7: 49 pixels, 4 tiles and a 1-pixel one) wastes no tile lanes. A tile
  // that spans two images comes back as raw sums and is finished here.
  void direct_tiles(const RunCtx& c, const float* img, int64_t istride, int64_t b0, int64_t nimg, const float* res,
                    float* out, int64_t blk, int64_t t0, int64_t t1) const {
    if (dc_chunked) {
      chunked_tiles(c, img, istride, b0, nimg, res, out, blk, t0, t1);
      return;
    }
    const int64_t k = s.c * s.kh * s.kw, np = s.oh * s.ow, oc = dc_oc;
    const float* wb = dc_weights.data() + blk * k * oc;
    const float* bias = dc_bias.data() + blk * oc;
    const int ocv = int(std::min<int64_t>(oc, s.m - blk * oc));
    const float* px[16];
    alignas(64) float raw[16 * 32];
    for (int64_t tile = t0; tile < t1; ++tile) {
      const Tile tl = tile_at(img, istride, b0, nimg, blk, tile, px);
      if (tl.whole) {
        c.ks.conv_direct(k, wb, view.row_off.data(), px, out + tl.at, res ? res + tl.at : nullptr, np, ocv, tl.pv,
                         bias, act, alpha, beta, nullptr);
        continue;
      }
      c.ks.conv_direct(k, wb, view.row_off.data(), px, nullptr, nullptr, np, ocv, tl.pv, bias, act, alpha, beta, raw);
      finish_across(raw, b0, tile, tl.pv, blk, res, out);
    }
  }

  // A tile's pixels: px[i] the window corner of pixel i (those past pv repeat
  // the first), `at` its first output (image b, channel block blk's first
  // channel at 0) and whether all of its pixels lie in one image.
  struct Tile {
    int pv;
    bool whole;
    int64_t at;
  };
  Tile tile_at(const float* img, int64_t istride, int64_t b0, int64_t nimg, int64_t blk, int64_t tile,
               const float** px) const {
    const int64_t np = s.oh * s.ow, g0 = tile * dc_px;
    const int pv = int(std::min(dc_px, nimg * np - g0));
    for (int64_t i = 0; i < dc_px; ++i) {
      const int64_t g = g0 + (i < pv ? i : 0);
      px[i] = img + g / np * istride + view.col_off[size_t(g % np)];
    }
    const int64_t p0 = g0 % np;
    return {pv, p0 + pv <= np, ((b0 + g0 / np) * s.m + blk * dc_oc) * np + p0};
  }

  // A tile that spans two images comes back as raw sums ([pixel][dc_oc]),
  // finished here.
  void finish_across(const float* raw, int64_t b0, int64_t tile, int pv, int64_t blk, const float* res,
                     float* out) const {
    const int64_t np = s.oh * s.ow, oc = dc_oc;
    const int ocv = int(std::min<int64_t>(oc, s.m - blk * oc));
    const float* bias = dc_bias.data() + blk * oc;
    for (int i = 0; i < pv; ++i) {
      const int64_t g = tile * dc_px + i, at = ((b0 + g / np) * s.m + blk * oc) * np + g % np;
      for (int j = 0; j < ocv; ++j) {
        float v = raw[i * oc + j] + bias[j];
        if (res) v += res[at + j * np];
        if (act == Act::kRelu) v = std::max(v, 0.0f);
        else if (act == Act::kClip) v = std::min(std::max(v, alpha), beta);
        out[at + j * np] = v;
      }
    }
  }

  // The chunked tile (KernelSet::conv_chunk): tiles [t0, t1) in groups
  // whose partial sums fit in 16 KiB, each group over the taps a chunk of
  // whole input channels at a time (7 for a 3x3 kernel and 64 output
  // channels: 16 KiB of weights), which every tile of the group reads from
  // L1; the 12x32 tile, a whole reduction per tile, read a block's weights
  // (590 KiB for 512 3x3 channels) and the image from L2 for each tile. The
  // tiles fetch the next chunk's weights into L1 as they go, a share each:
  // at batch 1 the weights come from memory, and without it resnet18's 7x7
  // stride-1 layers took 1.03-1.08 ms in the model, 0.70 ms with it (the
  // 12x32 tile: 1.1-1.2 ms; ORT 0.74 ms).
  void chunked_tiles(const RunCtx& c, const float* img, int64_t istride, int64_t b0, int64_t nimg, const float* res,
                     float* out, int64_t blk, int64_t t0, int64_t t1) const {
    const int64_t k = s.c * s.kh * s.kw, np = s.oh * s.ow, oc = dc_oc, taps = s.kh * s.kw;
    const int64_t tile_floats = dc_px * oc;
    const int64_t per_group = std::max<int64_t>(1, 4096 / tile_floats);
    const int64_t groups = (t1 - t0 + per_group - 1) / per_group;
    const int64_t kc = std::max<int64_t>(1, 4096 / (taps * oc)) * taps;
    const float* wb = dc_weights.data() + blk * k * oc;
    thread_local std::vector<float> acc;
    thread_local std::vector<const float*> ptrs;
    thread_local std::vector<Tile> tiles;
    ConvChunkArgs a{};
    a.bias = dc_bias.data() + blk * oc;
    a.ocv = int(std::min<int64_t>(oc, s.m - blk * oc));
    a.plane = np;
    a.act = act;
    a.lo = alpha;
    a.hi = beta;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t g0 = t0 + g * (t1 - t0) / groups, g1 = t0 + (g + 1) * (t1 - t0) / groups, n = g1 - g0;
      acc.resize(size_t(n * tile_floats));
      ptrs.resize(size_t(n * dc_px));
      tiles.resize(size_t(n));
      for (int64_t t = 0; t < n; ++t) tiles[size_t(t)] = tile_at(img, istride, b0, nimg, blk, g0 + t, &ptrs[size_t(t * dc_px)]);
      for (int64_t k0 = 0; k0 < k; k0 += kc) {
        a.k = std::min(kc, k - k0);
        a.w = wb + k0 * oc;
        a.koff = view.row_off.data() + k0;
        a.first = k0 == 0;
        a.last = k0 + a.k == k;
        // The next chunk's weights, a share per tile.
        const int64_t lines = std::min(kc, k - k0 - a.k) * oc / 16, share = (lines + n - 1) / n;
        for (int64_t t = 0; t < n; ++t) {
          const Tile& tl = tiles[size_t(t)];
          a.prefetch = a.w + a.k * oc + t * share * 16;
          a.prefetch_lines = std::max<int64_t>(0, std::min(share, lines - t * share));
          a.px = &ptrs[size_t(t * dc_px)];
          a.acc = &acc[size_t(t * tile_floats)];
          a.pv = tl.pv;
          a.out = tl.whole ? out + tl.at : nullptr;
          a.res = res && tl.whole ? res + tl.at : nullptr;
          c.ks.conv_chunk(a);
          if (a.last && !tl.whole) finish_across(a.acc, b0, g0 + t, tl.pv, blk, res, out);
        }
      }
    }
  }

  void run_direct_per_image(const float* in, const float* res, float* out, RunCtx& c) const {
    const int64_t np = s.oh * s.ow, px_n = dc_px, oc = dc_oc;
    const int64_t tiles = (np + px_n - 1) / px_n, blocks = (s.m + oc - 1) / oc;
    auto body = [&](int64_t b, int) {
      thread_local std::vector<float> padded;
      const float* img = in + b * s.c * s.h * s.w;
      if (s.padded()) {
        padded.resize(size_t(s.c * s.hp * s.wp));
        pad_rows(img, padded.data(), 0, s.c * s.hp);
        img = padded.data();
      }
      for (int64_t blk = 0; blk < blocks; ++blk) direct_tiles(c, img, 0, b, 1, res, out, blk, 0, tiles);
    };
    if (c.pool) c.pool->parallel_for(s.n, body);
    else
      for (int64_t b = 0; b < s.n; ++b) body(b, 0);
  }

  // A task per block of output channels and range of pixel tiles (across
  // the batch), block-major, so that the threads share one block's weights
  // at a time.
  void run_direct(const float* in, const float* res, float* out, RunCtx& c) const {
    const int64_t px_n = dc_px, oc = dc_oc;
    const int64_t tiles = (s.n * s.oh * s.ow + px_n - 1) / px_n, blocks = (s.m + oc - 1) / oc;
    const int threads = c.pool ? c.pool->size() : 1;
    const int64_t parts = std::clamp<int64_t>((4 * threads + blocks - 1) / blocks, 1, tiles);
    auto body = [&](int64_t t, int) {
      const int64_t blk = t / parts, part = t % parts;
      direct_tiles(c, in, s.c * s.hp * s.wp, 0, s.n, res, out, blk, part * tiles / parts, (part + 1) * tiles / parts);
    };
    const int64_t tasks = blocks * parts;
    if (c.pool) c.pool->parallel_for(tasks, body);
    else
      for (int64_t t = 0; t < tasks; ++t) body(t, 0);
  }

  // Each plane is padded by the kernel into a per-thread buffer right before
  // use (it stays in L1/L2) instead of padding the whole tensor first: the
  // separate pass was 15% of MobileNet's time at batch 8. Whole groups of 8
  // channels go to the channel-blocked kernel when it takes the shape, the
  // rest one plane at a time.
  void run_depthwise(const float* in, const float* res, float* out, RunCtx& c) const {
    const int64_t groups = dw8_weights.empty() ? 0 : s.c / 8, per_image = groups + (s.c - groups * 8);
    const int64_t iplane = s.h * s.w, oplane = s.oh * s.ow;
    const bool act_in_kernel8 = !res && (act == Act::kNone || act == Act::kRelu || act == Act::kClip);
    parallel_ranges(c.pool, s.n * per_image, 1, [&](int64_t b, int64_t e) {
      thread_local std::vector<float> scratch;
      for (int64_t t = b; t < e; ++t) {
        const int64_t img = t / per_image, j = t % per_image;
        const int64_t ch = j < groups ? j * 8 : groups * 8 + (j - groups), planes = j < groups ? 8 : 1;
        const int64_t p = img * s.c + ch;
        bool act_done = true;
        if (j < groups) {
          Depthwise8Args a{in + p * iplane, out + p * oplane, iplane, oplane,
                           dw8_weights.data() + j * 8 * s.kh * s.kw, bias.data() + ch,
                           s.h, s.w, s.pt, s.pl, s.hp, s.wp, s.oh, s.ow, s.kh, s.sh,
                           act_in_kernel8 ? act : Act::kNone, alpha, beta, nullptr};
          scratch.resize(size_t(depthwise8_scratch_floats(a)));
          a.scratch = scratch.data();
          c.ks.depthwise8(a);
          act_done = act_in_kernel8;
        } else {
          DepthwiseArgs a{in + p * iplane, out + p * oplane, dw_weights.data() + ch * s.kh * s.kw,
                          bias[size_t(ch)], s.h, s.w, s.pt, s.pl, s.hp, s.wp, s.oh, s.ow, s.kh, s.kw, s.sh, s.sw,
                          s.dh, s.dw, res ? Act::kNone : act, alpha, beta, nullptr};
          scratch.resize(size_t(depthwise_scratch_floats(a)));
          a.scratch = scratch.data();
          c.ks.depthwise(a);
          act_done = !res;
        }
        float* o = out + p * oplane;
        if (res) {
          const float* r = res + p * oplane;
          for (int64_t i = 0; i < planes * oplane; ++i) o[i] += r[i];
        }
        if (!act_done) c.ks.activate(act, alpha, beta, o, planes * oplane);
      }
    });
  }
};

// Weights, im2col view and plan text of the direct (implicit GEMM or
// depthwise) kernel.
void finish_direct(ConvStep& st, const BuildCtx& b, const ConvShape& s, const float* wd) {
  ConvStep* step = &st;
  const int64_t cg = s.c / s.group, mg = s.m / s.group, kk = cg * s.kh * s.kw;
  std::string geom = std::to_string(s.kh) + "x" + std::to_string(s.kw) + "s" + std::to_string(s.sh);
  if (step->depthwise) {
    step->dw_weights.assign(wd, wd + s.m * kk);
    step->kernel = "conv2d_f32_depthwise_direct(" + std::string(isa_name(b.ks.isa)) + ") " + geom;
    const int64_t groups = s.c / 8, taps = s.kh * s.kw;
    if (groups > 0 && depthwise8_takes(s.kh, s.kw, s.sh, s.sw, s.dh, s.dw)) {
      step->dw8_weights.resize(size_t(groups * taps * 8));
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t l = 0; l < 8; ++l)
          for (int64_t t = 0; t < taps; ++t)
            step->dw8_weights[size_t((g * taps + t) * 8 + l)] = wd[(g * 8 + l) * taps + t];
      step->kernel += s.c % 8 ? " nchw8c + " + std::to_string(s.c % 8) + " planes" : " nchw8c";
    }
  } else {
    for (int64_t g = 0; g < s.group; ++g)
      step->weights.push_back(pack_a(wd + g * mg * kk, MatrixView::dense(mg, kk, kk), b.ks.mr));
    // im2col view: row (ci, ky, kx) -> ci*hp*wp + ky*dh*wp + kx*dw; column (oy, ox) -> oy*sh*wp + ox*sw.
    MatrixView& v = step->view;
    for (int64_t ci = 0; ci < cg; ++ci)
      for (int64_t ky = 0; ky < s.kh; ++ky)
        for (int64_t kx = 0; kx < s.kw; ++kx) v.row_off.push_back(ci * s.hp * s.wp + ky * s.dh * s.wp + kx * s.dw);
    for (int64_t oy = 0; oy < s.oh; ++oy)
      for (int64_t ox = 0; ox < s.ow; ++ox) v.col_off.push_back(oy * s.sh * s.wp + ox * s.sw);
    step->kernel = "conv2d_f32_implicit_gemm(" + std::string(b.ks.gemm_name) + ") " + geom +
                   (s.group > 1 ? " group " + std::to_string(s.group) : "");
    // The direct kernel, where the kernel set has one, for a strided stem:
    // at most 4 input channels, at least 64 taps (ResNet's 7x7 stride-2
    // conv1: 0.93x the implicit GEMM's time on AVX2, median of 8 alternating
    // runs of a one-node model; AVX-512's 12x32 tile 0.62x) and an
    // activation the tile applies. Measured and not taken: mobilenet_v2's
    // first layer on AVX2 (27 taps, 1.09x: the in-register transpose and masked
    // stores outweigh so short a k loop) and, on AVX2, a 64 -> 128 3x3
    // stride-2 layer (576 taps, 1.05x: its 36 KiB of weights per block of 16
    // channels leave L1 for every 6 pixels, where the GEMM keeps a packed 16
    // KiB block of the image in L1). AVX-512's tile (conv_direct_wide) takes
    // every kernel larger than 1x1 that reaches here, with any channel
    // count: resnet18's 3x3 stride-2 layers 0.52 -> 0.34-0.41 ms (the GEMM
    // spent a quarter of its time gathering stride-2 columns), its 7x7
    // stride-1 layers 0.90 -> 0.78 ms; 1x1 stride-2 ran even (0.054 against
    // 0.052 ms) and stays on the GEMM.
    // AVX-512's tile (since its 16x16 epilogue transpose) also wins on
    // mobilenet_v2's 27-tap stem: 0.21-0.22 -> 0.17 ms at batch 1, 9.1-10.5
    // -> 5.9 ms at batch 32 (in the model, kiln bench --profile).
    const bool act_in_tile = st.act == Act::kNone || st.act == Act::kRelu || st.act == Act::kClip;
    const bool stem = (s.sh > 1 || s.sw > 1) && s.c <= 4;
    const int64_t min_taps = stem && b.ks.conv_direct_wide ? 27 : 64;
    // The chunked tile where a block of channels runs over the tiles of
    // many images or over a large image (run_direct); where an image's
    // padded copy and all its weights stay in L2 (direct_per_image) the
    // 12x32 tile ran 3% faster (resnet18's stride-2 3x3 layers at batch 32).
    // (Sets without a chunked tile may have no direct tile either: conv_oc
    // 0, so these are only evaluated with one.)
    auto plain_bytes = [&] {
      const int64_t oc = b.ks.conv_oc;
      return int64_t(sizeof(float)) * (((s.m + oc - 1) / oc) * kk * oc + s.c * s.hp * s.wp);
    };
    // Nor where its wider block of channels or narrower tile of pixels
    // computes more than 1.15x the 12x32 tile's lanes: LeNet's 6 -> 16
    // 5x5 layer (16 of 64 lanes) took 1.2x the time.
    auto lanes = [&](int64_t px, int64_t oc) {
      return (s.n * s.oh * s.ow + px - 1) / px * px * ((s.m + oc - 1) / oc * oc);
    };
    const bool chunk = !stem && b.ks.conv_chunk && !fits_per_image(s.n, b.threads, plain_bytes()) &&
                       lanes(b.ks.conv_chunk_px, b.ks.conv_chunk_oc) * 20 <= lanes(b.ks.conv_px, b.ks.conv_oc) * 23;
    // 1x1 layers take it where their weights are many for the pixels: at
    // least 1000 weights per output pixel (10000 at stride 2). resnet50 at
    // batch 1, against the implicit GEMM: 2048 -> 512 at 7x7 (21400 per
    // pixel) 0.61 -> 0.38 ms, 1024 -> 256 at 14x14 (1340) 0.49 -> 0.40 ms,
    // 1024 -> 2048 stride 2 (42800) 1.09 -> 0.75 ms; but 512 -> 1024 stride
    // 2 at 14x14 (2670) 0.76 -> 1.01 ms and 512 -> 128 at 28x28 (84) 0.37
    // -> 0.53 ms.
    const bool one = s.kh * s.kw == 1;
    const int64_t per_pixel = kk * s.m / std::max<int64_t>(1, s.n * s.oh * s.ow);
    const bool one_chunk = one && chunk && per_pixel >= (s.sh * s.sw == 1 ? 1000 : 10000);
    if (b.ks.conv_direct && s.group == 1 && kk >= min_taps && act_in_tile &&
        (stem || (b.ks.conv_direct_wide && !one) || one_chunk)) {
      st.dc_chunked = chunk;
      st.dc_px = st.dc_chunked ? b.ks.conv_chunk_px : b.ks.conv_px;
      st.dc_oc = st.dc_chunked ? b.ks.conv_chunk_oc : b.ks.conv_oc;
      const int64_t oc = st.dc_oc, blocks = (s.m + oc - 1) / oc;
      st.dc_weights.assign(size_t(blocks * kk * oc), 0.0f);
      st.dc_bias.assign(size_t(blocks * oc), 0.0f);
      for (int64_t m = 0; m < s.m; ++m) {
        st.dc_bias[size_t(m)] = st.bias[size_t(m)];
        for (int64_t t = 0; t < kk; ++t) st.dc_weights[size_t(((m / oc) * kk + t) * oc + m % oc)] = wd[m * kk + t];
      }
      st.weights.clear();
      step->kernel = "conv2d_f32_direct(" + std::string(isa_name(b.ks.isa)) + " " + std::to_string(st.dc_px) +
                     "px x " + std::to_string(oc) + "oc, " + (st.dc_chunked ? "chunks of taps" : "no packing") + ") " +
                     geom;
    }
  }
  if (step->z != ir::kNoValue) step->kernel += " +residual";
  if (step->act != Act::kNone) step->kernel += " +act";
}

}  // namespace

Result<std::unique_ptr<Step>> build_conv(const BuildCtx& b, std::string* why) {
  const ir::Node& n = b.n;
  if (b.in_type(0).dtype != DType::kF32) return decline(why, "dtype is not f32");
  const Tensor* w = b.constant(1);
  if (!w) return decline(why, "weights are not a constant");
  const Tensor* bias = b.has(2) ? b.constant(2) : nullptr;
  if (b.has(2) && !bias) return decline(why, "bias is not a constant");
  const Shape& xs = b.in_type(0).shape;
  if (xs.size() != 4) return decline(why, "not a 2-D convolution");
  const ir::ConvAttrs& a = n.op == ir::OpKind::kFusedConv ? static_cast<const ir::ConvAttrs&>(n.attr<ir::FusedConvAttrs>())
                                                          : n.attr<ir::ConvAttrs>();
  KILN_ASSIGN(auto geo, ir::conv_geometry(a, xs, w->shape()));
  auto step = std::make_unique<ConvStep>();
  ConvShape& s = step->s;
  s = {xs[0], xs[1], xs[2], xs[3], w->shape()[0], a.group, geo.kernel[0], geo.kernel[1], geo.strides[0],
       geo.strides[1], geo.dilations[0], geo.dilations[1], geo.pads_begin[0], geo.pads_begin[1], geo.out[0],
       geo.out[1], 0, 0};
  s.hp = geo.padded(0);
  s.wp = geo.padded(1);
  step->x = n.inputs[0];
  step->y = n.outputs[0];
  step->z = ir::kNoValue;
  if (n.op == ir::OpKind::kFusedConv) {
    const auto& f = n.attr<ir::FusedConvAttrs>();
    step->act = act_of(f.activation);
    step->alpha = f.activation_alpha;
    step->beta = f.activation_beta;
    if (b.has(3)) {
      if (b.in_type(3).shape != b.out_type().shape) return decline(why, "residual shape differs from the output");
      step->z = n.inputs[3];
    }
  }
  step->bias.assign(size_t(s.m), 0.0f);
  if (bias) std::memcpy(step->bias.data(), bias->data<float>(), sizeof(float) * size_t(s.m));
  const float* wd = w->data<float>();
  step->depthwise = s.c / s.group == 1 && s.m / s.group == 1;
  if (!step->depthwise && s.group == 1 && s.kh == 3 && s.kw == 3 && s.sh == 1 && s.sw == 1 && s.dh == 1 &&
      s.dw == 1 && (b.conv3x3 == "winograd" || (b.conv3x3 == "auto" && winograd_tile(s.n, s.oh, s.ow, b.ks.nr)))) {
    const int tile = b.conv3x3 == "winograd" ? winograd_tile_forced(s.n, s.oh, s.ow, b.ks.nr)
                                             : winograd_tile(s.n, s.oh, s.ow, b.ks.nr);
    WinogradConvDesc d{s.n, s.c, s.h, s.w, s.m, s.pt, s.pl, s.oh, s.ow, wd, step->bias,
                       step->x, step->z, step->y, step->act, step->alpha, step->beta};
    if (b.conv3x3 == "winograd") return make_winograd_conv(d, b.ks, tile, b.threads);
    // At half the direct kernel's multiplies or less Winograd wins on any
    // machine seen so far, and a timing taken while another process runs
    // could pick wrongly: no timing then.
    const double ratio = winograd_work_ratio(s.n, s.oh, s.ow, b.ks.nr);
    if (b.conv3x3 == "auto" && ratio <= 0.5) {
      std::unique_ptr<Step> wino = make_winograd_conv(d, b.ks, tile, b.threads);
      char note[64];
      std::snprintf(note, sizeof note, " [%.2fx the direct multiplies: not timed]", ratio);
      wino->kernel += note;
      return wino;
    }
    finish_direct(*step, b, s, wd);
    // Against F(2x2) the chunked direct tile wins in the model, where a
    // layer's weights come from memory, and loses a timing taken alone,
    // where they stay in cache: resnet50's 256-channel 14x14 layers at batch
    // 1 timed 0.55-0.59 ms Winograd and 0.63 ms direct alone, but ran 0.74-0.83
    // ms Winograd and 0.68 ms direct in the model. So no timing then.
    if (step->dc_chunked && tile == 2) {
      step->kernel += " [over Winograd F(2x2): not timed]";
      return std::unique_ptr<Step>(std::move(step));
    }
    if (b.conv3x3 == "direct" || !b.probe) return std::unique_ptr<Step>(std::move(step));
    std::unique_ptr<Step> wino = make_winograd_conv(d, b.ks, tile, b.threads);
    // Both kernels on the real shapes, once, here: Winograd's transforms cost
    // memory traffic that its 4x fewer multiplies repay only on some layers
    // and machines, so the faster one is kept (and the plan shows both times).
    const double tw = time_step(*wino, *b.probe), td = time_step(*step, *b.probe);
    char note[96];
    std::snprintf(note, sizeof note, " [measured winograd %.3f ms, direct %.3f ms]", tw, td);
    if (tw < td) {
      wino->kernel += note;
      return wino;
    }
    step->kernel += note;
    return std::unique_ptr<Step>(std::move(step));
  }
  finish_direct(*step, b, s, wd);
  return std::unique_ptr<Step>(std::move(step));
}

}  // namespace kiln::cpu
