// kiln run MODEL --input [NAME=]FILE ... | --random SEED  [--output-dir DIR]:
// runs the model once, prints a summary of each output and saves it as DIR/<name>.npy.
#include <cmath>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "common.h"
#include "io/npy.h"
#include "runtime/session.h"

namespace kiln::cli {
namespace {

struct RunOptions {
  bool fake_quant = false;
  std::string model, output_dir, backend = "reference";
  int64_t threads = 1;
  std::vector<std::string> inputs, dims;
  int64_t seed = -1;
};

void print_summary(const std::string& name, const Tensor& t) {
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.as_double(i);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  std::printf("%s: %s%s", name.c_str(), std::string(dtype_name(t.dtype())).c_str(), shape_str(t.shape()).c_str());
  if (t.numel() > 0) std::printf("  min %.6g  max %.6g  mean %.6g", lo, hi, sum / double(t.numel()));
  std::printf("\n  [");
  for (int64_t i = 0; i < std::min<int64_t>(t.numel(), 8); ++i) std::printf("%s%.6g", i ? ", " : "", t.as_double(i));
  std::printf("%s]\n", t.numel() > 8 ? ", ..." : "");
}

void run_run(const RunOptions& o) {
  if (o.inputs.empty() && o.seed < 0) throw CliError{"give the inputs with --input FILE, or --random SEED", 2};
  if (!o.inputs.empty() && o.seed >= 0) throw CliError{"--input and --random exclude each other", 2};
  ir::Graph g = load_graph(o.model);
  std::vector<Tensor> inputs =
      o.seed >= 0 ? random_inputs(g, uint64_t(o.seed), parse_dims(o.dims)) : load_inputs(g, o.inputs);
  std::vector<std::string> names;
  for (auto id : g.outputs) names.push_back(g.value(id).name);
  if (!o.output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.output_dir, ec);
    if (ec) throw CliError{o.output_dir + ": cannot create output folder (" + ec.message() + ")"};
  }
  runtime::SessionOptions so;
  so.backend = o.backend;
  so.threads = int(o.threads);
  so.lower_qdq = !o.fake_quant;
  auto session = unwrap(runtime::Session::create(std::move(g), so));
  auto outputs = unwrap(session.run(inputs));
  for (size_t i = 0; i < outputs.size(); ++i) {
    print_summary(names[i], outputs[i]);
    if (!o.output_dir.empty()) {
      std::string path = o.output_dir + "/" + safe_file_name(names[i]) + ".npy";
      unwrap(io::save_npy(outputs[i], path));
      std::printf("  saved %s\n", path.c_str());
    }
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  auto* cmd = app.add_subcommand("run", "Run a model once on given or random inputs and save its outputs");
  cmd->add_option("model", o->model, "Model file (.onnx or .kiln)")->required();
  cmd->add_option("-i,--input", o->inputs, "[NAME=]FILE (.npy or ONNX TensorProto .pb); by name, else in input order");
  cmd->add_option("--random", o->seed, "Use random inputs from this seed instead of files")->check(CLI::NonNegativeNumber);
  cmd->add_option("--dim", o->dims, "With --random: bind a symbolic dimension, e.g. --dim N=4 (default 1)");
  cmd->add_option("-o,--output-dir", o->output_dir, "Save each output as DIR/<output name>.npy");
  cmd->add_option("--backend", o->backend, "Backend to run on: reference, cpu")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads of the cpu backend")->check(CLI::Range(int64_t(1), int64_t(1024)))->capture_default_str();
  cmd->add_flag("--fake-quant", o->fake_quant, "Run a QDQ model as fake quantization (float ops between Quantize/DequantizeLinear), not lowered to integer ops");
  cmd->callback([o] { run_run(*o); });
}

}  // namespace kiln::cli
