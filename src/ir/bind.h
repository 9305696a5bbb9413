// Binding symbolic dims (batch, sequence length) to sizes: graph inputs get
// concrete dims and shapes are re-inferred through the graph. Used by
// `kiln info` (costs at a given batch), `kiln bench` and random inputs.
#pragma once
#include <map>
#include <string>

#include "ir/graph.h"

namespace kiln::ir {

// Symbols named in `dims` get those sizes; any other symbolic input dim gets
// `default_size`. Errors name an unknown symbol in `dims`.
Result<void> bind_symbols(Graph& g, const std::map<std::string, int64_t>& dims, int64_t default_size = 1);

}  // namespace kiln::ir
