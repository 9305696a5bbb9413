#include "onnx/tensor_proto.h"

#include <onnx/onnx_pb.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/half.h"
#include "io/file.h"

namespace kiln::onnx_io {
namespace fs = std::filesystem;

namespace {

template <class Dst, class Src>
void copy_field(Tensor& t, const Src& field) {
  auto* d = t.data<Dst>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = Dst(field.Get(int(i)));
}

Result<std::string> read_external(const onnx::TensorProto& p, const std::string& base_dir, int64_t want) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = std::stoll(kv.value());
    else if (kv.key() == "length") length = std::stoll(kv.value());
  }
  std::string what = "tensor '" + p.name() + "'";
  if (location.empty()) return make_error(what + ": external data has no location");
  if (base_dir.empty()) return make_error(what + ": external data is not allowed here");
  std::error_code ec;
  fs::path base = fs::weakly_canonical(fs::path(base_dir), ec);
  fs::path full = fs::weakly_canonical(base / fs::path(location), ec);
  auto rel = full.lexically_relative(base);
  if (fs::path(location).is_absolute() || rel.empty() || *rel.begin() == "..")
    return make_error(what + ": external data location '" + location + "' points outside the model's folder");
  if (!fs::is_regular_file(full, ec)) return make_error(what + ": external data file '" + location + "' not found");
  auto size = int64_t(fs::file_size(full, ec));
  if (length < 0) length = size - offset;
  if (offset < 0 || offset + length > size)
    return make_error(what + ": external data range [" + std::to_string(offset) + ", +" + std::to_string(length) +
                      ") is outside '" + location + "' (" + std::to_string(size) + " bytes)");
  if (length != want)
    return make_error(what + ": external data holds " + std::to_string(length) + " bytes, shape needs " +
                      std::to_string(want));
  std::ifstream f(full, std::ios::binary);
  std::string buf(size_t(length), '\0');
  f.seekg(offset);
  f.read(buf.data(), length);
  if (!f) return make_error(what + ": could not read external data from '" + location + "'");
  return buf;
}

}  // namespace

Result<Tensor> tensor_from_proto(const onnx::TensorProto& p, const std::string& base_dir) {
  std::string what = "tensor '" + p.name() + "'";
  auto dt = dtype_from_onnx(p.data_type());
  if (!dt) return make_error(what + ": data type " + std::to_string(p.data_type()) + " is not supported");
  if (p.has_segment()) return make_error(what + ": segmented tensors are not supported");
  Shape shape(p.dims().begin(), p.dims().end());
  for (auto d : shape)
    if (d < 0) return make_error(what + ": negative dimension in " + shape_str(shape));
  KILN_ASSIGN(Tensor t, Tensor::create(*dt, shape));
  int64_t bytes = t.nbytes();
  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    KILN_ASSIGN(std::string raw, read_external(p, base_dir, bytes));
    std::memcpy(t.raw(), raw.data(), size_t(bytes));
    return t;
  }
  if (p.has_raw_data()) {
    if (int64_t(p.raw_data().size()) != bytes)
      return make_error(what + ": raw data holds " + std::to_string(p.raw_data().size()) + " bytes, shape " +
                        shape_str(shape) + " needs " + std::to_string(bytes));
    std::memcpy(t.raw(), p.raw_data().data(), size_t(bytes));
    return t;
  }
  int64_t n = t.numel();
  auto need = [&](int have) -> Result<void> {
    int64_t want = (*dt == DType::kI4 || *dt == DType::kU4) ? (n + 1) / 2 : n;
    if (have != want)
      return make_error(what + ": holds " + std::to_string(have) + " values, shape " + shape_str(shape) + " needs " +
                        std::to_string(want));
    return {};
  };
  switch (*dt) {
    case DType::kF32: KILN_TRY(need(p.float_data_size())); copy_field<float>(t, p.float_data()); break;
    case DType::kF64: KILN_TRY(need(p.double_data_size())); copy_field<double>(t, p.double_data()); break;
    case DType::kI64: KILN_TRY(need(p.int64_data_size())); copy_field<int64_t>(t, p.int64_data()); break;
    case DType::kU64: KILN_TRY(need(p.uint64_data_size())); copy_field<uint64_t>(t, p.uint64_data()); break;
    case DType::kU32: KILN_TRY(need(p.uint64_data_size())); copy_field<uint32_t>(t, p.uint64_data()); break;
    case DType::kI32: KILN_TRY(need(p.int32_data_size())); copy_field<int32_t>(t, p.int32_data()); break;
    case DType::kI16: KILN_TRY(need(p.int32_data_size())); copy_field<int16_t>(t, p.int32_data()); break;
    case DType::kU16:
    case DType::kF16:
    case DType::kBF16: KILN_TRY(need(p.int32_data_size())); copy_field<uint16_t>(t, p.int32_data()); break;
    case DType::kI8: KILN_TRY(need(p.int32_data_size())); copy_field<int8_t>(t, p.int32_data()); break;
    case DType::kU8:
    case DType::kBool: KILN_TRY(need(p.int32_data_size())); copy_field<uint8_t>(t, p.int32_data()); break;
    case DType::kI4:
    case DType::kU4: {
      KILN_TRY(need(p.int32_data_size()));
      auto* d = t.data<uint8_t>();
      for (int64_t i = 0; i < (n + 1) / 2; ++i) d[i] = uint8_t(p.int32_data(int(i)));
      break;
    }
    default: return make_error(what + ": unsupported data type");
  }
  return t;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto* p) {
  p->set_name(name);
  p->set_data_type(dtype_info(t.dtype()).onnx_code);
  for (auto d : t.shape()) p->add_dims(d);
  p->set_raw_data(t.raw(), size_t(t.nbytes()));
}

Result<Tensor> load_tensor_pb(const std::string& path) {
  KILN_ASSIGN(std::string bytes, io::read_file(path));
  onnx::TensorProto p;
  if (!p.ParseFromString(bytes)) return make_error(path + ": not a valid ONNX TensorProto file (corrupt or truncated)");
  auto r = tensor_from_proto(p, "");
  if (!r.ok()) return make_error(path + ": " + r.error().message);
  return r;
}

Result<void> save_tensor_pb(const Tensor& t, const std::string& name, const std::string& path) {
  onnx::TensorProto p;
  tensor_to_proto(t, name, &p);
  return io::write_file_atomic(path, p.SerializeAsString());
}

}  // namespace kiln::onnx_io
