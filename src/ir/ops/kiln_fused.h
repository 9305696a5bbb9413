// Attributes of kiln's fused ops (domain "kiln"), which passes/fuse_activation
// produces: FusedConv = Conv then an activation, FusedGemm = Gemm then an
// activation, computed in one node. No ONNX form (the exporter refuses them;
// the .kiln container keeps them). Shape inference: ir/ops/kiln_fused.cpp
// (Conv's and Gemm's). Kernels: backends/reference/fused.cpp.
// Tested in tests/unit/test_passes.cpp.
#pragma once
#include <array>

#include "ir/ops/nn.h"

namespace kiln::ir {

// The activation applied to the Conv/Gemm result, exactly as the ONNX op of
// that name computes it: Relu, Clip(alpha, beta) (bounds as attributes;
// Relu6 is Clip(0, 6)), HardSwish, Sigmoid, Gelu (erf), GeluTanh (Gelu with
// approximate="tanh"), LeakyRelu(alpha).
enum class FusedActivation { kRelu, kClip, kHardSwish, kSigmoid, kGelu, kGeluTanh, kLeakyRelu };
inline constexpr std::array<const char*, 7> kFusedActivationNames = {"Relu",     "Clip", "HardSwish", "Sigmoid",
                                                                     "Gelu",     "GeluTanh", "LeakyRelu"};

struct FusedConvAttrs : ConvAttrs {
  FusedActivation activation = FusedActivation::kRelu;
  float activation_alpha = 0.0f;  // Clip: lower bound; LeakyRelu: slope
  float activation_beta = 0.0f;   // Clip: upper bound
  template <class V> void fields(V& v) {
    ConvAttrs::fields(v);
    v("activation", activation, kFusedActivationNames, true);
    v("activation_alpha", activation_alpha);
    v("activation_beta", activation_beta);
  }
};

struct FusedGemmAttrs : GemmAttrs {
  FusedActivation activation = FusedActivation::kRelu;
  float activation_alpha = 0.0f;  // as in FusedConvAttrs
  float activation_beta = 0.0f;
  template <class V> void fields(V& v) {
    GemmAttrs::fields(v);
    v("activation", activation, kFusedActivationNames, true);
    v("activation_alpha", activation_alpha);
    v("activation_beta", activation_beta);
  }
};

}  // namespace kiln::ir
