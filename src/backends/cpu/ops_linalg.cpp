// Gemm, kiln FusedGemm, MatMul and kiln Attention (f32) on the CPU, all on the
// one GEMM driver (gemm.h). Constant weight operands are packed once when the
// step is built; bias and activation run in the epilogue. Attention runs one
// head per task: scores = Q.K^T, scaled, softmax, times V, without leaving
// the thread's cache.
#include <cstring>

#include "backends/cpu/step.h"
#include "ir/ops/kiln_fused.h"

namespace kiln::cpu {
namespace {

int64_t prod(const Shape& s, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end; ++i) p *= s[i];
  return p;
}

class GemmStep final : public Step {
 public:
  ir::ValueId a = ir::kNoValue, b = ir::kNoValue, bias_value = ir::kNoValue, y = ir::kNoValue;
  int64_t m = 0, n = 0, k = 0;
  MatrixView a_view, b_view;
  Packed b_packed;
  bool b_is_packed = false;
  std::vector<float> bias_const;
  bool bias_per_row = false;
  Act act = Act::kNone;
  float alpha = 0, beta = 0;

  Result<void> run(RunCtx& c) override {
    GemmJob j;
    j.m = m;
    j.n = n;
    j.k = k;
    j.a = c.f(a);
    j.a_view = &a_view;
    if (b_is_packed) j.b_packed = &b_packed;
    else {
      j.b = c.f(b);
      j.b_view = &b_view;
    }
    j.c = c.f(y);
    j.ldc = n;
    j.epi.bias = !bias_const.empty() ? bias_const.data() : (bias_value != ir::kNoValue ? c.f(bias_value) : nullptr);
    j.epi.bias_per_row = bias_per_row;
    j.epi.act = act;
    j.epi.alpha = alpha;
    j.epi.beta = beta;
    gemm_f32(&j, 1, c.ks, c.pool);
    return {};
  }
};

class BatchedMatMulStep final : public Step {
 public:
  ir::ValueId a, b, y;
  int64_t batch, m, n, k;
  MatrixView a_view, b_view;
  Result<void> run(RunCtx& c) override {
    std::vector<GemmJob> jobs(static_cast<size_t>(batch));
    for (int64_t i = 0; i < batch; ++i) {
      GemmJob& j = jobs[size_t(i)];
      j.m = m;
      j.n = n;
      j.k = k;
      j.a = c.f(a) + i * m * k;
      j.a_view = &a_view;
      j.b = c.f(b) + i * k * n;
      j.b_view = &b_view;
      j.c = c.f(y) + i * m * n;
      j.ldc = n;
    }
    gemm_f32(jobs.data(), batch, c.ks, c.pool);
    return {};
  }
};

class AttentionStep final : public Step {
 public:
  ir::ValueId q, kv, v, y;
  int64_t heads, sq, sk, d, dv;
  float scale;
  bool divide;
  MatrixView q_view, k_view, p_view, v_view;
  Result<void> run(RunCtx& c) override {
    const float *qp = c.f(q), *kp = c.f(kv), *vp = c.f(v);
    float* yp = c.f(y);
    auto head = [&](int64_t h, int) {
      thread_local std::vector<float> scores;
      scores.resize(size_t(sq * sk));
      GemmJob j;
      j.m = sq;
      j.n = sk;
      j.k = d;
      j.a = qp + h * sq * d;
      j.a_view = &q_view;
      j.b = kp + h * sk * d;
      j.b_view = &k_view;
      j.c = scores.data();
      j.ldc = sk;
      gemm_f32(&j, 1, c.ks, nullptr);
      const float f = divide ? 1.0f / scale : scale;
      for (float& s : scores) s *= f;
      c.ks.softmax_rows(scores.data(), sq, sk);
      GemmJob o;
      o.m = sq;
      o.n = dv;
      o.k = sk;
      o.a = scores.data();
      o.a_view = &p_view;
      o.b = vp + h * sk * dv;
      o.b_view = &v_view;
      o.c = yp + h * sq * dv;
      o.ldc = dv;
      gemm_f32(&o, 1, c.ks, nullptr);
    };
    if (c.pool) c.pool->parallel_for(heads, head);
    else
      for (int64_t h = 0; h < heads; ++h) head(h, 0);
    return {};
  }
};

}  // namespace

Result<std::unique_ptr<Step>> build_gemm(const BuildCtx& bc, std::string* why) {
  const ir::Node& nd = bc.n;
  const ir::GemmAttrs& a = nd.op == ir::OpKind::kFusedGemm
                               ? static_cast<const ir::GemmAttrs&>(nd.attr<ir::FusedGemmAttrs>())
                               : nd.attr<ir::GemmAttrs>();
  if (bc.in_type(0).dtype != DType::kF32 || bc.in_type(1).dtype != DType::kF32) return decline(why, "dtype is not f32");
  if (a.alpha != 1.0f) return decline(why, "alpha != 1");
  const Shape &as = bc.in_type(0).shape, &bs = bc.in_type(1).shape;
  if (as.size() != 2 || bs.size() != 2) return decline(why, "operands are not 2-D");
  auto s = std::make_unique<GemmStep>();
  s->m = a.transA ? as[1] : as[0];
  s->k = a.transA ? as[0] : as[1];
  s->n = a.transB ? bs[0] : bs[1];
  s->a = nd.inputs[0];
  s->b = nd.inputs[1];
  s->y = nd.outputs[0];
  s->a_view = MatrixView::dense(s->m, s->k, as[1], a.transA != 0);
  s->b_view = MatrixView::dense(s->k, s->n, bs[1], a.transB != 0);
  if (const Tensor* w = bc.constant(1)) {
    s->b_packed = pack_b(w->data<float>(), s->b_view, bc.ks.nr);
    s->b_is_packed = true;
  }
  if (bc.has(2)) {
    if (a.beta != 1.0f) return decline(why, "beta != 1");
    const Shape& cs = bc.in_type(2).shape;
    const int64_t cn = prod(cs, 0, cs.size());
    bool per_col = cn == s->n && (cs.size() == 1 || (cs.size() == 2 && cs[0] == 1));
    bool per_row = cs.size() == 2 && cs[0] == s->m && cs[1] == 1 && s->m != 1;
    if (!per_col && !per_row) return decline(why, "C does not broadcast as a bias row or column");
    s->bias_per_row = per_row && !per_col;
    if (const Tensor* c = bc.constant(2)) s->bias_const.assign(c->data<float>(), c->data<float>() + cn);
    else s->bias_value = nd.inputs[2];
  }
  if (nd.op == ir::OpKind::kFusedGemm) {
    const auto& f = nd.attr<ir::FusedGemmAttrs>();
    s->act = act_of(f.activation);
    s->alpha = f.activation_alpha;
    s->beta = f.activation_beta;
  }
  s->kernel = std::string("gemm_f32(") + bc.ks.gemm_name + ")" + (s->b_is_packed ? " packed B" : "") +
              (s->act != Act::kNone ? " +act" : "");
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_matmul(const BuildCtx& bc, std::string* why) {
  const ir::Node& nd = bc.n;
  if (bc.in_type(0).dtype != DType::kF32 || bc.in_type(1).dtype != DType::kF32) return decline(why, "dtype is not f32");
  const Shape &as = bc.in_type(0).shape, &bs = bc.in_type(1).shape;
  if (as.size() < 2 || bs.size() < 2) return decline(why, "1-D operands");
  const int64_t k = as.back(), n = bs.back();
  if (bs.size() == 2) {
    // [..., M, K] x [K, N]: one product with the leading dims folded into M.
    auto s = std::make_unique<GemmStep>();
    s->m = prod(as, 0, as.size() - 1);
    s->k = k;
    s->n = n;
    s->a = nd.inputs[0];
    s->b = nd.inputs[1];
    s->y = nd.outputs[0];
    s->a_view = MatrixView::dense(s->m, k, k);
    s->b_view = MatrixView::dense(k, n, n);
    if (const Tensor* w = bc.constant(1)) {
      s->b_packed = pack_b(w->data<float>(), s->b_view, bc.ks.nr);
      s->b_is_packed = true;
    }
    s->kernel = std::string("gemm_f32(") + bc.ks.gemm_name + ")" + (s->b_is_packed ? " packed B" : "");
    return std::unique_ptr<Step>(std::move(s));
  }
  if (as.size() != bs.size() || !std::equal(as.begin(), as.end() - 2, bs.begin()))
    return decline(why, "broadcast batch dims");
  auto s = std::make_unique<BatchedMatMulStep>();
  s->a = nd.inputs[0];
  s->b = nd.inputs[1];
  s->y = nd.outputs[0];
  s->batch = prod(as, 0, as.size() - 2);
  s->m = as[as.size() - 2];
  s->k = k;
  s->n = n;
  s->a_view = MatrixView::dense(s->m, k, k);
  s->b_view = MatrixView::dense(k, n, n);
  s->kernel = std::string("batched_gemm_f32(") + bc.ks.gemm_name + ")";
  return std::unique_ptr<Step>(std::move(s));
}

Result<std::unique_ptr<Step>> build_attention(const BuildCtx& bc, std::string* why) {
  const ir::Node& nd = bc.n;
  const auto& a = nd.attr<ir::AttentionAttrs>();
  if (bc.has(3)) return decline(why, "masked attention");
  for (size_t i = 0; i < 3; ++i)
    if (bc.in_type(i).dtype != DType::kF32) return decline(why, "dtype is not f32");
  const Shape &qs = bc.in_type(0).shape, &ks = bc.in_type(1).shape, &vs = bc.in_type(2).shape;
  if (qs.size() < 2 || qs.size() != ks.size() || qs.size() != vs.size() ||
      !std::equal(qs.begin(), qs.end() - 2, ks.begin()) || !std::equal(qs.begin(), qs.end() - 2, vs.begin()))
    return decline(why, "broadcast head dims");
  auto s = std::make_unique<AttentionStep>();
  s->q = nd.inputs[0];
  s->kv = nd.inputs[1];
  s->v = nd.inputs[2];
  s->y = nd.outputs[0];
  s->heads = prod(qs, 0, qs.size() - 2);
  s->sq = qs[qs.size() - 2];
  s->d = qs.back();
  s->sk = a.k_transposed ? ks.back() : ks[ks.size() - 2];
  s->dv = vs.back();
  s->scale = a.scale;
  s->divide = a.scale_form == ir::AttentionScale::kScoresDiv || a.scale_form == ir::AttentionScale::kQueryDiv;
  s->q_view = MatrixView::dense(s->sq, s->d, s->d);
  s->k_view = a.k_transposed ? MatrixView::dense(s->d, s->sk, s->sk) : MatrixView::dense(s->d, s->sk, s->d, true);
  s->p_view = MatrixView::dense(s->sq, s->sk, s->sk);
  s->v_view = MatrixView::dense(s->sk, s->dv, s->dv);
  s->kernel = std::string("attention_f32(") + bc.ks.gemm_name + ", softmax) per head";
  return std::unique_ptr<Step>(std::move(s));
}

}  // namespace kiln::cpu
