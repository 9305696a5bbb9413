// Structured (channel / filter) pruning: removes whole output channels of a
// Conv (group 1) or output units of a Gemm / MatMul, chosen by the L1 or L2
// norm of their weights, and the matching input channels of every consumer,
// so the result is a smaller dense model (fewer FLOPs, fewer parameters).
//
// A layer is prunable when its output reaches only, through channel-wise ops
// (Relu-like activations, MaxPool, AveragePool, GlobalAveragePool,
// BatchNormalization with constant parameters (sliced too), Identity,
// Dropout, and one Flatten of a static [N, C, H, W] tensor, where channel c
// becomes features c*H*W .. (c+1)*H*W-1), layers that reduce over it: Conv
// (group 1, as input 0), Gemm (transA 0) or 2-D MatMul with constant weights.
// Anything else on the way (Add / Concat groups, reshapes, graph outputs,
// shared weights) leaves the layer unpruned, with the reason reported; pruning
// those groups consistently is future work.
// Tested in tests/unit/test_prune.cpp and tests/models/test_prune_models.cpp.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::prune {

struct ChannelPruneOptions {
  double ratio = 0.3;                         // fraction of each layer's output channels removed, [0, 1)
  std::map<std::string, double> layer_ratio;  // per-layer overrides (node name)
  int norm = 1;                               // 1: L1, 2: L2
  std::set<std::string> exclude;              // node names or op names kept whole
};

// One consumer whose input channels follow a pruned layer.
struct ChannelSink {
  std::string node;
  int64_t spread = 1;  // features per channel (a Flatten of H*W in between)
};

struct PrunedLayer {
  std::string node;
  int64_t before = 0;
  std::vector<int64_t> kept;  // kept output channels, ascending (indices before pruning)
  std::vector<ChannelSink> sinks;
  std::vector<std::string> batchnorms;  // BatchNormalization nodes on the way (sliced along)
};

struct ChannelPruneResult {
  std::vector<PrunedLayer> layers;
  std::vector<std::string> skipped;  // "node: reason"
};

// The layers that could be pruned and those that cannot (with reasons);
// the graph is not changed. Shapes must be inferred.
ChannelPruneResult find_prunable_channels(const ir::Graph& g, const std::set<std::string>& exclude = {});

// Prunes in place and re-infers shapes. Errors: ratio outside [0, 1), an
// unknown layer in layer_ratio, nothing prunable.
Result<ChannelPruneResult> prune_channels(ir::Graph& g, const ChannelPruneOptions& o);

// Removes exactly the given channels' complements: `keep[node]` = kept output
// channels of that prunable layer (the building block of prune_channels, and of
// searches that choose channels themselves).
Result<ChannelPruneResult> apply_channel_plan(ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& keep);

}  // namespace kiln::prune
