// Attributes of kiln's own integer ops (domain "kiln"), which passes/lower_qdq
// produces from ONNX QDQ patterns: QConv and QGemm, requantizing exactly as
// quant/quant_params.h defines, and QAdd. They have no ONNX form (the exporter refuses them).
// Shape inference: ir/ops/kiln_quant.cpp. Kernels: backends/reference/quant_kiln.cpp.
#pragma once
#include "ir/ops/nn.h"

namespace kiln::ir {

// QConv(x_q, x_scale, x_zp, w_q, w_scale, w_zp, y_scale, y_zp [, bias_q]):
// the Conv attributes, plus fused_relu = 1 when the output is clamped below at
// y_zp (the quantized real 0), i.e. a Relu folded into the requantization.
struct QConvAttrs : ConvAttrs {
  int64_t fused_relu = 0;
  template <class V> void fields(V& v) {
    ConvAttrs::fields(v);
    v("fused_relu", fused_relu);
  }
};

// QGemm(a_q, a_scale, a_zp, b_q, b_scale, b_zp, y_scale, y_zp [, bias_q]):
// a is [..., M, K]; b is [K, N] (transB = 0) or [N, K] (transB = 1).
struct QGemmAttrs {
  int64_t transB = 0;
  int64_t fused_relu = 0;
  template <class V> void fields(V& v) {
    v("transB", transB);
    v("fused_relu", fused_relu);
  }
};

// QAdd(a_q, a_scale, a_zp, b_q, b_scale, b_zp, y_scale, y_zp): a residual
// add of two 8-bit tensors of one shape (no broadcasting), exactly the float
// chain it replaces: y = Q(DQ(a) + DQ(b)), or Q(Relu(DQ(a) + DQ(b))) with
// fused_relu = 1; each step rounds as the ONNX ops do (DQ: float(q - zp) *
// scale; the add in float; Q: float division, round half to even, saturate).
// Per-tensor parameters only.
struct QAddAttrs {
  int64_t fused_relu = 0;
  template <class V> void fields(V& v) { v("fused_relu", fused_relu); }
};

}  // namespace kiln::ir
