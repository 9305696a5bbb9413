// Shape and dtype inference: one function per op (listed in ir/op_table.cpp),
// used twice: statically over the graph (dims may be symbolic, values may be
// unknown) and at run time with concrete shapes and input values, to size
// outputs. One source of truth for every op's output shape.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir {

struct InferCtx {
  const Node& node;
  std::vector<ValueType> in;            // dtype kUndefined: omitted optional input
  std::vector<const Tensor*> in_value;  // known contents, else nullptr
  std::vector<ValueType> out;           // filled by the infer function
  std::function<int64_t()> fresh_dim;   // a new symbolic dim
  std::string where;                    // "node 'x' (Op)" for messages

  size_t num_inputs() const { return in.size(); }
  bool has(size_t i) const { return i < in.size() && in[i].dtype != DType::kUndefined; }
  const Tensor* value(size_t i) const { return i < in_value.size() ? in_value[i] : nullptr; }
  template <class A>
  const A& attr() const {
    return node.attr<A>();
  }
  Error fail(const std::string& msg) const { return make_error(where + ": " + msg); }
  // Output i gets an unknown shape of the given rank (or unknown rank if rank < 0).
  void set_unknown(size_t i, DType dt, int64_t rank);
};

using InferFn = Result<void> (*)(InferCtx&);

// Output count ONNX would give a node that leaves trailing outputs unnamed is
// handled by the importer; infer functions fill ctx.out[0..node.outputs.size()).

// Run inference for one node of `g` with static knowledge (constants only).
Result<void> infer_node(Graph& g, Node& n);
// Run inference over the whole graph in order, setting every value's type.
Result<void> infer_graph(Graph& g);

}  // namespace kiln::ir
