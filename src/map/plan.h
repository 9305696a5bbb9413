// Plan: where and how each node runs (backend per node, in the order the
// executor runs them, and the activation memory plan when shapes are static).
// The graph says what; the plan says where (Halide's algorithm/schedule split).
// Printed as JSON by `kiln info --plan`.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "map/memory_plan.h"

namespace kiln::map {

struct Plan {
  std::string target;                      // e.g. "reference"
  std::vector<std::string> node_backend;   // one entry per graph node
  // Arena offsets for every activation, in node order; set by runtime::Session
  // when every activation has a static shape (none when a dim is symbolic).
  std::optional<MemoryPlan> memory;
  // How the cpu backend runs (ignored by the reference backend): threads of
  // its pool, and the kernel set ("auto": the best this CPU has).
  int threads = 1;
  std::string isa = "auto";
  // 3x3 stride-1 convolutions on the cpu backend: "auto" (both kernels timed
  // on the real shapes at compile time, the faster kept), "direct", "winograd".
  std::string conv3x3 = "auto";
};

}  // namespace kiln::map
