// Reference kernels for MaxPool (with the optional Indices output),
// AveragePool, LpPool and the global pools. Windows are resolved once per
// axis (which taps fall inside the input, how many inside the padding); each
// output element then walks only its valid taps.
#include <cmath>
#include <limits>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/kernels.h"
#include "ir/ops/conv_geometry.h"

namespace kiln::ref {
namespace {

// Per axis j and output coordinate o: the window starts at start[j][o] (may be
// negative: padding); taps k in [klo, khi) land inside the input; `padded`
// taps land inside input + explicit/auto pads (count_include_pad divisor; taps
// that ceil_mode pushes past the end padding are never counted).
struct PoolPlan {
  size_t n = 0;
  std::vector<int64_t> in, out, dil, in_strides, cm_strides;
  std::vector<std::vector<int64_t>> start, klo, khi, padded;
  int64_t in_plane = 1, out_plane = 1;
};

PoolPlan make_plan(const ir::WindowGeometry& g) {
  PoolPlan p;
  p.n = g.rank();
  p.in = g.in;
  p.out = g.out;
  p.dil = g.dilations;
  p.in_strides.assign(p.n, 1);
  p.cm_strides.assign(p.n, 1);
  for (size_t j = p.n; j-- > 1;) p.in_strides[j - 1] = p.in_strides[j] * g.in[j];
  for (size_t j = 1; j < p.n; ++j) p.cm_strides[j] = p.cm_strides[j - 1] * g.in[j - 1];
  for (size_t j = 0; j < p.n; ++j) {
    p.in_plane *= g.in[j];
    p.out_plane *= g.out[j];
    int64_t len = g.out[j];
    p.start.emplace_back(size_t(len));
    p.klo.emplace_back(size_t(len));
    p.khi.emplace_back(size_t(len));
    p.padded.emplace_back(size_t(len));
    for (int64_t o = 0; o < len; ++o) {
      int64_t st = o * g.strides[j] - g.pads_begin[j];
      p.start[j][size_t(o)] = st;
      ir::strided_valid_range(g.kernel[j], g.dilations[j], st, g.in[j], &p.klo[j][size_t(o)], &p.khi[j][size_t(o)]);
      int64_t lo, hi;
      ir::strided_valid_range(g.kernel[j], g.dilations[j], st + g.pads_begin[j],
                              g.in[j] + g.pads_begin[j] + g.pads_end[j], &lo, &hi);
      p.padded[j][size_t(o)] = hi - lo;
    }
  }
  return p;
}

// Calls f(o) for each output position o (N-D, row-major order).
template <class F>
void for_each_output(const PoolPlan& p, F&& f) {
  std::vector<int64_t> o(p.n, 0);
  for (int64_t flat = 0; flat < p.out_plane; ++flat) {
    f(o);
    for (size_t j = p.n; j-- > 0;) {
      if (++o[j] < p.out[j]) break;
      o[j] = 0;
    }
  }
}

// Calls f(row_major_offset, col_major_offset) for each valid tap of the
// window at output position o (offsets within one input plane).
template <class F>
void for_each_tap(const PoolPlan& p, const std::vector<int64_t>& o, std::vector<int64_t>& k, F&& f) {
  int64_t off = 0, off_cm = 0;
  for (size_t j = 0; j < p.n; ++j) {
    size_t oj = size_t(o[j]);
    if (p.klo[j][oj] >= p.khi[j][oj]) return;
    k[j] = p.klo[j][oj];
    int64_t pos = p.start[j][oj] + k[j] * p.dil[j];
    off += pos * p.in_strides[j];
    off_cm += pos * p.cm_strides[j];
  }
  for (;;) {
    f(off, off_cm);
    size_t j = p.n;
    for (;;) {
      if (j == 0) return;
      --j;
      size_t oj = size_t(o[j]);
      off += p.dil[j] * p.in_strides[j];
      off_cm += p.dil[j] * p.cm_strides[j];
      if (++k[j] < p.khi[j][oj]) break;
      int64_t span = (p.khi[j][oj] - p.klo[j][oj]) * p.dil[j];
      off -= span * p.in_strides[j];
      off_cm -= span * p.cm_strides[j];
      k[j] = p.klo[j][oj];
    }
  }
}

// numpy max semantics: NaN wins (and stays), otherwise strictly greater.
template <class C>
bool takes_max(C v, C best) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(best)) return false;
    if (std::isnan(v)) return true;
  }
  return v > best;
}

Result<ir::WindowGeometry> geometry_for(KernelCtx& c, const ir::PoolWindow& a) {
  auto g = ir::pool_geometry(a, c.input(0).shape());
  if (!g.ok()) return c.fail(g.error().message);
  Shape out = {c.input(0).dim(0), c.input(0).dim(1)};
  out.insert(out.end(), g->out.begin(), g->out.end());
  for (size_t i = 0; i < c.out.size() && i < 2; ++i) {
    DType dt = i == 0 ? c.input(0).dtype() : DType::kI64;
    if (c.node.outputs[i] != ir::kNoValue &&
        (!c.out[i].defined() || c.out[i].shape() != out || c.out[i].dtype() != dt))
      KILN_TRY(c.alloc(i, dt, out));
  }
  return g;
}

int64_t planes_of(const Tensor& x) { return x.dim(0) * x.dim(1); }

// Average (divide by valid or padded tap count) or Lp norm over each window.
template <class T>
void avg_or_lp(const Tensor& x, Tensor& y, const PoolPlan& p, bool lp, int64_t pw, bool include_pad) {
  const T* in = x.data<T>();
  T* out = y.data<T>();
  std::vector<int64_t> k(p.n);
  double inv_p = 1.0 / double(pw);
  for (int64_t plane = 0; plane < planes_of(x); ++plane) {
    const T* xp = in + plane * p.in_plane;
    T* yp = out + plane * p.out_plane;
    int64_t oi = 0;
    for_each_output(p, [&](const std::vector<int64_t>& o) {
      double sum = 0;
      int64_t count = 0;
      for_each_tap(p, o, k, [&](int64_t off, int64_t) {
        double v = double(load(xp[off]));
        sum += lp ? (pw == 1 ? std::fabs(v) : pw == 2 ? v * v : std::pow(std::fabs(v), double(pw))) : v;
        ++count;
      });
      double r;
      if (lp) {
        r = pw == 1 ? sum : pw == 2 ? std::sqrt(sum) : std::pow(sum, inv_p);
      } else {
        if (include_pad) {
          count = 1;
          for (size_t j = 0; j < p.n; ++j) count *= p.padded[j][size_t(o[j])];
        }
        r = sum / double(count);  // a window with no taps gives NaN, as 0/0
      }
      yp[oi++] = store<T>(r);
    });
  }
}

template <class T>
void max_pool(const Tensor& x, Tensor& y, Tensor* indices, const PoolPlan& p, bool col_major) {
  using C = compute_t<T>;
  const T* in = x.data<T>();
  T* out = y.data<T>();
  int64_t* idx_out = indices ? indices->data<int64_t>() : nullptr;
  std::vector<int64_t> k(p.n);
  for (int64_t plane = 0; plane < planes_of(x); ++plane) {
    const T* xp = in + plane * p.in_plane;
    int64_t oi = plane * p.out_plane;
    for_each_output(p, [&](const std::vector<int64_t>& o) {
      // A window entirely in the padding has no input: lowest value, index -1.
      C best = std::numeric_limits<C>::lowest();
      T best_raw = store<T>(best);
      int64_t best_off = -1, best_cm = -1;
      for_each_tap(p, o, k, [&](int64_t off, int64_t off_cm) {
        C v = load(xp[off]);
        if (best_off < 0 || takes_max(v, best)) {
          best = v;
          best_raw = xp[off];
          best_off = off;
          best_cm = off_cm;
        }
      });
      out[oi] = best_raw;
      if (idx_out) idx_out[oi] = best_off < 0 ? -1 : plane * p.in_plane + (col_major ? best_cm : best_off);
      ++oi;
    });
  }
}

// Global pools: one reduction per (n, c) plane.
template <class T>
void global_pool(const Tensor& x, Tensor& y, ir::OpKind op, int64_t pw) {
  using C = compute_t<T>;
  int64_t planes = planes_of(x);
  int64_t size = planes ? x.numel() / planes : 0;
  const T* in = x.data<T>();
  T* out = y.data<T>();
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = in + plane * size;
    if (op == ir::OpKind::kGlobalMaxPool) {
      T best_raw = store<T>(std::numeric_limits<C>::lowest());
      C best = load(best_raw);
      for (int64_t i = 0; i < size; ++i)
        if (i == 0 || takes_max(load(xp[i]), best)) {
          best = load(xp[i]);
          best_raw = xp[i];
        }
      out[plane] = best_raw;
      continue;
    }
    double sum = 0;
    for (int64_t i = 0; i < size; ++i) {
      double v = double(load(xp[i]));
      sum += op == ir::OpKind::kGlobalAveragePool ? v : pw == 2 ? v * v : std::pow(std::fabs(v), double(pw));
    }
    double r = op == ir::OpKind::kGlobalAveragePool ? sum / double(size)
               : pw == 2                             ? std::sqrt(sum)
                                                     : std::pow(sum, 1.0 / double(pw));
    out[plane] = store<T>(r);
  }
}

}  // namespace

Result<void> run_max_pool(KernelCtx& c) {
  const auto& a = c.attr<ir::MaxPoolAttrs>();
  const Tensor& x = c.input(0);
  if (!is_float(x.dtype()) && !is_integer(x.dtype())) return c.unsupported_dtype(x.dtype());
  if (a.storage_order != 0 && a.storage_order != 1)
    return c.fail("storage_order " + std::to_string(a.storage_order) + " must be 0 or 1");
  KILN_ASSIGN(auto g, geometry_for(c, a));
  PoolPlan p = make_plan(g);
  bool want_idx = c.out.size() > 1 && c.node.outputs[1] != ir::kNoValue;
  Tensor* idx = want_idx ? &c.out[1] : nullptr;
  return visit_numeric(x.dtype(), [&](auto tag) -> Result<void> {
    max_pool<decltype(tag)>(x, c.out[0], idx, p, a.storage_order == 1);
    return {};
  });
}

Result<void> run_average_pool(KernelCtx& c) {
  const auto& a = c.attr<ir::AveragePoolAttrs>();
  if (!is_float(c.input(0).dtype())) return c.unsupported_dtype(c.input(0).dtype());
  KILN_ASSIGN(auto g, geometry_for(c, a));
  PoolPlan p = make_plan(g);
  return visit_float(c.input(0).dtype(), [&](auto tag) -> Result<void> {
    avg_or_lp<decltype(tag)>(c.input(0), c.out[0], p, false, 1, a.count_include_pad != 0);
    return {};
  });
}

Result<void> run_lp_pool(KernelCtx& c) {
  const auto& a = c.attr<ir::LpPoolAttrs>();
  if (!is_float(c.input(0).dtype())) return c.unsupported_dtype(c.input(0).dtype());
  if (a.p <= 0) return c.fail("p " + std::to_string(a.p) + " must be positive");
  KILN_ASSIGN(auto g, geometry_for(c, a));
  PoolPlan p = make_plan(g);
  return visit_float(c.input(0).dtype(), [&](auto tag) -> Result<void> {
    avg_or_lp<decltype(tag)>(c.input(0), c.out[0], p, true, a.p, false);
    return {};
  });
}

Result<void> run_global_pool(KernelCtx& c) {
  const Tensor& x = c.input(0);
  ir::OpKind op = c.node.op;
  bool is_max = op == ir::OpKind::kGlobalMaxPool;
  if (!is_float(x.dtype()) && !(is_max && is_integer(x.dtype()))) return c.unsupported_dtype(x.dtype());
  if (x.rank() < 2) return c.fail("input has shape " + shape_str(x.shape()) + ", expected at least rank 2");
  int64_t pw = op == ir::OpKind::kGlobalLpPool ? c.attr<ir::LpNormAttrs>().p : 1;
  if (pw <= 0) return c.fail("p " + std::to_string(pw) + " must be positive");
  Shape out = {x.dim(0), x.dim(1)};
  out.resize(x.shape().size(), 1);
  if (!c.out[0].defined() || c.out[0].shape() != out || c.out[0].dtype() != x.dtype())
    KILN_TRY(c.alloc(0, x.dtype(), out));
  return visit_numeric(x.dtype(), [&](auto tag) -> Result<void> {
    global_pool<decltype(tag)>(x, c.out[0], op, pw);
    return {};
  });
}

}  // namespace kiln::ref
