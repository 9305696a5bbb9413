// Attributes of elementwise ops: activations, Cast, bit ops, comparisons.
// Shape inference: ir/ops/elementwise.cpp. Kernels: backends/reference/elementwise.cpp.
#pragma once
#include "ir/ops/common.h"

namespace kiln::ir {

struct LeakyReluAttrs {
  float alpha = 0.01f;
  template <class V> void fields(V& v) { v("alpha", alpha); }
};
struct EluAttrs {  // Elu and Celu
  float alpha = 1.0f;
  template <class V> void fields(V& v) { v("alpha", alpha); }
};
struct ThresholdedReluAttrs {
  float alpha = 1.0f;
  template <class V> void fields(V& v) { v("alpha", alpha); }
};
struct SeluAttrs {
  float alpha = 1.67326319217681884765625f;
  float gamma = 1.05070102214813232421875f;
  template <class V> void fields(V& v) { v("alpha", alpha); v("gamma", gamma); }
};
struct HardSigmoidAttrs {
  float alpha = 0.2f;
  float beta = 0.5f;
  template <class V> void fields(V& v) { v("alpha", alpha); v("beta", beta); }
};
enum class GeluApprox { kNone, kTanh };
inline constexpr std::array<const char*, 2> kGeluApproxNames = {"none", "tanh"};
struct GeluAttrs {
  GeluApprox approximate = GeluApprox::kNone;
  template <class V> void fields(V& v) { v("approximate", approximate, kGeluApproxNames); }
};
struct ShrinkAttrs {
  float bias = 0.0f;
  float lambd = 0.5f;
  template <class V> void fields(V& v) { v("bias", bias); v("lambd", lambd); }
};
struct CastAttrs {
  int64_t to = 0;  // ONNX TensorProto data type code; validated by the parser
  int64_t saturate = 1;
  template <class V> void fields(V& v) { v("to", to, true); v("saturate", saturate); }
};
struct CastLikeAttrs {
  int64_t saturate = 1;
  template <class V> void fields(V& v) { v("saturate", saturate); }
};
enum class ShiftDir { kLeft, kRight };
inline constexpr std::array<const char*, 2> kShiftDirNames = {"LEFT", "RIGHT"};
struct BitShiftAttrs {
  ShiftDir direction = ShiftDir::kLeft;
  template <class V> void fields(V& v) { v("direction", direction, kShiftDirNames, true); }
};
struct ModAttrs {
  int64_t fmod = 0;
  template <class V> void fields(V& v) { v("fmod", fmod); }
};
struct IsInfAttrs {
  int64_t detect_negative = 1;
  int64_t detect_positive = 1;
  template <class V> void fields(V& v) { v("detect_negative", detect_negative); v("detect_positive", detect_positive); }
};
struct DropoutAttrs {  // ratio and training_mode are inputs (opset 12+ form)
  int64_t seed = kAbsent;
  template <class V> void fields(V& v) { v("seed", seed); }
};

}  // namespace kiln::ir
