#include "backends/cpu/qgemm.h"

#include <algorithm>
#include <cstring>

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

void run_task(const QGemmJob& j, const Task& t, const QKernels& ks, std::vector<uint8_t>& xbuf) {
  const int mr = ks.mr, nr = ks.nr;
  const int64_t packed = (j.k + ks.kg - 1) / ks.kg, groups = j.w->groups(), npanels = (t.nlen + nr - 1) / nr;
  const int64_t xstride = groups * ks.kg * nr * ks.esize;  // bytes of one B panel
  xbuf.resize(size_t(npanels * xstride));
  if (groups > packed)  // the gb padding: zero weights, but the bytes must be numbers too
    for (int64_t q = 0; q < npanels; ++q)
      std::memset(xbuf.data() + q * xstride + packed * ks.kg * nr * ks.esize, 0,
                  size_t((groups - packed) * ks.kg * nr * ks.esize));
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
    const void* wp = j.w->panel(m0 / mr);
    for (int64_t q = 0; q < npanels; ++q) {
      const int64_t c0 = t.n0 + q * nr, nv = std::min<int64_t>(nr, t.n0 + t.nlen - c0);
      const uint8_t* xp = xbuf.data() + q * xstride;
      if (mv == mr && nv == nr && j.ld_col == 1) {  // requantized in registers
        ks.qgemm_requant_ukernel(groups, wp, xp, j.rows + m0, out + m0 * j.ld_ch + c0, j.ld_ch, j.out_signed);
        continue;
      }
      ks.qgemm_ukernel(groups, wp, xp, tile);
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
QPacked pack_w(const T* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, const QKernels& ks) {
  QPacked p;
  p.m = m;
  p.k = k;
  p.mr = ks.mr;
  p.kg = ks.kg;
  p.esize = ks.esize;
  p.gb = ks.gb;
  const int64_t panels = (m + p.mr - 1) / p.mr, kg = p.kg, gb = p.gb;
  p.data.assign(size_t(panels * p.panel_bytes()), 0);
  if (kg == 4) p.row_sum.assign(size_t(m), 0);
  for (int64_t r = 0; r < m; ++r) {
    // Element (r, c) of panel r / mr sits at group block c / (kg gb), row r
    // % mr, group (c / kg) % gb, lane c % kg.
    const int64_t base = (r / p.mr) * p.panel_bytes() / p.esize + (r % p.mr) * gb * kg;
    for (int64_t c = 0; c < k; ++c) {
      const T v = w[r * row_stride + c * col_stride];
      const int64_t at = base + c / (kg * gb) * (gb * kg * p.mr) + c % (kg * gb);
      if (p.esize == 2) {
        const int16_t e = int16_t(v);
        std::memcpy(p.data.data() + at * 2, &e, 2);
      } else {
        p.data[size_t(at)] = uint8_t(int8_t(v));
        p.row_sum[size_t(r)] += int32_t(v);
      }
    }
  }
  return p;
}
}  // namespace

QPacked qpack_w(const int8_t* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, const QKernels& ks) {
  return pack_w(w, m, k, row_stride, col_stride, ks);
}
QPacked qpack_w(const int16_t* w, int64_t m, int64_t k, int64_t row_stride, int64_t col_stride, const QKernels& ks) {
  return pack_w(w, m, k, row_stride, col_stride, ks);  // pair sets only (int16 does not fit a quad's bytes)
}

void fold_x_zero_point(const QPacked& w, int32_t x_zp, bool x_signed, QRow* rows) {
  if (w.kg != 4) return;
  const uint32_t zp = uint32_t(x_signed ? x_zp + 128 : x_zp);
  for (int64_t r = 0; r < w.m; ++r) rows[r].bias = int32_t(uint32_t(rows[r].bias) - zp * uint32_t(w.row_sum[size_t(r)]));
}

void qgemm(const QGemmJob* jobs, int64_t count, const QKernels& ks, ThreadPool* pool) {
  const int threads = pool ? pool->size() : 1;
  const int mr = ks.mr, nr = ks.nr;
  int64_t kmax = 1;
  for (int64_t i = 0; i < count; ++i) kmax = std::max(kmax, jobs[i].k);
  const int64_t col_bytes = ((kmax + ks.kg - 1) / ks.kg + ks.gb - 1) / ks.gb * ks.gb * ks.kg * ks.esize;  // one packed column of X
  int64_t nb = std::clamp<int64_t>(kChunkBytes / col_bytes / nr * nr, nr, kNbMax / nr * nr);
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
    thread_local std::vector<uint8_t> xbuf;  // per pool thread (see gemm.cpp)
    run_task(jobs[tasks[size_t(t)].job], tasks[size_t(t)], ks, xbuf);
  };
  if (pool) pool->parallel_for(int64_t(tasks.size()), body);
  else
    for (size_t t = 0; t < tasks.size(); ++t) body(int64_t(t), 0);
}

}  // namespace kiln::cpu
