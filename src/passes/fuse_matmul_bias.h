// fuse_matmul_bias: MatMul(X, W) + B with W a constant [K, N], B a constant
// of N elements and X of static shape [..., K] becomes Gemm(X', W, B), X'
// being X viewed as [M, K] (a Reshape, which costs nothing in place), and
// the result viewed back. Gemm then takes the bias (and, after
// fuse_activation, the activation) in its epilogue. Plain ONNX.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

Result<int> fuse_matmul_bias(ir::Graph& g);

}  // namespace kiln::passes
