// Attribute structs shared across op families, and the empty struct for ops
// without attributes. Each struct lists its fields once in fields(); see
// ir/attr_fields.h for what that buys.
#pragma once
#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace kiln::ir {

// Marks an optional integer attribute as absent (ONNX distinguishes absent from any value).
inline constexpr int64_t kAbsent = std::numeric_limits<int64_t>::min();

struct NoAttrs {
  template <class V>
  void fields(V&) {}
};

enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };
inline constexpr std::array<const char*, 4> kAutoPadNames = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};

}  // namespace kiln::ir
