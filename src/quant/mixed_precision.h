// Accuracy-aware mixed precision: per-layer weight bit widths that make the
// model as small as possible while the measured end-to-end accuracy drop stays
// within a bound. Sensitivity first (each layer alone at each candidate width),
// then a greedy descent from the largest layers, re-measuring the whole model
// after every change and undoing any change that breaks the bound.
// Tested in tests/unit/test_quantize.cpp (with a synthetic metric).
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"

namespace kiln::quant {

struct LayerInfo {
  std::string node;
  int64_t params = 0;
};

struct MixedPlanRow {
  std::string node;
  int64_t params = 0;
  int bits = 8;
  std::map<int, double> sensitivity;  // bits -> accuracy drop with only this layer at those bits
};

struct MixedPlan {
  std::vector<MixedPlanRow> rows;
  std::map<std::string, int> bits;  // node -> chosen bits
  double metric = 0;                // measured with the whole plan applied
  int evaluations = 0;
};

// metric(bits per node) -> accuracy (higher is better); nodes missing from the
// map use `base_bits`. `baseline` is the unquantized reference accuracy.
using PlanMetric = std::function<Result<double>(const std::map<std::string, int>&)>;

Result<MixedPlan> search_mixed_precision(const std::vector<LayerInfo>& layers, double baseline, double max_drop,
                                         int base_bits, const std::vector<int>& candidates, const PlanMetric& metric,
                                         const std::function<void(const std::string&)>& log = {});

}  // namespace kiln::quant
