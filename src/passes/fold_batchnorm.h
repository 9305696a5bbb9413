// fold_batchnorm: BatchNormalization (inference) after a Conv, a Gemm or a 2-D
// MatMul with constant weights is folded into those weights and the bias:
//   s[c] = scale[c] / sqrt(var[c] + eps),  W'[c] = W[c] * s[c],
//   b'[c] = (b[c] - mean[c]) * s[c] + B[c]          (computed in double)
// (MatMul(x, W) becomes Gemm(x, W', b')). Only when the BN's input has no
// other reader and is no graph output, all BN parameters and the weights and
// bias are constants, and the BN's extra (training) outputs are unused.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of BatchNormalization nodes folded.
Result<int> fold_batchnorm(ir::Graph& g);

}  // namespace kiln::passes
