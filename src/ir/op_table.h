// OpInfo: one row per OpKind (name, arity, attribute parser, shape inference).
// The table itself is ir/op_table.cpp. Tested in tests/unit/test_ir.cpp.
#pragma once
#include <string_view>

#include "ir/attrs.h"
#include "ir/infer.h"
#include "ir/op_kind.h"

namespace kiln::ir {

using ParseAttrsFn = Result<Attrs> (*)(const AttrMap&);

struct OpInfo {
  OpKind kind;
  std::string_view name;
  int min_inputs, max_inputs;    // max -1: variadic
  int min_outputs, max_outputs;  // max -1: variadic
  ParseAttrsFn parse;
  InferFn infer;
  // "" for ONNX's default domain; "kiln" for kiln's own ops, which no ONNX
  // runtime knows (the exporter refuses them).
  std::string_view domain = {};
};

const OpInfo& op_info(OpKind k);
std::string_view op_domain(OpKind k);

}  // namespace kiln::ir
