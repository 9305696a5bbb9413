// The reference backend: plain, obviously-correct kernels for every op, run
// node by node. It is the oracle every other backend is tested against.
#pragma once
#include "backends/backend.h"

namespace kiln::ref {

class ReferenceBackend final : public Backend {
 public:
  std::string_view name() const override { return "reference"; }
  Support supports(const ir::Graph& g, const ir::Node& n) const override;
  Result<std::unique_ptr<Executable>> compile(const ir::Graph& g, const map::Plan& plan) const override;
};

// Runs one node on the reference kernels (one entry per node input, nullptr
// for an omitted optional input); outputs are allocated from shape inference
// where it gives a static shape, else by the kernel. `where` prefixes errors.
// The executor and constant folding (passes/fold_constants) both use it.
Result<std::vector<Tensor>> run_node(const ir::Node& n, const std::vector<const Tensor*>& inputs, const std::string& where);

}  // namespace kiln::ref
