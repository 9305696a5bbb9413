// Structured (channel / filter) pruning: removes whole output channels of
// Conv (group 1) / Gemm / 2-D MatMul layers, chosen by the L1 or L2 norm of
// their weights, and the matching input channels of every consumer, so the
// result is a smaller dense model (fewer FLOPs, fewer parameters).
//
// Channels are pruned per GROUP: the set of layers whose outputs must lose the
// same channels because they meet, through channel-wise ops (Relu-like
// activations, Clip, pools, GlobalAveragePool, BatchNormalization and
// depthwise Conv, whose parameters are sliced along), in elementwise Add / Sub
// / Mul / Max / Min of equal shapes (residual connections). A group's channel
// importance is the sum of its layers' norms. Its channels end in consumer
// layers (Conv group 1 as input 0, Gemm transA 0, 2-D MatMul, with constant
// weights; after one Flatten of a static [N, C, H, W] tensor channel c is
// features c*H*W .. (c+1)*H*W-1), which lose the same input channels.
// A group is left whole, with the reason reported, when its channels reach
// anything else: Concat, reshapes, graph outputs, graph inputs in an Add,
// shared weights, broadcasting operands.
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
  std::map<std::string, double> layer_ratio;  // per-group overrides (any producer's node name)
  int norm = 1;                               // 1: L1, 2: L2
  std::set<std::string> exclude;              // node names or op names: their groups are kept whole
};

// One consumer whose input channels follow a pruned layer.
struct ChannelSink {
  std::string node;
  int64_t spread = 1;  // features per channel (a Flatten of H*W in between)
};

// One channel group (named after its first layer).
struct PrunedLayer {
  std::string node;                    // the group's name: its first producing layer
  std::vector<std::string> producers;  // layers whose output channels go (graph order)
  int64_t before = 0;
  std::vector<int64_t> kept;  // kept output channels, ascending (indices before pruning)
  std::vector<ChannelSink> sinks;
  std::vector<std::string> channelwise;  // BatchNormalization / depthwise Conv nodes sliced along
};

struct ChannelPruneResult {
  std::vector<PrunedLayer> layers;
  std::vector<std::string> skipped;  // "node: reason"
  // The group whose producers include `node`, or nullptr.
  const PrunedLayer* group_of(const std::string& node) const;
};

// The layers that could be pruned and those that cannot (with reasons);
// the graph is not changed. Shapes must be inferred.
ChannelPruneResult find_prunable_channels(const ir::Graph& g, const std::set<std::string>& exclude = {});

// Prunes in place and re-infers shapes. Errors: ratio outside [0, 1), an
// unknown layer in layer_ratio, nothing prunable.
Result<ChannelPruneResult> prune_channels(ir::Graph& g, const ChannelPruneOptions& o);

// Keeps exactly the given channels: `keep[name]` = kept output channels of the
// group named (or containing) `name` (the building block of prune_channels,
// and of searches that choose channels themselves).
Result<ChannelPruneResult> apply_channel_plan(ir::Graph& g, const std::map<std::string, std::vector<int64_t>>& keep);

}  // namespace kiln::prune
