// Declarations of every reference kernel, one line per op, grouped by the
// file that defines it. The table that maps OpKind -> kernel is kernel_table.cpp.
#pragma once
#include "backends/reference/kernel.h"

namespace kiln::ref {

// elementwise.cpp
Result<void> run_relu(KernelCtx&);
Result<void> run_add(KernelCtx&);
// end elementwise

// conv.cpp, pool.cpp
// end conv/pool

// linalg.cpp, norm.cpp, softmax.cpp, loss.cpp
// end linalg/norm

// shape_ops.cpp, resize.cpp
// end shape

// reduce.cpp, quant.cpp
// end reduce/quant

}  // namespace kiln::ref
