#include "ir/infer.h"

#include "ir/op_table.h"

namespace kiln::ir {

void InferCtx::set_unknown(size_t i, DType dt, int64_t rank) {
  out[i].dtype = dt;
  out[i].rank_known = rank >= 0;
  out[i].shape.clear();
  for (int64_t d = 0; d < rank; ++d) out[i].shape.push_back(fresh_dim());
}

Result<void> infer_node(Graph& g, Node& n) {
  const OpInfo& info = op_info(n.op);
  InferCtx ctx{n, {}, {}, {}, [&g] { return g.fresh_symbol(); }, g.describe(n)};
  for (auto id : n.inputs) {
    if (id == kNoValue) {
      ctx.in.push_back({});
      ctx.in_value.push_back(nullptr);
    } else {
      ctx.in.push_back(g.value(id).type);
      ctx.in_value.push_back(g.value(id).is_constant() ? &g.value(id).constant : nullptr);
    }
  }
  ctx.out.resize(n.outputs.size());
  KILN_TRY(info.infer(ctx));
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (n.outputs[i] != kNoValue) g.value(n.outputs[i]).type = ctx.out[i];
  return {};
}

Result<void> infer_graph(Graph& g) {
  for (auto& n : g.nodes) KILN_TRY(infer_node(g, n));
  return {};
}

}  // namespace kiln::ir
