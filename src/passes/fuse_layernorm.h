// fuse_layernorm: the LayerNorm subgraph PyTorch exports below opset 17
//   m = ReduceMean(x, trailing axes); d = x - m; v = ReduceMean(d^2 (Pow or d*d));
//   y = d / Sqrt(v + eps) [* gamma] [+ beta]
// becomes one LayerNormalization(x, gamma, beta){axis, epsilon}. Only when
// every intermediate is read by the pattern alone, the axes are the trailing
// ones, and gamma/beta are constants shaped like the normalized dims.
// Tested in tests/unit/test_passes.cpp and tests/models/test_passes_models.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of subgraphs replaced.
Result<int> fuse_layernorm(ir::Graph& g);

}  // namespace kiln::passes
