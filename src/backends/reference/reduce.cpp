// Reference kernels for reductions (Reduce*), ArgMax/ArgMin, CumSum and TopK.
// Float reductions accumulate in double and round once on store; integer sums
// and products wrap modulo 2^64 and then to the element type, as two's
// complement hardware does. Tests: tests/unit/test_ref_reduce_quant.cpp.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "backends/reference/kernel.h"
#include "backends/reference/kernels.h"
#include "ir/ops/reduce.h"

namespace kiln::ref {
namespace {

template <class C>
bool is_nan_value(C v) {
  if constexpr (std::is_floating_point_v<C>)
    return std::isnan(v);
  else
    return false;
}

// Double -> integer T: NaN gives 0, out-of-range values saturate, the rest truncate
// toward zero (what a C cast does where it is defined).
template <class T>
T saturating_int(double v) {
  if (std::isnan(v)) return T(0);
  if (v <= double(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return T(v);
}

// Which input axes a Reduce* node reduces (ONNX 18 form: axes is input 1).
Result<std::vector<bool>> reduce_axes(const KernelCtx& c) {
  const auto& a = c.attr<ir::ReduceAttrs>();
  int64_t r = c.input(0).rank();
  bool empty = !c.has(1) || c.input(1).numel() == 0;
  if (empty) return std::vector<bool>(size_t(r), a.noop_with_empty_axes == 0);
  std::vector<bool> red(size_t(r), false);
  const Tensor& ax = c.input(1);
  for (int64_t i = 0; i < ax.numel(); ++i) {
    auto n = normalize_axis(ax.as_int(i), r, "reduce axis");
    if (!n.ok()) return c.fail(n.error().message);
    if (red[size_t(*n)]) return c.fail("axis " + std::to_string(*n) + " appears twice in axes");
    red[size_t(*n)] = true;
  }
  return red;
}

// Walks the input in row-major order while tracking the matching output
// element (reduced axes have output stride 0): step(out_index, in_index).
template <class Step>
void for_each_reduced(const Shape& s, const std::vector<bool>& red, Step step) {
  size_t r = s.size();
  int64_t n = numel(s);
  if (n == 0) return;
  // Output strides of the keepdims-shaped output.
  std::vector<int64_t> ostr(r, 0);
  int64_t acc = 1;
  for (size_t i = r; i-- > 0;) {
    if (!red[i]) {
      ostr[i] = acc;
      acc *= s[i];
    }
  }
  std::vector<int64_t> idx(r, 0);
  int64_t o = 0;
  for (int64_t i = 0; i < n; ++i) {
    step(o, i);
    for (size_t d = r; d-- > 0;) {
      if (++idx[d] < s[d]) {
        o += ostr[d];
        break;
      }
      o -= ostr[d] * (s[d] - 1);
      idx[d] = 0;
    }
  }
}

enum class Red { kSum, kMean, kProd, kSumSquare, kL1, kL2, kLogSum, kLogSumExp, kMax, kMin };

Red red_of(ir::OpKind op) {
  switch (op) {
    case ir::OpKind::kReduceMean: return Red::kMean;
    case ir::OpKind::kReduceProd: return Red::kProd;
    case ir::OpKind::kReduceSumSquare: return Red::kSumSquare;
    case ir::OpKind::kReduceL1: return Red::kL1;
    case ir::OpKind::kReduceL2: return Red::kL2;
    case ir::OpKind::kReduceLogSum: return Red::kLogSum;
    case ir::OpKind::kReduceLogSumExp: return Red::kLogSumExp;
    case ir::OpKind::kReduceMax: return Red::kMax;
    case ir::OpKind::kReduceMin: return Red::kMin;
    default: return Red::kSum;
  }
}

struct ReducePlan {
  Shape shape;            // input shape
  std::vector<bool> red;  // reduced axes
  int64_t out_n = 0;      // output element count
  int64_t count = 0;      // input elements per output element
};

// Float dtypes: accumulate in double, round once on store.
template <class T>
void reduce_float(const T* in, T* out, Red op, const ReducePlan& p) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> acc(size_t(p.out_n), 0.0);
  auto run = [&](double init, auto step) {
    std::fill(acc.begin(), acc.end(), init);
    for_each_reduced(p.shape, p.red, [&](int64_t o, int64_t i) { step(acc[size_t(o)], double(load(in[i]))); });
  };
  switch (op) {
    case Red::kSum:
    case Red::kMean:
    case Red::kLogSum: run(0.0, [](double& a, double v) { a += v; }); break;
    case Red::kProd: run(1.0, [](double& a, double v) { a *= v; }); break;
    case Red::kSumSquare:
    case Red::kL2: run(0.0, [](double& a, double v) { a += v * v; }); break;
    case Red::kL1: run(0.0, [](double& a, double v) { a += std::fabs(v); }); break;
    // NaN is sticky: once the accumulator is NaN no comparison replaces it.
    case Red::kMax: run(-inf, [](double& a, double v) { if (std::isnan(v) || v > a) a = v; }); break;
    case Red::kMin: run(inf, [](double& a, double v) { if (std::isnan(v) || v < a) a = v; }); break;
    case Red::kLogSumExp: {
      // Shift by the (finite) maximum so exp cannot overflow.
      run(-inf, [](double& a, double v) { if (std::isnan(v) || v > a) a = v; });
      std::vector<double> shift(acc.size());
      for (size_t o = 0; o < acc.size(); ++o) shift[o] = std::isfinite(acc[o]) ? acc[o] : 0.0;
      std::fill(acc.begin(), acc.end(), 0.0);
      for_each_reduced(p.shape, p.red, [&](int64_t o, int64_t i) {
        acc[size_t(o)] += std::exp(double(load(in[i])) - shift[size_t(o)]);
      });
      for (size_t o = 0; o < acc.size(); ++o) acc[o] = std::log(acc[o]) + shift[o];
      break;
    }
  }
  for (int64_t o = 0; o < p.out_n; ++o) {
    double v = acc[size_t(o)];
    if (op == Red::kMean) v /= double(p.count);  // empty set: 0/0 = NaN
    else if (op == Red::kL2) v = std::sqrt(v);
    else if (op == Red::kLogSum) v = std::log(v);
    out[o] = store<T>(v);
  }
}

// Integer dtypes: sums and products wrap (computed in uint64, then cast to T);
// max/min are exact; L2, LogSum and LogSumExp go through double and truncate.
template <class T>
Result<void> reduce_int(const KernelCtx& c, const T* in, T* out, Red op, const ReducePlan& p) {
  if (op == Red::kMax || op == Red::kMin) {
    bool mx = op == Red::kMax;
    std::vector<T> acc(size_t(p.out_n), mx ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max());
    for_each_reduced(p.shape, p.red, [&](int64_t o, int64_t i) {
      T& a = acc[size_t(o)];
      if (mx ? in[i] > a : in[i] < a) a = in[i];
    });
    std::copy(acc.begin(), acc.end(), out);
    return {};
  }
  if (op == Red::kL2 || op == Red::kLogSum || op == Red::kLogSumExp) {
    std::vector<double> acc(size_t(p.out_n), 0.0);
    for_each_reduced(p.shape, p.red, [&](int64_t o, int64_t i) {
      double v = double(in[i]);
      acc[size_t(o)] += op == Red::kL2 ? v * v : op == Red::kLogSum ? v : std::exp(v);
    });
    for (int64_t o = 0; o < p.out_n; ++o) {
      double v = acc[size_t(o)];
      out[o] = saturating_int<T>(op == Red::kL2 ? std::sqrt(v) : std::log(v));
    }
    return {};
  }
  if (op == Red::kMean && p.count == 0)
    return c.fail("ReduceMean over an empty set has no value for integer dtype " +
                  std::string(dtype_name(c.input(0).dtype())));
  std::vector<uint64_t> acc(size_t(p.out_n), op == Red::kProd ? 1u : 0u);
  for_each_reduced(p.shape, p.red, [&](int64_t o, int64_t i) {
    uint64_t v = uint64_t(in[i]);  // sign-extends for signed T: modular arithmetic stays exact
    uint64_t& a = acc[size_t(o)];
    switch (op) {
      case Red::kProd: a *= v; break;
      case Red::kSumSquare: a += v * v; break;
      case Red::kL1: a += in[i] < T(0) ? uint64_t(0) - v : v; break;
      default: a += v; break;
    }
  });
  for (int64_t o = 0; o < p.out_n; ++o) {
    uint64_t a = acc[size_t(o)];
    if (op == Red::kMean) {
      // Exact integer mean, truncated toward zero (numpy's mean then astype).
      if constexpr (std::is_signed_v<T>)
        out[o] = T(int64_t(a) / p.count);
      else
        out[o] = T(a / uint64_t(p.count));
    } else {
      out[o] = T(a);
    }
  }
  return {};
}

// Split of a tensor around one axis: [outer, n, inner].
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisSplit split_at(const Shape& s, int64_t axis) {
  AxisSplit a;
  for (int64_t i = 0; i < int64_t(s.size()); ++i) {
    if (i < axis) a.outer *= s[size_t(i)];
    else if (i == axis) a.n = s[size_t(i)];
    else a.inner *= s[size_t(i)];
  }
  return a;
}

}  // namespace

Result<void> run_reduce(KernelCtx& c) {
  const Tensor& x = c.input(0);
  KILN_ASSIGN(std::vector<bool> red, reduce_axes(c));
  ReducePlan p{x.shape(), red, c.out[0].numel(), 1};
  for (size_t i = 0; i < red.size(); ++i)
    if (red[i]) p.count *= x.dim(int64_t(i));
  if (p.out_n * p.count != x.numel() || c.out[0].dtype() != x.dtype())
    return c.fail("output was not allocated as inferred");
  Red op = red_of(c.node.op);
  if (x.dtype() == DType::kBool) {
    if (op != Red::kMax && op != Red::kMin) return c.unsupported_dtype(x.dtype());
    // Max of bools is "any", Min is "all"; the empty set gives false / true.
    bool mx = op == Red::kMax;
    const uint8_t* in = x.data<uint8_t>();
    uint8_t* out = c.out[0].data<uint8_t>();
    std::fill(out, out + p.out_n, uint8_t(mx ? 0 : 1));
    for_each_reduced(p.shape, p.red, [&](int64_t o, int64_t i) {
      bool v = in[i] != 0;
      if (mx ? v : !v) out[o] = uint8_t(mx ? 1 : 0);
    });
    return {};
  }
  return visit_numeric(x.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T>)
      return reduce_int<T>(c, x.data<T>(), c.out[0].data<T>(), op, p);
    else
      reduce_float<T>(x.data<T>(), c.out[0].data<T>(), op, p);
    return {};
  });
}

Result<void> run_arg_reduce(KernelCtx& c) {
  const auto& a = c.attr<ir::ArgReduceAttrs>();
  const Tensor& x = c.input(0);
  KILN_ASSIGN(int64_t axis, normalize_axis(a.axis, x.rank()));
  AxisSplit sp = split_at(x.shape(), axis);
  if (sp.n == 0) return c.fail("cannot take the arg-extreme of empty axis " + std::to_string(axis));
  if (x.dtype() == DType::kBool) return c.unsupported_dtype(x.dtype());
  bool want_max = c.node.op == ir::OpKind::kArgMax;
  bool last = a.select_last_index != 0;
  int64_t* out = c.out[0].data<int64_t>();
  return visit_numeric(x.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    const T* in = x.data<T>();
    for (int64_t o = 0; o < sp.outer; ++o)
      for (int64_t j = 0; j < sp.inner; ++j) {
        const T* base = in + o * sp.n * sp.inner + j;
        auto best = load(base[0]);
        int64_t bi = 0;
        for (int64_t k = 1; k < sp.n; ++k) {
          auto v = load(base[k * sp.inner]);
          // NaN counts as the extreme for both ArgMax and ArgMin, as in numpy.
          bool beats, ties;
          if (is_nan_value(best)) {
            beats = false;
            ties = is_nan_value(v);
          } else {
            beats = is_nan_value(v) || (want_max ? v > best : v < best);
            ties = v == best;
          }
          if (beats || (last && ties)) {
            best = v;
            bi = k;
          }
        }
        out[o * sp.inner + j] = bi;
      }
    return {};
  });
}

Result<void> run_cumsum(KernelCtx& c) {
  const auto& a = c.attr<ir::CumSumAttrs>();
  if (!c.has(0) || !c.has(1)) return c.fail("CumSum needs both x and axis");
  const Tensor& x = c.input(0);
  const Tensor& ax = c.input(1);
  if (ax.dtype() != DType::kI32 && ax.dtype() != DType::kI64)
    return c.fail("axis must be i32 or i64, got " + std::string(dtype_name(ax.dtype())));
  if (ax.numel() != 1 || ax.rank() > 1) return c.fail("axis must be a scalar, got shape " + shape_str(ax.shape()));
  KILN_ASSIGN(int64_t axis, normalize_axis(ax.as_int(0), x.rank()));
  if (!c.out[0].defined()) KILN_TRY(c.alloc(0, x.dtype(), x.shape()));
  AxisSplit sp = split_at(x.shape(), axis);
  if (x.dtype() == DType::kBool) return c.unsupported_dtype(x.dtype());
  bool excl = a.exclusive != 0, rev = a.reverse != 0;
  return visit_numeric(x.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    // Floats sum in double; integers wrap modulo 2^64 and then to T.
    using Acc = std::conditional_t<std::is_integral_v<T>, uint64_t, double>;
    const T* in = x.data<T>();
    T* out = c.out[0].data<T>();
    for (int64_t o = 0; o < sp.outer; ++o)
      for (int64_t j = 0; j < sp.inner; ++j) {
        Acc acc = 0;
        for (int64_t t = 0; t < sp.n; ++t) {
          int64_t k = rev ? sp.n - 1 - t : t;
          int64_t i = (o * sp.n + k) * sp.inner + j;
          Acc v = Acc(load(in[i]));
          if (!excl) acc += v;
          out[i] = store<T>(acc);
          if (excl) acc += v;
        }
      }
    return {};
  });
}

Result<void> run_topk(KernelCtx& c) {
  const auto& a = c.attr<ir::TopKAttrs>();
  const Tensor& x = c.input(0);
  KILN_ASSIGN(int64_t axis, normalize_axis(a.axis, x.rank()));
  if (c.input(1).numel() != 1) return c.fail("K must hold exactly one value");
  int64_t k = c.input(1).as_int(0);
  AxisSplit sp = split_at(x.shape(), axis);
  if (k < 0 || k > sp.n)
    return c.fail("K = " + std::to_string(k) + " is outside [0, " + std::to_string(sp.n) + "] for axis " +
                  std::to_string(axis));
  if (c.out[0].numel() != sp.outer * k * sp.inner || c.out[1].dtype() != DType::kI64)
    return c.fail("outputs were not allocated as inferred");
  if (x.dtype() == DType::kBool) return c.unsupported_dtype(x.dtype());
  bool largest = a.largest != 0;
  int64_t* oi = c.out[1].data<int64_t>();
  return visit_numeric(x.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    using C = compute_t<T>;
    const T* in = x.data<T>();
    T* ov = c.out[0].data<T>();
    std::vector<C> vals(size_t(sp.n));
    std::vector<int64_t> order(size_t(sp.n));
    // Strict order: better value first, NaN after every number (as numpy's
    // argsort places it), equal values by lower index. Always sorted: ONNX
    // leaves the order free when sorted=0, so sorted output is valid too.
    auto before = [&](int64_t p, int64_t q) {
      C vp = vals[size_t(p)], vq = vals[size_t(q)];
      bool np = is_nan_value(vp), nq = is_nan_value(vq);
      if (np || nq) return np == nq ? p < q : nq;
      if (vp != vq) return largest ? vp > vq : vp < vq;
      return p < q;
    };
    for (int64_t o = 0; o < sp.outer; ++o)
      for (int64_t j = 0; j < sp.inner; ++j) {
        const T* base = in + o * sp.n * sp.inner + j;
        for (int64_t t = 0; t < sp.n; ++t) vals[size_t(t)] = load(base[t * sp.inner]);
        std::iota(order.begin(), order.end(), int64_t(0));
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
        for (int64_t t = 0; t < k; ++t) {
          int64_t dst = (o * k + t) * sp.inner + j;
          ov[dst] = base[order[size_t(t)] * sp.inner];
          oi[dst] = order[size_t(t)];
        }
      }
    return {};
  });
}

}  // namespace kiln::ref
