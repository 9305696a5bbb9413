#include "passes/pass_util.h"

#include "backends/reference/reference.h"
#include "ir/edit.h"
#include "ir/infer.h"
#include "ir/op_table.h"

namespace kiln::passes {

using ir::kNoValue;
using ir::ValueId;

Snapshot::Snapshot(ir::Graph& graph)
    : g(graph), prod(graph.producers()), uses(graph.use_counts()), is_input(graph.values.size(), 0),
      is_output(graph.values.size(), 0), killed(graph.nodes.size(), 0), touched(graph.nodes.size(), 0),
      out_names(ir::output_names(graph)) {
  for (auto id : g.inputs) is_input[size_t(id)] = 1;
  for (auto id : g.outputs) is_output[size_t(id)] = 1;
}

int Snapshot::producer(ValueId id) const {
  if (id == kNoValue || size_t(id) >= prod.size()) return -1;
  int p = prod[size_t(id)];
  return p >= 0 && size_t(p) < touched.size() && !touched[size_t(p)] ? p : -1;
}

int Snapshot::producer(ValueId id, ir::OpKind op) const {
  int p = producer(id);
  return p >= 0 && g.nodes[size_t(p)].op == op ? p : -1;
}

bool Snapshot::single_use(ValueId id) const {
  return id != kNoValue && size_t(id) < uses.size() && uses[size_t(id)] == 1 && !is_output[size_t(id)];
}

int Snapshot::sole_consumer(ValueId id) const {
  if (!single_use(id)) return -1;
  for (size_t i = 0; i < touched.size(); ++i)
    for (auto in : g.nodes[i].inputs)
      if (in == id) return touched[i] ? -1 : int(i);
  return -1;
}

const Tensor* Snapshot::constant(ValueId id) const {
  return id != kNoValue && g.value(id).is_constant() ? &g.value(id).constant : nullptr;
}

bool Snapshot::redirect(ValueId from, ValueId to) {
  bool from_out = size_t(from) < is_output.size() && is_output[size_t(from)];
  bool to_io = size_t(to) < is_output.size() ? graph_io(to) : false;
  if (from_out && (to_io || g.value(to).is_constant())) return false;
  ir::replace_uses(g, from, to);
  if (from_out && size_t(to) < is_output.size()) is_output[size_t(to)] = 1;
  return true;
}

Result<void> Snapshot::finish() {
  std::vector<ir::Node> kept;
  kept.reserve(g.nodes.size());
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (i >= killed.size() || !killed[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
  KILN_TRY(ir::topo_sort(g));
  ir::remove_dead_nodes(g);
  KILN_TRY(ir::infer_graph(g));
  ir::keep_output_names(g, out_names);
  return {};
}

std::optional<double> scalar_value(const Tensor* t) {
  if (!t || t->numel() != 1 || !is_float(t->dtype())) return std::nullopt;
  return t->as_double(0);
}

std::optional<float> f32_scalar_operand(const Snapshot& s, ValueId c, ValueId x) {
  const Tensor* t = s.constant(c);
  if (!t || t->dtype() != DType::kF32 || t->numel() != 1 || s.constant(x)) return std::nullopt;
  const auto& xt = s.g.value(x).type;
  if (!xt.rank_known || t->rank() > int64_t(xt.shape.size())) return std::nullopt;
  return t->data<float>()[0];
}

std::vector<double> to_doubles(const Tensor& t) {
  std::vector<double> v(size_t(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[size_t(i)] = t.as_double(i);
  return v;
}

Tensor f32_tensor(const Shape& shape, const std::vector<double>& v) {
  Tensor t = Tensor::create(DType::kF32, shape).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = float(v[i]);
  return t;
}

ValueId other_input(const ir::Node& n, ValueId v) {
  if (n.inputs.size() != 2) return kNoValue;
  if (n.inputs[0] == v) return n.inputs[1];
  if (n.inputs[1] == v) return n.inputs[0];
  return kNoValue;
}

int next(const Snapshot& s, ValueId v, ir::OpKind op) {
  int c = s.sole_consumer(v);
  return c >= 0 && s.g.nodes[size_t(c)].op == op ? c : -1;
}

Result<int> rewrite_each(ir::Graph& g, ir::OpKind anchor, bool (*rewrite)(Snapshot&, int)) {
  Snapshot s(g);
  int fired = 0;
  for (size_t i = 0; i < s.killed.size(); ++i)
    if (g.nodes[i].op == anchor && !s.touched[i] && rewrite(s, int(i))) ++fired;
  if (fired) KILN_TRY(s.finish());
  return fired;
}

Result<std::vector<Tensor>> eval_node(const ir::Graph& g, const ir::Node& n) {
  std::string where = g.describe(n);
  std::vector<const Tensor*> in;
  for (auto id : n.inputs) {
    const Tensor* t = id == kNoValue ? nullptr : &g.value(id).constant;
    if (t && !t->defined()) return make_error(where + ": input '" + g.value(id).name + "' is not constant");
    in.push_back(t);
  }
  return ref::run_node(n, in, where);
}

std::optional<std::vector<double>> per_channel(const Tensor& c, const Shape& out, size_t axis, int64_t channels) {
  if (!is_float(c.dtype())) return std::nullopt;
  std::vector<double> v(static_cast<size_t>(channels));
  if (c.numel() == 1) {
    v.assign(size_t(channels), c.as_double(0));
    return v;
  }
  const Shape& s = c.shape();
  if (s.size() > out.size() || axis >= out.size()) return std::nullopt;
  size_t off = out.size() - s.size();  // c's dim j lines up with out's dim off + j
  for (size_t j = 0; j < s.size(); ++j) {
    bool is_axis = off + j == axis;
    if (s[j] != 1 && !(is_axis && s[j] == channels)) return std::nullopt;
  }
  if (c.numel() != channels) return std::nullopt;
  for (int64_t k = 0; k < channels; ++k) v[size_t(k)] = c.as_double(k);
  return v;
}

}  // namespace kiln::passes
