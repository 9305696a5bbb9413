// fuse_gelu: the erf-based Gelu subgraph
//   x * 0.5 * (1 + Erf(x / sqrt(2)))   (also x * (1 + Erf(x * 1/sqrt(2))) * 0.5,
//   (x * 0.5) * (...), factors in either order)
// becomes one ONNX Gelu(x) (opset 20). Only when every intermediate is read
// by the pattern alone; the constants must be within 1e-6 (relative) of
// sqrt(2), 1/sqrt(2), 1 and 0.5.
// Tested in tests/unit/test_passes.cpp and tests/models/test_passes_models.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of subgraphs replaced.
Result<int> fuse_gelu(ir::Graph& g);

}  // namespace kiln::passes
