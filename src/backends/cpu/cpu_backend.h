// The CPU backend ("cpu"): compiles a graph for this x86 CPU. Per input-shape
// specialization (made on the first run with those shapes) it binds the
// shapes, runs the pass pipeline (folding, BN folding, epilogue fusion),
// plans one activation arena (map/memory_plan.h), and binds every node to a
// kernel from the instruction set picked once at start (kernel_set.h), or to
// the reference kernel with the reason printed in the plan. Runs on kiln's
// own thread pool with Plan::threads threads.
// Tested in tests/unit/test_cpu_backend.cpp and tests/models/test_cpu_models.cpp.
#pragma once
#include "backends/backend.h"

namespace kiln::cpu {

class CpuBackend final : public Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  Support supports(const ir::Graph& g, const ir::Node& n) const override;
  Result<std::unique_ptr<Executable>> compile(const ir::Graph& g, const map::Plan& plan) const override;
};

}  // namespace kiln::cpu
