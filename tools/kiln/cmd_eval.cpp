// kiln eval MODEL --dataset fashion-mnist: top-1 accuracy on the 10k test set
// (or --split train), inputs scaled as x = pixel / 255 (float32, [N,1,28,28] or [N,784]).
#include <iostream>

#include "commands.h"
#include "common.h"
#include "io/idx.h"
#include "runtime/session.h"

namespace kiln::cli {
namespace {

struct EvalOptions {
  std::string model, dataset, data_dir = io::kFashionMnistDir, split = "t10k", backend = "reference";
  int64_t batch = 100, limit = 0;
};

void run_eval(const EvalOptions& o) {
  if (o.dataset != "fashion-mnist") throw CliError{"unknown dataset '" + o.dataset + "' (supported: fashion-mnist)", 2};
  ir::Graph g = load_graph(o.model);
  if (g.inputs.size() != 1) throw CliError{"eval needs a model with one input, this one has " + std::to_string(g.inputs.size())};
  const ir::ValueType in = g.value(g.inputs[0]).type;
  bool nchw = in.rank_known && in.shape.size() == 4, flat = in.rank_known && in.shape.size() == 2;
  if (in.dtype != DType::kF32 || !(nchw || flat))
    throw CliError{"eval expects a float32 image input [N,1,28,28] or [N,784]; the model's input is " +
                   std::string(dtype_name(in.dtype)) + shape_str(in.shape)};
  int64_t batch = o.batch;
  if (in.shape[0] >= 0) batch = in.shape[0];  // static batch dim: use it
  auto data = unwrap(io::load_fashion_mnist(o.data_dir, o.split));
  int64_t n = data.images.dim(0);
  if (o.limit > 0) n = std::min(n, o.limit);
  runtime::SessionOptions so;
  so.backend = o.backend;
  auto session = unwrap(runtime::Session::create(std::move(g), so));
  int64_t correct = 0, seen = 0;
  Progress progress("eval", n);
  const uint8_t* px = data.images.data<uint8_t>();
  const uint8_t* labels = data.labels.data<uint8_t>();
  for (int64_t start = 0; start < n; start += batch) {
    int64_t b = std::min(batch, n - start);
    if (in.shape[0] >= 0 && b != batch) break;  // static batch and a short last batch: stop
    Shape shape = nchw ? Shape{b, 1, 28, 28} : Shape{b, 784};
    Tensor x = unwrap(Tensor::create(DType::kF32, shape));
    float* xd = x.data<float>();
    for (int64_t i = 0; i < b * 784; ++i) xd[i] = float(px[start * 784 + i]) / 255.0f;
    auto out = unwrap(session.run(std::vector<Tensor>{x}));
    const Tensor& logits = out[0];
    if (logits.rank() != 2 || logits.dim(0) != b)
      throw CliError{"eval expects the first output to be [N, classes], got " + shape_str(logits.shape())};
    int64_t classes = logits.dim(1);
    for (int64_t i = 0; i < b; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < classes; ++k)
        if (logits.as_double(i * classes + k) > logits.as_double(i * classes + best)) best = k;
      correct += best == labels[start + i];
    }
    seen += b;
    progress.update(seen);
  }
  progress.finish();
  std::printf("dataset    fashion-mnist %s (%lld images)\n", o.split.c_str(), (long long)seen);
  std::printf("top-1      %.2f%% (%lld/%lld correct)\n", 100.0 * double(correct) / double(std::max<int64_t>(seen, 1)),
              (long long)correct, (long long)seen);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Measure a classifier's top-1 accuracy on a dataset");
  cmd->add_option("model", o->model, "ONNX model file")->required();
  cmd->add_option("--dataset", o->dataset, "Dataset: fashion-mnist")->required();
  cmd->add_option("--data-dir", o->data_dir, "Folder with the IDX files")->capture_default_str();
  cmd->add_option("--split", o->split, "t10k (test) or train")->check(CLI::IsMember({"t10k", "train"}))->capture_default_str();
  cmd->add_option("--batch", o->batch, "Images per run")->check(CLI::Range(int64_t(1), int64_t(100000)))->capture_default_str();
  cmd->add_option("--limit", o->limit, "Only the first N images")->check(CLI::NonNegativeNumber);
  cmd->add_option("--backend", o->backend, "Backend to run on")->capture_default_str();
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace kiln::cli
