#include "runtime/session.h"

#include <map>

#include "ir/print.h"
#include "passes/lower_qdq.h"

namespace kiln::runtime {

Result<void> check_inputs(const ir::Graph& g, std::span<const Tensor> inputs) {
  if (inputs.size() != g.inputs.size())
    return make_error("model expects " + std::to_string(g.inputs.size()) + " input(s), got " +
                      std::to_string(inputs.size()));
  std::map<int64_t, int64_t> bound;  // symbolic dim -> size
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ir::Value& v = g.value(g.inputs[i]);
    const Tensor& t = inputs[i];
    std::string want = ir::type_str(g, v.type);
    std::string got = std::string(dtype_name(t.dtype())) + shape_str(t.shape());
    if (!t.defined()) return make_error("input '" + v.name + "' is missing");
    if (t.dtype() != v.type.dtype)
      return make_error("input '" + v.name + "' has dtype " + std::string(dtype_name(t.dtype())) + ", model expects " +
                        want);
    if (!v.type.rank_known) continue;
    if (t.shape().size() != v.type.shape.size())
      return make_error("input '" + v.name + "' has shape " + got + ", model expects " + want + " (rank " +
                        std::to_string(v.type.shape.size()) + ")");
    for (size_t d = 0; d < t.shape().size(); ++d) {
      int64_t expect = v.type.shape[d], actual = t.shape()[d];
      if (expect >= 0 && expect != actual)
        return make_error("input '" + v.name + "' has shape " + got + ", model expects " + want + " (dim " +
                          std::to_string(d) + ")");
      if (expect < 0) {
        auto [it, fresh] = bound.emplace(expect, actual);
        if (!fresh && it->second != actual)
          return make_error("input '" + v.name + "' has shape " + got + ": dim '" +
                            (size_t(-expect - 1) < g.symbols.size() ? g.symbols[size_t(-expect - 1)] : "?") +
                            "' was bound to " + std::to_string(it->second) + " by an earlier input");
      }
    }
  }
  return {};
}

Result<Session> Session::create(ir::Graph g, const SessionOptions& opts) {
  const Backend* b = find_backend(opts.backend);
  if (!b) return make_error("unknown backend '" + opts.backend + "'");
  Session s;
  s.graph_ = std::make_unique<ir::Graph>(std::move(g));
  if (opts.lower_qdq) {
    bool has_dq = false;
    for (const auto& n : s.graph_->nodes) has_dq = has_dq || n.op == ir::OpKind::kDequantizeLinear;
    if (has_dq) KILN_TRY(passes::lower_qdq(*s.graph_));
  }
  s.plan_.target = opts.backend;
  s.plan_.threads = opts.threads;
  s.plan_.isa = opts.isa;
  s.plan_.conv3x3 = opts.conv3x3;
  s.plan_.node_backend.assign(s.graph_->nodes.size(), opts.backend);
  // Only graphs with static shapes have one; a symbolic batch leaves it unset.
  if (auto mem = map::plan_memory(*s.graph_); mem.ok()) s.plan_.memory = std::move(mem).value();
  KILN_ASSIGN(s.exe_, b->compile(*s.graph_, s.plan_));
  return s;
}

Result<std::vector<Tensor>> Session::run(std::span<const Tensor> inputs, RunStats* stats) {
  KILN_TRY(check_inputs(*graph_, inputs));
  return exe_->run(inputs, stats);
}

}  // namespace kiln::runtime
