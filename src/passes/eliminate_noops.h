// eliminate_noops: nodes that return their input unchanged are removed and
// their readers read the input: Identity; Dropout in inference (no
// training_mode, or a constant false, and the mask unused); Reshape, Flatten,
// Squeeze, Expand whose output type equals the input type (same dims, symbols
// included); Transpose with the identity perm; Cast to the input's dtype; Pad
// with all-zero constant pads; Concat of one input; Add/Sub of a zero and
// Mul/Div by a one constant that changes neither shape nor dtype. A node
// writing a graph output is removed only when its input can take the
// output's name (not a graph input, another output or a constant).
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of nodes removed.
Result<int> eliminate_noops(ir::Graph& g);

}  // namespace kiln::passes
