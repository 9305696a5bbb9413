// cleanup: the end of the pipeline. Removes nodes whose outputs nothing reads
// (ir::remove_dead_nodes) and then values nothing reads or writes any more
// (constants left behind by folds, intermediates of replaced subgraphs),
// renumbering the rest, so that printed and measured graphs show only what runs.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of nodes plus constants removed.
Result<int> cleanup(ir::Graph& g);

}  // namespace kiln::passes
