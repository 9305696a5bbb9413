// fuse_conv_add: Conv (or a FusedConv with no activation and no residual yet)
// whose only reader is Add(conv, Z), Z of the same shape, becomes
// FusedConv(X, W, B, Z) with activation None: the residual of a skip
// connection is added in the convolution's epilogue; fuse_activation then
// folds a following Relu into the same node. f32 only. kiln-only result.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

Result<int> fuse_conv_add(ir::Graph& g);

}  // namespace kiln::passes
