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

}  // namespace kiln::ref
