// Calibration: runs the float model over a CalibSource's batches and feeds each
// requested value's tensors into its Observer (observer.h). Intermediate values
// are seen by running a copy of the graph whose outputs are those values.
// Tested in tests/unit/test_quant_calib.cpp (LeNet on Fashion-MNIST).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/calib_data.h"
#include "quant/observer.h"

namespace kiln::quant {

struct CalibrateOptions {
  std::string backend = "reference";  // the float model runs here
  int bins = Observer::kDefaultBins;  // histogram bins per observer
};

// One Observer per distinct id in `values` (float values: graph inputs,
// constants, node outputs). max_samples: samples taken from the start of
// `src` (0: all; more than src.size(): error). progress(done, total) after each
// batch. Errors: an unknown or non-float value, a failing run (the batch is
// named). Every activation of a batch is kept until the batch ends, so memory
// grows with batch size times the summed size of the observed values.
Result<std::map<ir::ValueId, Observer>> calibrate(const ir::Graph& g, const std::vector<ir::ValueId>& values,
                                                  CalibSource& src, int64_t max_samples, ProgressFn progress = {},
                                                  const CalibrateOptions& opts = {});

}  // namespace kiln::quant
