// DType: one table row per element type (name, bits, float/int/signed, ONNX code),
// in the manner of ggml's type traits. Quantized forms carry QuantParams on the
// ir::Value; the DType itself only says how elements are stored.
// Tested in tests/unit/test_core.cpp.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln {

enum class DType : uint8_t {
  kUndefined,
  kF32,
  kF16,
  kBF16,
  kF64,
  kI8,
  kU8,
  kI16,
  kU16,
  kI32,
  kU32,
  kI64,
  kU64,
  kBool,
  kI4,  // packed two per byte, low nibble first (ONNX INT4 layout)
  kU4,
  kCount
};

struct DTypeInfo {
  DType dtype;
  std::string_view name;  // as printed in IR text: f32, i8, ...
  int bits;               // storage bits per element
  bool is_float;
  bool is_signed;
  int onnx_code;  // onnx::TensorProto_DataType value
};

const DTypeInfo& dtype_info(DType t);
inline std::string_view dtype_name(DType t) { return dtype_info(t).name; }
// Bytes needed for n elements (rounds sub-byte types up).
int64_t dtype_bytes(DType t, int64_t n);
inline bool is_float(DType t) { return dtype_info(t).is_float; }
inline bool is_integer(DType t) { return !is_float(t) && t != DType::kBool && t != DType::kUndefined; }
std::optional<DType> dtype_from_onnx(int onnx_code);
std::optional<DType> dtype_from_name(std::string_view name);

}  // namespace kiln
