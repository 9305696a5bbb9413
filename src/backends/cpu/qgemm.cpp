#include "backends/cpu/qgemm.h"

#include <algorithm>

namespace kiln::cpu {
namespace {

// A task's packed X chunk (nb columns x all of K as int16) is kept within
// this many bytes, so that it stays in a 512 KiB L2 beside a W panel.
constexpr int64_t kChunkBytes = 256 << 10;
constexpr int64_t kNbMax = 256;

struct Task {
  int32_t job;
  int64_t m0, mlen, n0, nlen;
};

void run_task(const QGemmJob& j, const Task& t, const QKernels& ks, std::vector<int16_t>& xbuf) {
  const int mr = ks.mr, nr = ks.nr;
  const int64_t kp = (j.k + 1) / 2, npanels = (t.nlen + nr - 1) / nr;
  const int64_t xstride = kp * 2 * nr;
  xbuf.resize(size_t(npanels * xstride));
  const int64_t* k_off = j.x_view->row_off.data();
  for (int64_t q = 0; q < npanels; ++q) {
    const int64_t c0 = t.n0 + q * nr;
    const int valid = int(std::min<int64_t>(nr, t.n0 + t.nlen - c0));
    const int64_t* co = j.x_view->col_off.data() + c0;
    int step = valid == nr ? int(co[1] - co[0]) : 0;
    if (step != 1 && step != 2) step = 0;
    for (int i = 1; step && i < nr; ++i)
      if (co[i] != co[0] + step * i) step = 0;
    ks.pack_b_panel(j.x, j.x_signed, j.x_zp, k_off, j.k, co, valid, step, xbuf.data() + q * xstride);
  }
  alignas(64) int32_t tile[16 * 64];
  alignas(16) uint8_t bytes[64];
  uint8_t* out = static_cast<uint8_t*>(j.out);
  for (int64_t m0 = t.m0; m0 < t.m0 + t.mlen; m0 += mr) {
    const int64_t mv = std::min<int64_t>(mr, t.m0 + t.mlen - m0);
    const int16_t* wp = j.w->data.data() + (m0 / mr) * j.w->panel_stride();
    for (int64_t q = 0; q < npanels; ++q) {
      const int64_t c0 = t.n0 + q * nr, nv = std::min<int64_t>(nr, t.n0 + t.nlen - c0);
      if (mv == mr && nv == nr && j.ld_col == 1) {  // requantized in registers
        ks.qgemm_requant_ukernel(kp, wp, xbuf.data() + q * xstride, j.rows + m0, out + m0 * j.ld_ch + c0, j.ld_ch,
                                 j.out_signed);
        continue;
      }
      ks.qgemm_ukernel(kp, wp, xbuf.data() + q * xstride, tile);
      for (int64_t i = 0; i < mv; ++i) {
        const int64_t ch = m0 + i;
        uint8_t* dst = out + ch * j.ld_ch + c0 * j.ld_col;
        if (j.ld_col == 1) {
          ks.requant_row(tile + i * nr, nv, j.rows[ch], dst, j.out_signed);
        } else {
          ks.requant_row(tile + i * nr, nv, j.rows[ch], bytes, j.out_signed);
          for (int64_t c = 0; c < nv; ++c) dst[c * j.ld_col] = bytes[c];
        }
      }
    }
  }
}

}  // namespace

namespace {
template <class T>
QPacked pack_w(const T* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, int mr) {
  QPacked p;
  p.m = m;
  p.k = k;
  p.mr = mr;
  const int64_t panels = (m + mr - 1) / mr;
  p.data.assign(size_t(panels * p.panel_stride()), 0);
  for (int64_t r = 0; r < m; ++r) {
    int16_t* d = p.data.data() + (r / mr) * p.panel_stride() + (r % mr) * 2;
    for (int64_t c = 0; c < k; ++c) d[(c / 2) * 2 * mr + (c % 2)] = int16_t(w[r * row_stride + c * col_stride]);
  }
  return p;
}
}  // namespace

QPacked qpack_w(const int8_t* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, int mr) {
  return pack_w(w, m, k, row_stride, col_stride, mr);
}
QPacked qpack_w(const int16_t* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, int mr) {
  return pack_w(w, m, k, row_stride, col_stride, mr);
}

void qgemm(const QGemmJob* jobs, int64_t count, const QKernels& ks, ThreadPool* pool) {
  const int threads = pool ? pool->size() : 1;
  const int mr = ks.mr, nr = ks.nr;
  int64_t kmax = 1;
  for (int64_t i = 0; i < count; ++i) kmax = std::max(kmax, jobs[i].k);
  int64_t nb = std::clamp<int64_t>(kChunkBytes / (kmax * 2) / nr * nr, nr, kNbMax / nr * nr);
  int64_t msplit = 1;
  // Columns are split first, down to one panel, then rows, until every
  // thread has about four tasks (as the fp32 driver does).
  auto count_tasks = [&] {
    int64_t n = 0;
    for (int64_t i = 0; i < count; ++i) n += ((jobs[i].n + nb - 1) / nb) * std::min(msplit, (jobs[i].m + mr - 1) / mr);
    return n;
  };
  while (threads > 1 && count_tasks() < 4 * threads) {
    if (nb > nr) nb = std::max<int64_t>(nr, (nb / 2 + nr - 1) / nr * nr);
    else if (msplit < 64) msplit *= 2;
    else break;
  }
  std::vector<Task> tasks;
  for (int64_t i = 0; i < count; ++i) {
    const QGemmJob& j = jobs[i];
    if (j.m == 0 || j.n == 0) continue;
    const int64_t parts = std::min(msplit, (j.m + mr - 1) / mr);
    const int64_t mchunk = ((j.m + parts - 1) / parts + mr - 1) / mr * mr;
    for (int64_t n0 = 0; n0 < j.n; n0 += nb)
      for (int64_t m0 = 0; m0 < j.m; m0 += mchunk)
        tasks.push_back({int32_t(i), m0, std::min(mchunk, j.m - m0), n0, std::min(nb, j.n - n0)});
  }
  auto body = [&](int64_t t, int) {
    thread_local std::vector<int16_t> xbuf;  // per pool thread (see gemm.cpp)
    run_task(jobs[tasks[size_t(t)].job], tasks[size_t(t)], ks, xbuf);
  };
  if (pool) pool->parallel_for(int64_t(tasks.size()), body);
  else
    for (size_t t = 0; t < tasks.size(); ++t) body(int64_t(t), 0);
}

}  // namespace kiln::cpu
