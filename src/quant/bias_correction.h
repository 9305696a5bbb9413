// Bias correction without training: quantizing W shifts the expected output of
// a layer by E[(W_q - W) x]. For each quantized Conv/Gemm, in graph order (so
// earlier corrections are seen by later layers), measure the per-output-channel
// mean of the float and the quantized layer outputs on calibration data and add
// the difference to the bias (int32 bias in static mode, float in weight-only).
// Tested in tests/unit/test_quantize.cpp; gain shown by `kiln quantize --bias-correction`.
#pragma once
#include "ir/graph.h"
#include "quant/calib_data.h"

namespace kiln::quant {

// `quantized` came from quantize_graph(`prepared`) (node outputs keep their ids).
// Returns the number of layers corrected.
Result<int> correct_bias(ir::Graph& quantized, const ir::Graph& prepared, const CalibSource& calib, int64_t samples);

}  // namespace kiln::quant
