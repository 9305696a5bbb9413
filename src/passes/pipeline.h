// The graph-optimization pipeline that `kiln optimize` runs: one ordered list
// of passes (name, function, whether its result is still plain ONNX), run
// round after round until a round rewrites nothing, then `cleanup` once.
// After each pass the graph is re-inferred (and verified when asked); a
// callback sees the graph after each pass (--dump-after=PASS).
// Tested in tests/unit/test_passes.cpp and tests/models/test_passes_models.cpp.
#pragma once
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

using PassFn = Result<int> (*)(ir::Graph&);

struct PassInfo {
  std::string_view name;
  PassFn run;
  // false: the pass produces kiln-only ops (domain "kiln"), which ONNX export
  // refuses; such passes run only for the .kiln container.
  bool onnx_expressible;
  std::string_view what;  // one line for --list-passes
};

// The passes in pipeline order.
std::span<const PassInfo> pass_list();
const PassInfo* find_pass(std::string_view name);

struct PipelineOptions {
  // Pass names to run (in pipeline order, whatever order given); empty: all.
  std::vector<std::string> only;
  // Skip passes whose result needs kiln-only ops (for ONNX output).
  bool onnx_only = false;
  // ir::verify after every pass (tests; `kiln optimize --verify`).
  bool verify = false;
  // Rounds before giving up on a fixed point (each round runs every pass once).
  int max_rounds = 8;
  // Called after every run of a pass with its name, round and rewrite count.
  std::function<void(std::string_view pass, int round, int rewrites, const ir::Graph&)> after_pass;
};

struct PassStats {
  std::string name;
  int rewrites = 0;  // summed over rounds
  int runs = 0;
};

struct PipelineResult {
  std::vector<PassStats> passes;       // those that ran, in order
  std::vector<std::string> skipped;    // left out because they are not ONNX-expressible
  int rounds = 0;
};

// Checks names against the list: error "unknown pass 'x' (known: a, b, ...)".
Result<void> check_pass_names(const std::vector<std::string>& names);
Result<PipelineResult> run_pipeline(ir::Graph& g, const PipelineOptions& opts = {});

}  // namespace kiln::passes
