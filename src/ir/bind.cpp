#include "ir/bind.h"

#include "ir/infer.h"

namespace kiln::ir {

Result<void> bind_symbols(Graph& g, const std::map<std::string, int64_t>& dims, int64_t default_size) {
  for (const auto& [name, size] : dims) {
    bool found = false;
    for (const auto& s : g.symbols) found |= s == name;
    if (!found) return make_error("the model has no dimension named '" + name + "'");
    if (size <= 0) return make_error("dimension '" + name + "' must be positive, got " + std::to_string(size));
  }
  for (auto id : g.inputs) {
    for (auto& d : g.value(id).type.shape) {
      if (d >= 0) continue;
      const std::string& name = g.symbols[size_t(-d - 1)];
      auto it = dims.find(name);
      d = it != dims.end() ? it->second : default_size;
    }
  }
  return infer_graph(g);
}

}  // namespace kiln::ir
