#include "passes/fuse_attention.h"

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::AttentionScale;
using ir::kNoValue;
using ir::OpKind;
using ir::ValueId;

const ir::ValueType& type(const Snapshot& s, ValueId v) { return s.g.value(v).type; }

bool is_f32_matrix(const Snapshot& s, ValueId v) {
  const auto& t = type(s, v);
  return t.dtype == DType::kF32 && t.rank_known && t.shape.size() >= 2;
}

struct Scaling {
  ValueId x;
  float value;
  bool divide;
};

// Node `p` is Mul(x, c), Mul(c, x) or Div(x, c) with c a constant f32 scalar.
std::optional<Scaling> scaling(const Snapshot& s, int p) {
  if (p < 0) return std::nullopt;
  const ir::Node& n = s.g.nodes[size_t(p)];
  if (n.inputs.size() != 2) return std::nullopt;
  if (n.op == OpKind::kDiv) {
    if (auto c = f32_scalar_operand(s, n.inputs[1], n.inputs[0])) return Scaling{n.inputs[0], *c, true};
  } else if (n.op == OpKind::kMul) {
    for (size_t k = 0; k < 2; ++k)
      if (auto c = f32_scalar_operand(s, n.inputs[1 - k], n.inputs[k])) return Scaling{n.inputs[k], *c, false};
  }
  return std::nullopt;
}

// Transpose node `t` swaps the last two axes and nothing else.
bool swaps_last_two(const Snapshot& s, int t) {
  const ir::Node& n = s.g.nodes[size_t(t)];
  const auto& in = type(s, n.inputs[0]);
  if (!in.rank_known) return false;
  const size_t r = in.shape.size();
  std::vector<int64_t> perm = n.attr<ir::TransposeAttrs>().perm;
  if (perm.empty() && r == 2) perm = {1, 0};
  if (r < 2 || perm.size() != r) return false;
  for (size_t i = 0; i + 2 < r; ++i)
    if (perm[i] != int64_t(i)) return false;
  return perm[r - 2] == int64_t(r - 1) && perm[r - 1] == int64_t(r - 2);
}

struct Match {
  std::vector<int> nodes;
  int matmul = -1;
  std::optional<Scaling> scale;  // on the scores
};

// `x` (read once) is MatMul(...) or MatMul(...) scaled by a constant scalar.
bool scores(const Snapshot& s, ValueId x, Match& m) {
  if (!s.single_use(x)) return false;
  int p = s.producer(x);
  if (p < 0) return false;
  if (auto sc = scaling(s, p)) {
    int mm = s.producer(sc->x, OpKind::kMatMul);
    if (mm < 0 || !s.single_use(sc->x)) return false;
    m.scale = sc;
    m.nodes.push_back(p);
    p = mm;
  }
  if (s.g.nodes[size_t(p)].op != OpKind::kMatMul) return false;
  m.matmul = p;
  m.nodes.push_back(p);
  return true;
}

// The mask's last two dims are 1 or the scores' own, and the Add keeps the scores' shape.
bool mask_fits(const Snapshot& s, ValueId mask, ValueId sc, ValueId sum) {
  const auto &mt = type(s, mask), &st = type(s, sc);
  if (mt.dtype != DType::kF32 || !mt.rank_known || !st.rank_known || type(s, sum).shape != st.shape) return false;
  for (size_t k = 1; k <= 2 && k <= mt.shape.size(); ++k) {
    int64_t md = mt.shape[mt.shape.size() - k], sd = st.shape[st.shape.size() - k];
    if (md != 1 && md != sd) return false;
  }
  return true;
}

bool fuse_one(Snapshot& s, int si) {
  ir::Graph& g = s.g;
  const ir::Node& sm = g.nodes[size_t(si)];
  const ValueId in = sm.inputs[0];
  if (!is_f32_matrix(s, in)) return false;
  const int64_t rank = int64_t(type(s, in).shape.size());
  int64_t axis = sm.attr<ir::SoftmaxAttrs>().axis;
  if ((axis < 0 ? axis + rank : axis) != rank - 1) return false;
  // Softmax -> MatMul(P, V)
  int pv = s.sole_consumer(sm.outputs[0]);
  if (pv < 0 || g.nodes[size_t(pv)].op != OpKind::kMatMul || g.nodes[size_t(pv)].inputs[0] != sm.outputs[0]) return false;
  const ValueId v = g.nodes[size_t(pv)].inputs[1];
  if (!is_f32_matrix(s, v)) return false;
  // scores [+ mask] -> Softmax
  Match m;
  ValueId mask = kNoValue;
  if (!scores(s, in, m)) {
    m = Match{};
    int add = s.producer(in, OpKind::kAdd);
    if (add < 0 || !s.single_use(in)) return false;
    const ir::Node& an = g.nodes[size_t(add)];
    for (size_t k = 0; k < 2 && mask == kNoValue; ++k) {
      Match t;
      if (scores(s, an.inputs[k], t) && mask_fits(s, an.inputs[1 - k], an.inputs[k], in)) {
        m = t;
        mask = an.inputs[1 - k];
      }
    }
    if (mask == kNoValue) return false;
    m.nodes.push_back(add);
  }
  // MatMul(Q [scaled], Kt)
  const ir::Node& qk = g.nodes[size_t(m.matmul)];
  ValueId q = qk.inputs[0], kt = qk.inputs[1];
  if (!is_f32_matrix(s, q) || !is_f32_matrix(s, kt)) return false;
  ir::AttentionAttrs a;
  if (m.scale) {
    a.scale = m.scale->value;
    a.scale_form = m.scale->divide ? AttentionScale::kScoresDiv : AttentionScale::kScoresMul;
  } else if (auto sc = s.single_use(q) ? scaling(s, s.producer(q)) : std::nullopt; sc && is_f32_matrix(s, sc->x)) {
    m.nodes.push_back(s.producer(q));
    q = sc->x;
    a.scale = sc->value;
    a.scale_form = sc->divide ? AttentionScale::kQueryDiv : AttentionScale::kQueryMul;
  }
  ValueId k = kt;
  a.k_transposed = 1;
  int t = s.producer(kt, OpKind::kTranspose);
  if (t >= 0 && s.single_use(kt) && swaps_last_two(s, t)) {
    m.nodes.push_back(t);
    k = g.nodes[size_t(t)].inputs[0];
    a.k_transposed = 0;
  }
  ir::Node at;
  at.name = sm.name + "_attention";
  at.op = OpKind::kAttention;
  at.inputs = {q, k, v};
  if (mask != kNoValue) at.inputs.push_back(mask);
  at.outputs = {g.nodes[size_t(pv)].outputs[0]};
  at.attrs = a;
  m.nodes.push_back(si);
  m.nodes.push_back(pv);
  for (int n : m.nodes) s.kill(n);
  g.nodes.push_back(std::move(at));
  return true;
}

}  // namespace

Result<int> fuse_attention(ir::Graph& g) { return rewrite_each(g, OpKind::kSoftmax, &fuse_one); }

}  // namespace kiln::passes
