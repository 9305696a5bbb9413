#include "passes/fold_constants.h"

#include "backends/reference/kernel.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

bool is_foldable(ir::OpKind op) { return op != ir::OpKind::kDropout && ref::find_kernel(op) != nullptr; }

// Expected output bytes from the static types, or -1 when unknown.
int64_t output_bytes(const ir::Graph& g, const ir::Node& n) {
  int64_t total = 0;
  for (auto o : n.outputs) {
    if (o == ir::kNoValue) continue;
    const auto& t = g.value(o).type;
    if (!t.rank_known || !is_static(t.shape) || t.dtype == DType::kUndefined) return -1;
    total += dtype_bytes(t.dtype, numel(t.shape));
  }
  return total;
}

}  // namespace

Result<int> fold_constants(ir::Graph& g) {
  Snapshot s(g);
  int folded = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (!is_foldable(n.op) || n.inputs.empty()) continue;
    bool all_const = true, any_input = false, writes_output = false;
    for (auto in : n.inputs) {
      if (in == ir::kNoValue) continue;
      any_input = true;
      all_const = all_const && g.value(in).is_constant();
    }
    for (auto o : n.outputs) writes_output = writes_output || s.graph_io(o);
    if (!all_const || !any_input || writes_output) continue;
    int64_t bytes = output_bytes(g, n);
    if (bytes > kMaxFoldedBytes) continue;
    auto outs = eval_node(g, n);
    if (!outs.ok()) continue;  // the node fails at run time too; leave it to report there
    int64_t actual = 0;
    for (const auto& t : *outs) actual += t.defined() ? t.nbytes() : 0;
    if (actual > kMaxFoldedBytes) continue;
    for (size_t o = 0; o < n.outputs.size(); ++o) {
      if (n.outputs[o] == ir::kNoValue) continue;
      ir::Value& v = g.value(n.outputs[o]);
      v.constant = (*outs)[o];
      v.type = {v.constant.dtype(), v.constant.shape(), true};
    }
    s.kill(int(i));
    ++folded;
  }
  if (folded) KILN_TRY(s.finish());
  return folded;
}

}  // namespace kiln::passes
