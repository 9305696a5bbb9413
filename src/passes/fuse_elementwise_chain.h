// fuse_elementwise_chain: a run of two or more single-input elementwise ops
// (the steps of ir::kChainSteps: Relu, Sigmoid, Tanh, Exp, Log, Neg, Abs,
// Sqrt, Erf, HardSwish, HardSigmoid, LeakyRelu, Clip with constant bounds,
// Add/Sub/Mul/Div with a constant f32 scalar on either side), each
// intermediate read by the next op alone and no graph output, becomes one
// kiln ElementwiseChain node whose kernel computes the same float32 values
// bit for bit. f32 only. Runs after fuse_activation, so Conv/Gemm + Relu
// still fuse first. The result is kiln-only: pipeline.cpp marks this pass so.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of chains formed.
Result<int> fuse_elementwise_chain(ir::Graph& g);

}  // namespace kiln::passes
