#include "onnx/import.h"
#include "onnx/kiln_file.h"

#include <onnx/onnx_pb.h>

#include <filesystem>
#include <map>

#include "io/file.h"
#include "ir/infer.h"
#include "ir/op_table.h"
#include "onnx/tensor_proto.h"
#include "onnx/upgrade.h"

namespace kiln::onnx_io {
namespace {

Result<ir::AttrValue> attr_from_proto(const onnx::AttributeProto& a, const std::string& base_dir) {
  using AP = onnx::AttributeProto;
  switch (a.type()) {
    case AP::INT: return ir::AttrValue{int64_t(a.i())};
    case AP::FLOAT: return ir::AttrValue{a.f()};
    case AP::STRING: return ir::AttrValue{a.s()};
    case AP::INTS: return ir::AttrValue{std::vector<int64_t>(a.ints().begin(), a.ints().end())};
    case AP::FLOATS: return ir::AttrValue{std::vector<float>(a.floats().begin(), a.floats().end())};
    case AP::STRINGS: return ir::AttrValue{std::vector<std::string>(a.strings().begin(), a.strings().end())};
    case AP::TENSOR: {
      KILN_ASSIGN(Tensor t, tensor_from_proto(a.t(), base_dir));
      return ir::AttrValue{std::move(t)};
    }
    case AP::GRAPH:
    case AP::GRAPHS: return make_error("attribute '" + a.name() + "' holds a subgraph; control flow is not supported");
    case AP::UNDEFINED:
      // Old exporters leave type unset; infer from which field is filled.
      if (a.ints_size()) return ir::AttrValue{std::vector<int64_t>(a.ints().begin(), a.ints().end())};
      if (a.floats_size()) return ir::AttrValue{std::vector<float>(a.floats().begin(), a.floats().end())};
      if (a.has_i()) return ir::AttrValue{int64_t(a.i())};
      if (a.has_f()) return ir::AttrValue{a.f()};
      if (a.has_s()) return ir::AttrValue{a.s()};
      return make_error("attribute '" + a.name() + "' has no type");
    default: return make_error("attribute '" + a.name() + "' has an unsupported type");
  }
}

class Importer {
 public:
  Importer(const onnx::ModelProto& m, std::string base_dir) : m_(m), base_dir_(std::move(base_dir)) {}

  Result<ir::Graph> run() {
    KILN_TRY(read_opsets());
    if (!m_.has_graph()) return make_error("model has no graph");
    const auto& gp = m_.graph();
    g_.name = gp.name();
    for (const auto& kv : m_.metadata_props()) g_.metadata[kv.key()] = kv.value();
    if (gp.sparse_initializer_size()) return make_error("sparse initializers are not supported");
    for (const auto& init : gp.initializer()) {
      KILN_ASSIGN(Tensor t, tensor_from_proto(init, base_dir_));
      if (names_.count(init.name())) return make_error("initializer '" + init.name() + "' is defined twice");
      names_[init.name()] = g_.add_constant(init.name(), std::move(t));
    }
    for (const auto& in : gp.input()) {
      if (names_.count(in.name())) continue;  // old IR: initializers repeated as inputs
      KILN_ASSIGN(ir::ValueType type, type_from_proto(in));
      ir::ValueId id = g_.add_value(in.name(), type);
      names_[in.name()] = id;
      g_.inputs.push_back(id);
    }
    for (const auto& np : gp.node()) KILN_TRY(import_node(np));
    for (const auto& out : gp.output()) {
      auto it = names_.find(out.name());
      if (it == names_.end()) return make_error("graph output '" + out.name() + "' is not produced by any node");
      ir::ValueId id = it->second;
      if (g_.value(id).is_constant() || is_graph_input(id)) {
        // An output that is a constant or an input: route through Identity so outputs are node results.
        ir::ValueId copy = g_.add_value(g_.unique_name(out.name() + "_out"));
        add_node(out.name() + "_identity", ir::OpKind::kIdentity, {id}, {copy}, ir::NoAttrs{}, 13);
        KILN_TRY(ir::infer_node(g_, g_.nodes.back()));
        id = copy;
      }
      g_.outputs.push_back(id);
    }
    return std::move(g_);
  }

 private:
  Result<void> read_opsets() {
    if (m_.ir_version() <= 0) return make_error("model has no ir_version (not an ONNX model?)");
    for (const auto& o : m_.opset_import()) {
      std::string d = o.domain() == "ai.onnx" ? "" : o.domain();
      opsets_[d] = int(o.version());
    }
    if (!opsets_.count("")) {
      if (m_.opset_import_size() == 0) opsets_[""] = 1;
      else return make_error("model imports no default-domain opset");
    }
    int v = opsets_[""];
    if (v < kMinOpset || v > kMaxOpset)
      return make_error("model uses opset " + std::to_string(v) + "; kiln supports opsets " +
                        std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset));
    return {};
  }

  bool is_graph_input(ir::ValueId id) const {
    for (auto i : g_.inputs)
      if (i == id) return true;
    return false;
  }

  Result<ir::ValueType> type_from_proto(const onnx::ValueInfoProto& vi) {
    if (!vi.type().has_tensor_type())
      return make_error("input '" + vi.name() + "' is not a tensor (sequences, maps and optionals are not supported)");
    const auto& tt = vi.type().tensor_type();
    auto dt = dtype_from_onnx(tt.elem_type());
    if (!dt) return make_error("input '" + vi.name() + "' has unsupported element type " + std::to_string(tt.elem_type()));
    ir::ValueType t{*dt, {}, tt.has_shape()};
    if (tt.has_shape())
      for (const auto& d : tt.shape().dim()) {
        if (d.has_dim_value()) t.shape.push_back(d.dim_value());
        else if (d.has_dim_param() && !d.dim_param().empty()) t.shape.push_back(g_.symbol(d.dim_param()));
        else t.shape.push_back(g_.fresh_symbol());
      }
    return t;
  }

  void add_node(std::string name, ir::OpKind op, std::vector<ir::ValueId> in, std::vector<ir::ValueId> out,
                ir::Attrs attrs, int opset) {
    ir::Node n;
    n.name = std::move(name);
    n.op = op;
    n.opset = opset;
    n.inputs = std::move(in);
    n.outputs = std::move(out);
    n.attrs = std::move(attrs);
    g_.nodes.push_back(std::move(n));
  }

  std::string node_label(const onnx::NodeProto& np, int index) const {
    return np.name().empty() ? np.op_type() + "_" + std::to_string(index) : np.name();
  }

  Result<void> import_constant(const onnx::NodeProto& np, const std::string& where) {
    if (np.output_size() != 1) return make_error(where + ": Constant must have one output");
    Tensor t;
    for (const auto& a : np.attribute()) {
      const std::string& k = a.name();
      if (k == "value") {
        KILN_ASSIGN(t, tensor_from_proto(a.t(), base_dir_));
      } else if (k == "value_float") {
        t = scalar_f32(a.f());
      } else if (k == "value_floats") {
        t = tensor_f32(std::vector<float>(a.floats().begin(), a.floats().end()));
      } else if (k == "value_int") {
        t = tensor_i64({a.i()}).reshaped({});
      } else if (k == "value_ints") {
        t = tensor_i64(std::vector<int64_t>(a.ints().begin(), a.ints().end()));
      } else {
        return make_error(where + ": Constant attribute '" + k + "' is not supported");
      }
    }
    if (!t.defined()) return make_error(where + ": Constant has no value");
    if (names_.count(np.output(0))) return make_error(where + ": redefines '" + np.output(0) + "'");
    names_[np.output(0)] = g_.add_constant(np.output(0), std::move(t));
    return {};
  }

  Result<void> import_node(const onnx::NodeProto& np) {
    int index = int(g_.nodes.size());
    std::string label = node_label(np, index);
    std::string domain = np.domain() == "ai.onnx" ? "" : np.domain();
    int opset = opsets_.count(domain) ? opsets_[domain] : 0;
    std::string where = "node '" + label + "' (op " + np.op_type() + ", domain '" +
                        (domain.empty() ? "ai.onnx" : domain) + "', opset " + std::to_string(opset) + ")";
    if (domain.empty() && np.op_type() == "Constant") return import_constant(np, where);

    UpgradeCtx uc;
    uc.op_type = np.op_type();
    uc.opset = opset;
    for (const auto& a : np.attribute()) {
      auto v = attr_from_proto(a, base_dir_);
      if (!v.ok()) return make_error(where + ": " + v.error().message);
      uc.attrs[a.name()] = std::move(*v);
    }
    for (const auto& in : np.input()) {
      if (in.empty()) {
        uc.inputs.push_back(ir::kNoValue);
        continue;
      }
      auto it = names_.find(in);
      if (it == names_.end()) return make_error(where + ": input '" + in + "' is not defined before this node");
      uc.inputs.push_back(it->second);
    }
    uc.add_constant = [&](const std::string& suffix, Tensor t) {
      return g_.add_constant(g_.unique_name(label + "_" + suffix), std::move(t));
    };
    if (domain.empty()) KILN_TRY(upgrade_node(uc));
    auto op = ir::op_from_name(domain, uc.op_type);
    if (!op) return make_error(where + ": unsupported op");
    while (!uc.inputs.empty() && uc.inputs.back() == ir::kNoValue) uc.inputs.pop_back();

    const ir::OpInfo& info = ir::op_info(*op);
    auto attrs = info.parse(uc.attrs);
    if (!attrs.ok()) return make_error(where + ": " + attrs.error().message);
    if (*op == ir::OpKind::kCast) {
      int64_t to = std::get<ir::CastAttrs>(*attrs).to;
      if (!dtype_from_onnx(int(to))) return make_error(where + ": cast to unsupported data type " + std::to_string(to));
    }
    int ni = int(uc.inputs.size());
    if (ni < info.min_inputs || (info.max_inputs >= 0 && ni > info.max_inputs))
      return make_error(where + ": has " + std::to_string(ni) + " inputs, expected " +
                        std::to_string(info.min_inputs) +
                        (info.max_inputs == info.min_inputs ? "" : " to " + (info.max_inputs < 0 ? std::string("any") : std::to_string(info.max_inputs))));
    std::vector<ir::ValueId> outs;
    for (const auto& o : np.output()) {
      if (o.empty()) {
        outs.push_back(ir::kNoValue);
        continue;
      }
      if (names_.count(o)) return make_error(where + ": redefines '" + o + "'");
      ir::ValueId id = g_.add_value(o);
      names_[o] = id;
      outs.push_back(id);
    }
    while (!outs.empty() && outs.back() == ir::kNoValue) outs.pop_back();
    int no = int(outs.size());
    if (no < info.min_outputs || (info.max_outputs >= 0 && no > info.max_outputs))
      return make_error(where + ": has " + std::to_string(no) + " outputs");

    if (uc.legacy_broadcast_axis >= 0 && uc.inputs.size() == 2) KILN_TRY(align_legacy_broadcast(label, uc, opset));
    bool legacy_softmax = opset < 13 && (*op == ir::OpKind::kSoftmax || *op == ir::OpKind::kLogSoftmax ||
                                         *op == ir::OpKind::kHardmax);
    if (legacy_softmax) return import_legacy_softmax(label, *op, uc, outs, opset, where);
    add_node(label, *op, uc.inputs, outs, std::move(*attrs), opset);
    auto r = ir::infer_node(g_, g_.nodes.back());
    if (!r.ok()) return make_error(where + ": " + r.error().message.substr(r.error().message.find(": ") + 2));
    return {};
  }

  // B gets trailing 1-dims so that numpy broadcasting aligns it at `axis` of A.
  Result<void> align_legacy_broadcast(const std::string& label, UpgradeCtx& uc, int opset) {
    const ir::ValueType& a = g_.value(uc.inputs[0]).type;
    const ir::ValueType& b = g_.value(uc.inputs[1]).type;
    if (!a.rank_known || !b.rank_known) return make_error(label + ": legacy broadcast needs known ranks");
    int64_t trailing = int64_t(a.shape.size()) - uc.legacy_broadcast_axis - int64_t(b.shape.size());
    if (trailing <= 0) return {};  // already aligned (or invalid: shape inference reports it)
    std::vector<int64_t> axes;
    for (int64_t i = 0; i < trailing; ++i) axes.push_back(int64_t(b.shape.size()) + i);
    ir::ValueId axes_id = g_.add_constant(g_.unique_name(label + "_bcast_axes"), tensor_i64(axes));
    ir::ValueId aligned = g_.add_value(g_.unique_name(label + "_bcast"));
    add_node(label + "_bcast", ir::OpKind::kUnsqueeze, {uc.inputs[1], axes_id}, {aligned}, ir::NoAttrs{}, opset);
    KILN_TRY(ir::infer_node(g_, g_.nodes.back()));
    uc.inputs[1] = aligned;
    return {};
  }

  // Opset < 13 Softmax/LogSoftmax/Hardmax flatten the input to 2-D at `axis`
  // (default 1) and normalize over the second dimension. Canonical form:
  // Flatten(axis) -> op(axis=-1) -> Reshape(Shape(x)); when axis is the last
  // dimension this is the same as the op alone.
  Result<void> import_legacy_softmax(const std::string& label, ir::OpKind op, UpgradeCtx& uc,
                                     const std::vector<ir::ValueId>& outs, int opset, const std::string& where) {
    int64_t axis = 1;
    if (auto it = uc.attrs.find("axis"); it != uc.attrs.end()) axis = std::get<int64_t>(it->second);
    ir::ValueId x = uc.inputs[0];
    const ir::ValueType& xt = g_.value(x).type;
    if (!xt.rank_known) return make_error(where + ": input rank must be known for opset < 13");
    int64_t rank = int64_t(xt.shape.size());
    auto na = normalize_axis(axis, rank);
    if (!na.ok()) return make_error(where + ": " + na.error().message);
    if (*na == rank - 1) {
      add_node(label, op, {x}, outs, ir::SoftmaxAttrs{-1}, opset);
      return ir::infer_node(g_, g_.nodes.back());
    }
    ir::ValueId flat = g_.add_value(g_.unique_name(label + "_2d"));
    ir::ValueId soft = g_.add_value(g_.unique_name(label + "_2d_out"));
    ir::ValueId shape = g_.add_value(g_.unique_name(label + "_shape"));
    add_node(label + "_flatten", ir::OpKind::kFlatten, {x}, {flat}, ir::FlattenAttrs{*na}, opset);
    KILN_TRY(ir::infer_node(g_, g_.nodes.back()));
    add_node(label, op, {flat}, {soft}, ir::SoftmaxAttrs{-1}, opset);
    KILN_TRY(ir::infer_node(g_, g_.nodes.back()));
    add_node(label + "_shape", ir::OpKind::kShape, {x}, {shape}, ir::ShapeAttrs{}, opset);
    KILN_TRY(ir::infer_node(g_, g_.nodes.back()));
    add_node(label + "_reshape", ir::OpKind::kReshape, {soft, shape}, outs, ir::ReshapeAttrs{}, opset);
    return ir::infer_node(g_, g_.nodes.back());
  }

  const onnx::ModelProto& m_;
  std::string base_dir_;
  ir::Graph g_;
  std::map<std::string, ir::ValueId> names_;
  std::map<std::string, int> opsets_;
};

}  // namespace

Result<ir::Graph> import_model(const onnx::ModelProto& m, const std::string& base_dir) {
  return Importer(m, base_dir).run();
}

Result<ir::Graph> load_model(const std::string& path) {
  KILN_ASSIGN(std::string bytes, io::read_file(path));
  if (bytes.empty()) return make_error(path + ": file is empty, not an ONNX model");
  if (is_kiln_file(bytes)) {
    auto g = decode_kiln(bytes);
    if (!g.ok()) return make_error(path + ": " + g.error().message);
    return g;
  }
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes))
    return make_error(path + ": not a valid ONNX model (protobuf parse failed: file truncated or corrupt)");
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  auto g = import_model(m, dir);
  if (!g.ok()) return make_error(path + ": " + g.error().message);
  return g;
}

}  // namespace kiln::onnx_io
