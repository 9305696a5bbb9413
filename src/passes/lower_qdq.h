// lower_qdq: ONNX QDQ graph (fake quant: QuantizeLinear/DequantizeLinear
// around float Conv/Gemm/MatMul) -> true integer execution with kiln's QConv /
// QGemm / QAdd (ir/ops/kiln_quant.h), requantizing as quant/quant_params.h defines.
// Only exact, fully constant patterns are rewritten; anything else is left as
// is and still runs in float. Session runs it by default (SessionOptions::lower_qdq).
// Tested in tests/unit/test_lower_qdq.cpp.
//
// Rewrites, repeated until none applies (x: int8/uint8 activations with one
// f32 scale and zero point; w: constant int8/uint8/int4/uint4 weights with zero
// point 0 and per-tensor or per-output-channel scales; b: constant bias):
//   a. DQ(x) -> Conv(., DQ(w), [DQ(b)]) [-> Relu] -> Q(y)      => QConv(x, w, b) {fused_relu}
//   b. DQ(x) -> Gemm(., DQ(w), [DQ(b)]) [-> Relu] -> Q(y)      => QGemm {transB}
//      (alpha = beta = 1, transA = 0; C of N elements)
//      DQ(x) -> MatMul(., DQ(w 2-D)) [-> Add(DQ(b))] [-> Relu] -> Q(y) => QGemm
//   c. DQ(x) -> op, op in {MaxPool, GlobalMaxPool, Flatten, Reshape, Transpose,
//      Squeeze, Unsqueeze, Identity}  => op(x) -> DQ. Exact: these ops move or
//      select elements, and dequantization is monotonic (scale > 0).
//      DQ(x) -> Relu                  => Max(x, x_zp) -> DQ (an ONNX op, exact);
//      QConv/QGemm -> Max(., y_zp)    => QConv/QGemm {fused_relu = 1}.
//      DQ(x) -> Clip(lo, hi) -> Q, same params => Clip(x, Q(lo), Q(hi)) (exact
//      because Q is monotonic; ReLU6).
//      GlobalAveragePool, AveragePool, ... are not exact in integers: left in float.
//   d. Q(DQ(x)) with identical (scale, zero point, dtype) => x (exact for
//      normal scales), then dead nodes are removed.
//   e. DQ(a) + DQ(b) [-> Relu] -> Q(y), a and b of one shape
//      => QAdd(a, b) {fused_relu}: the same float chain in one kernel (the
//      residual adds of ResNets); broadcasting adds stay in float.
// A bias whose DQ scale is not x_scale * w_scale[c] (within 1 ulp, which covers
// a product rounded in float or in double), or that is a float constant, is
// re-derived: b_q = round_half_even(b_real / (x_scale * w_scale[c])) in double.
// Requantization multipliers that make_requant cannot represent leave the
// pattern in float.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Returns the number of rewrites (patterns a-e) applied. The graph is
// re-inferred and stays in topological order.
Result<int> lower_qdq(ir::Graph& g);

}  // namespace kiln::passes
