#include "ir/print.h"

#include <sstream>

#include "ir/op_table.h"

namespace kiln::ir {

std::string type_str(const Graph& g, const ValueType& t) {
  std::string s(dtype_name(t.dtype));
  return s + (t.rank_known ? shape_str(t.shape, &g.symbols) : "[*]");
}

std::string print_graph(const Graph& g) {
  std::ostringstream os;
  auto ref = [&](ValueId id) -> std::string {
    if (id == kNoValue) return "_";
    const Value& v = g.value(id);
    return (v.is_constant() ? "@" : "%") + v.name;
  };
  os << "graph " << (g.name.empty() ? "main" : g.name) << "(";
  for (size_t i = 0; i < g.inputs.size(); ++i)
    os << (i ? ", " : "") << ref(g.inputs[i]) << ": " << type_str(g, g.value(g.inputs[i]).type);
  os << ") -> (";
  for (size_t i = 0; i < g.outputs.size(); ++i)
    os << (i ? ", " : "") << ref(g.outputs[i]) << ": " << type_str(g, g.value(g.outputs[i]).type);
  os << ") {\n";
  for (const auto& v : g.values)
    if (v.is_constant()) os << "  @" << v.name << ": " << type_str(g, v.type) << "\n";
  for (const auto& n : g.nodes) {
    os << "  ";
    for (size_t i = 0; i < n.outputs.size(); ++i) os << (i ? ", " : "") << ref(n.outputs[i]);
    os << " = " << op_name(n.op) << "(";
    for (size_t i = 0; i < n.inputs.size(); ++i) os << (i ? ", " : "") << ref(n.inputs[i]);
    os << ")";
    AttrMap m = attrs_to_map(n.attrs);
    if (!m.empty()) {
      os << " {";
      bool first = true;
      for (const auto& [k, v] : m) {
        os << (first ? "" : ", ") << k << "=" << attr_value_str(v);
        first = false;
      }
      os << "}";
    }
    os << "  # " << n.name << " -> ";
    for (size_t i = 0; i < n.outputs.size(); ++i)
      if (n.outputs[i] != kNoValue) os << (i ? ", " : "") << type_str(g, g.value(n.outputs[i]).type);
    os << "\n";
  }
  os << "}\n";
  return os.str();
}

}  // namespace kiln::ir
