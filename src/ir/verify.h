// verify(): structural checks of an ir::Graph (ids in range, each value defined
// once and before use, arity per op table, attribute struct matches the op).
// Runs after every pass in tests and debug builds. Tested in tests/unit/test_ir.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::ir {

Result<void> verify(const Graph& g);

}  // namespace kiln::ir
