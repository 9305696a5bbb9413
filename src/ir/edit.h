// Graph editing for passes: add nodes and constants, redirect uses, restore
// topological order, drop dead nodes. Passes append freely, then call
// topo_sort() (and infer_graph()) once at the end.
// Tested in tests/unit/test_ir_edit.cpp.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::ir {

// Appends a node with fresh output values named "<name>_out<i>"; returns the outputs.
std::vector<ValueId> append_node(Graph& g, const std::string& name, OpKind op, std::vector<ValueId> inputs,
                                 Attrs attrs, int num_outputs = 1);
// A scalar / 1-D constant.
ValueId add_scalar_f32(Graph& g, const std::string& name, float v);
ValueId add_scalar(Graph& g, const std::string& name, DType dt, int64_t v);
ValueId add_tensor_f32(Graph& g, const std::string& name, const std::vector<float>& v);
// Every use of `from` (node inputs, graph outputs) becomes `to`, except inputs of node index `except`.
void replace_uses(Graph& g, ValueId from, ValueId to, int except = -1);
// Graph outputs named by the user (e.g. "logits") keep their names when a pass
// redirects them to a new value: output k takes names[k] again, and the value
// that held it is renamed. Call with the names taken before the pass.
std::vector<std::string> output_names(const Graph& g);
void keep_output_names(Graph& g, const std::vector<std::string>& names);
// Nodes reading value `id` (indices into g.nodes).
std::vector<int> consumers(const Graph& g, ValueId id);
// Reorders nodes so each comes after its producers; error on a cycle.
Result<void> topo_sort(Graph& g);
// Removes nodes none of whose outputs is used; returns how many.
int remove_dead_nodes(Graph& g);
// Drops values no node, graph input or graph output refers to (left over
// weights and intermediates of rewritten patterns), renumbering the rest;
// returns how many of the dropped values were constants.
int remove_unused_values(Graph& g);

}  // namespace kiln::ir
