// Attributes of reductions, ArgMax/ArgMin, CumSum, TopK. Reduce axes are an
// input in kiln's IR (ONNX opset 18 form); the importer moves older attributes there.
// Shape inference: ir/ops/reduce.cpp. Kernels: backends/reference/reduce.cpp.
#pragma once
#include "ir/ops/common.h"

namespace kiln::ir {

struct ReduceAttrs {
  int64_t keepdims = 1;
  int64_t noop_with_empty_axes = 0;
  template <class V> void fields(V& v) { v("keepdims", keepdims); v("noop_with_empty_axes", noop_with_empty_axes); }
};
struct ArgReduceAttrs {
  int64_t axis = 0;
  int64_t keepdims = 1;
  int64_t select_last_index = 0;
  template <class V> void fields(V& v) {
    v("axis", axis);
    v("keepdims", keepdims);
    v("select_last_index", select_last_index);
  }
};
struct CumSumAttrs {
  int64_t exclusive = 0;
  int64_t reverse = 0;
  template <class V> void fields(V& v) { v("exclusive", exclusive); v("reverse", reverse); }
};
struct TopKAttrs {  // k is an input (opset 10+ form)
  int64_t axis = -1;
  int64_t largest = 1;
  int64_t sorted = 1;
  template <class V> void fields(V& v) { v("axis", axis); v("largest", largest); v("sorted", sorted); }
};

}  // namespace kiln::ir
