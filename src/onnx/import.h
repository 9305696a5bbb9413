// ONNX import: a .onnx file (or ModelProto) -> ir::Graph in kiln's canonical
// form (see onnx/upgrade.h), with typed attributes, constants folded from
// Constant nodes, symbolic dims named, and shapes inferred.
// Export (ir::Graph -> ONNX) is onnx/export.h. Tested in tests/unit/test_onnx.cpp,
// tests/conformance, tests/errors.
#pragma once
#include <string>

#include "ir/graph.h"

namespace onnx {
class ModelProto;
}

namespace kiln::onnx_io {

Result<ir::Graph> load_model(const std::string& path);
// base_dir: folder external data is read from ("" forbids external data).
Result<ir::Graph> import_model(const onnx::ModelProto& m, const std::string& base_dir);

// Opsets 1-6 import too where their ops mean what later opsets mean (PyTorch
// exports of 2018 use opset 6); the promise is 7..21.
inline constexpr int kMinOpset = 1;
inline constexpr int kMaxOpset = 21;

}  // namespace kiln::onnx_io
