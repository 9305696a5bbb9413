#include "quant_measure.h"

#include <onnx/onnx_pb.h>

#include <filesystem>

#include "common.h"
#include "onnx/export.h"
#include "quant/mixed_precision.h"
#include "report/accuracy.h"
#include "runtime/session.h"

namespace kiln::cli {

Measurer::Measurer(const ir::Graph& fp32, const std::string& fp32_path, const quant::CalibSource& calib,
                   int64_t eval_limit)
    : fp32_(fp32), fp32_path_(fp32_path), calib_(calib), eval_limit_(eval_limit) {
  if (report::check_image_classifier(fp32).ok() && calib.labels().defined()) {
    auto t = io::load_fashion_mnist(io::kFashionMnistDir, "t10k");
    if (t.ok()) {
      test_ = std::move(*t);
      has_labels_ = true;
    }
  }
}

namespace {
int64_t serialized_bytes(const ir::Graph& g) {
  onnx::ModelProto m;
  if (!onnx_io::export_model(g, &m).ok()) return -1;
  return int64_t(m.ByteSizeLong());
}
}  // namespace

Measured Measurer::measure_float() {
  if (float_done_) return float_;
  float_ = measure(fp32_, fp32_path_);
  float_done_ = true;
  return float_;
}

Measured Measurer::measure(const ir::Graph& q, const std::string& path, bool integer) {
  Measured r;
  r.param_bytes = quant::nominal_parameter_bytes(q);
  std::error_code ec;
  r.file_bytes = path.empty() ? serialized_bytes(q) : int64_t(std::filesystem::file_size(path, ec));
  if (ec) throw CliError{path + ": cannot read the written file back (" + ec.message() + ")"};
  runtime::SessionOptions so;
  so.lower_qdq = integer;
  auto session = unwrap(runtime::Session::create(q, so));
  if (has_labels_) {
    Progress p("evaluate", 0);
    auto acc = unwrap(report::evaluate(session, test_, 0, eval_limit_, 250, [&](int64_t d, int64_t t) {
      p.set_total(t);
      p.update(d);
    }));
    p.finish();
    r.has_accuracy = true;
    r.top1 = acc.top1();
    return r;
  }
  // SQNR of the first output over the first calibration batch.
  auto inputs = unwrap(calib_.batch(0, std::min(calib_.size(), calib_.batch_size())));
  if (ref_outputs_.empty()) {
    auto ref = unwrap(runtime::Session::create(fp32_));
    ref_outputs_ = unwrap(ref.run(inputs));
  }
  auto out = unwrap(session.run(inputs));
  r.sqnr_db = quant::sqnr_db(ref_outputs_[0], out[0]);
  return r;
}

quant::CalibSource open_calibration(const ir::Graph& g, const std::vector<std::string>& items, int64_t samples) {
  quant::CalibSpec spec;
  spec.items = items;
  bool mnist = items.size() == 1 && items[0] == "fashion-mnist";
  spec.count = samples > 0 ? samples : (mnist ? 1000 : 0);
  return unwrap(quant::open_calib_source(g, spec));
}

void add_calibration_options(CLI::App* cmd, std::vector<std::string>* items, int64_t* samples, int64_t* eval_limit) {
  cmd->add_option("--calib", *items, "Calibration data: fashion-mnist, or [NAME=].npy/.pb/IDX files or folders");
  cmd->add_option("--calib-samples", *samples, "Calibration samples (default: 1000 Fashion-MNIST images, or every sample of the given files)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 30));
  cmd->add_option("--eval-limit", *eval_limit, "Measure accuracy on the first N test images only")->check(CLI::NonNegativeNumber);
}

void run_mixed_precision(double max_drop, const quant::BuildOptions& base, Measurer& m, const ir::Graph& prepared,
                         const std::map<ir::ValueId, quant::Observer>& obs, const std::string& out) {
  if (!m.has_labels())
    throw CliError{"--max-accuracy-drop needs a labelled evaluation set (a Fashion-MNIST classifier with --calib fashion-mnist)"};
  Measured fp32 = m.measure_float();
  std::vector<quant::LayerInfo> layers;
  for (int i : quant::quantizable_nodes(prepared, base.config)) {
    const ir::Node& n = prepared.nodes[size_t(i)];
    layers.push_back({n.name, prepared.value(n.inputs[1]).constant.numel()});
  }
  auto metric = [&](const std::map<std::string, int>& bits) -> Result<double> {
    quant::BuildOptions b = base;
    b.config.layer_bits = bits;
    KILN_ASSIGN(ir::Graph q, quant::build_quantized(prepared, b, obs));
    return m.measure(q, "").top1;
  };
  std::printf("mixed precision: weights in {8,6,5,4,3,2} bits per layer, activations %d bits, bound %.2f points\n",
              base.config.act_bits, max_drop);
  auto plan = unwrap(quant::search_mixed_precision(layers, fp32.top1, max_drop, 8, {2, 3, 4, 5, 6, 8}, metric,
                                                   [](const std::string& s) { std::fprintf(stderr, "  %s\n", s.c_str()); }));
  quant::BuildOptions b = base;
  b.config.layer_bits = plan.bits;
  ir::Graph q = unwrap(quant::build_quantized(prepared, b, obs));
  std::string written;
  if (!out.empty()) written = save_graph(q, out);
  Measured mixed = m.measure(q, out);
  quant::BuildOptions u8 = base;
  Measured uniform = m.measure(unwrap(quant::build_quantized(prepared, u8, obs)), "");

  std::printf("\n%-28s %10s %5s   %s\n", "layer", "params", "bits", "drop with only this layer at 6/5/4/3/2 bits");
  for (const auto& row : plan.rows) {
    std::printf("%-28s %10lld %5d  ", row.node.c_str(), (long long)row.params, row.bits);
    for (int bb : {6, 5, 4, 3, 2}) std::printf(" %6.2f", row.sensitivity.at(bb));
    std::printf("\n");
  }
  std::printf("\n%-22s %12s %12s %12s\n", "", "float32", "uniform W8A8", "mixed");
  std::printf("%-22s %12lld %12lld %12lld\n", "parameter bytes", (long long)fp32.param_bytes, (long long)uniform.param_bytes,
              (long long)mixed.param_bytes);
  std::printf("%-22s %11.2f%% %11.2f%% %11.2f%%\n", "top-1", fp32.top1, uniform.top1, mixed.top1);
  std::printf("%-22s %12s %+12.2f %+12.2f\n", "drop (points)", "", fp32.top1 - uniform.top1, fp32.top1 - mixed.top1);
  bool ok = fp32.top1 - mixed.top1 <= max_drop + 1e-9;
  std::printf("\nmixed plan: %.1f%% of uniform 8-bit, drop %.2f <= %.2f: %s (%d evaluations)\n",
              100.0 * double(mixed.param_bytes) / double(uniform.param_bytes), fp32.top1 - mixed.top1, max_drop,
              ok ? "met" : "NOT met", plan.evaluations);
  if (!out.empty()) std::printf("wrote %s (%s)\n", out.c_str(), written.c_str());
}

}  // namespace kiln::cli
