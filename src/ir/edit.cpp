#include "ir/edit.h"

#include <set>

namespace kiln::ir {

std::vector<ValueId> append_node(Graph& g, const std::string& name, OpKind op, std::vector<ValueId> inputs,
                                 Attrs attrs, int num_outputs) {
  Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.attrs = std::move(attrs);
  for (int i = 0; i < num_outputs; ++i)
    n.outputs.push_back(g.add_value(g.unique_name(name + (num_outputs == 1 ? "_out" : "_out" + std::to_string(i)))));
  g.nodes.push_back(std::move(n));
  return g.nodes.back().outputs;
}

ValueId add_scalar_f32(Graph& g, const std::string& name, float v) {
  Tensor t = Tensor::create(DType::kF32, {}).value();
  *t.data<float>() = v;
  return g.add_constant(g.unique_name(name), std::move(t));
}

ValueId add_scalar(Graph& g, const std::string& name, DType dt, int64_t v) {
  Tensor t = Tensor::create(dt, {}).value();
  switch (dt) {
    case DType::kI8: *t.data<int8_t>() = int8_t(v); break;
    case DType::kU8: *t.data<uint8_t>() = uint8_t(v); break;
    case DType::kI16: *t.data<int16_t>() = int16_t(v); break;
    case DType::kU16: *t.data<uint16_t>() = uint16_t(v); break;
    case DType::kI32: *t.data<int32_t>() = int32_t(v); break;
    default: *t.data<int64_t>() = v; break;
  }
  return g.add_constant(g.unique_name(name), std::move(t));
}

ValueId add_tensor_f32(Graph& g, const std::string& name, const std::vector<float>& v) {
  Tensor t = Tensor::create(DType::kF32, {int64_t(v.size())}).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return g.add_constant(g.unique_name(name), std::move(t));
}

void replace_uses(Graph& g, ValueId from, ValueId to, int except) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (int(i) == except) continue;
    for (auto& in : g.nodes[i].inputs)
      if (in == from) in = to;
  }
  for (auto& o : g.outputs)
    if (o == from) o = to;
}

std::vector<std::string> output_names(const Graph& g) {
  std::vector<std::string> names;
  for (auto id : g.outputs) names.push_back(g.value(id).name);
  return names;
}

void keep_output_names(Graph& g, const std::vector<std::string>& names) {
  for (size_t k = 0; k < g.outputs.size() && k < names.size(); ++k) {
    Value& out = g.value(g.outputs[k]);
    if (out.name == names[k]) continue;
    for (auto& v : g.values)
      if (v.name == names[k]) v.name = g.unique_name(names[k] + "_inner");
    out.name = names[k];
  }
}

std::vector<int> consumers(const Graph& g, ValueId id) {
  std::vector<int> c;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (auto in : g.nodes[i].inputs)
      if (in == id) {
        c.push_back(int(i));
        break;
      }
  return c;
}

Result<void> topo_sort(Graph& g) {
  std::vector<char> ready(g.values.size(), 0);
  for (size_t i = 0; i < g.values.size(); ++i) ready[i] = g.values[i].is_constant();
  for (auto id : g.inputs) ready[size_t(id)] = 1;
  std::vector<Node> sorted;
  std::vector<char> done(g.nodes.size(), 0);
  sorted.reserve(g.nodes.size());
  bool progress = true;
  while (sorted.size() < g.nodes.size() && progress) {
    progress = false;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (done[i]) continue;
      bool ok = true;
      for (auto in : g.nodes[i].inputs) ok = ok && (in == kNoValue || ready[size_t(in)]);
      if (!ok) continue;
      for (auto o : g.nodes[i].outputs)
        if (o != kNoValue) ready[size_t(o)] = 1;
      done[i] = 1;
      sorted.push_back(std::move(g.nodes[i]));
      progress = true;
    }
  }
  if (sorted.size() < g.nodes.size()) return make_error("graph has a cycle or uses an undefined value");
  g.nodes = std::move(sorted);
  return {};
}

int remove_dead_nodes(Graph& g) {
  int removed = 0;
  for (bool again = true; again;) {
    again = false;
    auto uses = g.use_counts();
    for (size_t i = g.nodes.size(); i-- > 0;) {
      bool used = false;
      for (auto o : g.nodes[i].outputs) used = used || (o != kNoValue && uses[size_t(o)] > 0);
      if (!used) {
        g.nodes.erase(g.nodes.begin() + long(i));
        ++removed;
        again = true;
        break;
      }
    }
  }
  return removed;
}

int remove_unused_values(Graph& g) {
  std::vector<char> keep(g.values.size(), 0);
  auto mark = [&](ValueId id) {
    if (id != kNoValue) keep[size_t(id)] = 1;
  };
  for (auto id : g.inputs) mark(id);
  for (auto id : g.outputs) mark(id);
  for (const auto& n : g.nodes) {
    for (auto id : n.inputs) mark(id);
    for (auto id : n.outputs) mark(id);
  }
  int removed = 0;
  std::vector<ValueId> remap(g.values.size(), kNoValue);
  std::vector<Value> kept;
  for (size_t i = 0; i < g.values.size(); ++i) {
    if (keep[i]) {
      remap[i] = ValueId(kept.size());
      kept.push_back(std::move(g.values[i]));
    } else if (g.values[i].is_constant()) {
      ++removed;
    }
  }
  if (kept.size() == g.values.size()) {
    g.values = std::move(kept);
    return 0;
  }
  g.values = std::move(kept);
  auto apply = [&](ValueId& id) {
    if (id != kNoValue) id = remap[size_t(id)];
  };
  for (auto& id : g.inputs) apply(id);
  for (auto& id : g.outputs) apply(id);
  for (auto& n : g.nodes) {
    for (auto& id : n.inputs) apply(id);
    for (auto& id : n.outputs) apply(id);
  }
  return removed;
}

}  // namespace kiln::ir
