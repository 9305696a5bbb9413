#include "passes/cleanup.h"


#include "ir/edit.h"

namespace kiln::passes {

Result<int> cleanup(ir::Graph& g) {
  int removed = ir::remove_dead_nodes(g);
  return removed + ir::remove_unused_values(g);
}

}  // namespace kiln::passes
