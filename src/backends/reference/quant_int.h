// Exact integer products shared by the ONNX integer kernels (quant_linear.cpp:
// ConvInteger, QLinearConv, MatMulInteger, QLinearMatMul) and kiln's QConv /
// QGemm (quant_kiln.cpp): zero points are subtracted first, products are summed
// exactly and the sums wrap to int32 (two's complement, as int32 hardware
// accumulators do). Tests: tests/unit/test_ref_reduce_quant.cpp, test_lower_qdq.cpp.
#pragma once
#include <cstdint>
#include <vector>

#include "backends/reference/kernel.h"
#include "ir/ops/nn.h"

namespace kiln::ref {

// A one-element parameter's value (error naming `what` otherwise).
Result<double> scalar_param(const KernelCtx& c, const Tensor& t, const char* what);

// (x - x_zp) conv (w - w_zp) + bias with the geometry of `a`, as int32 in the
// output layout [N, M, out...]. x_zp is per tensor; w_zp per tensor or per
// output channel; bias (int32) 1-D per output channel; nullptr: absent.
Result<std::vector<int32_t>> int_conv(const KernelCtx& c, const ir::ConvAttrs& a, const Tensor& x, const Tensor* xzp,
                                      const Tensor& w, const Tensor* wzp, const Tensor* bias);

// out[m, n] = sum_k a[m, k] * b[k, n] (row-major), exact, wrapped to int32.
// `row` is scratch space reused across calls.
void int_matmul_2d(const int32_t* a, const int32_t* b, int64_t m, int64_t k, int64_t n, int32_t* out,
                   std::vector<int64_t>& row);

}  // namespace kiln::ref
