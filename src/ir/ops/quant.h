// Attributes of the ONNX quantization family (QuantizeLinear, DequantizeLinear,
// QLinearConv uses ConvAttrs, MatMulInteger/QLinearMatMul/DynamicQuantizeLinear none).
// Shape inference: ir/ops/quant.cpp. Kernels: backends/reference/quant.cpp.
#pragma once
#include "ir/ops/common.h"

namespace kiln::ir {

struct QuantizeLinearAttrs {
  int64_t axis = 1;
  int64_t block_size = 0;
  int64_t output_dtype = 0;
  int64_t saturate = 1;
  template <class V> void fields(V& v) {
    v("axis", axis);
    v("block_size", block_size);
    v("output_dtype", output_dtype);
    v("saturate", saturate);
  }
};
struct DequantizeLinearAttrs {
  int64_t axis = 1;
  int64_t block_size = 0;
  template <class V> void fields(V& v) { v("axis", axis); v("block_size", block_size); }
};

}  // namespace kiln::ir
