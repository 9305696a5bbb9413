// The reference backend's kernel table: one row per op it can run. A missing
// row makes supports() say no, with the op's name; never a crash.
// Kernels live in one file per op family beside this one.
#include <array>

#include "backends/reference/kernel.h"

namespace kiln::ref {

// --- elementwise.cpp: unary math, activations, binary arithmetic, compare, logic, cast
// --- nn.cpp / conv.cpp / pool.cpp / norm.cpp: conv, pooling, normalization, gemm, matmul, softmax, losses
// --- reduce.cpp: reductions, arg reductions, cumsum, topk
// --- shape_ops.cpp / resize.cpp: reshape, transpose, concat, split, slice, gather, scatter, pad, resize ...
// --- quant.cpp: QuantizeLinear family

namespace {
struct KernelRow {
  ir::OpKind op;
  KernelFn fn;
};

const KernelRow kRows[] = {
    {ir::OpKind::kIdentity, nullptr},  // placeholder row removed as families land
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
