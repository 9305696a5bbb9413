#include "ir/verify.h"

#include "ir/op_table.h"

namespace kiln::ir {

namespace {
// The attribute struct a node of kind k must carry: the one its parser produces
// from an empty map (structs with required fields fail that parse; for those
// only the parse-from-empty error is informative, so we skip the check).
bool attrs_match(const Node& n) {
  auto parsed = op_info(n.op).parse(AttrMap{});
  return !parsed.ok() || parsed->index() == n.attrs.index();
}
}  // namespace

Result<void> verify(const Graph& g) {
  std::vector<char> defined(g.values.size(), 0);
  auto in_range = [&](ValueId id) { return id >= 0 && size_t(id) < g.values.size(); };
  for (size_t i = 0; i < g.values.size(); ++i)
    if (g.values[i].is_constant()) defined[i] = 1;
  for (auto id : g.inputs) {
    if (!in_range(id)) return make_error("graph input id " + std::to_string(id) + " out of range");
    defined[size_t(id)] = 1;
  }
  for (const auto& n : g.nodes) {
    const OpInfo& info = op_info(n.op);
    int ni = int(n.inputs.size()), no = int(n.outputs.size());
    if (ni < info.min_inputs || (info.max_inputs >= 0 && ni > info.max_inputs))
      return make_error(g.describe(n) + ": has " + std::to_string(ni) + " inputs");
    if (no < info.min_outputs || (info.max_outputs >= 0 && no > info.max_outputs))
      return make_error(g.describe(n) + ": has " + std::to_string(no) + " outputs");
    if (!attrs_match(n)) return make_error(g.describe(n) + ": carries the wrong attribute struct");
    for (auto id : n.inputs) {
      if (id == kNoValue) continue;
      if (!in_range(id)) return make_error(g.describe(n) + ": input id out of range");
      if (!defined[size_t(id)])
        return make_error(g.describe(n) + ": uses '" + g.value(id).name + "' before it is defined");
    }
    for (auto id : n.outputs) {
      if (id == kNoValue) continue;
      if (!in_range(id)) return make_error(g.describe(n) + ": output id out of range");
      if (defined[size_t(id)]) return make_error(g.describe(n) + ": redefines '" + g.value(id).name + "'");
      defined[size_t(id)] = 1;
    }
  }
  for (auto id : g.outputs) {
    if (!in_range(id)) return make_error("graph output id out of range");
    if (!defined[size_t(id)]) return make_error("graph output '" + g.value(id).name + "' is never computed");
  }
  return {};
}

}  // namespace kiln::ir
