// Arithmetic cost of a node: multiply-accumulates (MACs) for the contraction
// ops (Conv, ConvTranspose, Gemm, MatMul and their integer forms) and FLOPs
// (2 per MAC, plus one per output element of elementwise/normalization work).
// Needs static shapes (bind symbols first). Tested in tests/unit/test_report.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::report {

struct Cost {
  int64_t macs = 0;
  int64_t flops = 0;
  bool known = true;  // false: shapes not static, cost not counted
};

Cost node_cost(const ir::Graph& g, const ir::Node& n);
Cost graph_cost(const ir::Graph& g);

}  // namespace kiln::report
