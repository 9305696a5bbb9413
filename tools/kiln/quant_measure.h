// Measuring quantized models for `kiln quantize`: parameter bytes (sub-byte
// weights at their nominal width), serialized file bytes, and top-1 on the
// Fashion-MNIST test set in integer mode (or output SQNR on the calibration
// samples when the model is not a Fashion-MNIST classifier).
#pragma once
#include <CLI/CLI.hpp>

#include <map>
#include <string>

#include "ir/graph.h"
#include "io/idx.h"
#include "quant/calib_data.h"
#include "quant/observer.h"
#include "quant/pipeline.h"

namespace kiln::cli {

struct Measured {
  int64_t param_bytes = 0, file_bytes = 0;
  bool has_accuracy = false;
  double top1 = 0, sqnr_db = 0;
};

class Measurer {
 public:
  Measurer(const ir::Graph& fp32, const std::string& fp32_path, const quant::CalibSource& calib, int64_t eval_limit);
  Measured measure_float();
  // `path`: the file written for q, or "" to count its serialized size.
  // integer = false runs the QDQ graph as fake quantization (float ops between
  // Q/DQ), the simulation that predicts the integer result before lowering.
  Measured measure(const ir::Graph& q, const std::string& path, bool integer = true);
  std::string metric_name() const { return has_labels_ ? "top1" : "sqnr_db"; }
  bool has_labels() const { return has_labels_; }

 private:
  const ir::Graph& fp32_;
  std::string fp32_path_;
  const quant::CalibSource& calib_;
  int64_t eval_limit_;
  bool has_labels_ = false;
  io::LabeledImages test_;
  std::vector<Tensor> ref_outputs_;  // fp32 outputs on the first calibration batch (SQNR)
  bool float_done_ = false;
  Measured float_;
};

// The calibration/evaluation data of prune and optimize: --calib items and
// --calib-samples (0: 1000 Fashion-MNIST images, or every sample of given files).
quant::CalibSource open_calibration(const ir::Graph& g, const std::vector<std::string>& items, int64_t samples);
// Their shared --calib, --calib-samples and --eval-limit options.
void add_calibration_options(CLI::App* cmd, std::vector<std::string>* items, int64_t* samples, int64_t* eval_limit);

void run_mixed_precision(double max_drop, const quant::BuildOptions& base, Measurer& m, const ir::Graph& prepared,
                         const std::map<ir::ValueId, quant::Observer>& obs, const std::string& out);

}  // namespace kiln::cli
