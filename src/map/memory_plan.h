// Activation memory planning: ir::Graph with static shapes (bind symbolic dims
// first, ir/bind.h) -> MemoryPlan, one arena with a byte offset per activation
// such that values alive at the same node never overlap. Backend-independent;
// shown by `kiln info --memory`, kept in map::Plan::memory by runtime::Session.
// Tested in tests/unit/test_memory_plan.cpp and tests/models/test_memory_models.cpp.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "ir/graph.h"

namespace kiln::map {

// One planned activation: a node output that is neither a constant nor a graph
// input. Its lifetime is [first, last] in node indices, both ends inclusive:
// first = producing node, last = its last reader, g.nodes.size() for graph
// outputs (they must survive the whole run), first when nothing reads it.
struct ValuePlacement {
  ir::ValueId value = ir::kNoValue;
  int64_t bytes = 0;
  int64_t offset = 0;
  int32_t first = 0, last = 0;
  // The input whose block this value takes over at its producer (in-place
  // execution, see can_run_in_place); kNoValue when it has a block of its own.
  ir::ValueId inplace_of = ir::kNoValue;
};

struct MemoryPlan {
  int64_t arena_bytes = 0;        // planned peak: end of the highest block
  int64_t no_reuse_bytes = 0;     // every activation in its own buffer
  // Max over nodes of the bytes of blocks alive at that node (an in-place chain
  // is one block): no placement of these blocks fits in less.
  int64_t lower_bound_bytes = 0;
  int32_t inplace_count = 0;      // values with inplace_of set
  int64_t alignment = 64;
  std::vector<ValuePlacement> values;  // in production order
};

struct MemoryPlanOptions {
  int64_t alignment = 64;  // every offset is a multiple of this
  bool in_place = true;    // allow outputs to take over a dying input's block
  // A backend that runs nodes i and i+1 as one fused step (the CPU backend's
  // expansion 1x1 + depthwise pair) says so here:
  // - `elide`: values the fused step never writes (the intermediate it keeps
  //   in cache) take no bytes;
  // - `read_until`: (value, node) pairs, each value alive through that node
  //   at least (node i's input, read while node i+1's output is written, so
  //   that the output cannot take the input's place).
  std::vector<ir::ValueId> elide = {};
  std::vector<std::pair<ir::ValueId, int32_t>> read_until = {};
};

// The rule for in place, in one place: a single-output node of one of these
// ops may write its output over input `donor` when
//   - the op is an elementwise unary/activation op (Relu, Sigmoid, Exp, ...)
//     with the donor as its first input; or Add/Sub/Mul/Div with the donor
//     being either input; or a pure view (Reshape, Flatten, Squeeze, Unsqueeze,
//     Identity) with the donor as its data input;
//   - the donor is an activation (not a constant, not a graph input, not a
//     graph output) whose last reader is this node;
//   - donor and output have the same dtype width and shape for elementwise ops
//     (element i is read before element i is written), the same byte size for
//     views.
enum class InPlaceKind {
  kNone,
  kUnary,   // elementwise, donor = input 0 (extra inputs such as Clip's bounds never donate)
  kBinary,  // elementwise, donor = input 0 or 1
  kView,    // same bytes in the same order, donor = input 0
};
InPlaceKind in_place_kind(ir::OpKind op);

// Fails, naming the value, when an activation has no static shape or dtype.
Result<MemoryPlan> plan_memory(const ir::Graph& g, const MemoryPlanOptions& opts = {});

// Brute-force check of a plan against its graph, over all pairs: every
// activation planned once with the right size and lifetime; offsets aligned and
// inside the arena; two values whose lifetimes intersect share no byte unless
// one legally runs in place of the other; arena >= lower bound. The error
// names the first offending value(s).
Result<void> check_memory_plan(const ir::Graph& g, const MemoryPlan& plan, const MemoryPlanOptions& opts = {});

}  // namespace kiln::map
