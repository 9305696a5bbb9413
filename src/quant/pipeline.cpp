#include "quant/pipeline.h"

#include <cmath>

#include "passes/relu_before_maxpool.h"

namespace kiln::quant {

Result<ir::Graph> prepare_for_quantization(ir::Graph g) {
  KILN_TRY(passes::relu_before_maxpool(g));
  return g;
}

Result<ir::Graph> build_quantized(const ir::Graph& prepared, const BuildOptions& o,
                                  const std::map<ir::ValueId, Observer>& observers) {
  ir::Graph g = prepared;
  std::map<ir::ValueId, ActParams> act;
  if (o.config.mode == QuantMode::kStatic) {
    ActQuantOptions ao = o.act;
    ao.bits = o.config.act_bits;
    ao.is_signed = o.config.act_signed;
    for (ir::ValueId v : activation_values(prepared, o.config)) {
      auto it = observers.find(v);
      if (it == observers.end())
        return make_error("activation '" + prepared.value(v).name + "' was not calibrated");
      // Graph outputs (logits) keep their full range: clipping the largest
      // logit changes the argmax. Measured on LeNet W8A8: entropy on every
      // value including the logits cost 5.3 points of top-1; on all but the
      // logits it costs about as little as min-max.
      ActQuantOptions vo = ao;
      for (auto out : prepared.outputs)
        if (out == v) vo.method = ActMethod::kMinMax;
      KILN_ASSIGN(QuantParams p, choose_activation_params(it->second, vo, prepared.value(v).name));
      act[v] = ActParams{p.scale[0], p.zero_point[0]};
    }
  }
  KILN_TRY(quantize_graph(g, o.config, act));
  return g;
}

double sqnr_db(const Tensor& ref, const Tensor& test) {
  double sig = 0, noise = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    double r = ref.as_double(i), d = r - test.as_double(i);
    sig += r * r;
    noise += d * d;
  }
  if (noise == 0) return INFINITY;
  return 10.0 * std::log10(sig / noise);
}

}  // namespace kiln::quant
