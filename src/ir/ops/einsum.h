// Einsum equation parsing, shared by shape inference (ir/ops/nn_linalg.cpp)
// and the reference kernel (backends/reference/linalg.cpp): equation string +
// input ranks -> one label id per input dimension and per output dimension.
// Tested in tests/unit/test_ref_linalg.cpp.
#pragma once
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace kiln::ir {

// Label ids: 'A'..'Z' are 0..25, 'a'..'z' are 26..51 (ASCII order, which is
// the order numpy uses for an implicit output); the dimensions covered by '...'
// get ids kEinsumEllipsisBase + j, j counted from the left of the widest '...'.
inline constexpr int kEinsumLetters = 52;
inline constexpr int kEinsumEllipsisBase = kEinsumLetters;

struct EinsumLabels {
  std::vector<std::vector<int>> inputs;  // one label id per dimension of each input
  std::vector<int> output;               // one label id per output dimension
  int num_labels = 0;                    // every id is < num_labels
};

// Output rank if it follows from the equation alone (explicit output without
// '...'), else -1. Errors on a malformed equation.
Result<int64_t> einsum_output_rank(std::string_view equation, size_t num_inputs);

// Resolves the equation against concrete input ranks. Errors name the problem
// (bad character, term count, rank mismatch, repeated or unknown output label).
Result<EinsumLabels> einsum_labels(std::string_view equation, const std::vector<int64_t>& ranks);

}  // namespace kiln::ir
