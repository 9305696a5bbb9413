// ONNX export: ir::Graph -> ModelProto at opset 21 (kiln's canonical IR form is
// the newest ONNX form, so export is a direct print). Constants become
// initializers, symbolic dims keep their names, typed attributes are written
// back through their field lists. Tested in tests/unit/test_onnx.cpp (round trip).
#pragma once
#include <string>

#include "ir/graph.h"

namespace onnx {
class ModelProto;
}

namespace kiln::onnx_io {

inline constexpr int kExportOpset = 21;

struct ExportOptions {
  // Write kiln's own ops (domain "kiln", e.g. QConv from passes/lower_qdq)
  // instead of refusing them. Only kiln reads such a model: the .kiln file
  // (onnx/kiln_file.h) uses it; ONNX files for other runtimes never do.
  bool allow_kiln_ops = false;
};

Result<void> export_model(const ir::Graph& g, onnx::ModelProto* m, const ExportOptions& opt = {});
// Writes atomically: on error no file (or the old file) is left. A path
// ending in .kiln gets the .kiln container (onnx/kiln_file.h) instead.
Result<void> save_model(const ir::Graph& g, const std::string& path);

}  // namespace kiln::onnx_io
