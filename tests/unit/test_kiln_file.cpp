// The .kiln container (onnx/kiln_file.h): float and integer (QConv/QGemm)
// graphs round-trip to identical outputs; mostly-zero tensors are stored as
// bitmasks and the file shrinks; a damaged file is a named error, never a crash.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>

#include "ir/edit.h"
#include "onnx/import.h"
#include "onnx/kiln_file.h"
#include "passes/lower_qdq.h"
#include "quant/calibrate.h"
#include "quant/pipeline.h"
#include "runtime/session.h"

namespace kiln {
namespace {

const std::string kLenet = std::string(KILN_SOURCE_DIR) + "/models/lenet.onnx";

Tensor images(int64_t n) {
  Tensor t = Tensor::create(DType::kF32, {n, 1, 28, 28}).value();
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float((i * 7919) % 256) / 255.0f;
  return t;
}

void expect_same_outputs(const ir::Graph& a, const ir::Graph& b) {
  auto sa = runtime::Session::create(a);
  auto sb = runtime::Session::create(b);
  ASSERT_TRUE(sa.ok()) << sa.error().message;
  ASSERT_TRUE(sb.ok()) << sb.error().message;
  std::vector<Tensor> x = {images(4)};
  auto ya = sa->run(x), yb = sb->run(x);
  ASSERT_TRUE(ya.ok() && yb.ok());
  ASSERT_EQ((*ya)[0].nbytes(), (*yb)[0].nbytes());
  EXPECT_EQ(std::memcmp((*ya)[0].raw(), (*yb)[0].raw(), size_t((*ya)[0].nbytes())), 0);
}

// Re-seals a modified file with a valid checksum (CRC-32 of all bytes before
// it), so the check behind the checksum is reached.
void reseal(std::string& bytes) {
  bytes.resize(bytes.size() - 4);
  uint32_t c = uint32_t(crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), uInt(bytes.size())));
  for (int i = 0; i < 4; ++i) bytes.push_back(char((c >> (8 * i)) & 0xff));
}

}  // namespace

TEST(KilnFile, FloatLenetRoundTripsAndIsNoLargerThanOnnx) {
  auto g = onnx_io::load_model(kLenet).value();
  onnx_io::KilnFileStats st;
  auto bytes = onnx_io::encode_kiln(g, &st);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  EXPECT_TRUE(onnx_io::is_kiln_file(*bytes));
  EXPECT_EQ(st.file_bytes, int64_t(bytes->size()));
  EXPECT_EQ(st.dense_bytes, g.constant_bytes());
  EXPECT_LE(int64_t(bytes->size()), int64_t(std::filesystem::file_size(kLenet)));
  auto back = onnx_io::decode_kiln(*bytes);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(ir::output_names(*back), ir::output_names(g));
  expect_same_outputs(g, *back);
}

TEST(KilnFile, IntegerGraphKeepsKilnOpsAndRunsIdentically) {
  auto g = onnx_io::load_model(kLenet).value();
  auto prepared = quant::prepare_for_quantization(g).value();
  quant::CalibSpec spec;
  spec.items = {"fashion-mnist"};
  spec.count = 64;
  auto calib = quant::open_calib_source(prepared, spec);
  ASSERT_TRUE(calib.ok()) << calib.error().message;
  quant::BuildOptions b;
  auto obs = quant::calibrate(prepared, quant::activation_values(prepared, b.config), *calib, 0);
  ASSERT_TRUE(obs.ok()) << obs.error().message;
  auto q = quant::build_quantized(prepared, b, *obs);
  ASSERT_TRUE(q.ok()) << q.error().message;
  ir::Graph lowered = *q;
  ASSERT_TRUE(passes::lower_qdq(lowered).ok());
  int kiln_ops = 0;
  for (const auto& n : lowered.nodes) kiln_ops += n.op == ir::OpKind::kQConv || n.op == ir::OpKind::kQGemm;
  ASSERT_EQ(kiln_ops, 4);
  auto bytes = onnx_io::encode_kiln(lowered);
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;
  auto back = onnx_io::decode_kiln(*bytes);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->nodes.size(), lowered.nodes.size());
  EXPECT_EQ(ir::output_names(*back), ir::output_names(g)) << "quantizing and lowering keep the output name";
  expect_same_outputs(lowered, *back);
  // The file is about a quarter of the float model's .onnx file.
  EXPECT_LE(double(bytes->size()), 0.27 * double(std::filesystem::file_size(kLenet)));
}

TEST(KilnFile, MostlyZeroTensorsAreStoredAsBitmasks) {
  auto g = onnx_io::load_model(kLenet).value();
  auto dense = onnx_io::encode_kiln(g).value();
  // Zero 75% of every weight matrix (as magnitude pruning would).
  for (auto& v : g.values) {
    if (!v.is_constant() || v.constant.shape().size() < 2) continue;
    float* w = v.constant.data<float>();
    for (int64_t i = 0; i < v.constant.numel(); ++i)
      if (i % 4 != 0) w[i] = 0.0f;
  }
  onnx_io::KilnFileStats st;
  auto sparse = onnx_io::encode_kiln(g, &st).value();
  EXPECT_EQ(st.sparse_tensors, 4);
  // 4 bytes per remaining weight plus one bit per weight: well under half.
  EXPECT_LT(double(sparse.size()), 0.35 * double(dense.size()));
  auto back = onnx_io::decode_kiln(sparse);
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_same_outputs(g, *back);
}

TEST(KilnFile, DamagedFilesAreNamedErrors) {
  auto g = onnx_io::load_model(kLenet).value();
  std::string good = onnx_io::encode_kiln(g).value();
  auto msg = [](const std::string& b) {
    auto r = onnx_io::decode_kiln(b);
    return r.ok() ? std::string("(decoded)") : r.error().message;
  };
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x40;
  EXPECT_NE(msg(flipped).find("checksum mismatch"), std::string::npos) << msg(flipped);
  EXPECT_NE(msg(good.substr(0, good.size() - 100)).find("checksum mismatch"), std::string::npos);
  EXPECT_NE(msg(good.substr(0, 6)).find("truncated"), std::string::npos) << msg(good.substr(0, 6));
  std::string version = good;
  version[4] = 9;
  reseal(version);
  EXPECT_NE(msg(version).find("version 9 is not supported"), std::string::npos) << msg(version);
  std::string extra = good.substr(0, good.size() - 4) + "xyz";
  extra += "0000";
  reseal(extra);
  EXPECT_NE(msg(extra).find("stray bytes"), std::string::npos) << msg(extra);
  std::string graph = good;
  graph[14] ^= 0x55;  // inside the deflated graph
  reseal(graph);
  std::string m = msg(graph);
  EXPECT_TRUE(m.find("graph section") != std::string::npos || m.find("tensor") != std::string::npos) << m;
  // Any single damaged byte behind a valid checksum decodes or fails cleanly
  // (the sanitizer build runs this too).
  for (size_t pos = 4; pos + 4 < good.size(); pos += 97) {
    std::string b = good;
    b[pos] = char(b[pos] ^ 0xa5);
    reseal(b);
    (void)msg(b);
  }
}

}  // namespace kiln
