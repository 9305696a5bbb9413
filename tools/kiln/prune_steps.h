// Pruning steps shared by `kiln prune` and `kiln optimize`: channel pruning
// (+ least-squares recovery), then unstructured or N:M magnitude pruning, with
// a one-line log of each; and the counts the before/after tables print.
#pragma once
#include <set>
#include <string>

#include "ir/graph.h"
#include "quant/calib_data.h"

namespace kiln::cli {

struct PruneSteps {
  double sparsity = -1;  // < 0: no unstructured pruning
  bool per_layer = false;
  std::string nm;        // "N:M" or empty
  double channels = -1;  // < 0: no channel pruning
  int norm = 1;
  bool recover = false;
  bool recalibrate_bn = false;  // recompute BatchNormalization statistics after channel pruning
  std::set<std::string> exclude;
  int64_t recover_samples = 1000;
  bool any() const { return sparsity >= 0 || !nm.empty() || channels >= 0; }
};

struct ModelCounts {
  int64_t params = 0, nonzeros = 0, macs = 0, conv_macs = 0;  // MACs at batch 1 (symbolic dims = 1)
};
ModelCounts count_model(const ir::Graph& g);

// Prunes `g` in place (errors are CliErrors). `unrecovered` (optional) gets the
// model as it was before the least-squares re-fit (equal to the result without --recover).
void apply_prune_steps(ir::Graph& g, const PruneSteps& s, const quant::CalibSource& calib, ir::Graph* unrecovered = nullptr);

}  // namespace kiln::cli
