// Relu(MaxPool(x)) -> MaxPool(Relu(x)). Both are monotonic and Relu commutes
// with taking a maximum, so outputs are identical; afterwards Relu sits next to
// the Conv it follows, where quantization fuses it (LeNet's conv->pool->relu).
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of pairs swapped.
Result<int> relu_before_maxpool(ir::Graph& g);

}  // namespace kiln::passes
