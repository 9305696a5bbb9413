#include "passes/cleanup.h"

#include <algorithm>

#include "ir/edit.h"

namespace kiln::passes {

Result<int> cleanup(ir::Graph& g) {
  using ir::kNoValue;
  using ir::ValueId;
  int removed = ir::remove_dead_nodes(g);
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
  if (std::count(keep.begin(), keep.end(), 1) == std::ptrdiff_t(g.values.size())) return removed;
  std::vector<ValueId> remap(g.values.size(), kNoValue);
  std::vector<ir::Value> kept;
  for (size_t i = 0; i < g.values.size(); ++i) {
    if (keep[i]) {
      remap[i] = ValueId(kept.size());
      kept.push_back(std::move(g.values[i]));
    } else if (g.values[i].is_constant()) {
      ++removed;
    }
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

}  // namespace kiln::passes
