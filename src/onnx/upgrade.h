// Brings a node from any supported opset (7..21) to kiln's canonical form,
// which is the newest ONNX form: attributes that later opsets turned into
// inputs (Reduce*/Squeeze/Unsqueeze axes, Split sizes, Slice/Pad/Clip/TopK
// operands, Upsample/Resize scales) become constant inputs; renamed ops are
// renamed; older default attribute semantics are made explicit.
// Tested by the conformance suite (opset-versioned cases) and tests/unit/test_onnx.cpp.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ir/attr_value.h"
#include "ir/graph.h"

namespace kiln::onnx_io {

struct UpgradeCtx {
  std::string op_type;               // may be renamed
  ir::AttrMap attrs;                 // may lose attributes that become inputs
  std::vector<ir::ValueId> inputs;   // may gain constant inputs
  int opset = 0;
  // Opset < 7 binary ops with broadcast=1 and an explicit axis align B's dims
  // with A's starting at `axis`; the importer turns that into an Unsqueeze of B.
  int64_t legacy_broadcast_axis = -1;
  // Makes a constant value in the graph (name derived from the node).
  std::function<ir::ValueId(const std::string& suffix, Tensor)> add_constant;
};

Result<void> upgrade_node(UpgradeCtx& c);

Tensor tensor_i64(const std::vector<int64_t>& v);
Tensor tensor_f32(const std::vector<float>& v);
Tensor scalar_f32(float v);

}  // namespace kiln::onnx_io
