#include "core/dtype.h"

#include <array>

namespace kiln {
namespace {
// Order must follow enum DType; the static_assert below keeps them in step.
constexpr std::array<DTypeInfo, static_cast<size_t>(DType::kCount)> kTable = {{
    {DType::kUndefined, "undefined", 0, false, false, 0},
    {DType::kF32, "f32", 32, true, true, 1},
    {DType::kF16, "f16", 16, true, true, 10},
    {DType::kBF16, "bf16", 16, true, true, 16},
    {DType::kF64, "f64", 64, true, true, 11},
    {DType::kI8, "i8", 8, false, true, 3},
    {DType::kU8, "u8", 8, false, false, 2},
    {DType::kI16, "i16", 16, false, true, 5},
    {DType::kU16, "u16", 16, false, false, 4},
    {DType::kI32, "i32", 32, false, true, 6},
    {DType::kU32, "u32", 32, false, false, 12},
    {DType::kI64, "i64", 64, false, true, 7},
    {DType::kU64, "u64", 64, false, false, 13},
    {DType::kBool, "bool", 8, false, false, 9},
    {DType::kI4, "i4", 4, false, true, 22},
    {DType::kU4, "u4", 4, false, false, 21},
}};

constexpr bool table_in_order() {
  for (size_t i = 0; i < kTable.size(); ++i)
    if (static_cast<size_t>(kTable[i].dtype) != i) return false;
  return true;
}
static_assert(table_in_order(), "dtype table out of step with enum DType");
}  // namespace

const DTypeInfo& dtype_info(DType t) {
  auto i = static_cast<size_t>(t);
  return kTable[i < kTable.size() ? i : 0];
}

int64_t dtype_bytes(DType t, int64_t n) { return (n * dtype_info(t).bits + 7) / 8; }

std::optional<DType> dtype_from_onnx(int code) {
  for (const auto& row : kTable)
    if (row.onnx_code == code && row.dtype != DType::kUndefined) return row.dtype;
  return std::nullopt;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& row : kTable)
    if (row.name == name && row.dtype != DType::kUndefined) return row.dtype;
  return std::nullopt;
}

}  // namespace kiln
