// Exact integer Winograd F(2x2, 3x3) for int8 3x3 stride-1 QConv: 16
// multiplies per 2x2 outputs instead of 36, with results bit-identical to the
// direct sum. Y = A^T [(G g G^T) . (B^T d B)] A has fractions only in G
// (halves), so the weights are transformed with 2G instead: every transform
// is then integer, and the result is exactly 4 * sum(x - zp) * w. All
// arithmetic wraps mod 2^32, which is exact as long as that true value fits
// an int32: qwinograd_exact() checks |4 * acc| < 2^31 from the channel count,
// the activation range and the largest weight before this kernel is chosen.
// Ranges: d = x - zp in [-255, 255], so B^T d B (sums of four) fits int16;
// 2G g 2G^T (sums of nine weights) fits int16; the GEMM is the int16-pair
// kernel of qgemm.h over input channels, per each of the 16 transform points.
// Tested bit for bit against the reference in tests/unit/test_cpu_quant.cpp.
#include <algorithm>
#include <cstring>

#include "backends/cpu/qgemm.h"
#include "backends/cpu/step.h"

namespace kiln::cpu {
namespace {

// Tiles [j0, j1) of a panel whose outputs start at `at`: several whole
// tiles along one tile row, or one edge tile.
struct Run {
  int j0, j1;
  int64_t at;
  bool whole, right, down;
};

class QWinogradStep final : public Step {
 public:
  QWinogradDesc d;
  int64_t ty = 0, tx = 0, hp = 0, wp = 0;  // tiles; padded image
  std::vector<QPacked> u;                  // 16 transformed weight matrices [m x c]
  std::vector<uint8_t> scratch;
  std::vector<int16_t> shared_v;  // all tiles' B panels, when tasks split the output channels
  const QKernels* qk = nullptr;

  Result<void> run(RunCtx& rc) override {
    const uint8_t* in = static_cast<const uint8_t*>(rc.addr[size_t(d.x)]);
    uint8_t* out = static_cast<uint8_t*>(rc.addr[size_t(d.y)]);
    scratch.resize(size_t(d.n * d.c * hp * wp));
    const uint8_t fill = uint8_t(d.x_zp);
    parallel_ranges(rc.pool, d.n * d.c, 4, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        uint8_t* dst = scratch.data() + p * hp * wp;
        std::memset(dst, fill, size_t(hp * wp));
        for (int64_t yy = 0; yy < d.h; ++yy)
          std::memcpy(dst + (yy + d.pt) * wp + d.pl, in + (p * d.h + yy) * d.w, size_t(d.w));
      }
    });
    const int nr = qk->nr, mr = qk->mr;
    const int64_t tiles = ty * tx, panels = (tiles + nr - 1) / nr;
    // Panels per task: the 16 packed B operands of a chunk stay within about
    // 256 KiB (L2) and every W panel is used on all of them.
    const int64_t kp = (d.c + 1) / 2;
    const int64_t per_chunk = std::clamp<int64_t>((256 << 10) / (16 * kp * 2 * nr * 2), 1, 16);
    const int64_t mpanels = (d.m + mr - 1) / mr;
    const int threads = rc.pool ? rc.pool->size() : 1;
    int64_t cpanels = per_chunk, msplit = 1;
    auto tasks_of = [&] { return d.n * ((panels + cpanels - 1) / cpanels) * msplit; };
    while (tasks_of() < 4 * threads && cpanels > 1) cpanels = (cpanels + 1) / 2;
    while (tasks_of() < 4 * threads && msplit < mpanels) msplit *= 2;
    msplit = std::min(msplit, mpanels);
    const int64_t chunks = (panels + cpanels - 1) / cpanels, per = (mpanels + msplit - 1) / msplit;
    // Split over output channels too (few tiles): the input transform is then
    // done once for all tiles first instead of once per task.
    const int64_t ps = 16 * kp * 2 * nr;
    if (msplit > 1) {
      shared_v.resize(size_t(d.n * panels * ps));
      auto transform = [&](int64_t t, int) { transform_panel(t / panels, t % panels, shared_v.data() + t * ps); };
      if (rc.pool) rc.pool->parallel_for(d.n * panels, transform);
      else
        for (int64_t t = 0; t < d.n * panels; ++t) transform(t, 0);
    }
    auto body = [&](int64_t t, int) {
      thread_local std::vector<int16_t> v;    // [panel][16][kp][nr][2]
      thread_local std::vector<int32_t> mt;   // [16][mr][nr]
      const int64_t b = t / (chunks * msplit), rest = t % (chunks * msplit);
      const int64_t chunk = rest / msplit, ms = rest % msplit;
      const int64_t p0 = ms * per, p1 = std::min(mpanels, p0 + per);
      const int64_t q0 = chunk * cpanels, q1 = std::min(panels, q0 + cpanels);
      if (p0 >= p1) return;
      const int16_t* vp;
      if (msplit > 1) {
        vp = shared_v.data() + (b * panels + q0) * ps;
      } else {
        v.resize(size_t((q1 - q0) * ps));  // wino_input writes every element
        for (int64_t q = q0; q < q1; ++q) transform_panel(b, q, v.data() + (q - q0) * ps);
        vp = v.data();
      }
      run_chunk(b, q0, q1, p0, p1, out, vp, mt);
    };
    const int64_t tasks = tasks_of();
    if (rc.pool) rc.pool->parallel_for(tasks, body);
    else
      for (int64_t t = 0; t < tasks; ++t) body(t, 0);
    return {};
  }

 private:
  // The 16 packed B panels of tile panel q of image b (dst zeroed).
  void transform_panel(int64_t b, int64_t q, int16_t* dst) const {
    const int nr = qk->nr;
    const int64_t xs = (d.c + 1) / 2 * 2 * nr, tiles = ty * tx;
    const int count = int(std::min<int64_t>(nr, tiles - q * nr));
    int64_t off[64];
    for (int j = 0; j < count; ++j) {
      const int64_t t = q * nr + j;
      off[j] = (t / tx) * 2 * wp + (t % tx) * 2;
    }
    qk->wino_input(scratch.data() + b * d.c * hp * wp, hp * wp, wp, off, count, d.c, d.x_signed, d.x_zp, dst, xs);
  }

  // Tile panels [q0, q1) of image b (their B panels at v) against output-channel panels [p0, p1).
  void run_chunk(int64_t b, int64_t q0, int64_t q1, int64_t p0, int64_t p1, uint8_t* out, const int16_t* v,
                 std::vector<int32_t>& mt) const {
    const int nr = qk->nr, mr = qk->mr;
    const int64_t kp = (d.c + 1) / 2, xs = kp * 2 * nr, ps = 16 * xs;  // point stride, panel stride
    const int64_t tiles = ty * tx;
    mt.resize(size_t(16 * mr * nr));
    alignas(64) int32_t y[4 * 64];
    alignas(16) uint8_t bytes[4 * 64];
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t mv = std::min<int64_t>(mr, d.m - p * mr);
      for (int64_t q = q0; q < q1; ++q) {
        const int16_t* vq = v + (q - q0) * ps;
        for (int xi = 0; xi < 16; ++xi)
          qk->qgemm_ukernel(kp, u[size_t(xi)].panel(p), vq + xi * xs,
                            mt.data() + xi * mr * nr);
        const int count = int(std::min<int64_t>(nr, tiles - q * nr));
        // Where the tiles' 2x2 outputs go: runs of whole tiles along one tile
        // row are stored as two interleaved output rows; tiles at the right or
        // bottom edge (fewer outputs) one by one.
        Run runs[64];
        int nruns = 0;
        for (int j = 0; j < count;) {
          const int64_t t = q * nr + j, oy = (t / tx) * 2, ox = (t % tx) * 2;
          Run& r = runs[nruns++];
          r.j0 = j;
          r.at = oy * d.ow + ox;
          r.whole = ox + 1 < d.ow && oy + 1 < d.oh;
          r.right = ox + 1 < d.ow;
          r.down = oy + 1 < d.oh;
          int e = j + 1;
          if (r.whole)
            while (e < count && (t + (e - j)) % tx != 0 && ox + 2 * (e - j) + 1 < d.ow) ++e;
          r.j1 = e;
          j = e;
        }
        for (int64_t i = 0; i < mv; ++i) {
          const int64_t ch = p * mr + i;
          qk->wino_output(mt.data(), int64_t(mr) * nr, int(i), y);
          qk->requant_row(y, 4 * nr, d.rows[size_t(ch)], bytes, d.y_signed);
          uint8_t* o = out + (b * d.m + ch) * d.oh * d.ow;
          for (int k = 0; k < nruns; ++k) {
            const Run& r = runs[k];
            uint8_t* row0 = o + r.at;
            if (r.whole) {
              uint8_t* row1 = row0 + d.ow;
              for (int j = r.j0; j < r.j1; ++j) {
                const int64_t c = 2 * (j - r.j0);
                row0[c] = bytes[j];
                row0[c + 1] = bytes[nr + j];
                row1[c] = bytes[2 * nr + j];
                row1[c + 1] = bytes[3 * nr + j];
              }
            } else {
              row0[0] = bytes[r.j0];
              if (r.right) row0[1] = bytes[nr + r.j0];
              if (r.down) {
                row0[d.ow] = bytes[2 * nr + r.j0];
                if (r.right) row0[d.ow + 1] = bytes[3 * nr + r.j0];
              }
            }
          }
        }
      }
    }
  }
};

}  // namespace

bool qwinograd_exact(int64_t channels, int64_t max_abs_x, int64_t max_abs_w) {
  // 4 * (9 * channels) * max|x - zp| * max|w| < 2^31.
  return 36.0 * double(channels) * double(max_abs_x) * double(max_abs_w) < 2147483648.0;
}

std::unique_ptr<Step> make_qwinograd_conv(const QWinogradDesc& desc, const QKernels& qk) {
  auto st = std::make_unique<QWinogradStep>();
  st->d = desc;
  st->qk = &qk;
  const QWinogradDesc& d = st->d;
  st->ty = (d.oh + 1) / 2;
  st->tx = (d.ow + 1) / 2;
  st->hp = std::max(d.pt + d.h, 2 * st->ty + 2);
  st->wp = std::max(d.pl + d.w, 2 * st->tx + 2);
  // U = 2G g 2G^T per (m, c), G2 = [[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]].
  static const int g2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
  std::vector<int16_t> uw(size_t(16 * d.m * d.c));
  for (int64_t m = 0; m < d.m; ++m)
    for (int64_t c = 0; c < d.c; ++c) {
      const int8_t* g = d.weights + (m * d.c + c) * 9;
      int t[4][3];
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 3; ++s) t[r][s] = g2[r][0] * g[s] + g2[r][1] * g[3 + s] + g2[r][2] * g[6 + s];
      for (int r = 0; r < 4; ++r)
        for (int s = 0; s < 4; ++s)
          uw[size_t(((r * 4 + s) * d.m + m) * d.c + c)] =
              int16_t(t[r][0] * g2[s][0] + t[r][1] * g2[s][1] + t[r][2] * g2[s][2]);
    }
  for (int xi = 0; xi < 16; ++xi)
    st->u.push_back(qpack_w(uw.data() + int64_t(xi) * d.m * d.c, d.m, d.c, d.c, 1, qk));
  st->kernel = std::string("conv2d_qs8_winograd_f2x2_3x3(") + qk.qgemm_name + ") +requant";
  return st;
}

}  // namespace kiln::cpu
