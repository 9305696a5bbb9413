// Text form of an ir::Graph: one line per node, values with dtype and shape,
// typed attributes printed from their field lists. Used by `kiln info --ir`,
// --dump-after, and golden tests. Tested in tests/unit/test_ir.cpp.
#pragma once
#include <string>

#include "ir/graph.h"

namespace kiln::ir {

std::string type_str(const Graph& g, const ValueType& t);
std::string print_graph(const Graph& g);

}  // namespace kiln::ir
