// fuse_activation: Conv or Gemm followed by an activation becomes one kiln
// op, FusedConv / FusedGemm (ir/ops/kiln_fused.h), whose kernel applies the
// activation to the result in place. Activations: Relu, Clip with constant
// scalar bounds (Relu6), HardSwish, Sigmoid, Gelu (both forms), LeakyRelu.
// Only when the Conv/Gemm output has no other reader and is no graph output.
// The result is kiln-only (no ONNX form): pipeline.cpp marks this pass so.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of activations fused.
Result<int> fuse_activation(ir::Graph& g);

}  // namespace kiln::passes
