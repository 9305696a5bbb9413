// lower_qdq: QDQ patterns -> kiln's integer ops (see lower_qdq.h for the
// rewrites and why each is exact). Works in phases (fuse, sink, fold Relu,
// cancel), each a sweep over the nodes on a snapshot of producers and uses;
// a node changed by one rewrite is left alone by the others of that sweep, and
// after each phase the graph is sorted, pruned and re-inferred.
#include "passes/lower_qdq.h"

#include <cmath>
#include <limits>
#include <optional>

#include "ir/edit.h"
#include "ir/infer.h"
#include "ir/ops/conv_geometry.h"
#include "ir/ops/kiln_quant.h"
#include "quant/quant_params.h"

namespace kiln::passes {
namespace {

using ir::Graph;
using ir::kNoValue;
using ir::Node;
using ir::OpKind;
using ir::ValueId;

bool is_act_dt(DType t) { return t == DType::kI8 || t == DType::kU8; }
bool is_weight_dt(DType t) { return is_act_dt(t) || t == DType::kI4 || t == DType::kU4; }

// One-element quantization parameters of an activation (a DQ input or Q output).
struct ActParams {
  float scale = 0;
  int32_t zp = 0;
  DType dtype = DType::kUndefined;  // i8 or u8
  ValueId scale_id = kNoValue;
  ValueId zp_id = kNoValue;  // kNoValue: omitted (0)
  bool same(const ActParams& o) const { return scale == o.scale && zp == o.zp && dtype == o.dtype; }
};

// Constant integer weights behind a DequantizeLinear, zero point 0.
struct WeightParams {
  ValueId q = kNoValue, scale_id = kNoValue, zp_id = kNoValue;
  DType dtype = DType::kUndefined;
  int64_t channels = 0;      // size of the output-channel axis
  std::vector<float> scale;  // one per output channel (a per-tensor scale repeated)
};

// A rewrite's snapshot of the graph: producer, use count and single consumer
// of each value, and the nodes this sweep has changed (touched) or removes (killed).
struct Sweep {
  Graph& g;
  std::vector<int32_t> prod, uses, consumer;
  std::vector<char> touched, killed;
  size_t num_nodes;

  explicit Sweep(Graph& graph)
      : g(graph), prod(graph.producers()), uses(graph.use_counts()), consumer(graph.values.size(), -1),
        touched(graph.nodes.size(), 0), killed(graph.nodes.size(), 0), num_nodes(graph.nodes.size()) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (auto in : g.nodes[i].inputs)
        if (in != kNoValue && consumer[size_t(in)] < 0) consumer[size_t(in)] = int32_t(i);
  }
  bool known(ValueId id) const { return id != kNoValue && size_t(id) < prod.size(); }
  // The untouched node of kind `op` producing `id`, or -1.
  int producer(ValueId id, OpKind op) const {
    if (!known(id)) return -1;
    int p = prod[size_t(id)];
    return p >= 0 && !touched[size_t(p)] && g.nodes[size_t(p)].op == op ? p : -1;
  }
  // The only reader of `id` (not a graph output) when untouched, or -1.
  int sole_consumer(ValueId id) const {
    if (!known(id) || uses[size_t(id)] != 1) return -1;
    int c = consumer[size_t(id)];
    return c >= 0 && !touched[size_t(c)] ? c : -1;
  }
  const Tensor* constant(ValueId id) const {
    return id != kNoValue && g.value(id).is_constant() ? &g.value(id).constant : nullptr;
  }
  DType dtype(ValueId id) const { return id == kNoValue ? DType::kUndefined : g.value(id).type.dtype; }
  bool is_graph_output(ValueId id) const {
    for (auto o : g.outputs)
      if (o == id) return true;
    return false;
  }
};

ValueId input_or_none(const Node& n, size_t i) { return i < n.inputs.size() ? n.inputs[i] : kNoValue; }

// A scalar constant of an integer dtype (zero-filled storage, then the value).
ValueId add_int_scalar(Graph& g, const std::string& name, DType dt, int32_t v) {
  Tensor t = Tensor::create(dt, {}).value();
  if (dt == DType::kI8) *t.data<int8_t>() = int8_t(v);
  else if (dt == DType::kU8) *t.data<uint8_t>() = uint8_t(v);
  else if (dt == DType::kI32) *t.data<int32_t>() = v;
  // other dtypes (i4/u4) are only ever created as 0, which create() already holds
  return g.add_constant(g.unique_name(name), std::move(t));
}

ValueId zp_or_zero(Graph& g, ValueId zp_id, DType dt, const std::string& name) {
  return zp_id != kNoValue ? zp_id : add_int_scalar(g, name, dt, 0);
}

// Params of a per-tensor QuantizeLinear / DequantizeLinear node whose
// quantized side has dtype `qdt`. The scale must be a normal positive f32
// (so that Q(DQ(q)) == q holds exactly for 8-bit q).
std::optional<ActParams> act_params(const Sweep& s, const Node& n, DType qdt) {
  if (!is_act_dt(qdt)) return std::nullopt;
  int64_t block = n.op == OpKind::kDequantizeLinear ? n.attr<ir::DequantizeLinearAttrs>().block_size
                                                    : n.attr<ir::QuantizeLinearAttrs>().block_size;
  if (block != 0) return std::nullopt;
  const Tensor* sc = s.constant(input_or_none(n, 1));
  if (!sc || sc->dtype() != DType::kF32 || sc->numel() != 1) return std::nullopt;
  ActParams p;
  p.scale = sc->data<float>()[0];
  if (!std::isnormal(p.scale) || p.scale < 0 || p.scale > 1e30f) return std::nullopt;
  p.dtype = qdt;
  p.scale_id = n.inputs[1];
  if (ValueId z = input_or_none(n, 2); z != kNoValue) {
    const Tensor* zt = s.constant(z);
    if (!zt || zt->numel() != 1 || zt->dtype() != qdt) return std::nullopt;
    p.zp = int32_t(zt->as_int(0));
    p.zp_id = z;
  }
  return p;
}

// The per-tensor activation a DequantizeLinear node `d` reads.
std::optional<ActParams> dq_params(const Sweep& s, int d) {
  if (d < 0) return std::nullopt;
  const Node& n = s.g.nodes[size_t(d)];
  return act_params(s, n, s.dtype(n.inputs[0]));
}

// Weights `v` = DQ(constant), rank `rank`, channels on `axis`, zero point 0,
// scale per tensor or per channel (DQ axis == `axis`).
std::optional<WeightParams> weight_params(const Sweep& s, ValueId v, int64_t axis, size_t min_rank, size_t max_rank) {
  int d = s.producer(v, OpKind::kDequantizeLinear);
  if (d < 0) return std::nullopt;
  const Node& dq = s.g.nodes[size_t(d)];
  const auto& da = dq.attr<ir::DequantizeLinearAttrs>();
  const Tensor* q = s.constant(dq.inputs[0]);
  if (da.block_size != 0 || !q || !is_weight_dt(q->dtype())) return std::nullopt;
  if (size_t(q->rank()) < min_rank || size_t(q->rank()) > max_rank) return std::nullopt;
  WeightParams w;
  w.q = dq.inputs[0];
  w.dtype = q->dtype();
  w.channels = q->dim(axis);
  const Tensor* sc = s.constant(dq.inputs[1]);
  if (!sc || sc->dtype() != DType::kF32) return std::nullopt;
  if (sc->numel() != 1) {
    auto ax = normalize_axis(da.axis, q->rank());
    if (sc->rank() != 1 || sc->numel() != w.channels || !ax.ok() || *ax != axis) return std::nullopt;
  }
  w.scale_id = dq.inputs[1];
  for (int64_t c = 0; c < w.channels; ++c) w.scale.push_back(sc->data<float>()[sc->numel() == 1 ? 0 : c]);
  if (ValueId z = input_or_none(dq, 2); z != kNoValue) {
    const Tensor* zt = s.constant(z);
    if (!zt || zt->dtype() != w.dtype || zt->numel() != sc->numel()) return std::nullopt;
    for (int64_t i = 0; i < zt->numel(); ++i)
      if (zt->as_int(i) != 0) return std::nullopt;
    w.zp_id = z;
  }
  return w;
}

// Every output channel's multiplier x_scale * w_scale[c] / y_scale is representable.
bool representable(float sx, const std::vector<float>& sw, float sy) {
  for (float w : sw)
    if (!quant::make_requant(double(sx) * double(w) / double(sy)).ok()) return false;
  return true;
}

// b == a * c rounded in float, or one ulp away (a product rounded in double).
bool within_one_ulp(float b, float product) {
  return b == product || b == std::nextafter(product, std::numeric_limits<float>::infinity()) ||
         b == std::nextafter(product, -std::numeric_limits<float>::infinity());
}

// Shape of a bias that adds one value per output channel along the last axis
// (or one value for all): [C], [1, C], [1, 1, C], ... or a single element.
bool per_channel_shape(const Shape& s, int64_t channels) {
  if (numel(s) == 1) return true;
  if (s.empty() || s.back() != channels) return false;
  for (size_t i = 0; i + 1 < s.size(); ++i)
    if (s[i] != 1) return false;
  return true;
}

// The int32 [channels] bias for QConv/QGemm from bias input `v`: DQ(int32
// constant) or a float constant, per channel (or one value). Reused as is when
// its scale is x_scale * w_scale[c] within 1 ulp, else re-derived by rounding.
// Returns kNoValue when `v` does not qualify.
ValueId bias_value(Sweep& s, ValueId v, float sx, const std::vector<float>& sw, const std::string& name) {
  int64_t channels = int64_t(sw.size());
  std::vector<double> real(static_cast<size_t>(channels));
  int d = s.producer(v, OpKind::kDequantizeLinear);
  if (d >= 0) {
    const Node& dq = s.g.nodes[size_t(d)];
    const Tensor* q = s.constant(dq.inputs[0]);
    const Tensor* sc = s.constant(dq.inputs[1]);
    const Tensor* zt = s.constant(input_or_none(dq, 2));
    if (!q || q->dtype() != DType::kI32 || !per_channel_shape(q->shape(), channels)) return kNoValue;
    if (dq.attr<ir::DequantizeLinearAttrs>().block_size != 0) return kNoValue;
    if (!sc || sc->dtype() != DType::kF32 || (sc->numel() != 1 && sc->numel() != q->numel())) return kNoValue;
    if (input_or_none(dq, 2) != kNoValue && (!zt || zt->numel() != sc->numel())) return kNoValue;
    bool reuse = q->rank() == 1 && q->numel() == channels;
    for (int64_t c = 0; c < channels; ++c) {
      int64_t i = q->numel() == 1 ? 0 : c, j = sc->numel() == 1 ? 0 : c;
      int64_t z = zt ? zt->as_int(j) : 0;
      float scale = sc->data<float>()[j];
      // as the DequantizeLinear kernel computes it: float32(q) - zp, times the scale, rounded to float32
      real[size_t(c)] = double(float((double(float(q->as_int(i))) - double(z)) * double(scale)));
      reuse = reuse && z == 0 && within_one_ulp(scale, sx * sw[size_t(c)]);
    }
    if (reuse) return dq.inputs[0];
  } else if (const Tensor* t = s.constant(v)) {
    if (t->dtype() != DType::kF32 || !per_channel_shape(t->shape(), channels)) return kNoValue;
    for (int64_t c = 0; c < channels; ++c) real[size_t(c)] = double(t->data<float>()[t->numel() == 1 ? 0 : c]);
  } else {
    return kNoValue;
  }
  Tensor b = Tensor::create(DType::kI32, {channels}).value();
  for (int64_t c = 0; c < channels; ++c) {
    double unit = double(sx) * double(sw[size_t(c)]);
    double r = unit > 0 ? real[size_t(c)] / unit : 0.0;
    if (!std::isfinite(r)) return kNoValue;
    r = std::clamp(r, double(std::numeric_limits<int32_t>::min()), double(std::numeric_limits<int32_t>::max()));
    b.data<int32_t>()[c] = int32_t(quant::round_half_even(r));
  }
  return s.g.add_constant(s.g.unique_name(name), std::move(b));
}

// What follows a float Conv/Gemm/MatMul output: [Relu ->] QuantizeLinear.
struct OutChain {
  int q = -1;
  bool relu = false;
  std::vector<int> consumed;  // nodes the fused op replaces (Relu, Add, Q)
  ActParams y;
};

std::optional<OutChain> match_output(const Sweep& s, ValueId v) {
  OutChain oc;
  int c = s.sole_consumer(v);
  if (c >= 0 && s.g.nodes[size_t(c)].op == OpKind::kRelu) {
    oc.relu = true;
    oc.consumed.push_back(c);
    c = s.sole_consumer(s.g.nodes[size_t(c)].outputs[0]);
  }
  if (c < 0 || s.g.nodes[size_t(c)].op != OpKind::kQuantizeLinear) return std::nullopt;
  const Node& q = s.g.nodes[size_t(c)];
  auto y = act_params(s, q, s.dtype(q.outputs[0]));
  if (!y) return std::nullopt;
  oc.q = c;
  oc.y = *y;
  oc.consumed.push_back(c);
  return oc;
}

// Replaces node i by `fused` writing the Q's output; the chain's nodes go.
void commit_fused(Sweep& s, int i, Node fused, const OutChain& oc) {
  fused.outputs = {s.g.nodes[size_t(oc.q)].outputs[0]};
  s.g.nodes[size_t(i)] = std::move(fused);
  s.touched[size_t(i)] = 1;
  for (int k : oc.consumed) s.touched[size_t(k)] = s.killed[size_t(k)] = 1;
}

// The quantized-side inputs shared by QConv and QGemm.
std::vector<ValueId> fused_inputs(Sweep& s, const Node& dqx, const ActParams& x, const WeightParams& w,
                                  const OutChain& oc, const std::string& name) {
  return {dqx.inputs[0],
          x.scale_id,
          zp_or_zero(s.g, x.zp_id, x.dtype, name + "_x_zero_point"),
          w.q,
          w.scale_id,
          zp_or_zero(s.g, w.zp_id, w.dtype, name + "_w_zero_point"),
          oc.y.scale_id,
          zp_or_zero(s.g, oc.y.zp_id, oc.y.dtype, name + "_y_zero_point")};
}

// a. DQ(x) -> Conv(., DQ(w), [b]) [-> Relu] -> Q  =>  QConv
bool fuse_conv(Sweep& s, int i) {
  const Node& n = s.g.nodes[size_t(i)];
  int dx = s.producer(n.inputs[0], OpKind::kDequantizeLinear);
  auto x = dq_params(s, dx);
  if (!x) return false;
  auto w = weight_params(s, n.inputs[1], 0, 3, 8);
  if (!w) return false;
  auto oc = match_output(s, n.outputs[0]);
  if (!oc || !representable(x->scale, w->scale, oc->y.scale)) return false;
  ValueId bias = kNoValue;
  if (ValueId b = input_or_none(n, 2); b != kNoValue) {
    bias = bias_value(s, b, x->scale, w->scale, n.name + "_bias_q");
    if (bias == kNoValue) return false;
  }
  Node f;
  f.name = n.name;
  f.op = OpKind::kQConv;
  f.inputs = fused_inputs(s, s.g.nodes[size_t(dx)], *x, *w, *oc, n.name);
  if (bias != kNoValue) f.inputs.push_back(bias);
  ir::QConvAttrs a;
  static_cast<ir::ConvAttrs&>(a) = n.attr<ir::ConvAttrs>();
  a.fused_relu = oc->relu;
  f.attrs = a;
  commit_fused(s, i, std::move(f), *oc);
  return true;
}

// b. DQ(x) -> Gemm(., DQ(w), [C]) [-> Relu] -> Q  =>  QGemm (alpha = beta = 1, transA = 0)
bool fuse_gemm(Sweep& s, int i) {
  const Node& n = s.g.nodes[size_t(i)];
  const auto& ga = n.attr<ir::GemmAttrs>();
  ValueId c = input_or_none(n, 2);
  if (ga.alpha != 1.0f || ga.transA != 0 || (c != kNoValue && ga.beta != 1.0f)) return false;
  int dx = s.producer(n.inputs[0], OpKind::kDequantizeLinear);
  auto x = dq_params(s, dx);
  if (!x) return false;
  auto w = weight_params(s, n.inputs[1], ga.transB ? 0 : 1, 2, 2);
  if (!w) return false;
  auto oc = match_output(s, n.outputs[0]);
  if (!oc || !representable(x->scale, w->scale, oc->y.scale)) return false;
  ValueId bias = kNoValue;
  if (c != kNoValue) {
    bias = bias_value(s, c, x->scale, w->scale, n.name + "_bias_q");
    if (bias == kNoValue) return false;
  }
  Node f;
  f.name = n.name;
  f.op = OpKind::kQGemm;
  f.inputs = fused_inputs(s, s.g.nodes[size_t(dx)], *x, *w, *oc, n.name);
  if (bias != kNoValue) f.inputs.push_back(bias);
  f.attrs = ir::QGemmAttrs{ga.transB, oc->relu};
  commit_fused(s, i, std::move(f), *oc);
  return true;
}

// b. DQ(x) -> MatMul(., DQ(w 2-D)) [-> Add(b)] [-> Relu] -> Q  =>  QGemm
bool fuse_matmul(Sweep& s, int i) {
  const Node& n = s.g.nodes[size_t(i)];
  int dx = s.producer(n.inputs[0], OpKind::kDequantizeLinear);
  auto x = dq_params(s, dx);
  const ir::ValueType& at = s.g.value(n.inputs[0]).type;
  if (!x || !at.rank_known || at.shape.size() < 2) return false;
  auto w = weight_params(s, n.inputs[1], 1, 2, 2);
  if (!w) return false;
  ValueId out = n.outputs[0], bias_in = kNoValue;
  int add = s.sole_consumer(out);
  if (add >= 0 && s.g.nodes[size_t(add)].op == OpKind::kAdd) {
    const Node& a = s.g.nodes[size_t(add)];
    bias_in = a.inputs[0] == out ? a.inputs[1] : a.inputs[0];
    out = a.outputs[0];
  } else {
    add = -1;
  }
  auto oc = match_output(s, out);
  if (!oc || !representable(x->scale, w->scale, oc->y.scale)) return false;
  ValueId bias = kNoValue;
  if (bias_in != kNoValue) {
    // The bias must not widen the output: rank <= the MatMul's.
    if (s.g.value(bias_in).type.shape.size() > at.shape.size()) return false;
    bias = bias_value(s, bias_in, x->scale, w->scale, n.name + "_bias_q");
    if (bias == kNoValue) return false;
    oc->consumed.push_back(add);
  }
  Node f;
  f.name = n.name;
  f.op = OpKind::kQGemm;
  f.inputs = fused_inputs(s, s.g.nodes[size_t(dx)], *x, *w, *oc, n.name);
  if (bias != kNoValue) f.inputs.push_back(bias);
  f.attrs = ir::QGemmAttrs{0, oc->relu};
  commit_fused(s, i, std::move(f), *oc);
  return true;
}

// e. Add(DQ(a), DQ(b)) [-> Relu] -> Q, a and b of one shape  =>  QAdd
// (the same float chain in one kernel, so exact by definition: no float
// tensor between the 8-bit ones).
bool fuse_add(Sweep& s, int i) {
  const Node& n = s.g.nodes[size_t(i)];
  if (n.inputs.size() != 2) return false;
  int da = s.producer(n.inputs[0], OpKind::kDequantizeLinear), db = s.producer(n.inputs[1], OpKind::kDequantizeLinear);
  auto a = dq_params(s, da), b = dq_params(s, db);
  if (!a || !b) return false;
  const ir::ValueType& ta = s.g.value(n.inputs[0]).type;
  const ir::ValueType& tb = s.g.value(n.inputs[1]).type;
  if (!ta.rank_known || !tb.rank_known || ta.shape != tb.shape) return false;
  auto oc = match_output(s, n.outputs[0]);
  if (!oc) return false;
  const Node& dqa = s.g.nodes[size_t(da)];
  const Node& dqb = s.g.nodes[size_t(db)];
  Node f;
  f.name = n.name;
  f.op = OpKind::kQAdd;
  f.inputs = {dqa.inputs[0],
              a->scale_id,
              zp_or_zero(s.g, a->zp_id, a->dtype, n.name + "_a_zero_point"),
              dqb.inputs[0],
              b->scale_id,
              zp_or_zero(s.g, b->zp_id, b->dtype, n.name + "_b_zero_point"),
              oc->y.scale_id,
              zp_or_zero(s.g, oc->y.zp_id, oc->y.dtype, n.name + "_y_zero_point")};
  ir::QAddAttrs at;
  at.fused_relu = oc->relu;
  f.attrs = at;
  commit_fused(s, i, std::move(f), *oc);
  return true;
}

bool fuse(Sweep& s, int i) {
  switch (s.g.nodes[size_t(i)].op) {
    case OpKind::kAdd: return fuse_add(s, i);
    case OpKind::kConv: return fuse_conv(s, i);
    case OpKind::kGemm: return fuse_gemm(s, i);
    case OpKind::kMatMul: return fuse_matmul(s, i);
    default: return false;
  }
}

// Every MaxPool window covers at least one real input element (an all-padding
// window yields the dtype's lowest value, which differs between int8 and float).
// Needs static spatial dims.
bool maxpool_windows_nonempty(const Node& n, const ir::ValueType& x) {
  if (!x.rank_known || x.shape.size() < 3) return false;
  auto geo = ir::pool_geometry(n.attr<ir::MaxPoolAttrs>(), x.shape);
  if (!geo.ok()) return false;
  const ir::WindowGeometry& w = *geo;
  for (size_t d = 0; d < w.rank(); ++d) {
    if (w.in[d] <= 0 || w.out[d] < 0) return false;
    for (int64_t o = 0; o < w.out[d]; ++o) {
      bool any = false;
      for (int64_t k = 0; k < w.kernel[d] && !any; ++k) {
        int64_t p = o * w.strides[d] - w.pads_begin[d] + k * w.dilations[d];
        any = p >= 0 && p < w.in[d];
      }
      if (!any) return false;
    }
  }
  return true;
}

// c. DQ(x) -> Clip(lo, hi) -> Q with the same params  =>  Clip(x, Q(lo), Q(hi))
// on the integers. Exact: Q is monotonic, so Q(clamp(deQ(x), lo, hi)) =
// clamp(Q(deQ(x)), Q(lo), Q(hi)), and Q(deQ(x)) = x. (ReLU6 in MobileNets.)
bool clip_in_integers(Sweep& s, int i) {
  Node& n = s.g.nodes[size_t(i)];
  int d = s.producer(n.inputs[0], OpKind::kDequantizeLinear);
  auto x = dq_params(s, d);
  int qi = s.sole_consumer(n.outputs[0]);
  if (!x || qi < 0 || s.g.nodes[size_t(qi)].op != OpKind::kQuantizeLinear) return false;
  const Node& q = s.g.nodes[size_t(qi)];
  auto y = act_params(s, q, s.dtype(q.outputs[0]));
  if (!y || !x->same(*y)) return false;
  std::vector<ValueId> inputs = {s.g.nodes[size_t(d)].inputs[0]};
  for (size_t k = 1; k < 3; ++k) {
    ValueId b = input_or_none(n, k);
    if (b == kNoValue) {
      inputs.push_back(kNoValue);
      continue;
    }
    const Tensor* t = s.constant(b);
    if (!t || t->dtype() != DType::kF32 || t->numel() != 1 || std::isnan(t->data<float>()[0])) return false;
    int64_t lo = x->dtype == DType::kI8 ? -128 : 0, hi = x->dtype == DType::kI8 ? 127 : 255;
    int32_t qb = quant::quantize_value(t->data<float>()[0], x->scale, x->zp, lo, hi);
    inputs.push_back(add_int_scalar(s.g, n.name + (k == 1 ? "_min_q" : "_max_q"), x->dtype, qb));
  }
  while (inputs.back() == kNoValue) inputs.pop_back();
  n.inputs = std::move(inputs);
  n.outputs = {q.outputs[0]};
  s.touched[size_t(i)] = 1;
  s.touched[size_t(qi)] = s.killed[size_t(qi)] = 1;
  return true;
}

// c. DQ(x) -> op  =>  op(x) -> DQ, for ops that commute with dequantization.
bool sink(Sweep& s, int i) {
  Node& n = s.g.nodes[size_t(i)];
  if (n.op == OpKind::kClip) return clip_in_integers(s, i);
  switch (n.op) {
    case OpKind::kMaxPool:
    case OpKind::kGlobalMaxPool:
    case OpKind::kFlatten:
    case OpKind::kReshape:
    case OpKind::kTranspose:
    case OpKind::kSqueeze:
    case OpKind::kUnsqueeze:
    case OpKind::kIdentity:
    case OpKind::kRelu: break;
    default: return false;
  }
  int d = s.producer(n.inputs[0], OpKind::kDequantizeLinear);
  auto x = dq_params(s, d);
  if (!x) return false;
  const ir::ValueType& xt = s.g.value(n.inputs[0]).type;
  if (n.op == OpKind::kMaxPool) {
    bool indices = n.outputs.size() > 1 && n.outputs[1] != kNoValue;
    if (indices || !maxpool_windows_nonempty(n, xt)) return false;
  }
  if (n.op == OpKind::kGlobalMaxPool) {  // an empty plane would give the dtype's lowest value
    if (!xt.rank_known || xt.shape.size() < 3) return false;
    for (size_t k = 2; k < xt.shape.size(); ++k)
      if (xt.shape[k] <= 0) return false;
  }
  ValueId xq = s.g.nodes[size_t(d)].inputs[0];
  ValueId out = n.outputs[0];
  ValueId t = s.g.add_value(s.g.unique_name(s.g.value(out).name + "_q"));
  if (n.op == OpKind::kRelu) {
    // Relu(deQ(q)) = deQ(max(q, zp)) since scale > 0.
    n.op = OpKind::kMax;
    n.attrs = ir::NoAttrs{};
    n.inputs = {xq, add_int_scalar(s.g, n.name + "_zero_point", x->dtype, x->zp)};
  } else {
    n.inputs[0] = xq;
  }
  n.outputs[0] = t;
  s.touched[size_t(i)] = 1;
  Node dq;
  dq.name = n.name + "_dequantize";
  dq.op = OpKind::kDequantizeLinear;
  dq.inputs = {t, x->scale_id};
  if (x->zp_id != kNoValue) dq.inputs.push_back(x->zp_id);
  dq.outputs = {out};
  dq.attrs = ir::DequantizeLinearAttrs{};
  s.g.nodes.push_back(std::move(dq));  // invalidates n
  return true;
}

// c. QConv/QGemm -> Max(., y_zp)  =>  QConv/QGemm {fused_relu}: clamping at the
// output zero point after saturation equals raising the lower saturation bound.
bool fold_relu(Sweep& s, int i) {
  const Node& n = s.g.nodes[size_t(i)];
  if (n.op != OpKind::kMax || n.inputs.size() != 2) return false;
  for (int side = 0; side < 2; ++side) {
    ValueId q = n.inputs[size_t(side)];
    const Tensor* c = s.constant(n.inputs[size_t(1 - side)]);
    int p = s.producer(q, OpKind::kQConv);
    if (p < 0) p = s.producer(q, OpKind::kQGemm);
    if (p < 0 || !c || c->rank() != 0 || s.uses[size_t(q)] != 1 || s.is_graph_output(q)) continue;
    Node& f = s.g.nodes[size_t(p)];
    const Tensor* yz = s.constant(input_or_none(f, 7));
    if (!yz || yz->dtype() != c->dtype() || yz->numel() != 1 || yz->as_int(0) != c->as_int(0)) continue;
    if (f.op == OpKind::kQConv) std::get<ir::QConvAttrs>(f.attrs).fused_relu = 1;
    else std::get<ir::QGemmAttrs>(f.attrs).fused_relu = 1;
    f.outputs[0] = n.outputs[0];
    s.touched[size_t(p)] = 1;
    s.touched[size_t(i)] = s.killed[size_t(i)] = 1;
    return true;
  }
  return false;
}

// d. Q(DQ(q)) with identical parameters  =>  q.
bool cancel(Sweep& s, int i) {
  const Node& n = s.g.nodes[size_t(i)];
  if (n.op != OpKind::kQuantizeLinear || s.touched[size_t(i)]) return false;
  int d = s.producer(n.inputs[0], OpKind::kDequantizeLinear);
  auto x = dq_params(s, d);
  auto y = act_params(s, n, s.dtype(n.outputs[0]));
  if (!x || !y || !x->same(*y) || s.is_graph_output(n.outputs[0])) return false;
  ir::replace_uses(s.g, n.outputs[0], s.g.nodes[size_t(d)].inputs[0]);
  s.touched[size_t(i)] = s.killed[size_t(i)] = 1;
  return true;
}

using Rewrite = bool (*)(Sweep&, int);

// One sweep of `rw` over the nodes, then cleanup. Returns the rewrite count.
Result<int> run_phase(Graph& g, Rewrite rw) {
  Sweep s(g);
  int count = 0;
  for (size_t i = 0; i < s.num_nodes; ++i)
    if (!s.touched[i] && rw(s, int(i))) ++count;
  if (count == 0) return 0;
  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (i >= s.num_nodes || !s.killed[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  KILN_TRY(ir::topo_sort(g));
  ir::remove_dead_nodes(g);
  KILN_TRY(ir::infer_graph(g));
  return count;
}


// DQ(uint8 constant, s, zero point 128 everywhere) => DQ(int8 constant - 128, s):
// the same dequantized values, in the symmetric signed form the integer ops
// take (quant::QuantizeConfig::unsigned_weights writes the unsigned form).
int signed_weights(Graph& g) {
  int n = 0;
  for (auto& node : g.nodes) {
    if (node.op != OpKind::kDequantizeLinear || node.inputs.size() < 3 || node.inputs[2] == kNoValue) continue;
    const ir::Value& qv = g.value(node.inputs[0]);
    const ir::Value& zv = g.value(node.inputs[2]);
    if (!qv.is_constant() || !zv.is_constant() || qv.constant.dtype() != DType::kU8 || zv.constant.dtype() != DType::kU8)
      continue;
    bool all128 = true;
    for (int64_t k = 0; k < zv.constant.numel(); ++k) all128 = all128 && zv.constant.data<uint8_t>()[k] == 128;
    if (!all128) continue;
    auto t = Tensor::create(DType::kI8, qv.constant.shape());
    if (!t.ok()) continue;
    for (int64_t k = 0; k < qv.constant.numel(); ++k) t->data<int8_t>()[k] = int8_t(int(qv.constant.data<uint8_t>()[k]) - 128);
    std::string name = g.unique_name(qv.name + "_signed");
    node.inputs[0] = g.add_constant(name, std::move(*t));
    node.inputs.resize(2);
    ++n;
  }
  return n;
}

}  // namespace

Result<int> lower_qdq(ir::Graph& g) {
  int total = signed_weights(g);
  auto names = ir::output_names(g);
  // Each round makes the graph strictly more integer; the bound only guards
  // against a bug turning into an endless loop.
  for (size_t round = 0;; ++round) {
    if (round > g.nodes.size() + 8) return make_error("lower_qdq: rewrites did not converge (a kiln bug)");
    int n = 0;
    for (Rewrite rw : {&fuse, &sink, &fold_relu, &cancel}) {
      KILN_ASSIGN(int k, run_phase(g, rw));
      n += k;
    }
    if (n == 0) break;
    total += n;
  }
  if (total > 0) ir::remove_unused_values(g);
  ir::keep_output_names(g, names);
  return total;
}

}  // namespace kiln::passes
