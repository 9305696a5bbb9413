// fold_shapes: Shape and Size nodes become constants where the static shape
// (after ir::infer_graph) fixes them, and Gather(Shape(x), constant indices)
// becomes a constant when the dims it picks are static even if others are
// symbolic (a transformer's [N, seq, 768] still gives 768). fold_constants
// then folds the Gather/Unsqueeze/Concat chains that computed Reshape targets.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of nodes replaced by constants.
Result<int> fold_shapes(ir::Graph& g);

}  // namespace kiln::passes
