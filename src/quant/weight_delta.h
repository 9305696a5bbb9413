// Step (Delta) choice for constant tensors (weights), and the Q/deQ of a whole
// tensor: float weights -> QuantParams (per-tensor, per-channel or per-group;
// maxabs, percentile or MSE-optimal clipping) -> integer storage tensor.
// All rounding goes through quantize_value() of quant_params.h.
// Tested in tests/unit/test_quant_calib.cpp.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"
#include "quant/quant_params.h"

namespace kiln::quant {

enum class WeightMethod {
  kMaxAbs,      // threshold T = max |w| of the channel/group (no clipping)
  kPercentile,  // T = the `percentile`-th percentile of |w| (nearest rank)
  kMse,         // T = c * max |w|, c on a grid from 1 down to mse_min_ratio, minimizing sum (w - deQ(Q(w)))^2
  kGptq,        // Delta as kMse; the rounding then compensates errors over calibration inputs (gptq.h)
};

struct WeightQuantOptions {
  int bits = 8;             // 2..8 or 16
  bool is_signed = true;    // storage: int vs uint
  bool symmetric = true;    // z = 0 (see scale_zero_from_range for unsigned storage)
  int64_t axis = -1;        // -1: per tensor; >= 0: per channel along this axis
  int64_t group_size = 0;   // > 0: groups of this many consecutive elements along axis (axis required)
  WeightMethod method = WeightMethod::kMaxAbs;
  double percentile = 99.99;   // for kPercentile, in (0, 100]
  int mse_steps = 71;          // for kMse: ratios 1, ..., mse_min_ratio in equal steps (71: steps of 0.01)
  double mse_min_ratio = 0.3;  // for kMse, in (0, 1]
};

Result<WeightMethod> parse_weight_method(const std::string& s);  // "maxabs" | "percentile" | "mse" | "gptq"

// Threshold T of each channel/group clips the values to
// [max(min w, -T), min(max w, T)]; that range becomes (Delta, z) by
// scale_zero_from_range() (range.h). An all-zero channel/group gets Delta =
// kZeroRangeScale (2^-23). The percentile method falls back to max |w| when the
// percentile is 0 but the channel is not all zero (a sparse channel would
// otherwise quantize to zeros). Errors: non-float tensor, NaN/inf (naming `name`
// and the element index), bad bits/axis/group size/options.
Result<QuantParams> choose_weight_params(const Tensor& w, const WeightQuantOptions& o, const std::string& name);

// Integer storage of Q(w): i8/u8 for 2..8 bits (values within [qmin, qmax]),
// i4/u4 packed two per byte, low nibble first (flat element order, ONNX INT4
// layout) when bits == 4 and pack_int4, i16/u16 for 16 bits. The result has w's
// shape. w may be f32, f16, bf16 or f64 (quantized from its f32 value).
// Errors: params inconsistent with w (scale count, axis), non-finite values.
Result<Tensor> quantize_tensor(const Tensor& w, const QuantParams& p, bool pack_int4, const std::string& name = "tensor");

// deQ of a storage tensor made by quantize_tensor (any of the storage dtypes
// above): f32 (q - z) * Delta with q's shape.
Result<Tensor> dequantize_tensor(const Tensor& q, const QuantParams& p, const std::string& name = "tensor");

// Index into p.scale / p.zero_point of each element of a tensor of `shape`, in
// flat order (what quantize_tensor uses). Errors: params inconsistent with shape.
Result<std::vector<int32_t>> param_slots(const Shape& shape, const QuantParams& p, const std::string& name = "tensor");

// The storage tensor quantize_tensor would make, from integers already chosen
// (flat order, one per element; e.g. by GPTQ). Errors: a value outside
// [qmin, qmax], a count that is not numel(shape), bad params.
Result<Tensor> pack_quantized(const std::vector<int32_t>& q, const Shape& shape, const QuantParams& p, bool pack_int4,
                              const std::string& name = "tensor");

// Sum over elements of (w - deQ(Q(w)))^2, in double: the quantity the MSE
// method minimizes, for reports and tests.
Result<double> weight_sq_error(const Tensor& w, const QuantParams& p, const std::string& name = "tensor");

}  // namespace kiln::quant
