// H = E[x x^T] over the input vectors x of one Conv / Gemm / MatMul layer, the
// statistic GPTQ rounding needs (gptq.h). Conv: x are the im2col patches of the
// layer input (pads, strides, dilations and groups as the Conv applies them,
// through ir::conv_geometry), one K = Cin/group * prod(kernel) matrix per
// group; Gemm / MatMul: x are the rows of the input (K = input features).
// Tested in tests/unit/test_quant_gptq.cpp.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/calib_data.h"
#include "quant/gptq.h"

namespace kiln::quant {

class CovarianceAccumulator {
 public:
  // `n`: Conv, Gemm (transA = 0) or MatMul; `w_shape`: its weight (input 1) as
  // stored. Errors: another op, Gemm with transA, a weight of the wrong rank.
  static Result<CovarianceAccumulator> create(const ir::Node& n, const Shape& w_shape, const std::string& name);
  // x: the layer's first input (f32) for a batch. Errors: dtype or shape that
  // does not fit the layer.
  Result<void> add(const Tensor& x);
  // The mean of x x^T over every vector added (all zeros when none was).
  InputCovariance result() const;

 private:
  CovarianceAccumulator() = default;
  void push_done();  // one more column filled in every group's buffer
  void flush();      // folds the buffered columns into the sums
  Result<void> add_conv(const Tensor& x);

  static constexpr int64_t kBatch = 64;  // vectors buffered before a rank-kBatch update
  std::string name_;
  ir::OpKind op_ = ir::OpKind::kConv;
  ir::ConvAttrs conv_;
  Shape w_shape_;
  int64_t groups_ = 1, k_ = 0;
  std::vector<double> sum_;  // groups * K * K, lower triangle accumulated
  std::vector<double> buf_;  // groups * K * kBatch: column b of group g = vector b (transposed for the dot products)
  int64_t filled_ = 0, count_ = 0;
};

// H of node index `node` of `g` over samples [0, samples) of `src` (0: all):
// the layer input is read from the batch when it is a graph input, otherwise
// from a copy of `g` (topologically sorted, outputs = that input, dead nodes
// dropped) run on the reference backend with QDQ executed as written, so a
// partly quantized graph gives its quantized activations. Errors: not a
// supported layer, a constant or non-float layer input, a failing run.
Result<InputCovariance> layer_input_covariance(const ir::Graph& g, int node, const CalibSource& src, int64_t samples);

}  // namespace kiln::quant
