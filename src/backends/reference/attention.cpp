// Reference kernel for kiln's Attention (ir/ops/kiln_fused.h), from
// passes/fuse_attention: per batch and query row, the scores Q . K^T (summed
// in double, rounded once, as the MatMul kernel does), scaled where and how
// the replaced graph scaled (rounded as its Mul/Div did), plus the mask, then
// Softmax as softmax.cpp computes it (max subtracted, exp and sum in double)
// and the product with V (summed in double). Every intermediate is rounded to
// the tensor dtype where the unfused graph stored it, so the node computes
// what the MatMul/Mul/Add/Softmax/MatMul nodes it replaces computed.
// Tests: tests/unit/test_passes.cpp (FuseAttention).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/reference/kernel.h"
#include "backends/reference/kernels.h"
#include "ir/ops/kiln_fused.h"

namespace kiln::ref {
namespace {

Shape leading(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

}  // namespace

Result<void> run_attention(KernelCtx& c) {
  using ir::AttentionScale;
  const auto& at = c.attr<ir::AttentionAttrs>();
  const Tensor &Q = c.input(0), &K = c.input(1), &V = c.input(2);
  const bool has_mask = c.has(3);
  if (Q.rank() < 2 || K.rank() < 2 || V.rank() < 2) return c.fail("Q, K and V need rank >= 2");
  const int64_t Sq = Q.dim(Q.rank() - 2), D = Q.dim(Q.rank() - 1);
  const int64_t Sk = at.k_transposed ? K.dim(K.rank() - 1) : K.dim(K.rank() - 2);
  const int64_t Dk = at.k_transposed ? K.dim(K.rank() - 2) : K.dim(K.rank() - 1);
  const int64_t Dv = V.dim(V.rank() - 1);
  if (Dk != D || V.dim(V.rank() - 2) != Sk)
    return c.fail("Q " + shape_str(Q.shape()) + ", K " + shape_str(K.shape()) + " and V " + shape_str(V.shape()) +
                  " do not fit");
  Shape ms = has_mask ? c.input(3).shape() : Shape{1, 1};
  while (ms.size() < 2) ms.insert(ms.begin(), 1);
  const int64_t mq = ms[ms.size() - 2], mk = ms.back();
  if ((mq != 1 && mq != Sq) || (mk != 1 && mk != Sk))
    return c.fail("mask " + shape_str(c.input(3).shape()) + " does not broadcast to the scores");
  KILN_ASSIGN(Shape batch, broadcast_shapes(leading(Q.shape()), leading(K.shape())));
  KILN_ASSIGN(batch, broadcast_shapes(batch, leading(V.shape())));
  KILN_ASSIGN(batch, broadcast_shapes(batch, leading(ms)));
  const int64_t nbatch = numel(batch);
  Tensor& Y = c.out[0];
  if (Y.numel() != nbatch * Sq * Dv) return c.fail("output size does not match the inferred Attention shape");
  BroadcastIndex qi(leading(Q.shape()), batch), ki(leading(K.shape()), batch), vi(leading(V.shape()), batch),
      mi(leading(ms), batch);
  const bool on_query = at.scale_form == AttentionScale::kQueryMul || at.scale_form == AttentionScale::kQueryDiv;
  const bool divide = at.scale_form == AttentionScale::kScoresDiv || at.scale_form == AttentionScale::kQueryDiv;
  return visit_float(Q.dtype(), [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    using C = compute_t<T>;
    const C scale = C(at.scale);
    // One elementwise scaling, rounded to T as the Mul/Div node stored it.
    auto scaled = [&](C v) { return load(store<T>(divide ? v / scale : v * scale)); };
    std::vector<C> q(static_cast<size_t>(D));
    std::vector<T> s(static_cast<size_t>(Sk));
    std::vector<double> acc(static_cast<size_t>(Dv));
    for (int64_t n = 0; n < nbatch; ++n) {
      const T* qb = Q.data<T>() + qi(n) * Sq * D;
      const T* kb = K.data<T>() + ki(n) * Sk * D;
      const T* vb = V.data<T>() + vi(n) * Sk * Dv;
      const T* mb = has_mask ? c.input(3).data<T>() + mi(n) * mq * mk : nullptr;
      T* yb = Y.data<T>() + n * Sq * Dv;
      for (int64_t i = 0; i < Sq; ++i) {
        for (int64_t d = 0; d < D; ++d) q[size_t(d)] = on_query ? scaled(load(qb[i * D + d])) : load(qb[i * D + d]);
        // scores: Q . K^T, then scale (scores form) and mask; each stored as T
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < Sk; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) {
            C kv = load(at.k_transposed ? kb[d * Sk + j] : kb[j * D + d]);
            dot += double(q[size_t(d)]) * double(kv);
          }
          C v = load(store<T>(dot));
          if (!on_query) v = scaled(v);
          if (mb) v = load(store<T>(v + load(mb[(mq == 1 ? 0 : i) * mk + (mk == 1 ? 0 : j)])));
          s[size_t(j)] = store<T>(v);
          double e = double(load(s[size_t(j)]));
          if (!std::isnan(mx) && (std::isnan(e) || e > mx)) mx = e;  // NaN wins, as in softmax.cpp
        }
        double sum = 0;
        for (int64_t j = 0; j < Sk; ++j) sum += std::exp(double(load(s[size_t(j)])) - mx);
        for (int64_t j = 0; j < Sk; ++j) s[size_t(j)] = store<T>(std::exp(double(load(s[size_t(j)])) - mx) / sum);
        // Y row: P . V
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < Sk; ++j) {
          double p = double(load(s[size_t(j)]));
          for (int64_t e = 0; e < Dv; ++e) acc[size_t(e)] += p * double(load(vb[j * Dv + e]));
        }
        for (int64_t e = 0; e < Dv; ++e) yb[i * Dv + e] = store<T>(acc[size_t(e)]);
      }
    }
    return {};
  });
}

}  // namespace kiln::ref
