// Shape inference for linear algebra (Gemm, MatMul, Einsum), normalization
// with extra inputs/outputs (BatchNormalization, LayerNormalization) and the
// losses (SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss). Softmax, LRN,
// MVN, InstanceNorm, LpNormalization keep their input's shape (infer_unary).
#include <algorithm>
#include <string>

#include "ir/ops/einsum.h"
#include "ir/ops/infer_fns.h"

namespace kiln::ir {
namespace {

std::string dt_str(DType t) { return std::string(dtype_name(t)); }

bool is_float_dt(DType t) { return t == DType::kF32 || t == DType::kF64 || t == DType::kF16 || t == DType::kBF16; }

// Gemm and MatMul: the float types plus the 32/64-bit integers ONNX lists.
bool is_matmul_dt(DType t) {
  return is_float_dt(t) || t == DType::kI32 || t == DType::kI64 || t == DType::kU32 || t == DType::kU64;
}

// A dim not known at all (rank unknown), distinct from every symbolic dim.
constexpr int64_t kUnknownDim = INT64_MIN;

// Two dims that must be equal: a static mismatch is an error; otherwise the
// better-known one wins (static over symbolic over unknown).
Result<int64_t> unify_dims(int64_t a, int64_t b) {
  if (a == kUnknownDim) return b;
  if (b == kUnknownDim) return a;
  if (a >= 0 && b >= 0 && a != b) return make_error("dims differ");
  return a >= 0 ? a : b;
}

}  // namespace

Result<void> infer_gemm(InferCtx& c) {
  const auto& at = c.attr<GemmAttrs>();
  DType dt = c.in[0].dtype;
  if (!is_matmul_dt(dt)) return c.fail("A has dtype " + dt_str(dt) + ", expected a float type or (u)int32/(u)int64");
  if (c.in[1].dtype != dt) return c.fail("B has dtype " + dt_str(c.in[1].dtype) + ", expected " + dt_str(dt) + " like A");
  if (c.has(2) && c.in[2].dtype != dt)
    return c.fail("C has dtype " + dt_str(c.in[2].dtype) + ", expected " + dt_str(dt) + " like A");
  int64_t m = kUnknownDim, ka = kUnknownDim, kb = kUnknownDim, n = kUnknownDim;
  if (c.in[0].rank_known) {
    if (c.in[0].shape.size() != 2) return c.fail("A must be 2-D, got shape " + shape_str(c.in[0].shape));
    m = c.in[0].shape[at.transA ? 1 : 0];
    ka = c.in[0].shape[at.transA ? 0 : 1];
  }
  if (c.in[1].rank_known) {
    if (c.in[1].shape.size() != 2) return c.fail("B must be 2-D, got shape " + shape_str(c.in[1].shape));
    kb = c.in[1].shape[at.transB ? 1 : 0];
    n = c.in[1].shape[at.transB ? 0 : 1];
  }
  if (!unify_dims(ka, kb).ok())
    return c.fail("inner dimensions differ: op(A) has K=" + std::to_string(ka) + ", op(B) has K=" + std::to_string(kb) +
                  " (A " + shape_str(c.in[0].shape) + ", B " + shape_str(c.in[1].shape) + ", transA=" +
                  std::to_string(at.transA) + ", transB=" + std::to_string(at.transB) + ")");
  Shape out{m, n};
  if (c.has(2) && c.in[2].rank_known) {
    // C broadcasts one way onto [M, N]: each of its dims is 1 or the output's.
    const Shape& cs = c.in[2].shape;
    if (cs.size() > 2) return c.fail("C must have rank <= 2, got shape " + shape_str(cs));
    for (size_t i = 0; i < cs.size(); ++i) {
      int64_t& o = out[2 - cs.size() + i];
      if (cs[i] == 1) continue;
      auto u = unify_dims(o, cs[i]);
      if (!u.ok())
        return c.fail("C of shape " + shape_str(cs) + " does not broadcast to the output [M,N] = " +
                      shape_str({m, n}));
      o = *u;
    }
  }
  for (auto& d : out)
    if (d == kUnknownDim) d = c.fresh_dim();
  c.out[0] = ValueType{dt, out, true};
  return {};
}

Result<void> infer_matmul(InferCtx& c) {
  DType dt = c.in[0].dtype;
  if (!is_matmul_dt(dt))
    return c.fail("A has dtype " + dt_str(dt) + ", expected a float type or (u)int32/(u)int64 (8-bit: MatMulInteger)");
  if (c.in[1].dtype != dt) return c.fail("B has dtype " + dt_str(c.in[1].dtype) + ", expected " + dt_str(dt) + " like A");
  if (!c.in[0].rank_known || !c.in[1].rank_known) {
    c.set_unknown(0, dt, -1);
    return {};
  }
  Shape a = c.in[0].shape, b = c.in[1].shape;
  if (a.empty() || b.empty()) return c.fail("MatMul operands must have rank >= 1, got " + shape_str(a) + " and " + shape_str(b));
  // numpy: a 1-D A is a row vector, a 1-D B a column vector; the added dim is dropped again.
  bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  if (a_vec) a.insert(a.begin(), 1);
  if (b_vec) b.push_back(1);
  if (!unify_dims(a.back(), b[b.size() - 2]).ok())
    return c.fail("inner dimensions differ: A " + shape_str(c.in[0].shape) + " x B " + shape_str(c.in[1].shape));
  Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  auto batch = broadcast_shapes(ab, bb);
  if (!batch.ok())
    return c.fail("batch dimensions of A " + shape_str(c.in[0].shape) + " and B " + shape_str(c.in[1].shape) +
                  " do not broadcast");
  Shape out = *batch;
  if (!a_vec) out.push_back(a[a.size() - 2]);
  if (!b_vec) out.push_back(b.back());
  c.out[0] = ValueType{dt, out, true};
  return {};
}

Result<void> infer_einsum(InferCtx& c) {
  const std::string& eq = c.attr<EinsumAttrs>().equation;
  DType dt = c.in[0].dtype;
  if (dt == DType::kBool || dt == DType::kUndefined) return c.fail("inputs must be numeric, got " + dt_str(dt));
  std::vector<int64_t> ranks;
  bool all_known = true;
  for (size_t i = 0; i < c.in.size(); ++i) {
    if (!c.has(i)) return c.fail("input " + std::to_string(i) + " is missing");
    if (c.in[i].dtype != dt)
      return c.fail("input " + std::to_string(i) + " has dtype " + dt_str(c.in[i].dtype) + ", expected " + dt_str(dt));
    all_known &= c.in[i].rank_known;
    ranks.push_back(int64_t(c.in[i].shape.size()));
  }
  if (!all_known) {
    auto r = einsum_output_rank(eq, c.in.size());
    if (!r.ok()) return c.fail(r.error().message);
    c.set_unknown(0, dt, *r);
    return {};
  }
  auto lr = einsum_labels(eq, ranks);
  if (!lr.ok()) return c.fail(lr.error().message);
  const EinsumLabels& L = *lr;
  // Size of each label: equal across uses, except that 1 broadcasts (as '...' does).
  constexpr int64_t kUnset = INT64_MIN;
  std::vector<int64_t> size(size_t(L.num_labels), kUnset);
  auto label_name = [](int id) {
    if (id < 26) return std::string("'") + char('A' + id) + "'";
    if (id < kEinsumLetters) return std::string("'") + char('a' + id - 26) + "'";
    return std::string("'...' dimension ") + std::to_string(id - kEinsumEllipsisBase);
  };
  for (size_t t = 0; t < L.inputs.size(); ++t) {
    std::vector<int64_t> own(size_t(L.num_labels), kUnset);  // sizes within this input (diagonals must match exactly)
    for (size_t d = 0; d < L.inputs[t].size(); ++d) {
      int id = L.inputs[t][d];
      int64_t v = c.in[t].shape[d];
      int64_t& o = own[size_t(id)];
      if (o != kUnset && o >= 0 && v >= 0 && o != v)
        return c.fail("equation '" + eq + "': label " + label_name(id) + " repeats in input " + std::to_string(t) +
                      " with sizes " + std::to_string(o) + " and " + std::to_string(v));
      if (o == kUnset || o < 0) o = v;
      // 1 broadcasts; static beats symbolic; two different static sizes conflict.
      int64_t& s = size[size_t(id)];
      if (s == kUnset || s == 1 || (s < 0 && v >= 0 && v != 1)) {
        s = v;
      } else if (v >= 0 && v != 1 && s >= 0 && s != v) {
        return c.fail("equation '" + eq + "': label " + label_name(id) + " has size " + std::to_string(s) +
                      " in one input and " + std::to_string(v) + " in input " + std::to_string(t));
      }
    }
  }
  Shape out;
  for (int id : L.output) out.push_back(size[size_t(id)] == kUnset ? c.fresh_dim() : size[size_t(id)]);
  c.out[0] = ValueType{dt, out, true};
  return {};
}

Result<void> infer_batchnorm(InferCtx& c) {
  const auto& at = c.attr<BatchNormAttrs>();
  if (at.training_mode != 0)
    return c.fail("training_mode=1 is not supported: kiln runs BatchNormalization in inference mode only");
  if (c.out.size() > 3)
    return c.fail("saved_mean/saved_var outputs exist only in training mode, which kiln does not support");
  DType dt = c.in[0].dtype;
  if (!is_float_dt(dt)) return c.fail("X has dtype " + dt_str(dt) + ", expected a float type");
  static const char* names[] = {"X", "scale", "B", "input_mean", "input_var"};
  int64_t ch = -1;
  if (c.in[0].rank_known) {
    const Shape& xs = c.in[0].shape;
    if (xs.empty()) return c.fail("X must have rank >= 1");
    ch = xs.size() >= 2 ? xs[1] : xs[0];
  }
  for (size_t i = 1; i < 5; ++i) {
    if (!c.has(i)) return c.fail(std::string("input ") + names[i] + " is missing");
    if (!is_float_dt(c.in[i].dtype))
      return c.fail(std::string(names[i]) + " has dtype " + dt_str(c.in[i].dtype) + ", expected a float type");
    if (!c.in[i].rank_known) continue;
    const Shape& s = c.in[i].shape;
    if (s.size() != 1 || !unify_dims(s[0], ch).ok())
      return c.fail(std::string(names[i]) + " has shape " + shape_str(s) + ", expected [C] with C=" + std::to_string(ch) +
                    " (channels of X " + shape_str(c.in[0].shape) + ")");
  }
  c.out[0] = c.in[0];
  // Outside training the running statistics pass through unchanged.
  if (c.out.size() > 1) c.out[1] = c.in[3];
  if (c.out.size() > 2) c.out[2] = c.in[4];
  return {};
}

Result<void> infer_layernorm(InferCtx& c) {
  const auto& at = c.attr<LayerNormAttrs>();
  DType dt = c.in[0].dtype;
  if (!is_float_dt(dt)) return c.fail("X has dtype " + dt_str(dt) + ", expected a float type");
  auto stash = dtype_from_onnx(int(at.stash_type));
  if (!stash || !is_float_dt(*stash))
    return c.fail("stash_type " + std::to_string(at.stash_type) + " is not a floating-point data type");
  for (size_t i = 1; i < 3; ++i)
    if (c.has(i) && c.in[i].dtype != dt)
      return c.fail(std::string(i == 1 ? "Scale" : "B") + " has dtype " + dt_str(c.in[i].dtype) + ", expected " +
                    dt_str(dt) + " like X");
  c.out[0] = c.in[0];
  if (!c.in[0].rank_known) {
    for (size_t o = 1; o < c.out.size(); ++o) c.set_unknown(o, *stash, -1);
    return {};
  }
  const Shape& xs = c.in[0].shape;
  int64_t rank = int64_t(xs.size());
  auto axis = normalize_axis(at.axis, rank);
  if (!axis.ok()) return c.fail(axis.error().message);
  for (size_t i = 1; i < 3; ++i) {
    if (!c.has(i) || !c.in[i].rank_known) continue;
    // Scale and B broadcast one way onto X (normally they have X's normalized shape).
    auto b = broadcast_shapes(xs, c.in[i].shape);
    if (!b.ok() || b->size() != xs.size() || !std::equal(b->begin(), b->end(), xs.begin(), [](int64_t p, int64_t q) {
          return p == q || p < 0 || q < 0;
        }))
      return c.fail(std::string(i == 1 ? "Scale" : "B") + " of shape " + shape_str(c.in[i].shape) +
                    " does not broadcast to X " + shape_str(xs));
  }
  Shape red(xs.begin(), xs.begin() + *axis);
  red.resize(size_t(rank), 1);
  for (size_t o = 1; o < c.out.size(); ++o) c.out[o] = ValueType{*stash, red, true};
  return {};
}

namespace {
// Shared by both losses: scores/log-probs [N, C, D...], target [N, D...], weight [C].
Result<void> infer_loss(InferCtx& c, const char* xname) {
  DType dt = c.in[0].dtype;
  if (!is_float_dt(dt)) return c.fail(std::string(xname) + " has dtype " + dt_str(dt) + ", expected a float type");
  DType lt = c.in[1].dtype;
  if (lt != DType::kI32 && lt != DType::kI64)
    return c.fail("target has dtype " + dt_str(lt) + ", expected i32 or i64 class indices");
  if (c.has(2) && c.in[2].dtype != dt)
    return c.fail("weight has dtype " + dt_str(c.in[2].dtype) + ", expected " + dt_str(dt) + " like " + xname);
  const Shape& xs = c.in[0].shape;
  const Shape& ts = c.in[1].shape;
  if (c.in[0].rank_known && xs.size() < 2)
    return c.fail(std::string(xname) + " must have shape [N, C, D...], got " + shape_str(xs));
  if (c.in[0].rank_known && c.in[1].rank_known) {
    bool ok = ts.size() + 1 == xs.size() && unify_dims(ts[0], xs[0]).ok();
    for (size_t i = 1; ok && i < ts.size(); ++i) ok = unify_dims(ts[i], xs[i + 1]).ok();
    if (!ok)
      return c.fail("target of shape " + shape_str(ts) + " does not match " + xname + " " + shape_str(xs) +
                    " (expected [N, D...] for [N, C, D...])");
  }
  if (c.has(2) && c.in[2].rank_known) {
    const Shape& ws = c.in[2].shape;
    if (ws.size() != 1 || (c.in[0].rank_known && !unify_dims(ws[0], xs[1]).ok()))
      return c.fail("weight has shape " + shape_str(ws) + ", expected [C] for " + xname + " " + shape_str(xs));
  }
  if (c.attr<LossAttrs>().reduction == LossReduction::kNone) {
    if (c.in[1].rank_known)
      c.out[0] = ValueType{dt, ts, true};
    else
      c.set_unknown(0, dt, -1);
  } else {
    c.out[0] = ValueType{dt, {}, true};
  }
  return {};
}
}  // namespace

Result<void> infer_sce_loss(InferCtx& c) {
  KILN_TRY(infer_loss(c, "scores"));
  if (c.out.size() > 1) c.out[1] = c.in[0];  // log_prob
  return {};
}

Result<void> infer_nll_loss(InferCtx& c) { return infer_loss(c, "input"); }

}  // namespace kiln::ir
