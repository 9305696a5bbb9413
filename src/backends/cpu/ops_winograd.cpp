// 3x3 stride-1 convolution by Winograd F(4x4, 3x3): each 6x6 input tile is
// transformed (B^T d B), the 36 transformed positions become 36 GEMMs of
// [Cout x Cin] x [Cin x tiles] on the shared driver (weights transformed,
// G g G^T, and packed once), and each product tile is transformed back
// (A^T m A) with bias, residual and activation. 36 multiplies per 16
// outputs instead of 144: 4x fewer, paid for with two transforms and a
// slightly larger rounding error (relative ~1e-5 on resnet layers, checked
// against the reference in tests/unit/test_cpu_backend.cpp).
// Chosen by build_conv (ops_conv.cpp) only where its padded GEMM work is
// well below the direct one's (not for 7x7 planes at batch 1).
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
  int64_t tiles_y = 0, tiles_x = 0, nt = 0;  // tiles per image row/column, tiles of the whole batch
  std::vector<Packed> u;                     // per position xi: [Cout x Cin]
  MatrixView v_view;
  std::vector<float> v, mbuf;                // [36][Cin][nt], [36][Cout][nt]

  Result<void> run(RunCtx& c) override {
    const float* x = c.f(d.x);
    float* y = c.f(d.y);
    const float* res = d.z == ir::kNoValue ? nullptr : c.f(d.z);
    const int64_t t_img = tiles_y * tiles_x;
    v.resize(size_t(36 * d.c * nt));
    mbuf.resize(size_t(36 * d.m * nt));
    const int64_t scratch_in = 64 * tiles_x + 128;
    parallel_ranges(c.pool, d.n * d.c, 1, [&](int64_t lo, int64_t hi) {
      thread_local std::vector<float> scratch;
      scratch.resize(size_t(scratch_in));
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t img = p / d.c, ch = p % d.c;
        for (int64_t ty = 0; ty < tiles_y; ++ty)
          c.ks.winograd_input_row(x + p * d.h * d.w, d.h, d.w, d.pt, d.pl, ty, tiles_x,
                                  v.data() + ch * nt + img * t_img + ty * tiles_x, d.c * nt, scratch.data());
      }
    });
    std::vector<GemmJob> jobs(36);
    for (int xi = 0; xi < 36; ++xi) {
      GemmJob& j = jobs[size_t(xi)];
      j.m = d.m;
      j.n = nt;
      j.k = d.c;
      j.a_packed = &u[size_t(xi)];
      j.b = v.data() + xi * d.c * nt;
      j.b_view = &v_view;
      j.c = mbuf.data() + xi * d.m * nt;
      j.ldc = nt;
    }
    gemm_f32(jobs.data(), 36, c.ks, c.pool);
    const int64_t scratch_out = 32 * tiles_x + 16;
    parallel_ranges(c.pool, d.n * d.m, 1, [&](int64_t lo, int64_t hi) {
      thread_local std::vector<float> scratch;
      scratch.resize(size_t(scratch_out));
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t img = p / d.m, oc = p % d.m;
        for (int64_t ty = 0; ty < tiles_y; ++ty)
          c.ks.winograd_output_row(mbuf.data() + oc * nt + img * t_img + ty * tiles_x, d.m * nt, tiles_x,
                                   d.bias[size_t(oc)], res ? res + p * d.oh * d.ow : nullptr, y + p * d.oh * d.ow,
                                   d.oh, d.ow, ty, d.act, d.alpha, d.beta, scratch.data());
      }
    });
    return {};
  }
};

}  // namespace

bool winograd_pays(int64_t batch, int64_t oh, int64_t ow, int nr) {
  auto up = [&](int64_t v) { return (v + nr - 1) / nr * nr; };
  const int64_t tiles = batch * ((oh + 3) / 4) * ((ow + 3) / 4);
  // Multiply work of the padded GEMMs: 36 per tile vs 9 per output pixel.
  return 36 * up(tiles) * 10 < 9 * up(batch * oh * ow) * 7;
}

std::unique_ptr<Step> make_winograd_conv(const WinogradConvDesc& desc, const KernelSet& ks) {
  auto s = std::make_unique<WinogradStep>();
  s->d = desc;
  const WinogradConvDesc& d = s->d;
  s->tiles_y = (d.oh + 3) / 4;
  s->tiles_x = (d.ow + 3) / 4;
  s->nt = d.n * s->tiles_y * s->tiles_x;
  // U[xi][m][c] = (G g G^T)[xi], in double, rounded once.
  std::vector<float> ut(size_t(36 * d.m * d.c));
  for (int64_t m = 0; m < d.m; ++m)
    for (int64_t ch = 0; ch < d.c; ++ch) {
      const float* g = d.weights + (m * d.c + ch) * 9;
      double tmp[6][3];
      for (int i = 0; i < 6; ++i)
        for (int k = 0; k < 3; ++k) tmp[i][k] = kG[i][0] * g[0 * 3 + k] + kG[i][1] * g[1 * 3 + k] + kG[i][2] * g[2 * 3 + k];
      for (int i = 0; i < 6; ++i)
        for (int j = 0; j < 6; ++j)
          ut[size_t(((i * 6 + j) * d.m + m) * d.c + ch)] =
              float(tmp[i][0] * kG[j][0] + tmp[i][1] * kG[j][1] + tmp[i][2] * kG[j][2]);
    }
  MatrixView uv = MatrixView::dense(d.m, d.c, d.c);
  for (int xi = 0; xi < 36; ++xi) s->u.push_back(pack_a(ut.data() + xi * d.m * d.c, uv, ks.mr));
  s->v_view = MatrixView::dense(d.c, s->nt, s->nt);
  s->kernel = std::string("conv2d_f32_winograd_f4x4_3x3(") + ks.gemm_name + ") " + std::to_string(s->nt) + " tiles";
  if (d.z != ir::kNoValue) s->kernel += " +residual";
  if (d.act != Act::kNone) s->kernel += " +act";
  return s;
}

}  // namespace kiln::cpu
