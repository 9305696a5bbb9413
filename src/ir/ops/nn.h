// Attributes of neural-network ops: convolution, pooling, normalization,
// Gemm, softmax family, losses, space/depth rearrangement.
// Shape inference: ir/ops/nn.cpp. Kernels: backends/reference/{conv,pool,norm,...}.cpp.
#pragma once
#include "ir/ops/common.h"

namespace kiln::ir {

struct ConvAttrs {  // Conv, ConvInteger, QLinearConv
  AutoPad auto_pad = AutoPad::kNotSet;
  std::vector<int64_t> dilations, kernel_shape, pads, strides;
  int64_t group = 1;
  template <class V> void fields(V& v) {
    v("auto_pad", auto_pad, kAutoPadNames);
    v("dilations", dilations);
    v("group", group);
    v("kernel_shape", kernel_shape);
    v("pads", pads);
    v("strides", strides);
  }
};
struct ConvTransposeAttrs {
  AutoPad auto_pad = AutoPad::kNotSet;
  std::vector<int64_t> dilations, kernel_shape, output_padding, output_shape, pads, strides;
  int64_t group = 1;
  template <class V> void fields(V& v) {
    v("auto_pad", auto_pad, kAutoPadNames);
    v("dilations", dilations);
    v("group", group);
    v("kernel_shape", kernel_shape);
    v("output_padding", output_padding);
    v("output_shape", output_shape);
    v("pads", pads);
    v("strides", strides);
  }
};
struct PoolWindow {  // fields shared by MaxPool, AveragePool, LpPool
  AutoPad auto_pad = AutoPad::kNotSet;
  int64_t ceil_mode = 0;
  std::vector<int64_t> dilations, kernel_shape, pads, strides;
  template <class V> void window_fields(V& v) {
    v("auto_pad", auto_pad, kAutoPadNames);
    v("ceil_mode", ceil_mode);
    v("dilations", dilations);
    v("kernel_shape", kernel_shape, true);
    v("pads", pads);
    v("strides", strides);
  }
};
struct MaxPoolAttrs : PoolWindow {
  int64_t storage_order = 0;
  template <class V> void fields(V& v) { window_fields(v); v("storage_order", storage_order); }
};
struct AveragePoolAttrs : PoolWindow {
  int64_t count_include_pad = 0;
  template <class V> void fields(V& v) { window_fields(v); v("count_include_pad", count_include_pad); }
};
struct LpPoolAttrs : PoolWindow {
  int64_t p = 2;
  template <class V> void fields(V& v) { window_fields(v); v("p", p); }
};
struct LpNormAttrs {  // GlobalLpPool, LpNormalization
  int64_t p = 2;
  int64_t axis = -1;
  template <class V> void fields(V& v) { v("p", p); v("axis", axis); }
};
struct BatchNormAttrs {
  float epsilon = 1e-5f;
  float momentum = 0.9f;
  int64_t training_mode = 0;
  template <class V> void fields(V& v) {
    v("epsilon", epsilon);
    v("momentum", momentum);
    v("training_mode", training_mode);
    v.ignore("spatial");  // opset <9: always 1 in practice; per-channel stats are what we compute
    v.ignore("is_test");
    v.ignore("consumed_inputs");
  }
};
struct LayerNormAttrs {
  int64_t axis = -1;
  float epsilon = 1e-5f;
  int64_t stash_type = 1;
  template <class V> void fields(V& v) { v("axis", axis); v("epsilon", epsilon); v("stash_type", stash_type); }
};
struct InstanceNormAttrs {
  float epsilon = 1e-5f;
  template <class V> void fields(V& v) { v("epsilon", epsilon); }
};
struct LrnAttrs {
  float alpha = 1e-4f;
  float beta = 0.75f;
  float bias = 1.0f;
  int64_t size = 0;
  template <class V> void fields(V& v) { v("alpha", alpha); v("beta", beta); v("bias", bias); v("size", size, true); }
};
struct MvnAttrs {
  std::vector<int64_t> axes = {0, 2, 3};
  template <class V> void fields(V& v) { v("axes", axes); }
};
struct GemmAttrs {
  float alpha = 1.0f;
  float beta = 1.0f;
  int64_t transA = 0;
  int64_t transB = 0;
  template <class V> void fields(V& v) {
    v("alpha", alpha);
    v("beta", beta);
    v("transA", transA);
    v("transB", transB);
    v.ignore("broadcast");  // opset <7 only; broadcasting is always on from opset 7
  }
};
struct SoftmaxAttrs {  // Softmax, LogSoftmax, Hardmax (opset 13 semantics; the importer rewrites older forms)
  int64_t axis = -1;
  template <class V> void fields(V& v) { v("axis", axis); }
};
struct EinsumAttrs {
  std::string equation;
  template <class V> void fields(V& v) { v("equation", equation, true); }
};
enum class LossReduction { kNone, kSum, kMean };
inline constexpr std::array<const char*, 3> kLossReductionNames = {"none", "sum", "mean"};
struct LossAttrs {  // SoftmaxCrossEntropyLoss, NegativeLogLikelihoodLoss
  int64_t ignore_index = kAbsent;
  LossReduction reduction = LossReduction::kMean;
  template <class V> void fields(V& v) {
    v("ignore_index", ignore_index);
    v("reduction", reduction, kLossReductionNames);
  }
};
enum class DepthToSpaceMode { kDCR, kCRD };
inline constexpr std::array<const char*, 2> kDepthToSpaceModeNames = {"DCR", "CRD"};
struct DepthToSpaceAttrs {
  int64_t blocksize = 0;
  DepthToSpaceMode mode = DepthToSpaceMode::kDCR;
  template <class V> void fields(V& v) { v("blocksize", blocksize, true); v("mode", mode, kDepthToSpaceModeNames); }
};
struct SpaceToDepthAttrs {
  int64_t blocksize = 0;
  template <class V> void fields(V& v) { v("blocksize", blocksize, true); }
};

}  // namespace kiln::ir
