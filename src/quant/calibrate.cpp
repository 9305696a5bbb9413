// calibrate(): the float model with its outputs replaced by the observed
// values, run batch by batch; results do not depend on batch size or order
// (Observer histograms merge exactly).
#include "quant/calibrate.h"

#include "runtime/session.h"

namespace kiln::quant {

Result<std::map<ir::ValueId, Observer>> calibrate(const ir::Graph& g, const std::vector<ir::ValueId>& values,
                                                  CalibSource& src, int64_t max_samples, ProgressFn progress,
                                                  const CalibrateOptions& opts) {
  std::map<ir::ValueId, Observer> obs;
  std::vector<ir::ValueId> run_values;  // non-constant values, each once, as outputs of the copy
  for (auto id : values) {
    if (id < 0 || size_t(id) >= g.values.size())
      return make_error("calibration: value id " + std::to_string(id) + " is not in the graph");
    const ir::Value& v = g.value(id);
    if (v.type.dtype != DType::kUndefined && !is_float(v.type.dtype))
      return make_error("calibration: value '" + v.name + "' is " + std::string(dtype_name(v.type.dtype)) +
                        "; only float values can be calibrated");
    if (obs.count(id)) continue;
    obs.emplace(id, Observer(opts.bins));
    if (v.is_constant()) {
      auto r = obs.at(id).observe(v.constant);
      if (!r.ok()) return make_error("calibration: value '" + v.name + "': " + r.error().message);
    } else {
      run_values.push_back(id);
    }
  }
  if (max_samples < 0) return make_error("calibration: sample count " + std::to_string(max_samples) + " is negative");
  if (max_samples > src.size())
    return make_error("calibration: asked for " + std::to_string(max_samples) + " samples; the calibration set (" +
                      src.description() + ") has " + std::to_string(src.size()));
  if (run_values.empty()) return obs;

  ir::Graph copy = g;
  copy.outputs = run_values;
  runtime::SessionOptions so;
  so.backend = opts.backend;
  KILN_ASSIGN(runtime::Session session, runtime::Session::create(std::move(copy), so));
  auto on_batch = [&](std::span<const Tensor> inputs, int64_t first, int64_t n) -> Result<void> {
    auto out = session.run(inputs);
    if (!out.ok())
      return make_error("calibration batch [" + std::to_string(first) + ", " + std::to_string(first + n) +
                        "): " + out.error().message);
    for (size_t i = 0; i < run_values.size(); ++i) {
      auto r = obs.at(run_values[i]).observe((*out)[i]);
      if (!r.ok()) return make_error("calibration: value '" + g.value(run_values[i]).name + "': " + r.error().message);
    }
    return {};
  };
  KILN_TRY(src.for_each_batch(max_samples, on_batch, progress));
  return obs;
}

}  // namespace kiln::quant
