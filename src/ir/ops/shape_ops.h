// Attributes of the shape family: reshape/transpose/concat/split/slice/gather/
// scatter/pad/resize and friends. Inputs follow the newest ONNX opset form
// (e.g. Split sizes, Squeeze axes, Pad pads are inputs); the importer upgrades.
// Shape inference: ir/ops/shape_ops.cpp. Kernels: backends/reference/shape_ops.cpp.
#pragma once
#include "ir/ops/common.h"

namespace kiln::ir {

struct ReshapeAttrs {
  int64_t allowzero = 0;
  template <class V> void fields(V& v) { v("allowzero", allowzero); }
};
struct AxisAttrs {  // Flatten(default 1) is separate; this is for ops whose axis defaults to 0
  int64_t axis = 0;
  template <class V> void fields(V& v) { v("axis", axis); }
};
struct FlattenAttrs {
  int64_t axis = 1;
  template <class V> void fields(V& v) { v("axis", axis); }
};
struct ConcatAttrs {
  int64_t axis = 0;
  template <class V> void fields(V& v) { v("axis", axis, true); }
};
struct TransposeAttrs {
  std::vector<int64_t> perm;  // empty: reverse the axes
  template <class V> void fields(V& v) { v("perm", perm); }
};
struct SplitAttrs {
  int64_t axis = 0;
  int64_t num_outputs = kAbsent;
  template <class V> void fields(V& v) { v("axis", axis); v("num_outputs", num_outputs); }
};
struct GatherNDAttrs {
  int64_t batch_dims = 0;
  template <class V> void fields(V& v) { v("batch_dims", batch_dims); }
};
enum class ScatterReduction { kNone, kAdd, kMul, kMax, kMin };
inline constexpr std::array<const char*, 5> kScatterReductionNames = {"none", "add", "mul", "max", "min"};
struct ScatterElementsAttrs {
  int64_t axis = 0;
  ScatterReduction reduction = ScatterReduction::kNone;
  template <class V> void fields(V& v) { v("axis", axis); v("reduction", reduction, kScatterReductionNames); }
};
struct ScatterNDAttrs {
  ScatterReduction reduction = ScatterReduction::kNone;
  template <class V> void fields(V& v) { v("reduction", reduction, kScatterReductionNames); }
};
enum class PadMode { kConstant, kReflect, kEdge, kWrap };
inline constexpr std::array<const char*, 4> kPadModeNames = {"constant", "reflect", "edge", "wrap"};
struct PadAttrs {
  PadMode mode = PadMode::kConstant;
  template <class V> void fields(V& v) { v("mode", mode, kPadModeNames); }
};
struct ConstantOfShapeAttrs {
  Tensor value;  // undefined: float32 zero
  template <class V> void fields(V& v) { v("value", value); }
};
struct ShapeAttrs {
  int64_t start = 0;
  int64_t end = kAbsent;
  template <class V> void fields(V& v) { v("start", start); v("end", end); }
};
struct TriluAttrs {
  int64_t upper = 1;
  template <class V> void fields(V& v) { v("upper", upper); }
};
struct OneHotAttrs {
  int64_t axis = -1;
  template <class V> void fields(V& v) { v("axis", axis); }
};
struct CompressAttrs {
  int64_t axis = kAbsent;
  template <class V> void fields(V& v) { v("axis", axis); }
};
struct EyeLikeAttrs {
  int64_t dtype = kAbsent;
  int64_t k = 0;
  template <class V> void fields(V& v) { v("dtype", dtype); v("k", k); }
};
struct ReverseSequenceAttrs {
  int64_t batch_axis = 1;
  int64_t time_axis = 0;
  template <class V> void fields(V& v) { v("batch_axis", batch_axis); v("time_axis", time_axis); }
};
enum class ResizeMode { kNearest, kLinear, kCubic };
inline constexpr std::array<const char*, 3> kResizeModeNames = {"nearest", "linear", "cubic"};
// kTfHalfPixelForNN exists only in Resize-11/12 (x_original = (x + 0.5) / scale).
enum class ResizeCoord {
  kHalfPixel,
  kAsymmetric,
  kPytorchHalfPixel,
  kTfCropAndResize,
  kAlignCorners,
  kHalfPixelSymmetric,
  kTfHalfPixelForNN
};
inline constexpr std::array<const char*, 7> kResizeCoordNames = {
    "half_pixel",    "asymmetric",           "pytorch_half_pixel",  "tf_crop_and_resize",
    "align_corners", "half_pixel_symmetric", "tf_half_pixel_for_nn"};
enum class ResizeNearest { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };
inline constexpr std::array<const char*, 4> kResizeNearestNames = {"round_prefer_floor", "round_prefer_ceil",
                                                                   "floor", "ceil"};
enum class AspectPolicy { kStretch, kNotLarger, kNotSmaller };
inline constexpr std::array<const char*, 3> kAspectPolicyNames = {"stretch", "not_larger", "not_smaller"};
struct ResizeAttrs {  // inputs: X, roi, scales, sizes (opset 13+ form)
  int64_t antialias = 0;
  std::vector<int64_t> axes;
  ResizeCoord coordinate_transformation_mode = ResizeCoord::kHalfPixel;
  float cubic_coeff_a = -0.75f;
  int64_t exclude_outside = 0;
  float extrapolation_value = 0.0f;
  AspectPolicy keep_aspect_ratio_policy = AspectPolicy::kStretch;
  ResizeMode mode = ResizeMode::kNearest;
  ResizeNearest nearest_mode = ResizeNearest::kRoundPreferFloor;
  template <class V> void fields(V& v) {
    v("antialias", antialias);
    v("axes", axes);
    v("coordinate_transformation_mode", coordinate_transformation_mode, kResizeCoordNames);
    v("cubic_coeff_a", cubic_coeff_a);
    v("exclude_outside", exclude_outside);
    v("extrapolation_value", extrapolation_value);
    v("keep_aspect_ratio_policy", keep_aspect_ratio_policy, kAspectPolicyNames);
    v("mode", mode, kResizeModeNames);
    v("nearest_mode", nearest_mode, kResizeNearestNames);
  }
};

// Slice along an axis of static size d > 0: the first element taken, after
// ONNX's clamping of `start` (negative counts from the end; clamped to
// [0, d] for a positive step, [0, d - 1] for a negative one). One rule for
// shape inference, the reference kernel and the CPU backend.
inline int64_t slice_start(int64_t d, int64_t start, int64_t step) {
  if (start < 0) start += d;
  const int64_t hi = step > 0 ? d : d - 1;
  return start < 0 ? 0 : start > hi ? hi : start;
}

}  // namespace kiln::ir
