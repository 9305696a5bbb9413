// Cross-layer equalization (no training): for a Conv/Gemm whose output reaches
// the next Conv/Gemm only through positively homogeneous ops (Relu, MaxPool,
// Flatten), scale output channel i of the first layer by 1/s_i and the matching
// input channel(s) of the second by s_i, with s_i = sqrt(r1_i / r2_i) (r: the
// channel's max |w|), so both layers' per-channel ranges become equal. The float
// function is unchanged; per-tensor quantization loses less.
// Tested in tests/unit/test_quantize.cpp; gain shown by `kiln quantize --equalize`.
#pragma once
#include "ir/graph.h"

namespace kiln::quant {

// Returns the number of layer pairs equalized. `iterations` sweeps over the pairs.
Result<int> equalize_layers(ir::Graph& g, int iterations = 4);

}  // namespace kiln::quant
