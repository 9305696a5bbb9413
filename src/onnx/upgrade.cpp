#include "onnx/upgrade.h"

#include <limits>

namespace kiln::onnx_io {

Tensor tensor_i64(const std::vector<int64_t>& v) {
  Tensor t = Tensor::create(DType::kI64, {int64_t(v.size())}).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}
Tensor tensor_f32(const std::vector<float>& v) {
  Tensor t = Tensor::create(DType::kF32, {int64_t(v.size())}).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}
Tensor scalar_f32(float v) {
  Tensor t = Tensor::create(DType::kF32, {}).value();
  *t.data<float>() = v;
  return t;
}

namespace {

bool take_ints(ir::AttrMap& a, const char* name, std::vector<int64_t>& out) {
  auto it = a.find(name);
  if (it == a.end()) return false;
  if (auto* v = std::get_if<std::vector<int64_t>>(&it->second)) out = *v;
  else if (auto* f = std::get_if<std::vector<float>>(&it->second); f && f->empty()) out.clear();
  else return false;
  a.erase(it);
  return true;
}
bool take_float(ir::AttrMap& a, const char* name, float& out) {
  auto it = a.find(name);
  if (it == a.end()) return false;
  if (auto* v = std::get_if<float>(&it->second)) out = *v;
  else if (auto* i = std::get_if<int64_t>(&it->second)) out = float(*i);
  else return false;
  a.erase(it);
  return true;
}
void set_input(UpgradeCtx& c, size_t i, ir::ValueId id) {
  if (c.inputs.size() <= i) c.inputs.resize(i + 1, ir::kNoValue);
  c.inputs[i] = id;
}
// attribute `name` (ints) becomes input `index` as a 1-D int64 constant
void ints_to_input(UpgradeCtx& c, const char* name, size_t index) {
  std::vector<int64_t> v;
  if (take_ints(c.attrs, name, v)) set_input(c, index, c.add_constant(name, tensor_i64(v)));
}

bool is_reduce(const std::string& op) { return op.rfind("Reduce", 0) == 0; }

}  // namespace

Result<void> upgrade_node(UpgradeCtx& c) {
  const std::string& op = c.op_type;
  int v = c.opset;
  if (is_reduce(op) && (op == "ReduceSum" ? v < 13 : v < 18)) {
    ints_to_input(c, "axes", 1);
  } else if ((op == "Squeeze" || op == "Unsqueeze") && v < 13) {
    ints_to_input(c, "axes", 1);
  } else if (op == "Split" && v < 13) {
    ints_to_input(c, "split", 1);
  } else if (op == "Slice" && v < 10) {
    std::vector<int64_t> starts, ends, axes;
    take_ints(c.attrs, "starts", starts);
    take_ints(c.attrs, "ends", ends);
    bool has_axes = take_ints(c.attrs, "axes", axes);
    set_input(c, 1, c.add_constant("starts", tensor_i64(starts)));
    set_input(c, 2, c.add_constant("ends", tensor_i64(ends)));
    if (has_axes) set_input(c, 3, c.add_constant("axes", tensor_i64(axes)));
  } else if (op == "Pad" && v < 11) {
    std::vector<int64_t> pads;
    float value = 0;
    take_ints(c.attrs, "pads", pads);
    if (pads.empty()) take_ints(c.attrs, "paddings", pads);
    bool has_value = take_float(c.attrs, "value", value);
    set_input(c, 1, c.add_constant("pads", tensor_i64(pads)));
    if (has_value) set_input(c, 2, c.add_constant("value", scalar_f32(value)));
  } else if (op == "Clip" && v < 11) {
    float lo = 0, hi = 0;
    bool has_lo = take_float(c.attrs, "min", lo), has_hi = take_float(c.attrs, "max", hi);
    if (has_lo) set_input(c, 1, c.add_constant("min", scalar_f32(lo)));
    if (has_hi) set_input(c, 2, c.add_constant("max", scalar_f32(hi)));
  } else if (op == "TopK" && v < 10) {
    auto it = c.attrs.find("k");
    if (it != c.attrs.end()) {
      int64_t k = std::get<int64_t>(it->second);
      c.attrs.erase(it);
      set_input(c, 1, c.add_constant("k", tensor_i64({k})));
    }
  } else if (op == "Dropout" && v < 12) {
    float ratio;
    take_float(c.attrs, "ratio", ratio);  // inference-only: ratio has no effect
    c.attrs.erase("is_test");
  } else if (op == "Upsample" || (op == "Resize" && v < 11)) {
    // Upsample (7: scales attribute; 9: scales input) and Resize-10 both use
    // asymmetric coordinates and floor for nearest; Resize-11+ takes (X, roi, scales, sizes).
    std::vector<float> scales;
    auto it = c.attrs.find("scales");
    if (it != c.attrs.end()) {
      if (auto* f = std::get_if<std::vector<float>>(&it->second)) scales = *f;
      c.attrs.erase(it);
    }
    ir::ValueId scales_id = c.inputs.size() > 1 ? c.inputs[1] : ir::kNoValue;
    if (!scales.empty()) scales_id = c.add_constant("scales", tensor_f32(scales));
    c.inputs.resize(1);
    set_input(c, 2, scales_id);
    std::string mode = "nearest";
    if (auto m = c.attrs.find("mode"); m != c.attrs.end()) {
      if (auto* s = std::get_if<std::string>(&m->second)) mode = *s;
    }
    if (mode == "bilinear") mode = "linear";
    c.attrs["mode"] = mode;
    c.attrs["coordinate_transformation_mode"] = std::string("asymmetric");
    if (mode == "nearest") c.attrs["nearest_mode"] = std::string("floor");
    c.op_type = "Resize";
  } else if (op == "Scatter") {
    c.op_type = "ScatterElements";
  } else if (op == "BatchNormalization" && v < 9) {
    c.attrs.erase("spatial");
  }
  if (op == "PRelu" && v < 7) {
    // Opset 6 PRelu: a [C] slope applies per channel (axis 1), not to the last axis.
    c.legacy_broadcast_axis = 1;
  }
  if (v < 7 && c.attrs.count("broadcast")) {
    // Legacy broadcasting (opset 1-6): numpy rules from opset 7 cover the
    // default (trailing alignment); an explicit axis is handled by the importer.
    c.attrs.erase("broadcast");
    if (auto it = c.attrs.find("axis"); it != c.attrs.end() && op != "Gemm") {
      if (auto* a = std::get_if<int64_t>(&it->second)) c.legacy_broadcast_axis = *a;
      c.attrs.erase(it);
    }
  }
  return {};
}

}  // namespace kiln::onnx_io
