// Helpers shared by the graph passes of passes/pipeline.cpp: constant and
// use lookups on a snapshot of the graph, evaluating one node with the
// reference kernels, and the common ending of a rewrite sweep (drop replaced
// nodes, sort, prune, re-infer, keep graph output names).
// Tested through the passes in tests/unit/test_passes.cpp.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

// A sweep's view of the graph taken once: producer and use count per value,
// and which nodes the sweep has replaced (killed) or rewritten (touched).
struct Snapshot {
  ir::Graph& g;
  std::vector<int32_t> prod, uses;
  std::vector<char> is_input, is_output;
  std::vector<char> killed, touched;
  std::vector<std::string> out_names;

  explicit Snapshot(ir::Graph& graph);
  // The node (index) producing `id` when its op is `op` and it is untouched, else -1.
  int producer(ir::ValueId id, ir::OpKind op) const;
  int producer(ir::ValueId id) const;
  // `id` is read by exactly one node input and is no graph output.
  bool single_use(ir::ValueId id) const;
  // The node reading `id` when single_use(id), else -1 (a scan: fine for sweeps).
  int sole_consumer(ir::ValueId id) const;
  const Tensor* constant(ir::ValueId id) const;
  bool graph_io(ir::ValueId id) const {
    return id != ir::kNoValue && (is_input[size_t(id)] || is_output[size_t(id)]);
  }
  // Uses of `from` now read `to`. Refuses (false) when `from` is a graph output
  // and `to` is a graph input, output or constant: the output would lose its
  // name or its own value.
  bool redirect(ir::ValueId from, ir::ValueId to);
  void kill(int node) { killed[size_t(node)] = touched[size_t(node)] = 1; }
  // Drops killed nodes, sorts, prunes dead nodes, re-infers, restores output
  // names. Call once at the end of a sweep that changed something.
  Result<void> finish();
};

// The single value of a one-element float constant, else nullopt.
std::optional<double> scalar_value(const Tensor* t);

// The other input of binary node `n` when one input is `v`, else kNoValue.
ir::ValueId other_input(const ir::Node& n, ir::ValueId v);
// The single untouched reader of `v` when it has op `op`, else -1.
int next(const Snapshot& s, ir::ValueId v, ir::OpKind op);
// The value of `c` when it is a one-element f32 constant that, as the other
// operand of a broadcasting op on the non-constant `x`, adds no dims to x.
std::optional<float> f32_scalar_operand(const Snapshot& s, ir::ValueId c, ir::ValueId x);
// Elements of a float constant as doubles.
std::vector<double> to_doubles(const Tensor& t);
// A float32 constant of the given shape from doubles (rounded once).
Tensor f32_tensor(const Shape& shape, const std::vector<double>& v);

// Runs node `n` (whose inputs are all constants of `g`) with the reference
// kernels; returns its outputs.
Result<std::vector<Tensor>> eval_node(const ir::Graph& g, const ir::Node& n);

// The loop of the pattern passes: rewrite(s, i) on every node of op `anchor`
// not yet touched this sweep, in graph order; finishes the snapshot when any
// rewrite fired. Returns how many fired.
Result<int> rewrite_each(ir::Graph& g, ir::OpKind anchor, bool (*rewrite)(Snapshot&, int));

// Per-channel factor of a constant `c` applied elementwise (broadcast) to a
// tensor of shape `out` whose channels lie on `axis`: one element, or a shape
// that is 1 everywhere except (possibly) `axis`, not adding dims in front.
// Returns one value per channel (`channels` of them), else nullopt.
std::optional<std::vector<double>> per_channel(const Tensor& c, const Shape& out, size_t axis, int64_t channels);

}  // namespace kiln::passes
