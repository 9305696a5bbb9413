// fuse_elementwise: a Mul, Div, Add or Sub by a constant that follows a Conv
// or Gemm with constant weights is folded into its weights and bias when the
// constant is one value or one value per output channel (so the folded
// result is mathematically the same):
//   Conv(x, W, b) * c  =>  Conv(x, W * c, b * c)      (Div: c -> 1/c)
//   Conv(x, W, b) + d  =>  Conv(x, W, b + d)          (Sub: d -> -d)
// and likewise for Gemm (channels = columns; beta folded into the new bias).
// Applied repeatedly, a chain x*c + d after a Conv disappears. Only when the
// Conv/Gemm output has no other reader and is no graph output, the constant
// does not broadcast the output to a larger shape, and for Sub/Div only with
// the constant on the right.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of elementwise nodes folded.
Result<int> fuse_elementwise(ir::Graph& g);

}  // namespace kiln::passes
