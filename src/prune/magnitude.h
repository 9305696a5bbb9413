// Unstructured and N:M magnitude pruning of the constant float weights of
// Conv / Gemm / MatMul (input 1): weights are set to zero in place, so the
// pruned model is an ordinary dense model with zeros that the .kiln container
// (onnx/kiln_file.h) stores as bitmasks and sparse kernels can exploit.
// Biases are never pruned. Tested in tests/unit/test_prune.cpp.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::prune {

// A prunable layer: node index and its weight value.
struct WeightLayer {
  int node = -1;
  ir::ValueId weight = ir::kNoValue;
  std::string name;  // node name
};

// Conv / Gemm / MatMul nodes with a constant float32 weight, not excluded (by
// node name or op name), in graph order.
std::vector<WeightLayer> prunable_layers(const ir::Graph& g, const std::set<std::string>& exclude = {});

struct LayerSparsity {
  std::string node;
  int64_t params = 0, zeros = 0;
  double sparsity() const { return params ? double(zeros) / double(params) : 0.0; }
};

struct MagnitudeOptions {
  double sparsity = 0.5;  // fraction of weights set to zero, in [0, 1)
  // true: one magnitude threshold over all layers (the smallest weights of the
  // whole model go); false: every layer to `sparsity` on its own.
  bool global = true;
  std::map<std::string, double> layer_sparsity;  // per-layer targets (override `sparsity`; per-layer mode)
  std::set<std::string> exclude;
};

// Returns the sparsity of every layer afterwards. Errors: sparsity outside [0, 1), unknown layer name, nothing prunable.
Result<std::vector<LayerSparsity>> prune_magnitude(ir::Graph& g, const MagnitudeOptions& o);

// N:M pattern: in every group of M consecutive weights along the reduction
// (input) dimension of each output unit, keep the N largest in magnitude.
// Conv [O, I, kh, kw]: groups along I at each kernel position; Gemm/MatMul:
// along K. The reduction length must be a multiple of M (else that layer is
// skipped and listed in `skipped`).
Result<std::vector<LayerSparsity>> prune_n_m(ir::Graph& g, int n, int m, const std::set<std::string>& exclude,
                                             std::vector<std::string>* skipped = nullptr);

// Sparsity of every prunable layer as it stands.
std::vector<LayerSparsity> layer_sparsity(const ir::Graph& g, const std::set<std::string>& exclude = {});

}  // namespace kiln::prune
