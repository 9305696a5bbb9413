// Accuracy recovery after channel pruning, without training: every layer that
// lost input channels (a "sink" of prune/channel.h) gets its weights and bias
// re-fitted by least squares so that, on calibration inputs run through the
// PRUNED model (earlier re-fits included), its outputs reconstruct the
// ORIGINAL model's outputs of that layer (for the output channels it keeps):
//   min ||[X' 1] Theta - Y||^2 + lambda ||Theta||^2,  lambda = ridge * mean(diag(X'^T X')).
// Conv (group 1, 2-D) fits over im2col patches; Gemm (alpha = beta = 1,
// transA 0) and 2-D MatMul (no bias term) over rows. The fit accumulates
// X'^T X' and X'^T Y in double and solves by Cholesky.
// Tested in tests/unit/test_prune.cpp and tests/models/test_prune_models.cpp.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "prune/channel.h"
#include "quant/calib_data.h"

namespace kiln::prune {

struct RecoverOptions {
  int64_t samples = 1000;  // calibration samples (0 or more than there are: all)
  double ridge = 1e-4;
};

struct RecoveredLayer {
  std::string node;
  // Relative output error ||Y_pruned - Y_original|| / ||Y_original|| of the
  // layer on the calibration samples, before and after its re-fit.
  double error_before = 0, error_after = 0;
  std::string skipped;  // non-empty: not re-fitted, and why
};

Result<std::vector<RecoveredLayer>> recover_least_squares(ir::Graph& pruned, const ir::Graph& original,
                                                          const ChannelPruneResult& pruning,
                                                          const quant::CalibSource& calib, const RecoverOptions& o = {});

// Recomputes the running mean and variance of every BatchNormalization node
// (inference form) from its input on calibration samples, in graph order, so
// each BN sees the statistics of the model as it now is (after pruning the
// distribution of a BN's input shifts; re-centring it recovers much of the
// loss without training). Returns the number of BN nodes updated.
Result<int> recalibrate_batchnorm(ir::Graph& g, const quant::CalibSource& calib, int64_t samples = 1000);

}  // namespace kiln::prune
