// TensorProto <-> Tensor, including external data (a location must stay
// inside the model's folder) and every ONNX storage field. Used by the model
// importer/exporter and for .pb input/output files.
// Tested in tests/unit/test_onnx.cpp and tests/errors.
#pragma once
#include <string>

#include "core/tensor.h"

namespace onnx {
class TensorProto;
}

namespace kiln::onnx_io {

// base_dir: folder that external-data locations are relative to ("" forbids external data).
Result<Tensor> tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir);
void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p);
// A serialized TensorProto file (ONNX test-data .pb).
Result<Tensor> load_tensor_pb(const std::string& path);
Result<void> save_tensor_pb(const Tensor& t, const std::string& name, const std::string& path);

}  // namespace kiln::onnx_io
