// The quantize pass: float graph -> standard ONNX QDQ graph.
//   static (W8A8 etc.): activations get QuantizeLinear/DequantizeLinear pairs
//     with calibrated (scale, zero point); weights become integer constants
//     behind DequantizeLinear (per-channel or per-tensor); biases int32 with
//     scale Delta_x * Delta_w. Relu after Conv/Gemm is quantized at its output,
//     so lowering (passes/lower_qdq) fuses it. Data-movement ops between
//     quantized values (MaxPool, Flatten, Reshape, ...) keep their input's params.
//   weight-only: only weights are quantized (2..8 bits, per channel or group).
//   dynamic: MatMul/Gemm with constant weights become DynamicQuantizeLinear ->
//     MatMulInteger -> scale (activations quantized at run time).
// Executed as-is, a QDQ graph is the fake-quant simulation; Session lowers it
// to integer kernels. Tested in tests/unit/test_quantize.cpp and tests/models.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "quant/quant_params.h"

namespace kiln::quant {

class CalibSource;  // calib_data.h

enum class QuantMode { kStatic, kWeightOnly, kDynamic };

struct QuantizeConfig {
  QuantMode mode = QuantMode::kStatic;
  int weight_bits = 8;
  int act_bits = 8;
  // Activation storage: uint8 with a zero point (the U8S8 form ONNX Runtime's
  // CPU kernels are built around) or int8.
  bool act_signed = false;
  std::string weight_method = "maxabs";  // maxabs | percentile | mse | gptq
  std::string act_method = "percentile"; // minmax | percentile | entropy | mse
  double percentile = 99.99;
  bool per_channel = true;
  bool weight_symmetric = true;           // false: weight zero points (weight-only mode)
  // Store symmetric int8 weights as uint8 with zero point 128: the same
  // integers, but ONNX Runtime's x86 kernels multiply u8 x u8 exactly where
  // u8 x s8 saturates 16-bit pair sums (measured: its fused QLinearConv then
  // disagrees with its own unfused path on 4.3% of LeNet's test images).
  // TensorRT wants the signed form. passes/lower_qdq maps it back to int8.
  bool unsigned_weights = false;
  int64_t group_size = 0;                 // weight-only: groups along the input-channel axis
  std::set<std::string> exclude;          // node names or op types kept in float
  std::map<std::string, int> layer_bits;  // per-node weight bits (mixed precision)
  // weight_method "gptq" (gptq.h): the rounding uses each layer's input
  // statistics over these calibration samples (required then; not owned).
  const CalibSource* calib = nullptr;
  int64_t calib_samples = 0;    // 0: all of calib
  // true: statistics from the graph with the earlier layers already quantized
  // (what the layer will see); false: from the float graph.
  bool gptq_sequential = true;
};

// Conv / Gemm / MatMul nodes with constant weights that the config would quantize.
std::vector<int> quantizable_nodes(const ir::Graph& g, const QuantizeConfig& cfg);
// For static mode: the float values whose ranges must be calibrated.
std::vector<ir::ValueId> activation_values(const ir::Graph& g, const QuantizeConfig& cfg);

struct ActParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// Rewrites g in place. `act` holds calibrated params for activation_values()
// (static mode only). Errors name the node when a weight cannot be quantized.
Result<void> quantize_graph(ir::Graph& g, const QuantizeConfig& cfg, const std::map<ir::ValueId, ActParams>& act);

// Parameter bytes counting sub-byte weights at their nominal width (a 3-bit
// weight stored in an int8 container counts 3/8 byte), from the
// "kiln.bits.<constant>" metadata the pass records.
int64_t nominal_parameter_bytes(const ir::Graph& g);

}  // namespace kiln::quant
