// Shape: dims as int64; a dim >= 0 is static, a dim < 0 is symbolic (its name,
// if any, lives in the ir::Graph's symbol table) or unknown.
// Broadcasting and overflow-checked element counts live here.
// Tested in tests/unit/test_core.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"

namespace kiln {

using Shape = std::vector<int64_t>;

inline bool is_static(const Shape& s) {
  for (auto d : s)
    if (d < 0) return false;
  return true;
}

// Product of dims; error if a dim is negative or the product overflows int64.
Result<int64_t> checked_numel(const Shape& s);
// Product of static dims (caller has checked is_static).
int64_t numel(const Shape& s);
// Row-major strides in elements.
std::vector<int64_t> strides_of(const Shape& s);
// Numpy-style multidirectional broadcast of two static-or-symbolic shapes.
Result<Shape> broadcast_shapes(const Shape& a, const Shape& b);
// "[1,3,224,224]"; symbolic dims print as names from `syms` (index -d-1) or "?".
std::string shape_str(const Shape& s, const std::vector<std::string>* syms = nullptr);
// Normalize a possibly negative axis against rank; error names the op context.
Result<int64_t> normalize_axis(int64_t axis, int64_t rank, const char* what = "axis");

}  // namespace kiln
