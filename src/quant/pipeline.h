// Quantization end to end, as the CLI and the sweep use it:
//   prepare (graph rewrites that make quantization fuse better) ->
//   calibrate (observers on the activations the config needs) ->
//   build (QDQ graph from config + observers) -> measure.
// Calibration runs once; many configs can be built from the same observers.
// Tested in tests/unit/test_quantize.cpp and tests/models/test_quantize_lenet.cpp.
#pragma once
#include <map>

#include "ir/graph.h"
#include "quant/observer.h"
#include "quant/quantize.h"

namespace kiln::quant {

// Graph rewrites that are exact in float and help quantization (Relu moved
// before MaxPool so it fuses with the Conv).
Result<ir::Graph> prepare_for_quantization(ir::Graph g);

struct BuildOptions {
  QuantizeConfig config;
  ActQuantOptions act;  // activation Delta method; bits follow config.act_bits
};

// A quantized copy of `prepared`. `observers` must cover activation_values()
// in static mode (keys are ValueIds of `prepared`).
Result<ir::Graph> build_quantized(const ir::Graph& prepared, const BuildOptions& o,
                                  const std::map<ir::ValueId, Observer>& observers);

// Signal-to-quantization-noise ratio in dB of `test` against `ref` (same shapes).
double sqnr_db(const Tensor& ref, const Tensor& test);

}  // namespace kiln::quant
