// kiln eval MODEL --dataset fashion-mnist: top-1 accuracy on the 10k test set
// (or --split train), inputs scaled as x = pixel / 255 (float32, [N,1,28,28] or [N,784]).
#include <iostream>

#include "commands.h"
#include "common.h"
#include "io/idx.h"
#include "report/accuracy.h"
#include "runtime/session.h"

namespace kiln::cli {
namespace {

struct EvalOptions {
  bool fake_quant = false;
  std::string model, dataset, data_dir = io::kFashionMnistDir, split = "t10k", backend = "reference";
  int64_t threads = 1;
  int64_t batch = 100, limit = 0;
};

void run_eval(const EvalOptions& o) {
  if (o.dataset != "fashion-mnist") throw CliError{"unknown dataset '" + o.dataset + "' (supported: fashion-mnist)", 2};
  ir::Graph g = load_graph(o.model);
  unwrap(report::check_image_classifier(g));
  auto data = unwrap(io::load_fashion_mnist(o.data_dir, o.split));
  runtime::SessionOptions so;
  so.backend = o.backend;
  so.threads = int(o.threads);
  so.lower_qdq = !o.fake_quant;
  auto session = unwrap(runtime::Session::create(std::move(g), so));
  Progress progress("eval", 0);
  auto acc = unwrap(report::evaluate(session, data, 0, o.limit, o.batch, [&](int64_t done, int64_t total) {
    progress.set_total(total);
    progress.update(done);
  }));
  progress.finish();
  std::printf("dataset    fashion-mnist %s (%lld images)\n", o.split.c_str(), (long long)acc.total);
  std::printf("top-1      %.2f%% (%lld/%lld correct)\n", acc.top1(), (long long)acc.correct, (long long)acc.total);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Measure a classifier's top-1 accuracy on a dataset");
  cmd->add_option("model", o->model, "Model file (.onnx or .kiln)")->required();
  cmd->add_option("--dataset", o->dataset, "Dataset: fashion-mnist")->required();
  cmd->add_option("--data-dir", o->data_dir, "Folder with the IDX files")->capture_default_str();
  cmd->add_option("--split", o->split, "t10k (test) or train")->check(CLI::IsMember({"t10k", "train"}))->capture_default_str();
  cmd->add_option("--batch", o->batch, "Images per run")->check(CLI::Range(int64_t(1), int64_t(100000)))->capture_default_str();
  cmd->add_option("--limit", o->limit, "Only the first N images")->check(CLI::NonNegativeNumber);
  cmd->add_option("--backend", o->backend, "Backend to run on: reference, cpu")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads of the cpu backend")->check(CLI::Range(int64_t(1), int64_t(1024)))->capture_default_str();
  cmd->add_flag("--fake-quant", o->fake_quant, "Run a QDQ model as fake quantization (float ops between Quantize/DequantizeLinear), not lowered to integer ops");
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace kiln::cli
