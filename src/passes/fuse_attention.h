// fuse_attention: the scaled-dot-product attention core
//   Softmax(axis=-1)( MatMul(Q, Kt) * s  or  / s  [+ mask] ) then MatMul(., V)
// (the scale may instead sit on Q: MatMul(Q * s or Q / s, Kt), as PyTorch's
// MultiheadAttention exports it; or be absent) becomes one kiln Attention
// node (ir/ops/kiln_fused.h). s must be a constant f32 scalar; the mask is
// any f32 value added to the scores that broadcasts to them without changing
// their shape. Kt = Transpose(K) swapping the last two axes is absorbed (K is
// passed as is); any other Kt is passed as K^T (k_transposed=1). Only when
// every intermediate is read by the pattern alone and is no graph output.
// The result is kiln-only (no ONNX form): pipeline.cpp marks this pass so.
// Tested in tests/unit/test_passes.cpp and tests/models/test_passes_models.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of attention cores fused.
Result<int> fuse_attention(ir::Graph& g);

}  // namespace kiln::passes
