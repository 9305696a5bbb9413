// kiln convert MODEL -o OUT.onnx: import into kiln's IR and export again at
// opset 21 (old-opset attribute forms become inputs, Upsample becomes Resize,
// Constant nodes become initializers). Written atomically.
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
  unwrap(onnx_io::save_model(g, o.out));
  std::printf("wrote %s (opset %d, %zu nodes)\n", o.out.c_str(), onnx_io::kExportOpset, g.nodes.size());
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto o = std::make_shared<ConvertOptions>();
  auto* cmd = app.add_subcommand("convert", "Re-export a model through kiln's IR as ONNX opset 21");
  cmd->add_option("model", o->model, "ONNX model file")->required();
  cmd->add_option("-o,--output", o->out, "Output ONNX file")->required();
  cmd->callback([o] { run_convert(*o); });
}

}  // namespace kiln::cli
