// AttrValue / AttrMap: the untyped attribute form that exists only at the
// edges (ONNX import/export, IR text). Everything between reads typed structs
// (ir/attrs.h); the field visitor there converts in both directions.
// Tested in tests/unit/test_ir.cpp.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/tensor.h"

namespace kiln::ir {

using AttrValue = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>,
                               std::vector<std::string>, Tensor>;
using AttrMap = std::map<std::string, AttrValue>;

std::string attr_value_str(const AttrValue& v);

}  // namespace kiln::ir
