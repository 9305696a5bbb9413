// 3x3 stride-1 convolution by Winograd F(4x4, 3x3): each 6x6 input tile is
// transformed (B^T d B), the 36 transformed positions become 36 products of
// [Cout x Cin] x [Cin x tiles] (weights transformed, G g G^T, and packed
// once), and each product tile is transformed back (A^T m A) with bias,
// residual and activation. 36 multiplies per 16 outputs instead of 144: 4x
// fewer, paid for with two transforms and a slightly larger rounding error
// (relative ~1e-5 on resnet layers, checked against the reference in
// tests/unit/test_cpu_conv.cpp).
//
// Fused per panel of nr tiles (the microkernel's width, a tile per lane):
// the input transform writes the 36 B panels directly ([Cin][nr] each, no
// packing pass), the microkernel computes each point's [mr x nr] products
// into a buffer of a block of row panels by the task's panels (within half
// of L2), and the output transform reads them back at once, so nothing of
// size tiles x channels x 36 goes through memory. How a batch is cut into
// tasks (panels by shares of the rows) follows a cost model of its traffic
// (winograd_blocking). (The first
// version transformed the whole image, ran 36 GEMMs through the shared
// driver, which packed the transformed data again, and transformed a
// 36 x Cout x tiles buffer back: its traffic ate most of the 4x saving.)
// Chosen by build_conv (ops_conv.cpp) where its padded GEMM work is well
// below the direct one's, and with --conv3x3 auto only if it times faster.
#include <algorithm>
#include <cstring>

#include "backends/cpu/step.h"

namespace kiln::cpu {
namespace {

// G, the 6x3 weight transform.
constexpr double kG[6][3] = {{1.0 / 4, 0, 0},
                             {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                             {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                             {1.0 / 24, 1.0 / 12, 1.0 / 6},
                             {1.0 / 24, -1.0 / 12, 1.0 / 6},
                             {0, 0, 1}};

class WinogradStep final : public Step {
 public:
  WinogradConvDesc d;
  int tm = 4, pts = 36;                    // output tile TM x TM; (TM + 2)^2 transform points
  int64_t ty = 0, tx = 0, hp = 0, wp = 0;  // tiles per image column/row; the zero-padded image
  std::vector<Packed> u;                   // per point xi: [Cout x Cin]
  std::vector<float> scratch;              // padded input
  std::vector<float> shared_v;             // all panels' B operands, when tasks split Cout
  WinogradBlocking cut{1, 1};              // tasks' blocks when the batch's tiles form one sequence
  int64_t product_bytes = 1 << 20;         // products ([pts][mr][nr] per panel pair) computed at a time

  Result<void> run(RunCtx& c) override {
    const float* x = c.f(d.x);
    const int nr = c.ks.nr, mr = c.ks.mr;
    const int64_t tiles = ty * tx, ps = pts * d.c * nr;
    const int64_t mpanels = (d.m + mr - 1) / mr;
    const int threads = c.pool ? c.pool->size() : 1;
    if (per_image(threads, nr)) {
      // A task per image, padded into a per-thread buffer right before use,
      // so that the transforms read it from L2. (Padding the whole batch
      // first left it in L3, where the transforms' 6-row patches across the
      // channels came back a line at a time: resnet18's 56x56 layers at
      // batch 32, 18.4 -> 16.4 ms.) Panels in chunks whose B operands stay
      // within about 512 KiB.
      const int64_t per_chunk = std::clamp<int64_t>((512 << 10) / (ps * 4), 1, 8);
      const int64_t panels = (tiles + nr - 1) / nr;
      auto body = [&](int64_t b, int) {
        thread_local std::vector<float> img, v;
        img.resize(size_t(d.c * hp * wp + 16));  // slack: kernels may load a few floats past a patch
        pad_planes(x + b * d.c * d.h * d.w, img.data(), 0, d.c);
        v.resize(size_t(per_chunk * ps));
        for (int64_t q0 = 0; q0 < panels; q0 += per_chunk) {
          const int64_t q1 = std::min(panels, q0 + per_chunk);
          for (int64_t q = q0; q < q1; ++q)
            transform_panel(c.ks, img.data(), tiles, q, 0, d.c, v.data() + (q - q0) * ps);
          run_chunk(c, b, tiles, q0, q1, 0, mpanels, v.data());
        }
      };
      if (c.pool) c.pool->parallel_for(d.n, body);
      else
        for (int64_t b = 0; b < d.n; ++b) body(b, 0);
      return {};
    }
    // Otherwise the tiles of the whole batch are numbered in one sequence
    // and a panel may take tiles of two images, so that small images fill
    // the microkernel's columns (a 14x14 image has 16 F(4x4) tiles; alone
    // in a panel of 32 it wasted half of the GEMM). Tasks take blocks of
    // panels by row panels as `cut` says (winograd_blocking).
    const int64_t total = d.n * tiles, panels = (total + nr - 1) / nr;
    scratch.resize(size_t(d.n * d.c * hp * wp + 16));  // slack: kernels may load a few floats past a patch
    parallel_ranges(c.pool, d.n * d.c, 4, [&](int64_t b, int64_t e) { pad_planes(x, scratch.data(), b, e); });
    const int64_t cq = std::min(cut.panels, panels), qblocks = (panels + cq - 1) / cq;
    const int64_t pblocks = std::min(cut.row_blocks, mpanels);
    if (pblocks > 1) {  // transform once for all tasks
      shared_v.resize(size_t(panels * ps));
      // Few panels (a 14x14 or 7x7 image has one): their channels split
      // too, so that no thread waits on a single transform task.
      const int64_t cparts =
          std::clamp<int64_t>((4 * threads + panels - 1) / panels, 1, std::max<int64_t>(1, d.c / 16));
      auto transform = [&](int64_t t, int) {
        const int64_t q = t / cparts, part = t % cparts;
        const int64_t c0 = part * d.c / cparts, c1 = (part + 1) * d.c / cparts;
        transform_panel(c.ks, scratch.data(), total, q, c0, c1, shared_v.data() + q * ps);
      };
      if (c.pool) c.pool->parallel_for(panels * cparts, transform);
      else
        for (int64_t t = 0; t < panels * cparts; ++t) transform(t, 0);
    }
    auto body = [&](int64_t t, int) {
      thread_local std::vector<float> v;  // [panel][pts][Cin][nr]
      const int64_t qb = t / pblocks, pb = t % pblocks;
      // Row panels shared out evenly (43 as 5 and 6, not 7 x 6 + 1: one
      // thread ran 24 of them, the other 19).
      const int64_t p0 = pb * mpanels / pblocks, p1 = (pb + 1) * mpanels / pblocks;
      const int64_t q0 = qb * cq, q1 = std::min(panels, q0 + cq);
      if (p0 >= p1) return;
      const float* vp;
      if (pblocks > 1) {
        vp = shared_v.data() + q0 * ps;
      } else {
        v.resize(size_t((q1 - q0) * ps));
        for (int64_t q = q0; q < q1; ++q)
          transform_panel(c.ks, scratch.data(), total, q, 0, d.c, v.data() + (q - q0) * ps);
        vp = v.data();
      }
      run_chunk(c, 0, total, q0, q1, p0, p1, vp);
    };
    const int64_t tasks = qblocks * pblocks;
    if (c.pool) c.pool->parallel_for(tasks, body);
    else
      for (int64_t t = 0; t < tasks; ++t) body(t, 0);
    return {};
  }

  // Whether run() takes an image per task: a batch that the threads share
  // evenly, whose images nearly fill their panels (at most 1/8 of the
  // columns idle; resnet18's 56x56 layers: 196 tiles in 7 panels of 32; one
  // sequence across the images was no faster there, 16.7 against 16.5 ms).
  bool per_image(int threads, int nr) const {
    const int64_t tiles = ty * tx, idle = (tiles + nr - 1) / nr * nr - tiles;
    return images_share_evenly(d.n, threads) && idle * 8 <= tiles;
  }

 private:
  // Planes [p0, p1) of x into their zero-bordered copies in dst.
  void pad_planes(const float* x, float* dst, int64_t p0, int64_t p1) const {
    for (int64_t p = p0; p < p1; ++p) {
      float* o = dst + p * hp * wp;
      std::fill(o, o + d.pt * wp, 0.0f);
      for (int64_t yy = 0; yy < d.h; ++yy) {
        float* row = o + (yy + d.pt) * wp;
        std::fill(row, row + d.pl, 0.0f);
        std::memcpy(row + d.pl, x + (p * d.h + yy) * d.w, sizeof(float) * size_t(d.w));
        std::fill(row + d.pl + d.w, row + wp, 0.0f);
      }
      std::fill(o + (d.pt + d.h) * wp, o + hp * wp, 0.0f);
    }
  }

  // Channels [c0, c1) of panel q of the padded images at img (of `total`
  // tiles, counted across the images) into dst (the panel's 36 or 16 B
  // operands, [point][Cin][nr]).
  void transform_panel(const KernelSet& ks, const float* img, int64_t total, int64_t q, int64_t c0, int64_t c1,
                       float* dst) const {
    const int nr = ks.nr;
    const int64_t tiles = ty * tx;
    const int count = int(std::min<int64_t>(nr, total - q * nr));
    int64_t off[64];
    for (int j = 0; j < count; ++j) {
      const int64_t t = (q * nr + j) % tiles, b = (q * nr + j) / tiles;
      off[j] = b * d.c * hp * wp + (t / tx) * tm * wp + (t % tx) * tm;
    }
    ks.winograd_input_panel[tm == 4 ? 0 : 1](img + c0 * hp * wp, hp * wp, wp, off, count,
                                             c1 - c0, dst + c0 * nr, d.c * nr);
  }

  // Row panels [p0, p1) x panels [q0, q1) of the images from b on (tiles
  // counted across them, `total` in all), v holding the panels' B operands.
  // The products of a block of row panels by all the panels go to a buffer
  // of at most product_bytes, point by point, so that each point's weights
  // (A) serve all the panels and each panel's operand (B) all the row
  // panels while they are in cache; then each pair is transformed back.
  // (A row panel at a time against one panel, resnet18's 7x7 layers at
  // batch 32 read their 36 MiB of transformed weights once per panel and
  // each panel's 2.3 MiB of B once per row panel, mostly from L3.)
  void run_chunk(RunCtx& c, int64_t b, int64_t total, int64_t q0, int64_t q1, int64_t p0, int64_t p1,
                 const float* v) const {
    const KernelSet& ks = c.ks;
    const int nr = ks.nr, mr = ks.mr;
    const int64_t xs = d.c * nr, ps = pts * xs, nq = q1 - q0, per = int64_t(pts) * mr * nr;
    const int64_t rows = std::clamp<int64_t>(product_bytes / (nq * per * 4), 1, p1 - p0);
    thread_local std::vector<float> products;
    products.resize(size_t(rows * nq * per));
    for (int64_t pb = p0; pb < p1; pb += rows) {
      const int64_t pe = std::min(p1, pb + rows);
      for (int xi = 0; xi < pts; ++xi)
        for (int64_t p = pb; p < pe; ++p) {
          const float* a = u[size_t(xi)].data.data() + p * d.c * mr;
          for (int64_t q = q0; q < q1; ++q) {
            const float* vq = v + (q - q0) * ps + xi * xs;
            float* mt = products.data() + ((p - pb) * nq + (q - q0)) * per + xi * mr * nr;
            for (int64_t k0 = 0; k0 < d.c; k0 += kKc)
              ks.gemm_ukernel(std::min(kKc, d.c - k0), a + k0 * mr, vq + k0 * nr, nr, mt, nr, k0 > 0, nullptr, mr);
          }
        }
      for (int64_t p = pb; p < pe; ++p)
        for (int64_t q = q0; q < q1; ++q)
          store_products(c, b, total, p, q, products.data() + ((p - pb) * nq + (q - q0)) * per);
    }
  }

  // Row panel p x panel q's products mt ([pts][mr][nr]) transformed back,
  // with bias, residual and activation, into the output.
  void store_products(RunCtx& c, int64_t b, int64_t total, int64_t p, int64_t q, const float* mt) const {
    const KernelSet& ks = c.ks;
    const int nr = ks.nr, mr = ks.mr;
    const int64_t tiles = ty * tx;
    float* out = c.f(d.y) + b * d.m * d.oh * d.ow;
    const float* res = d.z == ir::kNoValue ? nullptr : c.f(d.z) + b * d.m * d.oh * d.ow;
    alignas(64) float y[16 * 64];
    const int64_t mv = std::min<int64_t>(mr, d.m - p * mr);
    // Output positions of the panel's tiles (TM x TM each, fewer at the right and bottom edges).
    const int count = int(std::min<int64_t>(nr, total - q * nr));
    int64_t at[64];
    int rows[64], cols[64];
    for (int j = 0; j < count; ++j) {
      const int64_t t = (q * nr + j) % tiles, oy = (t / tx) * tm, ox = (t % tx) * tm;
      at[j] = (q * nr + j) / tiles * d.m * d.oh * d.ow + oy * d.ow + ox;
      rows[j] = int(std::min<int64_t>(tm, d.oh - oy));
      cols[j] = int(std::min<int64_t>(tm, d.ow - ox));
    }
    // Whole tiles through the kernel set's vector store where it has one
    // (F(4x4), Relu / Clip / no activation); the rest element by element.
    bool whole[64];
    const bool vec = tm == 4 && ks.winograd_store4 &&
                     (d.act == Act::kNone || d.act == Act::kRelu || d.act == Act::kClip);
    for (int j = 0; j < count; ++j) whole[j] = vec && rows[j] == 4 && cols[j] == 4;
    for (int64_t i = 0; i < mv; ++i) {
      const int64_t ch = p * mr + i;
      ks.winograd_output_panel[tm == 4 ? 0 : 1](mt, int64_t(mr) * nr, int(i), d.bias[size_t(ch)], y);
      if (vec) {
        ks.winograd_store4(y, count, at, whole, res ? res + ch * d.oh * d.ow : nullptr, out + ch * d.oh * d.ow,
                           d.ow, d.act, d.alpha, d.beta);
        bool rest = false;
        for (int j = 0; j < count; ++j) rest |= !whole[j];
        if (!rest) continue;
      }
      if (res) {
        const float* r = res + ch * d.oh * d.ow;
        for (int j = 0; j < count; ++j)
          for (int pp = 0; pp < (whole[j] ? 0 : rows[j]); ++pp)
            for (int qq = 0; qq < cols[j]; ++qq) y[(pp * tm + qq) * nr + j] += r[at[j] + pp * d.ow + qq];
      }
      if (d.act != Act::kNone) ks.activate(d.act, d.alpha, d.beta, y, tm * tm * nr);
      float* o = out + ch * d.oh * d.ow;
      for (int j = 0; j < count; ++j)
        for (int pp = 0; pp < (whole[j] ? 0 : rows[j]); ++pp)
          for (int qq = 0; qq < cols[j]; ++qq) o[at[j] + pp * d.ow + qq] = y[(pp * tm + qq) * nr + j];
    }
  }
};

}  // namespace

// The GEMM columns of `tiles` tiles per image, padded to whole panels of nr
// (the tiles of a batch are counted across the images: WinogradStep::run).
static int64_t panel_columns(int64_t batch, int64_t tiles, int nr) { return (batch * tiles + nr - 1) / nr * nr; }

double winograd_work_ratio(int64_t batch, int64_t oh, int64_t ow, int nr) {
  auto up = [&](int64_t v) { return panel_columns(batch, v, nr); };
  const double direct = 9.0 * double(up(oh * ow));
  const double f4 = 36.0 * double(up(((oh + 3) / 4) * ((ow + 3) / 4)));
  const double f2 = 16.0 * double(up(((oh + 1) / 2) * ((ow + 1) / 2)));
  return std::min(f4, f2) / direct;
}

int winograd_tile(int64_t batch, int64_t oh, int64_t ow, int nr) {
  // Multiply work of the padded GEMMs per unit of Cin x Cout: (TM + 2)^2 per
  // tile against 9 per output pixel, the columns padded to whole panels;
  // Winograd needs a 10:7 margin over direct.
  auto up = [&](int64_t v) { return panel_columns(batch, v, nr); };
  const int64_t direct = 9 * up(oh * ow);
  const int64_t f4 = 36 * up(((oh + 3) / 4) * ((ow + 3) / 4));
  const int64_t f2 = 16 * up(((oh + 1) / 2) * ((ow + 1) / 2));
  const int best = f4 <= f2 ? 4 : 2;
  return std::min(f4, f2) * 10 < direct * 7 ? best : 0;
}

int winograd_tile_forced(int64_t batch, int64_t oh, int64_t ow, int nr) {
  auto up = [&](int64_t v) { return panel_columns(batch, v, nr); };
  return 36 * up(((oh + 3) / 4) * ((ow + 3) / 4)) <= 16 * up(((oh + 1) / 2) * ((ow + 1) / 2)) ? 4 : 2;
}

WinogradBlocking winograd_blocking(int64_t col_panels, int64_t row_panels, int64_t c, int pts, int mr, int nr,
                                   int threads, int64_t budget_bytes) {
  // A cost per choice, in multiply-adds, scaled by how unevenly its largest
  // task leaves the threads loaded:
  // - the multiply-adds themselves;
  // - 10 per byte of the weights read once per block of panels, where they
  //   do not fit in the budget;
  // - 10 per byte of the B operands when the rows are shared out: they are
  //   then transformed once for all tasks, written out and read back once
  //   per share;
  // - 3 per byte of a task's B operands read again per block of rows that
  //   the products budget allows, where they do not fit in it.
  // (resnet18 at batch 32, ms a layer in the whole model, panels x shares:
  // 7x7 layers, 4 x 43 row panels: 1 x 1 16.1, 2 x 1 12.4, 4 x 4 12.3,
  // 4 x 8 13.2, 2 x 3 13.4; 14x14 layers, 16 x 22: 1 x 1 11.4, 2 x 1 11.8,
  // 2 x 2 15.1.)
  const double per_pair = double(pts) * mr * nr * 4;
  const double u = double(pts) * double(row_panels * mr) * double(c) * 4;
  const double v = double(pts) * double(c) * double(col_panels * nr) * 4;
  const double flops = 2.0 * double(pts) * double(row_panels * mr) * double(c) * double(col_panels * nr);
  WinogradBlocking best{1, 1};
  double best_cost = -1;
  for (int64_t cq = 1; cq <= std::min<int64_t>(col_panels, 16); ++cq) {
    const int64_t qblocks = (col_panels + cq - 1) / cq;
    for (int64_t pb = 1; pb <= row_panels; ++pb) {
      const int64_t rows = (row_panels + pb - 1) / pb, tasks = qblocks * pb;
      const int64_t at_once = std::clamp<int64_t>(int64_t(double(budget_bytes) / (double(cq) * per_pair)), 1, rows);
      const double task_v = double(cq) * double(pts) * double(c) * nr * 4;
      double bytes = 10 * (u > double(budget_bytes) ? u * double(qblocks) : u);
      if (pb > 1) bytes += 10 * v * double(1 + pb);
      if (task_v > double(budget_bytes)) bytes += 3 * v * double(pb) * double((rows + at_once - 1) / at_once);
      const double largest = double(std::min(cq, col_panels) * rows);
      const double even = double(col_panels * row_panels) / double(threads);
      const double spread = double((tasks + threads - 1) / threads) * largest / even;
      const double cost = (flops + bytes) * std::max(1.0, spread);
      if (best_cost < 0 || cost < best_cost) best = {cq, pb}, best_cost = cost;
    }
  }
  return best;
}

std::unique_ptr<Step> make_winograd_conv(const WinogradConvDesc& desc, const KernelSet& ks, int tile, int threads) {
  auto s = std::make_unique<WinogradStep>();
  s->d = desc;
  const WinogradConvDesc& d = s->d;
  const int tm = tile == 2 ? 2 : 4, a = tm + 2;
  s->tm = tm;
  s->pts = a * a;
  s->ty = (d.oh + tm - 1) / tm;
  s->tx = (d.ow + tm - 1) / tm;
  s->hp = std::max(d.pt + d.h, tm * s->ty + 2);
  s->wp = std::max(d.pl + d.w, tm * s->tx + 2);
  // U[xi][m][c] = (G g G^T)[xi], in double, rounded once.
  static const double kG2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
  auto g_at = [&](int i, int k) { return tm == 4 ? kG[i][k] : kG2[i][k]; };
  std::vector<float> ut(size_t(s->pts * d.m * d.c));
  for (int64_t m = 0; m < d.m; ++m)
    for (int64_t ch = 0; ch < d.c; ++ch) {
      const float* g = d.weights + (m * d.c + ch) * 9;
      double tmp[6][3];
      for (int i = 0; i < a; ++i)
        for (int k = 0; k < 3; ++k)
          tmp[i][k] = g_at(i, 0) * g[0 * 3 + k] + g_at(i, 1) * g[1 * 3 + k] + g_at(i, 2) * g[2 * 3 + k];
      for (int i = 0; i < a; ++i)
        for (int j = 0; j < a; ++j)
          ut[size_t(((i * a + j) * d.m + m) * d.c + ch)] =
              float(tmp[i][0] * g_at(j, 0) + tmp[i][1] * g_at(j, 1) + tmp[i][2] * g_at(j, 2));
    }
  MatrixView uv = MatrixView::dense(d.m, d.c, d.c);
  for (int xi = 0; xi < s->pts; ++xi) s->u.push_back(pack_a(ut.data() + xi * d.m * d.c, uv, ks.mr));
  s->kernel = std::string("conv2d_f32_winograd_f") + std::to_string(tm) + "x" + std::to_string(tm) + "_3x3(" +
              ks.gemm_name + ") " + std::to_string(d.n * s->ty * s->tx) + " tiles";
  s->product_bytes = cpu_info().l2_bytes / 2;
  const int64_t col_panels = (d.n * s->ty * s->tx + ks.nr - 1) / ks.nr, row_panels = (d.m + ks.mr - 1) / ks.mr;
  if (!s->per_image(threads, ks.nr)) {
    s->cut = winograd_blocking(col_panels, row_panels, d.c, s->pts, ks.mr, ks.nr, threads, s->product_bytes);
    s->kernel += ", " + std::to_string(s->cut.panels) + " panel(s) x " +
                 std::to_string((row_panels + s->cut.row_blocks - 1) / s->cut.row_blocks) + " row panel(s) per task";
  }
  if (d.z != ir::kNoValue) s->kernel += " +residual";
  if (d.act != Act::kNone) s->kernel += " +act";
  return s;
}

}  // namespace kiln::cpu
