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
#include <cstring>

#include "backends/cpu/qgemm.h"
#include "backends/cpu/step.h"

namespace kiln::cpu {
namespace {

class QWinogradStep final : public Step {
 public:
  QWinogradDesc d;
  int64_t ty = 0, tx = 0, hp = 0, wp = 0;  // tiles; padded image
  std::vector<QPacked> u;                  // 16 transformed weight matrices [m x c]
  std::vector<uint8_t> scratch;
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
    const int64_t tiles = ty * tx, chunks = (tiles + nr - 1) / nr;
    const int64_t mpanels = (d.m + mr - 1) / mr;
    const int threads = rc.pool ? rc.pool->size() : 1;
    int64_t msplit = 1;
    while (d.n * chunks * msplit < 4 * threads && msplit < mpanels) msplit *= 2;
    msplit = std::min(msplit, mpanels);
    const int64_t per = (mpanels + msplit - 1) / msplit;
    auto body = [&](int64_t t, int) {
      thread_local std::vector<int16_t> v;  // [16][kp][nr][2]
      const int64_t b = t / (chunks * msplit), rest = t % (chunks * msplit);
      const int64_t chunk = rest / msplit, ms = rest % msplit;
      const int64_t p0 = ms * per, p1 = std::min(mpanels, p0 + per);
      if (p0 >= p1) return;
      run_chunk(b, chunk * nr, std::min<int64_t>(nr, tiles - chunk * nr), p0, p1, out, v);
    };
    const int64_t tasks = d.n * chunks * msplit;
    if (rc.pool) rc.pool->parallel_for(tasks, body);
    else
      for (int64_t t = 0; t < tasks; ++t) body(t, 0);
    return {};
  }

 private:
  // Tiles [t0, t0 + count) of image b against output-channel panels [p0, p1).
  void run_chunk(int64_t b, int64_t t0, int64_t count, int64_t p0, int64_t p1, uint8_t* out,
                 std::vector<int16_t>& v) const {
    const int nr = qk->nr, mr = qk->mr;
    const int64_t kp = (d.c + 1) / 2, xs = kp * 2 * nr;  // one transform point's panel
    v.assign(size_t(16 * xs), 0);
    const int16_t zp = int16_t(d.x_zp);
    const uint8_t* img = scratch.data() + b * d.c * hp * wp;
    for (int64_t j = 0; j < count; ++j) {
      const int64_t t = t0 + j, y0 = (t / tx) * 2, x0 = (t % tx) * 2;
      for (int64_t ci = 0; ci < d.c; ++ci) {
        const uint8_t* src = img + ci * hp * wp + y0 * wp + x0;
        int16_t q[4][4];
        for (int r = 0; r < 4; ++r)
          for (int s = 0; s < 4; ++s) {
            const uint8_t raw = src[r * wp + s];
            q[r][s] = int16_t((d.x_signed ? int16_t(int8_t(raw)) : int16_t(raw)) - zp);
          }
        // B^T q B, rows then columns: (q0 - q2, q1 + q2, q2 - q1, q1 - q3).
        int16_t t1[4][4];
        for (int s = 0; s < 4; ++s) {
          t1[0][s] = int16_t(q[0][s] - q[2][s]);
          t1[1][s] = int16_t(q[1][s] + q[2][s]);
          t1[2][s] = int16_t(q[2][s] - q[1][s]);
          t1[3][s] = int16_t(q[1][s] - q[3][s]);
        }
        int16_t* dst = v.data() + (ci / 2) * 2 * nr + j * 2 + (ci % 2);
        for (int r = 0; r < 4; ++r) {
          const int16_t vals[4] = {int16_t(t1[r][0] - t1[r][2]), int16_t(t1[r][1] + t1[r][2]),
                                   int16_t(t1[r][2] - t1[r][1]), int16_t(t1[r][1] - t1[r][3])};
          for (int s = 0; s < 4; ++s) dst[(r * 4 + s) * xs] = vals[s];
        }
      }
    }
    alignas(64) int32_t mt[16][16 * 16];  // per transform point: the [mr][nr] tile
    alignas(64) int32_t acc[64];
    alignas(16) uint8_t bytes[64];
    int64_t pos[64];
    for (int64_t p = p0; p < p1; ++p) {
      for (int xi = 0; xi < 16; ++xi)
        qk->qgemm_ukernel(kp, u[size_t(xi)].data.data() + p * u[size_t(xi)].panel_stride(), v.data() + xi * xs,
                          mt[xi]);
      const int64_t mv = std::min<int64_t>(mr, d.m - p * mr);
      for (int64_t i = 0; i < mv; ++i) {
        const int64_t ch = p * mr + i;
        int n = 0;
        for (int64_t j = 0; j < count; ++j) {
          uint32_t m4[4][4];
          for (int xi = 0; xi < 16; ++xi) m4[xi / 4][xi % 4] = uint32_t(mt[xi][i * nr + j]);
          // A^T m A with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]], mod 2^32.
          uint32_t r0[4], r1[4];
          for (int s = 0; s < 4; ++s) {
            r0[s] = m4[0][s] + m4[1][s] + m4[2][s];
            r1[s] = m4[1][s] - m4[2][s] - m4[3][s];
          }
          const uint32_t y4[2][2] = {{r0[0] + r0[1] + r0[2], r0[1] - r0[2] - r0[3]},
                                     {r1[0] + r1[1] + r1[2], r1[1] - r1[2] - r1[3]}};
          const int64_t t = t0 + j, oy = (t / tx) * 2, ox = (t % tx) * 2;
          for (int a = 0; a < 2; ++a)
            for (int c2 = 0; c2 < 2; ++c2)
              if (oy + a < d.oh && ox + c2 < d.ow) {
                acc[n] = int32_t(y4[a][c2]) >> 2;  // exactly 4 * acc (qwinograd_exact)
                pos[n++] = (oy + a) * d.ow + ox + c2;
              }
        }
        qk->requant_row(acc, n, d.rows[size_t(ch)], bytes, d.y_signed);
        uint8_t* o = out + (b * d.m + ch) * d.oh * d.ow;
        for (int k = 0; k < n; ++k) o[pos[k]] = bytes[k];
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
    st->u.push_back(qpack_w(uw.data() + int64_t(xi) * d.m * d.c, d.m, d.c, d.c, 1, qk.mr));
  st->kernel = std::string("conv2d_qs8_winograd_f2x2_3x3(") + qk.qgemm_name + ") +requant";
  return st;
}

}  // namespace kiln::cpu
