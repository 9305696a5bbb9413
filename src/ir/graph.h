// ir::Graph / Node / Value: what to compute. Values are referred to by index
// (ValueId); nodes are kept in topological order. A Value with a defined
// `constant` is an initializer. Symbolic dims are negative and named in
// Graph::symbols. Printing: ir/print.cpp; checking: ir/verify.cpp.
// Tested in tests/unit/test_ir.cpp.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/attrs.h"
#include "ir/op_kind.h"

namespace kiln::ir {

using ValueId = int32_t;
inline constexpr ValueId kNoValue = -1;

struct ValueType {
  DType dtype = DType::kUndefined;
  Shape shape;
  bool rank_known = true;  // false: nothing is known about the shape
};

struct Value {
  std::string name;
  ValueType type;
  Tensor constant;  // defined for initializers
  bool is_constant() const { return constant.defined(); }
};

struct Node {
  std::string name;
  OpKind op = OpKind::kIdentity;
  int opset = 0;  // opset of the node's domain in the source model (informational)
  std::vector<ValueId> inputs;  // kNoValue marks an omitted optional input
  std::vector<ValueId> outputs;
  Attrs attrs;
  template <class A>
  const A& attr() const {
    return std::get<A>(attrs);
  }
};

struct Graph {
  std::string name;
  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<ValueId> inputs;
  std::vector<ValueId> outputs;
  std::vector<std::string> symbols;  // symbol i is dim value -(i+1)
  std::map<std::string, std::string> metadata;

  ValueId add_value(std::string name, ValueType type = {});
  ValueId add_constant(std::string name, Tensor t);
  // Dim value for a named symbol, creating it on first use.
  int64_t symbol(const std::string& name);
  int64_t fresh_symbol();
  Value& value(ValueId id) { return values[size_t(id)]; }
  const Value& value(ValueId id) const { return values[size_t(id)]; }
  // A value name not used yet, starting from `base`.
  std::string unique_name(const std::string& base) const;
  // "node 'conv1' (Conv)": the prefix every diagnostic about a node starts with.
  std::string describe(const Node& n) const;
  // Index of the node producing each value (-1 for inputs/constants).
  std::vector<int32_t> producers() const;
  // Number of node inputs + graph outputs that use each value.
  std::vector<int32_t> use_counts() const;
  // Bytes of the constants in use (the model's parameter size).
  int64_t constant_bytes() const;
};

}  // namespace kiln::ir
