#include "io/npy.h"

#include <cstring>
#include <regex>

#include "io/file.h"

namespace kiln::io {
namespace {

struct NpyType {
  const char* descr;
  DType dtype;
};
constexpr NpyType kTypes[] = {
    {"<f4", DType::kF32}, {"<f8", DType::kF64}, {"<f2", DType::kF16}, {"|i1", DType::kI8},  {"|u1", DType::kU8},
    {"<i2", DType::kI16}, {"<u2", DType::kU16}, {"<i4", DType::kI32}, {"<u4", DType::kU32}, {"<i8", DType::kI64},
    {"<u8", DType::kU64}, {"|b1", DType::kBool},
};

}  // namespace

Result<Tensor> parse_npy(const std::string& b, const std::string& what) {
  if (b.size() < 10 || std::memcmp(b.data(), "\x93NUMPY", 6) != 0)
    return make_error(what + ": not a .npy file (bad magic)");
  int major = uint8_t(b[6]);
  size_t header_len, start;
  if (major == 1) {
    header_len = uint8_t(b[8]) | (size_t(uint8_t(b[9])) << 8);
    start = 10;
  } else if (major == 2 || major == 3) {
    if (b.size() < 12) return make_error(what + ": truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= size_t(uint8_t(b[8 + i])) << (8 * i);
    start = 12;
  } else {
    return make_error(what + ": unsupported .npy version " + std::to_string(major));
  }
  if (start + header_len > b.size()) return make_error(what + ": truncated .npy header");
  std::string h = b.substr(start, header_len);
  std::smatch m;
  if (!std::regex_search(h, m, std::regex("'descr'\\s*:\\s*'([^']*)'")))
    return make_error(what + ": .npy header has no descr");
  std::string descr = m[1];
  if (descr == "<b1") descr = "|b1";
  if (descr == "<i1") descr = "|i1";
  if (descr == "<u1") descr = "|u1";
  DType dt = DType::kUndefined;
  for (const auto& t : kTypes)
    if (descr == t.descr) dt = t.dtype;
  if (dt == DType::kUndefined) return make_error(what + ": .npy dtype '" + descr + "' is not supported");
  if (std::regex_search(h, m, std::regex("'fortran_order'\\s*:\\s*True")))
    return make_error(what + ": Fortran-order .npy arrays are not supported (save with np.ascontiguousarray)");
  if (!std::regex_search(h, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")))
    return make_error(what + ": .npy header has no shape");
  Shape shape;
  std::string dims = m[1];
  std::regex num("[0-9]+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it) {
    try {
      shape.push_back(std::stoll(it->str()));
    } catch (...) {
      return make_error(what + ": .npy shape dimension out of range");
    }
  }
  KILN_ASSIGN(int64_t n, checked_numel(shape));
  size_t data_start = start + header_len;
  int64_t need = dtype_bytes(dt, n);
  if (int64_t(b.size() - data_start) < need)
    return make_error(what + ": .npy data truncated (" + std::to_string(b.size() - data_start) + " bytes, shape " +
                      shape_str(shape) + " needs " + std::to_string(need) + ")");
  KILN_ASSIGN(Tensor t, Tensor::create(dt, shape));
  std::memcpy(t.raw(), b.data() + data_start, size_t(need));
  return t;
}

Result<Tensor> load_npy(const std::string& path) {
  KILN_ASSIGN(std::string b, read_file(path));
  return parse_npy(b, path);
}

std::string serialize_npy(const Tensor& t) {
  const char* descr = "<f4";
  for (const auto& k : kTypes)
    if (k.dtype == t.dtype()) descr = k.descr;
  // Python tuple syntax: "()", "(5,)", "(2, 3)".
  std::string shape;
  for (size_t i = 0; i < t.shape().size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape()[i]);
  if (t.shape().size() == 1) shape += ",";
  std::string h = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  size_t total = 10 + h.size() + 1;
  h += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(h.size() & 0xff);
  out += char(h.size() >> 8);
  out += h;
  out.append(static_cast<const char*>(t.raw()), size_t(t.nbytes()));
  return out;
}

Result<void> save_npy(const Tensor& t, const std::string& path) { return write_file_atomic(path, serialize_npy(t)); }

}  // namespace kiln::io
