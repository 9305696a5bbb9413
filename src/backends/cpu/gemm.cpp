#include "backends/cpu/gemm.h"

#include <algorithm>
#include <cstring>

namespace kiln::cpu {
namespace {

// Output chunk limits of one task: an mb x kKc block of A (<= 144 KiB) plus
// a kKc x nb block of B (<= 256 KiB) fit a 512 KiB L2 (Zen 3; measured
// best of 96/144/192 x 128/256/512 on resnet18's 3x3 layers).
constexpr int64_t kMbMax = 144;
constexpr int64_t kNbMax = 256;
// Packed weights (A) at least this large, against at most kNbMax columns,
// are split by rows (gemm_f32): more than an L2 holds.
constexpr int64_t kRowsFirstBytes = 512 * 1024;

bool step2(const int64_t* ro, int n) {
  for (int i = 1; i < n; ++i)
    if (ro[i] != ro[0] + 2 * i) return false;
  return true;
}

// Panels of P from a run of consecutive source offsets starting at ro0
// (whole of them, zeros up to len): k row by k row, P floats at a time (a
// fixed-size copy, inlined).
template <int P>
void copy_rows_to_panels(const float* base, const int64_t* k_off, int64_t ro0, int64_t whole, int64_t len,
                         int64_t kc, float* dst) {
  const int64_t full = whole / P, rest = whole - full * P, stride = kc * P;
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* src = base + k_off[kk] + ro0;
    float* out = dst + kk * P;
    for (int64_t q = 0; q < full; ++q) __builtin_memcpy(out + q * stride, src + q * P, sizeof(float) * P);
    if (rest) {
      float* o = out + full * stride;
      for (int64_t i = 0; i < P; ++i) o[i] = i < rest ? src[full * P + i] : 0.0f;
    }
  }
  for (int64_t q = full + (rest ? 1 : 0); q * P < len; ++q)  // panels wholly past the last row
    std::memset(dst + q * stride, 0, sizeof(float) * size_t(stride));
}

// pack_panels of a range [r0, r0+len) whose offsets are one run of
// consecutive ones; false (nothing written) when they are not.
bool pack_contiguous(const float* base, const std::vector<int64_t>& r_off, const std::vector<int64_t>& k_off,
                     int64_t r0, int64_t len, int64_t rows, int64_t k0, int64_t kc, int panel, float* dst) {
  const int64_t whole = std::min(len, rows - r0);
  if (whole <= 0 || (panel != 4 && panel != 6 && panel != 8 && panel != 12 && panel != 16 && panel != 32))
    return false;
  const int64_t* ro = r_off.data() + r0;
  if (ro[whole - 1] - ro[0] != whole - 1) return false;
  for (int64_t i = 1; i < whole; ++i)
    if (ro[i] != ro[i - 1] + 1) return false;
  const int64_t* ko = k_off.data() + k0;
  if (panel == 4) copy_rows_to_panels<4>(base, ko, ro[0], whole, len, kc, dst);
  else if (panel == 6) copy_rows_to_panels<6>(base, ko, ro[0], whole, len, kc, dst);
  else if (panel == 12) copy_rows_to_panels<12>(base, ko, ro[0], whole, len, kc, dst);
  else if (panel == 8) copy_rows_to_panels<8>(base, ko, ro[0], whole, len, kc, dst);
  else if (panel == 16) copy_rows_to_panels<16>(base, ko, ro[0], whole, len, kc, dst);
  else copy_rows_to_panels<32>(base, ko, ro[0], whole, len, kc, dst);
  return true;
}

// Packs rows [r0, r0+len) x k-range [k0, k0+kc) of the view into panels of
// `panel` rows: dst[p][kk][i] = src(r0 + p*panel + i, k0 + kk), 0 past `rows`.
// `k_is_col`: the k index runs along the view's columns (A) or rows (B).
void pack_panels(const float* base, const MatrixView& v, bool k_is_col, int64_t r0, int64_t len, int64_t rows,
                 int64_t k0, int64_t kc, int panel, float* dst) {
  const std::vector<int64_t>& r_off = k_is_col ? v.row_off : v.col_off;
  const std::vector<int64_t>& k_off = k_is_col ? v.col_off : v.row_off;
  // The whole range one run of consecutive offsets (B of a 1x1 stride-1
  // convolution or of a MatMul with a row-major right operand; a transposed
  // A): copied k row by k row, each a contiguous read the prefetcher
  // follows. Panel by panel, each k row is a new cache line and the first
  // touch of every line stalled: this copy was 8% of mobilenet_v2's time.
  if (pack_contiguous(base, r_off, k_off, r0, len, rows, k0, kc, panel, dst)) return;
  for (int64_t p = 0; p < len; p += panel) {
    int64_t valid = std::min<int64_t>(panel, rows - (r0 + p));
    float* d = dst + (p / panel) * kc * panel;
    const int64_t* ro = r_off.data() + r0 + p;
    // Runs of consecutive source offsets (a panel of output pixels that
    // wraps to the next image row has two): each is copied as a block.
    int64_t run_start[64], run_len[64];
    int runs = 0;
    for (int64_t i = 0; i < valid;) {
      int64_t e = i + 1;
      while (e < valid && ro[e] == ro[e - 1] + 1) ++e;
      run_start[runs] = i;
      run_len[runs++] = e - i;
      i = e;
    }
    // Inline copies, not memcpy: a call per 64-byte panel row was 13% of
    // MobileNet's time (its 1x1 convolutions pack whole rows this way).
    if (runs == 1 && valid == panel && panel == 16) {
      for (int64_t kk = 0; kk < kc; ++kk) {
        const float* src = base + k_off[size_t(k0 + kk)] + ro[0];
        float* out = d + kk * 16;
        for (int i = 0; i < 16; ++i) out[i] = src[i];
      }
    } else if (runs == 1 && valid == panel) {
      for (int64_t kk = 0; kk < kc; ++kk) {
        const float* src = base + k_off[size_t(k0 + kk)] + ro[0];
        float* out = d + kk * panel;
        for (int i = 0; i < panel; ++i) out[i] = src[i];
      }
    } else if (valid == panel && runs == panel && step2(ro, panel)) {
      // Stride-2 convolutions: every source column two apart.
      for (int64_t kk = 0; kk < kc; ++kk) {
        const float* src = base + k_off[size_t(k0 + kk)] + ro[0];
        float* out = d + kk * panel;
        for (int i = 0; i < panel; ++i) out[i] = src[2 * i];
      }
    } else if (runs <= 4) {
      for (int64_t kk = 0; kk < kc; ++kk) {
        const float* src = base + k_off[size_t(k0 + kk)];
        float* out = d + kk * panel;
        for (int r = 0; r < runs; ++r) {
          const float* from = src + ro[run_start[r]];
          float* to = out + run_start[r];
          for (int64_t i = 0; i < run_len[r]; ++i) to[i] = from[i];
        }
        for (int64_t i = valid; i < panel; ++i) out[i] = 0.0f;
      }
    } else {
      for (int64_t kk = 0; kk < kc; ++kk) {
        const float* src = base + k_off[size_t(k0 + kk)];
        float* out = d + kk * panel;
        int64_t i = 0;
        for (; i < valid; ++i) out[i] = src[ro[i]];
        for (; i < panel; ++i) out[i] = 0.0f;
      }
    }
  }
}

// The whole view packed into p (its buffer reused), panels in parallel on
// the pool when there is one. Panels hold the whole k range: [panel][k][panel width].
void pack_whole_into(Packed& p, const float* base, const MatrixView& v, bool k_is_col, int panel, ThreadPool* pool) {
  p.rows = int64_t(v.row_off.size());
  p.cols = int64_t(v.col_off.size());
  p.panel = panel;
  const int64_t outer = k_is_col ? p.rows : p.cols, k = k_is_col ? p.cols : p.rows;
  const int64_t panels = (outer + panel - 1) / panel;
  p.data.resize(size_t(panels * k * panel));  // every float written below, padding included
  auto pack = [&](int64_t q, int) {
    pack_panels(base, v, k_is_col, q * panel, panel, outer, 0, k, panel, p.data.data() + q * k * panel);
  };
  if (pool) pool->parallel_for(panels, pack);
  else
    for (int64_t q = 0; q < panels; ++q) pack(q, 0);
}

Packed pack_whole(const float* base, const MatrixView& v, bool k_is_col, int panel) {
  Packed p;
  pack_whole_into(p, base, v, k_is_col, panel, nullptr);
  return p;
}

struct Task {
  int32_t job;
  int64_t m0, mlen, n0, nlen;
};

void apply_epilogue(const Epilogue& e, const KernelSet& ks, float* c, int64_t ldc, int64_t m0, int64_t n0, int64_t mr,
                    int64_t nr) {
  for (int64_t i = 0; i < mr; ++i) {
    float* row = c + i * ldc;
    if (e.bias) {
      if (e.bias_per_row) {
        const float b = e.bias[m0 + i];
        for (int64_t j = 0; j < nr; ++j) row[j] += b;
      } else {
        const float* b = e.bias + n0;
        for (int64_t j = 0; j < nr; ++j) row[j] += b[j];
      }
    }
    if (e.residual) {
      const float* r = e.residual + (m0 + i) * ldc + n0;
      for (int64_t j = 0; j < nr; ++j) row[j] += r[j];
    }
    if (e.act != Act::kNone) ks.activate(e.act, e.alpha, e.beta, row, nr);
  }
}

// Whether columns [n0, n0+nlen) x k rows [k0, k0+kc) of a B view are a
// plain strided block (consecutive column offsets, k rows *ld apart) that
// the microkernel had better read in place than from packed panels (the
// columns of a 1x1 stride-1 convolution). The copy costs B's size once per
// column chunk, the products M times that: it paid to skip it (0.67-0.92x)
// on MobileNet-v2's 1x1 layers with at most 192 output channels, and cost
// 1.02-1.18x on ResNet-50's with 256-2048. Also not when
// - the k rows fall into few L1 sets, more than 4 rows per set (rows 2^j
//   lines apart visit 64 / 2^j of the 64 sets, 8 lines each): a 112x112
//   image's rows visit 4 sets, and K = 32 ran 1.2x slower in place;
// - B has under 64 columns (a 7x7 image: in place ran 1.02-1.04x slower).
bool b_in_place(const MatrixView& v, int64_t m, int64_t n, int64_t n0, int64_t nlen, int64_t k0, int64_t kc,
                int64_t* ld) {
  if (kc < 2 || m > 192 || n < 64) return false;
  const int64_t* co = v.col_off.data() + n0;
  if (co[nlen - 1] - co[0] != nlen - 1) return false;
  for (int64_t i = 1; i < nlen; ++i)
    if (co[i] != co[i - 1] + 1) return false;
  const int64_t* ro = v.row_off.data() + k0;
  const int64_t stride = ro[1] - ro[0];
  if (stride <= 0) return false;
  for (int64_t i = 2; i < kc; ++i)
    if (ro[i] - ro[i - 1] != stride) return false;
  int64_t sets = 64;  // L1 sets the k rows spread over (64-byte lines, 64 sets)
  if (stride % 16 == 0) {
    const int64_t lines = stride / 16, pow2 = lines & -lines;  // rows lines apart; the largest 2^j dividing it
    sets = pow2 >= 64 ? 1 : 64 / pow2;
  }
  if (kc > 4 * sets) return false;
  *ld = stride;
  return true;
}

// One task: columns [n0, n0+nlen) of one job against rows [m0, m0+mlen).
// Per k block the task packs its B block once (kKc x nb, L2-resident), then
// walks the rows in blocks of kMbMax (A block in L2 too), and for each B
// panel (L1) every A panel of the block.
void run_task(const GemmJob& j, const Task& t, const KernelSet& ks, std::vector<float>& abuf, std::vector<float>& bbuf) {
  const int mr = ks.mr, nr = ks.nr;
  const int64_t npanels = (t.nlen + nr - 1) / nr;
  const int64_t mb = kMbMax / mr * mr;
  alignas(64) float tile[16 * 64];
  for (int64_t k0 = 0; k0 < j.k; k0 += kKc) {
    const int64_t kc = std::min(kKc, j.k - k0);
    const bool first = k0 == 0, last = k0 + kc >= j.k;
    const float* b_base;
    int64_t b_stride, ldb = nr;
    bool in_place = false;
    if (j.b_packed) {
      b_base = j.b_packed->data.data() + (t.n0 / nr) * j.k * nr + k0 * nr;
      b_stride = j.k * nr;
    } else if (b_in_place(*j.b_view, j.m, j.n, t.n0, t.nlen, k0, kc, &ldb)) {
      // Whole panels read straight from B (row stride ldb); only a partial
      // last panel is packed.
      b_base = j.b + j.b_view->row_off[size_t(k0)] + j.b_view->col_off[size_t(t.n0)];
      b_stride = nr;
      in_place = true;
      const int64_t tail0 = (npanels - 1) * nr;
      if (t.nlen - tail0 < nr) {
        bbuf.resize(size_t(kc * nr));
        pack_panels(j.b, *j.b_view, false, t.n0 + tail0, t.nlen - tail0, j.n, k0, kc, nr, bbuf.data());
      }
    } else {
      bbuf.resize(size_t(npanels * kc * nr));
      pack_panels(j.b, *j.b_view, false, t.n0, t.nlen, j.n, k0, kc, nr, bbuf.data());
      b_base = bbuf.data();
      b_stride = kc * nr;
    }
    for (int64_t mb0 = t.m0; mb0 < t.m0 + t.mlen; mb0 += mb) {
      const int64_t mblen = std::min(mb, t.m0 + t.mlen - mb0);
      const int64_t mpanels = (mblen + mr - 1) / mr;
      const float* a_base;
      int64_t a_stride;
      if (j.a_packed) {
        a_base = j.a_packed->data.data() + (mb0 / mr) * j.k * mr + k0 * mr;
        a_stride = j.k * mr;
      } else {
        abuf.resize(size_t(mpanels * kc * mr));
        pack_panels(j.a, *j.a_view, true, mb0, mblen, j.m, k0, kc, mr, abuf.data());
        a_base = abuf.data();
        a_stride = kc * mr;
      }
      for (int64_t q = 0; q < npanels; ++q) {
        const int64_t n0 = t.n0 + q * nr, nv = std::min<int64_t>(nr, t.n0 + t.nlen - n0);
        const bool tail_packed = in_place && nv < nr;
        const float* bp = tail_packed ? bbuf.data() : b_base + q * b_stride;
        for (int64_t p = 0; p < mpanels; ++p) {
          const int64_t m0 = mb0 + p * mr, mv = std::min<int64_t>(mr, mb0 + mblen - m0);
          const float* ap = a_base + p * a_stride;
          float* c = j.c + m0 * j.ldc + n0;
          if (nv == nr) {  // whole columns: rows past mv are neither read nor written
            if (last) {
              // Bias, residual and Relu/Clip in the microkernel's registers.
              const Epilogue& ep = j.epi;
              TileEpilogue te;
              if (ep.bias) (ep.bias_per_row ? te.bias_row : te.bias_col) = ep.bias + (ep.bias_per_row ? m0 : n0);
              if (ep.residual) {
                te.residual = ep.residual + m0 * j.ldc + n0;
                te.ldr = j.ldc;
              }
              const bool in_kernel = ep.act == Act::kNone || ep.act == Act::kRelu || ep.act == Act::kClip;
              if (in_kernel) {
                te.act = ep.act;
                te.lo = ep.alpha;
                te.hi = ep.beta;
              }
              ks.gemm_ukernel(kc, ap, bp, ldb, c, j.ldc, !first, &te, int(mv));
              if (!in_kernel)
                for (int64_t i = 0; i < mv; ++i) ks.activate(ep.act, ep.alpha, ep.beta, c + i * j.ldc, nr);
            } else {
              ks.gemm_ukernel(kc, ap, bp, ldb, c, j.ldc, !first, nullptr, int(mv));
            }
          } else if (nv <= ks.narrow_cols) {
            ks.gemm_ukernel_narrow(kc, ap, bp, nr, int(nv), c, j.ldc, !first, int(mv));
            if (last) apply_epilogue(j.epi, ks, c, j.ldc, m0, n0, mv, nv);
          } else {
            // Right edge tile: compute the full tile (or its left half,
            // when the valid part fits) into scratch and copy the valid part.
            // Just past half (a 7x7 image's 49 = 32 + 17 columns): the left
            // half and the narrow kernel on the rest, 13 FMAs per k where
            // the full tile took 24.
            const int64_t half = nr / 2;
            const bool split = nv > half && nv - half <= ks.narrow_cols;
            if (!first)
              for (int64_t i = 0; i < mv; ++i)
                std::memcpy(tile + i * nr, c + i * j.ldc, sizeof(float) * size_t(split ? half : nv));
            if (split) {
              ks.gemm_ukernel_half(kc, ap, bp, tile, nr, !first);
              for (int64_t i = 0; i < mv; ++i) std::memcpy(c + i * j.ldc, tile + i * nr, sizeof(float) * size_t(half));
              ks.gemm_ukernel_narrow(kc, ap, bp + half, nr, int(nv - half), c + half, j.ldc, !first, int(mv));
              if (last) apply_epilogue(j.epi, ks, c, j.ldc, m0, n0, mv, nv);
              continue;
            }
            if (2 * nv <= nr) ks.gemm_ukernel_half(kc, ap, bp, tile, nr, !first);
            else ks.gemm_ukernel(kc, ap, bp, nr, tile, nr, !first, nullptr, mr);
            for (int64_t i = 0; i < mv; ++i) std::memcpy(c + i * j.ldc, tile + i * nr, sizeof(float) * size_t(nv));
            if (last) apply_epilogue(j.epi, ks, c, j.ldc, m0, n0, mv, nv);
          }
        }
      }
    }
  }
}

}  // namespace

MatrixView MatrixView::dense(int64_t rows, int64_t cols, int64_t ld, bool transposed) {
  MatrixView v;
  v.row_off.resize(size_t(rows));
  v.col_off.resize(size_t(cols));
  for (int64_t r = 0; r < rows; ++r) v.row_off[size_t(r)] = transposed ? r : r * ld;
  for (int64_t c = 0; c < cols; ++c) v.col_off[size_t(c)] = transposed ? c * ld : c;
  return v;
}

Packed pack_a(const float* base, const MatrixView& v, int mr) { return pack_whole(base, v, true, mr); }
Packed pack_b(const float* base, const MatrixView& v, int nr) { return pack_whole(base, v, false, nr); }

void gemm_f32(const GemmJob* jobs, int64_t count, const KernelSet& ks, ThreadPool* pool) {
  const int threads = pool ? pool->size() : 1;
  const int mr = ks.mr, nr = ks.nr;
  // Tasks own a column chunk and, normally, all rows (B is packed once per
  // chunk). Enough tasks keep every thread busy (4 per thread evens out the
  // tail): columns are split first, down to one panel, then rows.
  int64_t nb = kNbMax / nr * nr, msplit = 1;
  // Few columns against large packed weights (a convolution over 7x7 or
  // 14x14 pixels): split the rows instead, all columns per task, with B
  // packed once for all tasks (below). Split by columns, every column chunk
  // streamed all of the weights again: resnet50's 7x7 layers read their
  // 2-9 MiB of weights four times per run and ran at 75-85 GFLOP/s against
  // 105-130 elsewhere.
  bool rows_first = threads > 1 && count <= 4;
  for (int64_t i = 0; i < count && rows_first; ++i) {
    const GemmJob& j = jobs[i];
    rows_first = j.a_packed && !j.b_packed && j.n <= nb && j.m * j.k * int64_t(sizeof(float)) >= kRowsFirstBytes &&
                 (j.m + mr - 1) / mr >= 4 * threads;
  }
  if (rows_first) msplit = 4 * threads;
  auto count_tasks = [&] {
    int64_t n = 0;
    for (int64_t i = 0; i < count; ++i) n += ((jobs[i].n + nb - 1) / nb) * std::min(msplit, (jobs[i].m + mr - 1) / mr);
    return n;
  };
  while (threads > 1 && !rows_first && count_tasks() < 4 * threads) {
    if (nb > nr) nb = std::max<int64_t>(nr, (nb / 2 + nr - 1) / nr * nr);
    else if (msplit < 64) msplit *= 2;
    else break;
  }
  std::vector<Task> tasks;
  for (int64_t i = 0; i < count; ++i) {
    const GemmJob& j = jobs[i];
    if (j.m == 0 || j.n == 0) continue;
    if (j.k == 0) {
      for (int64_t r = 0; r < j.m; ++r) std::memset(j.c + r * j.ldc, 0, sizeof(float) * size_t(j.n));
      apply_epilogue(j.epi, ks, j.c, j.ldc, 0, 0, j.m, j.n);
      continue;
    }
    // Row panels shared out evenly (resnet18's 43 panels of 512 rows in 8
    // parts as 5 and 6, not 7 x 6 + 1: one thread ran 24, the other 19).
    const int64_t mpanels = (j.m + mr - 1) / mr, parts = std::min(msplit, mpanels);
    for (int64_t n0 = 0; n0 < j.n; n0 += nb)
      for (int64_t part = 0; part < parts; ++part) {
        const int64_t m0 = part * mpanels / parts * mr, m1 = std::min(j.m, (part + 1) * mpanels / parts * mr);
        tasks.push_back({int32_t(i), m0, m1 - m0, n0, std::min(nb, j.n - n0)});
      }
  }
  // An unpacked A read by several column chunks (a transformer's activations
  // against a wide weight) is packed once for all of them, in parallel, rather
  // than once per chunk (8% of the encoder's time before).
  std::vector<GemmJob> local;
  std::vector<Packed> a_shared;
  const GemmJob* run_jobs = jobs;
  if (count <= 4) {
    bool any = false;
    for (int64_t i = 0; i < count; ++i) any |= !jobs[i].a_packed && jobs[i].n > nb && jobs[i].m > 0 && jobs[i].k > 0;
    if (any) {
      local.assign(jobs, jobs + count);
      a_shared.resize(size_t(count));
      for (int64_t i = 0; i < count; ++i) {
        GemmJob& j = local[size_t(i)];
        if (j.a_packed || j.n <= nb || j.m == 0 || j.k == 0) continue;
        Packed& p = a_shared[size_t(i)];
        pack_whole_into(p, j.a, *j.a_view, true, mr, pool);
        j.a_packed = &p;
      }
      run_jobs = local.data();
    }
  }
  // B shared by the row tasks (rows_first): packed once, its panels in
  // parallel, instead of once per task. The buffers stay with the calling
  // thread from run to run (no page faults on megabytes each call); only
  // row-split calls, which never nest, touch them.
  thread_local std::vector<Packed> b_shared;
  if (rows_first) {
    if (run_jobs == jobs) {
      local.assign(jobs, jobs + count);
      run_jobs = local.data();
    }
    if (b_shared.size() < size_t(count)) b_shared.resize(size_t(count));
    for (int64_t i = 0; i < count; ++i) {
      GemmJob& j = local[size_t(i)];
      if (j.m == 0 || j.n == 0 || j.k == 0) continue;
      Packed& p = b_shared[size_t(i)];
      pack_whole_into(p, j.b, *j.b_view, false, nr, pool);
      j.b_packed = &p;
    }
  }
  auto body = [&](int64_t t, int) {
    // Declared here, in the task, so that every pool thread constructs (and
    // at exit destroys) its own; declared in gemm_f32 they were never set up
    // on the workers and leaked there (LeakSanitizer).
    thread_local std::vector<float> abuf, bbuf;
    run_task(run_jobs[tasks[size_t(t)].job], tasks[size_t(t)], ks, abuf, bbuf);
  };
  if (pool) pool->parallel_for(int64_t(tasks.size()), body);
  else
    for (size_t t = 0; t < tasks.size(); ++t) body(int64_t(t), 0);
}

}  // namespace kiln::cpu
