// fold_constants: a node whose inputs are all constants is evaluated once with
// the reference kernels and its outputs become constants. Skipped: results
// over 16 MiB (they would bloat the model file), Dropout (random in training
// mode; eliminate_noops handles inference), nodes writing a graph output
// (the output stays computed), ops without a reference kernel.
// kiln has no random-number ops (RandomNormal ...); were one added, it would
// be listed in is_foldable() as not foldable.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

inline constexpr int64_t kMaxFoldedBytes = int64_t(16) << 20;

// Returns the number of nodes folded.
Result<int> fold_constants(ir::Graph& g);

}  // namespace kiln::passes
