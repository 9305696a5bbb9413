#include "passes/fuse_matmul_bias.h"

#include <cstring>

#include "ir/edit.h"
#include "ir/ops/nn.h"
#include "ir/ops/shape_ops.h"
#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::OpKind;

ir::ValueId shape_constant(ir::Graph& g, const std::string& name, const Shape& s) {
  Tensor t = Tensor::create(DType::kI64, {int64_t(s.size())}).value();
  std::memcpy(t.data<int64_t>(), s.data(), sizeof(int64_t) * s.size());
  return g.add_constant(name, std::move(t));
}

bool rewrite(Snapshot& s, int i) {
  ir::Graph& g = s.g;
  const ir::Node mm = g.nodes[size_t(i)];
  if (mm.inputs.size() != 2) return false;
  const Tensor* w = s.constant(mm.inputs[1]);
  if (!w || w->dtype() != DType::kF32 || w->rank() != 2) return false;
  const ir::ValueType xt = g.value(mm.inputs[0]).type;  // copies: adding values reallocates
  if (xt.dtype != DType::kF32 || !xt.rank_known || xt.shape.size() < 2 || !is_static(xt.shape)) return false;
  if (s.constant(mm.inputs[0])) return false;
  ir::ValueId y = mm.outputs[0];
  int a = next(s, y, OpKind::kAdd);
  if (a < 0) return false;
  const ir::Node add = g.nodes[size_t(a)];
  ir::ValueId bv = other_input(add, y);
  const Tensor* b = s.constant(bv);
  const int64_t k = w->dim(0), n = w->dim(1);
  if (!b || b->dtype() != DType::kF32 || b->numel() != n) return false;
  // The bias must not add dims in front of the product's shape.
  if (b->rank() > int64_t(xt.shape.size())) return false;
  for (int64_t d = 0; d + 1 < b->rank(); ++d)
    if (b->dim(d) != 1) return false;
  const ir::ValueType out = g.value(add.outputs[0]).type;
  if (!out.rank_known || !is_static(out.shape)) return false;
  int64_t m = 1;
  for (size_t d = 0; d + 1 < xt.shape.size(); ++d) m *= xt.shape[d];
  ir::ValueId bias = g.add_constant(add.name + "_bias", b->reshaped({n}));
  ir::ValueId x2 = mm.inputs[0];
  if (xt.shape.size() != 2)
    x2 = ir::append_node(g, mm.name + "_rows", OpKind::kReshape,
                         {mm.inputs[0], shape_constant(g, mm.name + "_rows_shape", {m, k})}, ir::ReshapeAttrs{})[0];
  ir::GemmAttrs ga;
  ir::ValueId y2 = ir::append_node(g, mm.name + "_gemm", OpKind::kGemm, {x2, mm.inputs[1], bias}, ga)[0];
  if (xt.shape.size() != 2)
    ir::append_node(g, mm.name + "_unrows", OpKind::kReshape, {y2, shape_constant(g, mm.name + "_out_shape", out.shape)},
                    ir::ReshapeAttrs{});
  // The Add's output now comes from the new nodes.
  g.nodes.back().outputs[0] = add.outputs[0];
  s.kill(i);
  s.kill(a);
  return true;
}

}  // namespace

Result<int> fuse_matmul_bias(ir::Graph& g) { return rewrite_each(g, OpKind::kMatMul, &rewrite); }

}  // namespace kiln::passes
