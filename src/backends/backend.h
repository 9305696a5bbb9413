// Backend / Executable: how a device plugs in. A backend says whether it can
// run a node (with a reason when not) and compiles a graph+plan into an
// Executable. The list of backends is backends/registry.cpp.
// Every backend is tested against the reference by tests/kernels.
#pragma once
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"
#include "map/plan.h"

namespace kiln {

struct Support {
  bool ok = true;
  std::string reason;  // why not, when !ok
};

// One step of a profiled run: the node, what ran it, and its wall time.
struct StepTime {
  std::string node;    // the graph's description of the node
  std::string kernel;  // the backend's kernel, as in its printed plan
  double seconds = 0;
};

// Per-run statistics an executable reports (peak bytes of live activations;
// with `profile` set by the caller, the wall time of every step in order).
struct RunStats {
  int64_t peak_activation_bytes = 0;
  bool profile = false;
  std::vector<StepTime> steps;
};

class Executable {
 public:
  virtual ~Executable() = default;
  // Inputs in graph-input order, already checked against the graph's types.
  virtual Result<std::vector<Tensor>> run(std::span<const Tensor> inputs, RunStats* stats = nullptr) = 0;
  // The plan as compiled (kernel per node, layout, memory), printable; empty
  // when the backend has nothing beyond the graph to say.
  virtual std::string describe() const { return {}; }
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  virtual Support supports(const ir::Graph& g, const ir::Node& n) const = 0;
  virtual Result<std::unique_ptr<Executable>> compile(const ir::Graph& g, const map::Plan& plan) const = 0;
};

std::vector<const Backend*> all_backends();
const Backend* find_backend(std::string_view name);

}  // namespace kiln
