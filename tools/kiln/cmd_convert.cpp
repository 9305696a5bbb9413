// kiln convert MODEL -o OUT.onnx: import into kiln's IR and export again at
// opset 21 (old-opset attribute forms become inputs, Upsample becomes Resize,
// Constant nodes become initializers). -o OUT.kiln writes the compact .kiln
// container instead; a .kiln input converts back to ONNX as long as it holds
// no kiln-only ops. Written atomically.
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "onnx/export.h"

namespace kiln::cli {
namespace {

struct ConvertOptions {
  std::string model, out;
};

void run_convert(const ConvertOptions& o) {
  ir::Graph g = load_graph(o.model);
  std::string what = save_graph(g, o.out);
  std::printf("wrote %s (%s)\n", o.out.c_str(), what.c_str());
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  auto* cmd = app.add_subcommand("convert", "Re-export a model through kiln's IR as ONNX opset 21, or as a compact .kiln file");
  cmd->add_option("model", o->model, "Model file (.onnx or .kiln)")->required();
  cmd->add_option("-o,--output", o->out, "Output file: .onnx, or .kiln for kiln's compact container")->required();
  cmd->callback([o] { run_convert(*o); });
}

}  // namespace kiln::cli
