#include "passes/relu_before_maxpool.h"

#include "ir/edit.h"
#include "ir/infer.h"

namespace kiln::passes {

Result<int> relu_before_maxpool(ir::Graph& g) {
  int swapped = 0;
  auto uses = g.use_counts();
  auto prod = g.producers();
  for (auto& relu : g.nodes) {
    if (relu.op != ir::OpKind::kRelu) continue;
    int pi = prod[size_t(relu.inputs[0])];
    if (pi < 0) continue;
    ir::Node& pool = g.nodes[size_t(pi)];
    if (pool.op != ir::OpKind::kMaxPool || pool.outputs.size() != 1 || uses[size_t(pool.outputs[0])] != 1) continue;
    // pool: x -> a ; relu: a -> b   becomes   relu': x -> a ; pool': a -> b
    std::swap(pool.op, relu.op);
    std::swap(pool.attrs, relu.attrs);
    std::swap(pool.name, relu.name);
    ++swapped;
  }
  if (swapped) KILN_TRY(ir::infer_graph(g));
  return swapped;
}

}  // namespace kiln::passes
