// Plan: where and how each node runs (backend per node, in the order the
// executor runs them). The graph says what; the plan says where (Halide's
// algorithm/schedule split). Printed as JSON by `kiln info --plan`.
#pragma once
#include <string>
#include <vector>

namespace kiln::map {

struct Plan {
  std::string target;                      // e.g. "reference"
  std::vector<std::string> node_backend;   // one entry per graph node
};

}  // namespace kiln::map
