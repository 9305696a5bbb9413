// Session: a graph compiled for a backend, ready to run. run() checks inputs
// against the graph (count, dtype, rank, static dims, and that each symbolic
// dim such as batch or sequence length is bound consistently) before running.
// Tested in tests/unit/test_runtime.cpp and tests/errors.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.h"
#include "ir/graph.h"

namespace kiln::runtime {

struct SessionOptions {
  std::string backend = "reference";
  // Run a QDQ (QuantizeLinear/DequantizeLinear) model with integer kernels:
  // passes/lower_qdq rewrites its exact patterns into kiln's QConv/QGemm before
  // compiling. false: execute the QDQ graph as written (the float fake-quant
  // simulation).
  bool lower_qdq = true;
  // cpu backend: threads of its pool and kernel set (map::Plan).
  int threads = 1;
  std::string isa = "auto";
  std::string conv3x3 = "auto";  // map::Plan::conv3x3
};

class Session {
 public:
  static Result<Session> create(ir::Graph g, const SessionOptions& opts = {});
  Result<std::vector<Tensor>> run(std::span<const Tensor> inputs, RunStats* stats = nullptr);
  const ir::Graph& graph() const { return *graph_; }
  const map::Plan& plan() const { return plan_; }
  // The backend's compiled plan as text (kernels per node); see Executable::describe.
  std::string describe_plan() const { return exe_->describe(); }

 private:
  std::unique_ptr<ir::Graph> graph_;
  map::Plan plan_;
  std::unique_ptr<Executable> exe_;
};

// The checks run() makes, usable on their own: symbolic dims bound by earlier
// inputs must agree with later ones.
Result<void> check_inputs(const ir::Graph& g, std::span<const Tensor> inputs);

}  // namespace kiln::runtime
