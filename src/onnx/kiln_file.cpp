#include "onnx/kiln_file.h"

#include <onnx/onnx_pb.h>
#include <zlib.h>

#include <cstring>

#include "io/file.h"
#include "onnx/export.h"
#include "onnx/import.h"

namespace kiln::onnx_io {
namespace {

constexpr char kMagic[4] = {'K', 'I', 'L', 'N'};
constexpr uint32_t kVersion = 1;
enum Encoding : uint8_t { kDense = 0, kBitmask = 1 };

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}
void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(char(v));
}

// Reads from a byte string with bounds checks; every failure names what was
// being read and where, so a truncated file says so instead of crashing.
class Reader {
 public:
  explicit Reader(const std::string& b, size_t end) : b_(b), end_(end) {}
  size_t pos() const { return pos_; }
  Result<uint32_t> u32(const char* what) {
    if (end_ - pos_ < 4) return truncated(what);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(b_[pos_ + i])) << (8 * i);
    pos_ += 4;
    return v;
  }
  Result<uint8_t> u8(const char* what) {
    if (pos_ >= end_) return truncated(what);
    return uint8_t(b_[pos_++]);
  }
  Result<uint64_t> varint(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= end_) return truncated(what);
      uint8_t c = uint8_t(b_[pos_++]);
      v |= uint64_t(c & 0x7f) << shift;
      if (!(c & 0x80)) return v;
    }
    return make_error(std::string("bad varint in ") + what + " at byte " + std::to_string(pos_));
  }
  Result<std::string_view> bytes(uint64_t n, const char* what) {
    if (n > end_ - pos_) return truncated(what);
    std::string_view v(b_.data() + pos_, size_t(n));
    pos_ += size_t(n);
    return v;
  }

 private:
  Error truncated(const char* what) const {
    return Error{std::string("truncated while reading ") + what + " at byte " + std::to_string(pos_)};
  }
  const std::string& b_;
  size_t end_, pos_ = 0;
};

// Element byte size for the bitmask encoding; 0 where it does not apply
// (sub-byte types are stored dense).
int64_t element_bytes(int onnx_code) {
  auto dt = dtype_from_onnx(onnx_code);
  if (!dt) return 0;
  int bits = dtype_info(*dt).bits;
  return bits >= 8 && bits % 8 == 0 ? bits / 8 : 0;
}

std::string encode_bitmask(std::string_view raw, int64_t esize, int64_t* nonzero) {
  int64_t n = int64_t(raw.size()) / esize;
  std::string mask(size_t((n + 7) / 8), '\0'), values;
  *nonzero = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::string_view e = raw.substr(size_t(i * esize), size_t(esize));
    bool nz = false;
    for (char c : e) nz |= c != 0;
    if (!nz) continue;
    mask[size_t(i / 8)] = char(uint8_t(mask[size_t(i / 8)]) | uint8_t(1u << (i % 8)));
    values.append(e);
    ++*nonzero;
  }
  return mask + values;
}

Result<std::string> decode_bitmask(std::string_view payload, int64_t n, int64_t esize, const std::string& what) {
  int64_t mask_bytes = (n + 7) / 8;
  if (int64_t(payload.size()) < mask_bytes) return make_error(what + ": bitmask payload shorter than its mask");
  int64_t nonzero = 0;
  for (int64_t i = 0; i < n; ++i) nonzero += (uint8_t(payload[size_t(i / 8)]) >> (i % 8)) & 1;
  if (int64_t(payload.size()) != mask_bytes + nonzero * esize)
    return make_error(what + ": bitmask marks " + std::to_string(nonzero) + " non-zeros but the payload holds " +
                      std::to_string((int64_t(payload.size()) - mask_bytes) / esize));
  std::string raw(size_t(n * esize), '\0');
  const char* v = payload.data() + mask_bytes;
  for (int64_t i = 0; i < n; ++i)
    if ((uint8_t(payload[size_t(i / 8)]) >> (i % 8)) & 1) {
      std::memcpy(raw.data() + i * esize, v, size_t(esize));
      v += esize;
    }
  return raw;
}

Result<std::string> deflate_bytes(const std::string& in) {
  uLongf cap = compressBound(uLong(in.size()));
  std::string out(cap, '\0');
  if (compress2(reinterpret_cast<Bytef*>(out.data()), &cap, reinterpret_cast<const Bytef*>(in.data()), uLong(in.size()),
                Z_BEST_COMPRESSION) != Z_OK)
    return make_error("could not compress the graph section");
  out.resize(cap);
  return out;
}

}  // namespace

bool is_kiln_file(const std::string& bytes) { return bytes.size() >= 4 && std::memcmp(bytes.data(), kMagic, 4) == 0; }

Result<std::string> encode_kiln(const ir::Graph& g, KilnFileStats* stats) {
  onnx::ModelProto m;
  ExportOptions eo;
  eo.allow_kiln_ops = true;
  KILN_TRY(export_model(g, &m, eo));
  KilnFileStats st;
  std::string tensors;
  put_varint(tensors, uint64_t(m.graph().initializer_size()));
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    std::string raw = std::move(*t.mutable_raw_data());
    t.clear_raw_data();
    int64_t esize = element_bytes(t.data_type());
    std::string payload = raw;
    uint8_t enc = kDense;
    if (esize > 0 && !raw.empty()) {
      int64_t nonzero = 0;
      std::string sparse = encode_bitmask(raw, esize, &nonzero);
      if (sparse.size() < raw.size()) {
        payload = std::move(sparse);
        enc = kBitmask;
        ++st.sparse_tensors;
      }
    }
    tensors.push_back(char(enc));
    put_varint(tensors, payload.size());
    tensors += payload;
    st.tensor_bytes += int64_t(payload.size());
    st.dense_bytes += int64_t(raw.size());
    ++st.tensors;
  }
  std::string graph;
  if (!m.SerializeToString(&graph)) return make_error("graph too large to serialize (over 2 GiB)");
  KILN_ASSIGN(std::string zgraph, deflate_bytes(graph));
  std::string out(kMagic, 4);
  put_u32(out, kVersion);
  put_varint(out, graph.size());
  put_varint(out, zgraph.size());
  out += zgraph;
  out += tensors;
  put_u32(out, uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(out.data()), uInt(out.size()))));
  st.graph_bytes = int64_t(zgraph.size());
  st.file_bytes = int64_t(out.size());
  if (stats) *stats = st;
  return out;
}

Result<ir::Graph> decode_kiln(const std::string& bytes) {
  if (!is_kiln_file(bytes)) return make_error("not a .kiln file (bad magic)");
  if (bytes.size() < 12) return make_error("truncated .kiln file (" + std::to_string(bytes.size()) + " bytes)");
  size_t body = bytes.size() - 4;
  Reader tail(bytes, bytes.size());
  (void)tail.bytes(body, "body");
  KILN_ASSIGN(uint32_t stored_crc, tail.u32("checksum"));
  uint32_t crc = uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), uInt(body)));
  if (crc != stored_crc) return make_error("corrupt .kiln file: checksum mismatch (truncated or modified)");

  Reader r(bytes, body);
  KILN_TRY(r.bytes(4, "magic"));
  KILN_ASSIGN(uint32_t version, r.u32("version"));
  if (version != kVersion)
    return make_error(".kiln file version " + std::to_string(version) + " is not supported (this kiln reads version " +
                      std::to_string(kVersion) + ")");
  KILN_ASSIGN(uint64_t graph_size, r.varint("graph size"));
  KILN_ASSIGN(uint64_t zsize, r.varint("graph size"));
  KILN_ASSIGN(std::string_view zgraph, r.bytes(zsize, "graph section"));
  if (graph_size > (uint64_t(1) << 31)) return make_error("corrupt .kiln file: graph section claims " + std::to_string(graph_size) + " bytes");
  std::string graph(size_t(graph_size), '\0');
  uLongf got = uLongf(graph_size);
  if (uncompress(reinterpret_cast<Bytef*>(graph.data()), &got, reinterpret_cast<const Bytef*>(zgraph.data()),
                 uLong(zgraph.size())) != Z_OK ||
      got != graph_size)
    return make_error("corrupt .kiln file: graph section does not inflate");
  onnx::ModelProto m;
  if (!m.ParseFromString(graph)) return make_error("corrupt .kiln file: graph section is not a model");

  KILN_ASSIGN(uint64_t count, r.varint("tensor count"));
  if (count != uint64_t(m.graph().initializer_size()))
    return make_error("corrupt .kiln file: " + std::to_string(count) + " tensors for " +
                      std::to_string(m.graph().initializer_size()) + " initializers");
  for (auto& t : *m.mutable_graph()->mutable_initializer()) {
    std::string what = "tensor '" + t.name() + "'";
    KILN_ASSIGN(uint8_t enc, r.u8("tensor encoding"));
    KILN_ASSIGN(uint64_t size, r.varint("tensor size"));
    KILN_ASSIGN(std::string_view payload, r.bytes(size, "tensor payload"));
    auto dt = dtype_from_onnx(t.data_type());
    if (!dt) return make_error(what + ": unsupported data type " + std::to_string(t.data_type()));
    int64_t n = 1;
    for (auto d : t.dims()) {
      if (d < 0 || (d > 0 && n > (int64_t(1) << 40) / d)) return make_error(what + ": bad dims");
      n *= d;
    }
    if (enc == kDense) {
      t.set_raw_data(std::string(payload));
    } else if (enc == kBitmask) {
      int64_t esize = element_bytes(t.data_type());
      if (esize == 0) return make_error(what + ": bitmask encoding on a sub-byte type");
      KILN_ASSIGN(std::string raw, decode_bitmask(payload, n, esize, what));
      t.set_raw_data(std::move(raw));
    } else {
      return make_error(what + ": unknown encoding " + std::to_string(enc));
    }
  }
  if (r.pos() != body) return make_error("corrupt .kiln file: " + std::to_string(body - r.pos()) + " stray bytes after the tensors");
  return import_model(m, "");
}

Result<void> save_kiln(const ir::Graph& g, const std::string& path, KilnFileStats* stats) {
  KILN_ASSIGN(std::string bytes, encode_kiln(g, stats));
  return io::write_file_atomic(path, bytes);
}

}  // namespace kiln::onnx_io
