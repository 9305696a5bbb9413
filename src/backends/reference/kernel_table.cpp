// The reference backend's kernel table: one row per op it can run. A missing
// row makes supports() say no, with the op's name; never a crash.
// Kernels live in one file per op family beside this one.
#include <array>

#include "backends/reference/kernels.h"

namespace kiln::ref {

namespace {
struct KernelRow {
  ir::OpKind op;
  KernelFn fn;
};

using ir::OpKind;
const KernelRow kRows[] = {
    // elementwise.cpp
    {OpKind::kAdd, run_add},
    {OpKind::kRelu, run_relu},
    // end elementwise
    // conv.cpp, pool.cpp
    // end conv/pool
    // linalg.cpp, norm.cpp, softmax.cpp, loss.cpp
    // end linalg/norm
    // shape_ops.cpp, resize.cpp
    // end shape
    // reduce.cpp, quant.cpp
    // end reduce/quant
};
}  // namespace

KernelFn find_kernel(ir::OpKind op) {
  static const auto table = [] {
    std::array<KernelFn, size_t(ir::OpKind::kCount)> t{};
    for (const auto& r : kRows) t[size_t(r.op)] = r.fn;
    return t;
  }();
  return table[size_t(op)];
}

}  // namespace kiln::ref
