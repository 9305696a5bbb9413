// GPTQ-style rounding of a layer weight (after OPTQ, Frantar et al. 2022): with
// the scales/zero points fixed, the integer weights are chosen column by column
// and each column's rounding error is pushed onto the columns not yet quantized
// (the optimal-brain-surgeon update through the Cholesky factor of H^-1), so
// that the layer OUTPUT error ||(W - deQ(Q)) X|| is small rather than each
// weight's own error. H = E[x x^T] over the layer's input vectors (input_covariance.h).
// Tested in tests/unit/test_quant_gptq.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "quant/quant_params.h"

namespace kiln::quant {

// E[x x^T] of the input vectors x a layer multiplies its weight rows with: one
// K x K symmetric matrix per convolution group (group gi pairs with output rows
// [gi * rows/groups, (gi + 1) * rows/groups)).
struct InputCovariance {
  int64_t groups = 1;
  int64_t cols = 0;       // K: input features per output unit
  std::vector<double> h;  // groups * K * K, row-major, group after group
  int64_t vectors = 0;    // input vectors averaged into each matrix
  const double* group(int64_t gi) const { return h.data() + gi * cols * cols; }
};

struct GptqOptions {
  // The weight seen as a matrix [rows = output units, cols = inputs]:
  // out_axis 0: w is [rows, ...] and everything after axis 0 is one row (Conv
  // [Cout, Cin/g, k...], Gemm with transB); out_axis 1: w is 2-D [cols, rows]
  // (MatMul, Gemm without transB).
  int64_t out_axis = 0;
  double damp = 0.01;     // added to diag(H): damp * mean of its non-zero entries
  bool act_order = true;  // columns with the largest E[x^2] first (the error lands on the rest)
  bool pack_int4 = true;  // storage as quantize_tensor(.., pack_int4)
};

// The integer storage of w (same dtype, layout and packing as quantize_tensor
// with the same params), every value Q(.) of some real number through
// quantize_value(), so within [qmin, qmax] and exactly representable by `p`
// (per-tensor, per-channel and per-group params all work: each element uses its
// own slot's scale/zero point). Columns whose input is always zero in the
// calibration data (H_ii = 0) are rounded to nearest and neither receive nor
// pass on error. H all zero: plain rounding, i.e. quantize_tensor's result.
// Errors: non-float or non-finite w, params inconsistent with w, H not matching
// the weight (K, groups), non-finite H, H not positive definite even after
// raising the damping 10^6-fold.
Result<Tensor> gptq_quantize(const Tensor& w, const QuantParams& p, const InputCovariance& h,
                             const GptqOptions& o = {}, const std::string& name = "tensor");

// sum over rows r of (w_r - v_r)^T H_g(r) (w_r - v_r): the layer's mean squared
// output error over the calibration inputs when v (e.g. deQ of the storage)
// replaces w. Same layout rules as gptq_quantize; w and v float tensors.
Result<double> layer_output_error(const Tensor& w, const Tensor& v, const InputCovariance& h, int64_t out_axis,
                                  const std::string& name = "tensor");

}  // namespace kiln::quant
