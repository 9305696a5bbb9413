#include "io/idx.h"

#include <zlib.h>

#include <cstring>
#include <filesystem>

#include "io/file.h"

namespace kiln::io {
namespace {

Result<std::string> gunzip(const std::string& in, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return make_error(path + ": zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = uInt(in.size());
  std::string out;
  char buf[1 << 16];
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return make_error(path + ": corrupt gzip data");
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
  } while (rc != Z_STREAM_END && zs.avail_in > 0);
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) return make_error(path + ": truncated gzip data");
  return out;
}

uint32_t be32(const std::string& b, size_t off) {
  return (uint32_t(uint8_t(b[off])) << 24) | (uint32_t(uint8_t(b[off + 1])) << 16) |
         (uint32_t(uint8_t(b[off + 2])) << 8) | uint32_t(uint8_t(b[off + 3]));
}

}  // namespace

Result<Tensor> load_idx(const std::string& path) {
  KILN_ASSIGN(std::string raw, read_file(path));
  if (raw.size() >= 2 && uint8_t(raw[0]) == 0x1f && uint8_t(raw[1]) == 0x8b) {
    KILN_ASSIGN(raw, gunzip(raw, path));
  }
  if (raw.size() < 4 || raw[0] != 0 || raw[1] != 0) return make_error(path + ": not an IDX file (bad magic)");
  if (uint8_t(raw[2]) != 0x08) return make_error(path + ": IDX element type " + std::to_string(uint8_t(raw[2])) + " is not supported (expected unsigned byte)");
  int rank = uint8_t(raw[3]);
  if (rank < 1 || rank > 4 || raw.size() < 4 + 4 * size_t(rank)) return make_error(path + ": truncated IDX header");
  Shape shape;
  for (int i = 0; i < rank; ++i) shape.push_back(be32(raw, 4 + 4 * size_t(i)));
  KILN_ASSIGN(int64_t n, checked_numel(shape));
  size_t off = 4 + 4 * size_t(rank);
  if (int64_t(raw.size() - off) != n)
    return make_error(path + ": IDX data holds " + std::to_string(raw.size() - off) + " bytes, header " +
                      shape_str(shape) + " needs " + std::to_string(n));
  KILN_ASSIGN(Tensor t, Tensor::create(DType::kU8, shape));
  std::memcpy(t.raw(), raw.data() + off, size_t(n));
  return t;
}

Result<LabeledImages> load_fashion_mnist(const std::string& dir, const std::string& split) {
  if (split != "train" && split != "t10k") return make_error("unknown Fashion-MNIST split '" + split + "'");
  auto find = [&](const std::string& stem) -> std::string {
    std::string p = dir + "/" + stem;
    if (std::filesystem::exists(p + ".gz")) return p + ".gz";
    return p;
  };
  std::string ip = find(split + "-images-idx3-ubyte"), lp = find(split + "-labels-idx1-ubyte");
  if (!std::filesystem::exists(ip))
    return make_error("Fashion-MNIST not found in " + dir + " (install Debian's dataset-fashion-mnist)");
  LabeledImages d;
  KILN_ASSIGN(d.images, load_idx(ip));
  KILN_ASSIGN(d.labels, load_idx(lp));
  if (d.images.rank() != 3 || d.labels.rank() != 1 || d.images.dim(0) != d.labels.dim(0))
    return make_error(ip + ": images " + shape_str(d.images.shape()) + " and labels " +
                      shape_str(d.labels.shape()) + " do not match");
  return d;
}

}  // namespace kiln::io
