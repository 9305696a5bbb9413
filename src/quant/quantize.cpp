#include "quant/quantize.h"

#include <algorithm>
#include <cmath>

#include "ir/edit.h"
#include "ir/infer.h"
#include "quant/gptq.h"
#include "quant/input_covariance.h"
#include "quant/weight_delta.h"

namespace kiln::quant {
namespace {

using ir::OpKind;
using ir::ValueId;

bool excluded(const ir::Node& n, const QuantizeConfig& cfg) {
  return cfg.exclude.count(n.name) || cfg.exclude.count(std::string(ir::op_name(n.op)));
}

// Index of the weight input and the output-channel axis of the weight tensor.
struct WeightSlot {
  int input = -1;
  int64_t axis = 0;
};

WeightSlot weight_slot(const ir::Graph& g, const ir::Node& n) {
  auto is_const_f32 = [&](int i) {
    return int(n.inputs.size()) > i && n.inputs[size_t(i)] != ir::kNoValue &&
           g.value(n.inputs[size_t(i)]).is_constant() && g.value(n.inputs[size_t(i)]).constant.dtype() == DType::kF32;
  };
  switch (n.op) {
    case OpKind::kConv:
      if (is_const_f32(1) && g.value(n.inputs[1]).constant.rank() >= 3) return {1, 0};
      break;
    case OpKind::kGemm: {
      const auto& a = n.attr<ir::GemmAttrs>();
      if (!a.transA && a.alpha == 1.0f && is_const_f32(1) && g.value(n.inputs[1]).constant.rank() == 2)
        return {1, a.transB ? 0 : 1};
      break;
    }
    case OpKind::kMatMul:
      if (is_const_f32(1) && g.value(n.inputs[1]).constant.rank() == 2) return {1, 1};
      break;
    default: break;
  }
  return {};
}

// The single Relu consuming node i's only output, or -1.
int fused_relu(const ir::Graph& g, int i) {
  const ir::Node& n = g.nodes[size_t(i)];
  if (n.outputs.size() != 1) return -1;
  auto c = ir::consumers(g, n.outputs[0]);
  if (c.size() != 1 || g.nodes[size_t(c[0])].op != OpKind::kRelu) return -1;
  for (auto o : g.outputs)
    if (o == n.outputs[0]) return -1;
  return c[0];
}

bool is_passthrough(OpKind k) {
  return k == OpKind::kMaxPool || k == OpKind::kFlatten || k == OpKind::kReshape || k == OpKind::kTranspose ||
         k == OpKind::kSqueeze || k == OpKind::kUnsqueeze;
}

int weight_bits(const ir::Node& n, const QuantizeConfig& cfg) {
  auto it = cfg.layer_bits.find(n.name);
  return it != cfg.layer_bits.end() ? it->second : cfg.weight_bits;
}

class Quantizer {
 public:
  Quantizer(ir::Graph& g, const QuantizeConfig& cfg, const std::map<ValueId, ActParams>& act)
      : g_(g), cfg_(cfg), act_(act) {
    if (cfg_.weight_method == "gptq" && !cfg_.gptq_sequential) float_ = g;
  }

  Result<void> run() {
    auto nodes = quantizable_nodes(g_, cfg_);
    std::set<int> todo(nodes.begin(), nodes.end());
    size_t original = g_.nodes.size();
    for (size_t i = 0; i < original; ++i) {
      // Copy what we need: appending nodes invalidates references into g_.nodes.
      ir::Node n = g_.nodes[i];
      if (todo.count(int(i))) {
        if (cfg_.mode == QuantMode::kDynamic) KILN_TRY(quantize_dynamic(int(i)));
        else KILN_TRY(quantize_node(int(i)));
      } else if (cfg_.mode == QuantMode::kStatic && is_passthrough(n.op) && !excluded(n, cfg_) &&
                 n.outputs.size() == 1 && dq_params_.count(n.inputs[0])) {
        ActParams p = dq_params_.at(n.inputs[0]);
        insert_qdq(n.outputs[0], p, n.name);
      }
    }
    KILN_TRY(ir::topo_sort(g_));
    ir::remove_dead_nodes(g_);
    return ir::infer_graph(g_);
  }

 private:
  // Q/DQ after value v (once per value); uses of v read the DQ output.
  ValueId insert_qdq(ValueId v, ActParams p, const std::string&) {
    if (auto it = qdq_of_.find(v); it != qdq_of_.end()) return it->second;
    // Short generated names and one (scale, zero point) constant pair per
    // distinct pair: on LeNet the names alone were 4.7 KB of a 30 KB file.
    auto key = std::make_pair(p.scale, p.zero_point);
    auto [cit, fresh] = act_consts_.try_emplace(key, std::make_pair(ir::kNoValue, ir::kNoValue));
    std::string id = "a" + std::to_string(act_consts_.size() - 1);
    if (fresh) {
      DType zt = cfg_.act_bits == 16 ? (cfg_.act_signed ? DType::kI16 : DType::kU16)
                                     : (cfg_.act_signed ? DType::kI8 : DType::kU8);
      cit->second = {ir::add_scalar_f32(g_, id + "s", p.scale), ir::add_scalar(g_, id + "z", zt, p.zero_point)};
    }
    auto [s, z] = cit->second;
    std::string tag = std::to_string(qdq_of_.size());
    ValueId q = ir::append_node(g_, "q" + tag, OpKind::kQuantizeLinear, {v, s, z}, ir::QuantizeLinearAttrs{})[0];
    int q_index = int(g_.nodes.size()) - 1;
    ValueId dq = ir::append_node(g_, "dq" + tag, OpKind::kDequantizeLinear, {q, s, z}, ir::DequantizeLinearAttrs{})[0];
    ir::replace_uses(g_, v, dq, q_index);
    qdq_of_[v] = dq;
    dq_params_[dq] = p;
    return dq;
  }

  Result<ActParams> act_params(ValueId v, const std::string& where) {
    if (auto it = dq_params_.find(v); it != dq_params_.end()) return it->second;
    auto it = act_.find(v);
    if (it == act_.end()) return make_error(where + ": no calibrated range for '" + g_.value(v).name + "'");
    return it->second;
  }

  // Integer storage of weight w of node `node` (output units on `out_axis`):
  // nearest rounding, or GPTQ over the layer's calibration inputs.
  Result<Tensor> weight_storage(int node, const Tensor& w, const QuantParams& p, int64_t out_axis, bool pack_int4,
                                const std::string& name) {
    if (cfg_.weight_method != "gptq") return quantize_tensor(w, p, pack_int4, name);
    const std::string where = g_.describe(g_.nodes[size_t(node)]);
    if (!cfg_.calib) return make_error(where + ": weight method gptq needs calibration data");
    // Node indices below the original count are the same in g_ and float_.
    auto h = layer_input_covariance(cfg_.gptq_sequential ? g_ : float_, node, *cfg_.calib, cfg_.calib_samples);
    if (!h.ok()) return h.error();
    GptqOptions go;
    go.out_axis = out_axis;
    go.pack_int4 = pack_int4;
    auto q = gptq_quantize(w, p, *h, go, name);
    if (!q.ok()) return make_error(where + ": " + q.error().message);
    return q;
  }

  // Weight constant of node index `node` -> DQ(integer weight); returns the DQ output and the params.
  Result<std::pair<ValueId, QuantParams>> quantize_weight(int node, const ir::Node& n, WeightSlot slot, int bits) {
    // Copies, not references: adding constants below may reallocate g_.values.
    const ir::Value wv = g_.value(n.inputs[size_t(slot.input)]);
    WeightQuantOptions o;
    o.bits = bits;
    KILN_ASSIGN(o.method, parse_weight_method(cfg_.weight_method));
    o.percentile = cfg_.percentile;
    // Integer kernels take symmetric weights; weight-only may use zero points.
    o.symmetric = cfg_.weight_symmetric || cfg_.mode != QuantMode::kWeightOnly;
    o.axis = cfg_.per_channel || cfg_.group_size > 0 ? slot.axis : -1;
    if (cfg_.mode == QuantMode::kWeightOnly && cfg_.group_size > 0) {
      o.axis = n.op == OpKind::kConv ? 1 : 1 - slot.axis;  // groups run along the input channels
      o.group_size = cfg_.group_size;
    }
    auto params = choose_weight_params(wv.constant, o, wv.name);
    if (!params.ok()) return make_error(g_.describe(n) + ": " + params.error().message);
    KILN_ASSIGN(Tensor q, weight_storage(node, wv.constant, *params, slot.axis, true, wv.name));
    if (cfg_.unsigned_weights && q.dtype() == DType::kI8 &&
        std::all_of(params->zero_point.begin(), params->zero_point.end(), [](int32_t z) { return z == 0; })) {
      KILN_ASSIGN(Tensor u, Tensor::create(DType::kU8, q.shape()));
      for (int64_t k = 0; k < q.numel(); ++k) u.data<uint8_t>()[k] = uint8_t(int(q.data<int8_t>()[k]) + 128);
      q = std::move(u);
      for (auto& z : params->zero_point) z = 128;
    }
    std::string base = n.name + "_w";
    ValueId qv = g_.add_constant(g_.unique_name(wv.name + "_quantized"), std::move(q));
    // Widths whose storage is wider than the values (2/3/5/6/7 bits in int8)
    // are recorded so sizes can be reported at their nominal width.
    if (bits != 8 && bits != 16 && bits != 4) g_.metadata["kiln.bits." + g_.value(qv).name] = std::to_string(bits);
    ValueId s = params->scale.size() == 1 ? ir::add_scalar_f32(g_, base + "_scale", params->scale[0])
                                          : g_.add_constant(g_.unique_name(base + "_scale"), scale_tensor(*params, wv.constant));
    ir::DequantizeLinearAttrs da;
    if (params->scale.size() > 1) da.axis = params->axis;
    if (params->group_size > 0) da.block_size = params->group_size;
    std::vector<ValueId> dq_in = {qv, s};
    bool has_zp = false;
    for (auto z : params->zero_point) has_zp = has_zp || z != 0;
    if (has_zp) dq_in.push_back(g_.add_constant(g_.unique_name(base + "_zero_point"), zero_point_tensor(*params, g_.value(qv).constant.dtype(), g_.value(s).constant.shape())));
    ValueId dq = ir::append_node(g_, base + "_dequantize", OpKind::kDequantizeLinear, dq_in, da)[0];
    return std::make_pair(dq, *params);
  }

  // Scale tensor laid out as DequantizeLinear expects: [C] per channel, the
  // weight shape with the grouped axis divided by the block size per group.
  Tensor scale_tensor(const QuantParams& p, const Tensor& w) {
    Shape shape = {int64_t(p.scale.size())};
    if (p.group_size > 0) {
      shape = w.shape();
      shape[size_t(p.axis)] = (shape[size_t(p.axis)] + p.group_size - 1) / p.group_size;
    }
    Tensor t = Tensor::create(DType::kF32, shape).value();
    for (size_t i = 0; i < p.scale.size(); ++i) t.data<float>()[i] = p.scale[i];
    return t;
  }

  // Zero points in the storage dtype, shaped like the scale.
  Tensor zero_point_tensor(const QuantParams& p, DType dt, const Shape& shape) {
    Tensor t = Tensor::create(dt, shape).value();
    for (size_t i = 0; i < p.zero_point.size(); ++i) {
      int32_t z = p.zero_point[i];
      switch (dt) {
        case DType::kI8: t.data<int8_t>()[i] = int8_t(z); break;
        case DType::kU8: t.data<uint8_t>()[i] = uint8_t(z); break;
        case DType::kI16: t.data<int16_t>()[i] = int16_t(z); break;
        case DType::kU16: t.data<uint16_t>()[i] = uint16_t(z); break;
        case DType::kI4:
        case DType::kU4: {
          uint8_t& byte = t.data<uint8_t>()[i / 2];
          byte = uint8_t((byte & (i & 1 ? 0x0f : 0xf0)) | ((uint8_t(z) & 0x0f) << (i & 1 ? 4 : 0)));
          break;
        }
        default: break;
      }
    }
    return t;
  }

  Result<void> quantize_node(int i) {
    ir::Node n = g_.nodes[size_t(i)];
    WeightSlot slot = weight_slot(g_, n);
    KILN_ASSIGN(auto wq, quantize_weight(i, n, slot, weight_bits(n, cfg_)));
    auto& [w_dq, wp] = wq;
    g_.nodes[size_t(i)].inputs[size_t(slot.input)] = w_dq;
    if (cfg_.mode == QuantMode::kWeightOnly) return {};

    ValueId x = n.inputs[0];
    KILN_ASSIGN(ActParams xp, act_params(x, g_.describe(n)));
    ValueId x_dq = insert_qdq(x, xp, g_.value(x).name);
    g_.nodes[size_t(i)].inputs[0] = x_dq;

    // Bias: int32 with scale Delta_x * Delta_w (per output channel), zero point 0.
    int bias_input = n.op == OpKind::kMatMul ? -1 : 2;
    if (bias_input > 0 && int(n.inputs.size()) > bias_input && n.inputs[size_t(bias_input)] != ir::kNoValue) {
      const ir::Value bv = g_.value(n.inputs[size_t(bias_input)]);
      bool per_out = bv.is_constant() && bv.constant.dtype() == DType::kF32 &&
                     bv.constant.numel() == (wp.scale.size() > 1 ? int64_t(wp.scale.size())
                                                                 : g_.value(n.inputs[size_t(slot.input)]).type.shape[size_t(slot.axis)]);
      if (n.op == OpKind::kGemm && n.attr<ir::GemmAttrs>().beta != 1.0f) per_out = false;
      if (per_out) {
        int64_t cout = bv.constant.numel();
        Tensor bq = Tensor::create(DType::kI32, {cout}).value();
        std::vector<float> bscale(static_cast<size_t>(cout), 0.0f);
        for (int64_t c = 0; c < cout; ++c) {
          float sw = wp.scale.size() > 1 ? wp.scale[size_t(c)] : wp.scale[0];
          bscale[size_t(c)] = xp.scale * sw;
          double q = std::nearbyint(double(bv.constant.data<float>()[c]) / double(bscale[size_t(c)]));
          q = std::min(std::max(q, -2147483648.0), 2147483647.0);
          bq.data<int32_t>()[c] = int32_t(q);
        }
        ValueId bqv = g_.add_constant(g_.unique_name(bv.name + "_quantized"), std::move(bq));
        ValueId bs = ir::add_tensor_f32(g_, n.name + "_b_scale", bscale);
        ir::DequantizeLinearAttrs da;
        da.axis = 0;
        ValueId b_dq = ir::append_node(g_, n.name + "_b_dequantize", OpKind::kDequantizeLinear, {bqv, bs}, da)[0];
        g_.nodes[size_t(i)].inputs[size_t(bias_input)] = b_dq;
      }
    }
    // Output (after a fused Relu when there is one).
    int relu = fused_relu(g_, i);
    ValueId y = relu >= 0 ? g_.nodes[size_t(relu)].outputs[0] : n.outputs[0];
    bool graph_output = false;
    for (auto o : g_.outputs) graph_output |= o == y;
    KILN_ASSIGN(ActParams yp, act_params(y, g_.describe(n)));
    // A graph output stays float but still goes through Q/DQ so lowering can
    // keep the whole chain in integers and dequantize once at the end.
    (void)graph_output;
    insert_qdq(y, yp, g_.value(y).name);
    return {};
  }

  // MatMul/Gemm with constant B: y = (MatMulInteger(xq, wq, xzp) as float) * (xs * ws) [+ bias].
  Result<void> quantize_dynamic(int i) {
    ir::Node n = g_.nodes[size_t(i)];
    WeightSlot slot = weight_slot(g_, n);
    const Tensor w = g_.value(n.inputs[1]).constant;
    // MatMulInteger wants B as [K, N]; Gemm with transB stores [N, K].
    bool trans = n.op == OpKind::kGemm && n.attr<ir::GemmAttrs>().transB;
    Tensor wkn = w;
    if (trans) {
      wkn = Tensor::create(DType::kF32, {w.dim(1), w.dim(0)}).value();
      for (int64_t r = 0; r < w.dim(0); ++r)
        for (int64_t c = 0; c < w.dim(1); ++c) wkn.data<float>()[c * w.dim(0) + r] = w.data<float>()[r * w.dim(1) + c];
    }
    (void)slot;
    WeightQuantOptions o;
    o.bits = 8;
    KILN_ASSIGN(o.method, parse_weight_method(cfg_.weight_method));
    o.percentile = cfg_.percentile;
    o.axis = cfg_.per_channel ? 1 : -1;
    auto params = choose_weight_params(wkn, o, g_.value(n.inputs[1]).name);
    if (!params.ok()) return make_error(g_.describe(n) + ": " + params.error().message);
    KILN_ASSIGN(Tensor q, weight_storage(i, wkn, *params, 1, false, g_.value(n.inputs[1]).name));
    ValueId qv = g_.add_constant(g_.unique_name(g_.value(n.inputs[1]).name + "_quantized"), std::move(q));
    auto dq = ir::append_node(g_, n.name + "_dynamic_quantize", OpKind::kDynamicQuantizeLinear, {n.inputs[0]},
                              ir::NoAttrs{}, 3);
    ValueId acc = ir::append_node(g_, n.name + "_matmul_integer", OpKind::kMatMulInteger, {dq[0], qv, dq[2]},
                                  ir::NoAttrs{})[0];
    ir::CastAttrs ca;
    ca.to = dtype_info(DType::kF32).onnx_code;
    ValueId accf = ir::append_node(g_, n.name + "_to_float", OpKind::kCast, {acc}, ca)[0];
    ValueId ws = params->scale.size() == 1 ? ir::add_scalar_f32(g_, n.name + "_w_scale", params->scale[0])
                                           : ir::add_tensor_f32(g_, n.name + "_w_scale", params->scale);
    ValueId scale = ir::append_node(g_, n.name + "_scale", OpKind::kMul, {dq[1], ws}, ir::NoAttrs{})[0];
    ValueId y = ir::append_node(g_, n.name + "_rescale", OpKind::kMul, {accf, scale}, ir::NoAttrs{})[0];
    if (n.op == OpKind::kGemm && n.inputs.size() > 2 && n.inputs[2] != ir::kNoValue) {
      const auto& a = n.attr<ir::GemmAttrs>();
      ValueId c = n.inputs[2];
      if (a.beta != 1.0f) c = ir::append_node(g_, n.name + "_beta", OpKind::kMul, {c, ir::add_scalar_f32(g_, n.name + "_beta_value", a.beta)}, ir::NoAttrs{})[0];
      y = ir::append_node(g_, n.name + "_bias", OpKind::kAdd, {y, c}, ir::NoAttrs{})[0];
    }
    ir::replace_uses(g_, n.outputs[0], y);
    return {};
  }

  ir::Graph& g_;
  const QuantizeConfig& cfg_;
  const std::map<ValueId, ActParams>& act_;
  ir::Graph float_;  // the graph before quantization, for GPTQ statistics from float activations
  std::map<ValueId, ValueId> qdq_of_;       // float value -> its DQ output
  std::map<ValueId, ActParams> dq_params_;  // DQ output -> params
  std::map<std::pair<float, int32_t>, std::pair<ValueId, ValueId>> act_consts_;  // (scale, zp) -> constants
};

}  // namespace

std::vector<int> quantizable_nodes(const ir::Graph& g, const QuantizeConfig& cfg) {
  std::vector<int> out;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (excluded(n, cfg) || weight_slot(g, n).input < 0) continue;
    if (cfg.mode == QuantMode::kDynamic && n.op == OpKind::kConv) continue;
    out.push_back(int(i));
  }
  return out;
}

std::vector<ValueId> activation_values(const ir::Graph& g, const QuantizeConfig& cfg) {
  std::vector<ValueId> v;
  std::set<ValueId> seen;
  auto add = [&](ValueId id) {
    if (seen.insert(id).second) v.push_back(id);
  };
  for (int i : quantizable_nodes(g, cfg)) {
    const ir::Node& n = g.nodes[size_t(i)];
    add(n.inputs[0]);
    int relu = fused_relu(g, i);
    add(relu >= 0 ? g.nodes[size_t(relu)].outputs[0] : n.outputs[0]);
  }
  return v;
}

Result<void> quantize_graph(ir::Graph& g, const QuantizeConfig& cfg, const std::map<ValueId, ActParams>& act) {
  KILN_TRY(check_bits(cfg.weight_bits));
  if (cfg.weight_method == "gptq" && !cfg.calib)
    return make_error("weight method gptq needs calibration data (QuantizeConfig::calib)");
  if (cfg.mode == QuantMode::kStatic && cfg.act_bits != 8 && cfg.act_bits != 16)
    return make_error("activation bit width " + std::to_string(cfg.act_bits) + " is not supported (8 or 16)");
  for (const auto& [name, bits] : cfg.layer_bits) KILN_TRY(check_bits(bits));
  if (quantizable_nodes(g, cfg).empty())
    return make_error("the model has nothing to quantize (no Conv/Gemm/MatMul with constant float weights" +
                      std::string(cfg.exclude.empty() ? "" : " outside the excluded layers") + ")");
  auto names = ir::output_names(g);
  KILN_TRY(Quantizer(g, cfg, act).run());
  ir::keep_output_names(g, names);
  return {};
}

int64_t nominal_parameter_bytes(const ir::Graph& g) {
  int64_t total = 0;
  auto uses = g.use_counts();
  for (size_t i = 0; i < g.values.size(); ++i) {
    const ir::Value& v = g.values[i];
    if (!v.is_constant() || uses[i] == 0) continue;
    auto it = g.metadata.find("kiln.bits." + v.name);
    if (it != g.metadata.end()) total += (v.constant.numel() * std::stoi(it->second) + 7) / 8;
    else total += v.constant.nbytes();
  }
  return total;
}

}  // namespace kiln::quant
