#include "onnx/export.h"

#include <onnx/onnx_pb.h>

#include <set>

#include "io/file.h"
#include "ir/op_table.h"
#include "onnx/kiln_file.h"
#include "onnx/tensor_proto.h"

namespace kiln::onnx_io {
namespace {

void attr_to_proto(const std::string& name, const ir::AttrValue& v, onnx::AttributeProto* a) {
  using AP = onnx::AttributeProto;
  a->set_name(name);
  if (auto* i = std::get_if<int64_t>(&v)) {
    a->set_type(AP::INT);
    a->set_i(*i);
  } else if (auto* f = std::get_if<float>(&v)) {
    a->set_type(AP::FLOAT);
    a->set_f(*f);
  } else if (auto* s = std::get_if<std::string>(&v)) {
    a->set_type(AP::STRING);
    a->set_s(*s);
  } else if (auto* is = std::get_if<std::vector<int64_t>>(&v)) {
    a->set_type(AP::INTS);
    for (auto x : *is) a->add_ints(x);
  } else if (auto* fs = std::get_if<std::vector<float>>(&v)) {
    a->set_type(AP::FLOATS);
    for (auto x : *fs) a->add_floats(x);
  } else if (auto* ss = std::get_if<std::vector<std::string>>(&v)) {
    a->set_type(AP::STRINGS);
    for (const auto& x : *ss) a->add_strings(x);
  } else if (auto* t = std::get_if<Tensor>(&v)) {
    a->set_type(AP::TENSOR);
    tensor_to_proto(*t, name, a->mutable_t());
  }
}

void type_to_proto(const ir::Graph& g, const ir::Value& v, onnx::ValueInfoProto* vi) {
  vi->set_name(v.name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype_info(v.type.dtype).onnx_code);
  if (!v.type.rank_known) return;
  auto* shape = tt->mutable_shape();
  for (auto d : v.type.shape) {
    auto* dim = shape->add_dim();
    if (d >= 0) dim->set_dim_value(d);
    else if (size_t(-d - 1) < g.symbols.size() && g.symbols[size_t(-d - 1)][0] != '?')
      dim->set_dim_param(g.symbols[size_t(-d - 1)]);
  }
}

}  // namespace

Result<void> export_model(const ir::Graph& g, onnx::ModelProto* m, const ExportOptions& opt) {
  m->set_ir_version(10);
  m->set_producer_name("kiln");
  m->set_producer_version("0.1.0");
  auto* op = m->add_opset_import();
  op->set_domain("");
  op->set_version(kExportOpset);
  for (const auto& [k, v] : g.metadata) {
    auto* p = m->add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  auto* gp = m->mutable_graph();
  gp->set_name(g.name.empty() ? "main" : g.name);
  std::set<ir::ValueId> used;
  for (const auto& n : g.nodes)
    for (auto id : n.inputs)
      if (id != ir::kNoValue) used.insert(id);
  for (auto id : g.outputs) used.insert(id);
  for (ir::ValueId id = 0; id < ir::ValueId(g.values.size()); ++id)
    if (g.value(id).is_constant() && used.count(id))
      tensor_to_proto(g.value(id).constant, g.value(id).name, gp->add_initializer());
  for (auto id : g.inputs) type_to_proto(g, g.value(id), gp->add_input());
  for (auto id : g.outputs) type_to_proto(g, g.value(id), gp->add_output());
  bool kiln_domain = false;
  for (const auto& n : g.nodes) {
    // kiln's own integer ops (from passes/lower_qdq) have no ONNX definition;
    // the QDQ graph they were lowered from is the exportable form.
    std::string_view domain = ir::op_domain(n.op);
    if (!domain.empty() && !opt.allow_kiln_ops)
      return make_error(g.describe(n) + ": op of domain '" + std::string(ir::op_domain(n.op)) +
                        "' has no ONNX form; export the QDQ graph it was lowered from (passes/lower_qdq)");
    auto* np = gp->add_node();
    np->set_name(n.name);
    np->set_op_type(std::string(ir::op_name(n.op)));
    if (!domain.empty()) {
      np->set_domain(std::string(domain));
      kiln_domain = true;
    }
    for (auto id : n.inputs) np->add_input(id == ir::kNoValue ? "" : g.value(id).name);
    for (auto id : n.outputs) np->add_output(id == ir::kNoValue ? "" : g.value(id).name);
    for (const auto& [k, v] : ir::attrs_to_map(n.attrs)) attr_to_proto(k, v, np->add_attribute());
  }
  if (kiln_domain) {
    auto* kop = m->add_opset_import();
    kop->set_domain("kiln");
    kop->set_version(1);
  }
  return {};
}

Result<void> save_model(const ir::Graph& g, const std::string& path) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".kiln") == 0) return save_kiln(g, path);
  onnx::ModelProto m;
  KILN_TRY(export_model(g, &m));
  std::string bytes;
  if (!m.SerializeToString(&bytes)) return make_error(path + ": model too large to serialize (over 2 GiB)");
  return io::write_file_atomic(path, bytes);
}

}  // namespace kiln::onnx_io
