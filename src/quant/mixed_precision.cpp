#include "quant/mixed_precision.h"

#include <algorithm>

namespace kiln::quant {

Result<MixedPlan> search_mixed_precision(const std::vector<LayerInfo>& layers, double baseline, double max_drop,
                                         int base_bits, const std::vector<int>& candidates, const PlanMetric& metric,
                                         const std::function<void(const std::string&)>& log) {
  if (layers.empty()) return make_error("no layers to assign bit widths to");
  MixedPlan plan;
  std::map<std::string, int> bits;
  for (const auto& l : layers) bits[l.node] = base_bits;
  KILN_ASSIGN(double start, metric(bits));
  ++plan.evaluations;
  if (baseline - start > max_drop)
    return make_error("even uniform " + std::to_string(base_bits) + "-bit weights drop accuracy by " +
                      std::to_string(baseline - start) + " points, more than the allowed " + std::to_string(max_drop));
  // Sensitivity: one layer at a time.
  std::vector<int> lower;
  for (int b : candidates)
    if (b < base_bits) lower.push_back(b);
  std::sort(lower.begin(), lower.end());
  for (const auto& l : layers) {
    MixedPlanRow row{l.node, l.params, base_bits, {}};
    for (int b : lower) {
      auto trial = bits;
      trial[l.node] = b;
      KILN_ASSIGN(double acc, metric(trial));
      ++plan.evaluations;
      row.sensitivity[b] = baseline - acc;
    }
    plan.rows.push_back(row);
    if (log) log("sensitivity of " + l.node + " measured");
  }
  // Greedy: largest layers first (they save the most), lowest width whose
  // measured whole-model drop stays within the bound.
  std::vector<size_t> order(layers.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return layers[a].params > layers[b].params; });
  double current = start;
  for (size_t i : order) {
    MixedPlanRow& row = plan.rows[i];
    for (int b : lower) {
      if (row.sensitivity[b] > max_drop) continue;  // alone it already breaks the bound
      auto trial = bits;
      trial[row.node] = b;
      KILN_ASSIGN(double acc, metric(trial));
      ++plan.evaluations;
      if (baseline - acc <= max_drop) {
        bits = trial;
        current = acc;
        row.bits = b;
        if (log) log(row.node + " -> " + std::to_string(b) + " bits (drop " + std::to_string(baseline - acc) + ")");
        break;
      }
    }
  }
  plan.bits = bits;
  plan.metric = current;
  return plan;
}

}  // namespace kiln::quant
