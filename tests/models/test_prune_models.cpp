// Pruning on the bundled LeNet, measured on the 10k Fashion-MNIST test set:
// - 50% unstructured (global magnitude): drop <= 0.5 points, the .kiln file shrinks accordingly;
// - channel pruning removing >= 30% of the convolution MACs, with least-squares
//   recovery: drop <= 1.5 points, and recovery beats no recovery;
// - 50% unstructured + static W8A8: drop <= 1.0 point, .kiln file <= 20% of the float32 .onnx;
// - `kiln prune --sensitivity` and `--max-accuracy-drop` through the CLI.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/npy.h"
#include "ir/bind.h"
#include "onnx/import.h"
#include "onnx/kiln_file.h"
#include "passes/lower_qdq.h"
#include "prune/channel.h"
#include "prune/magnitude.h"
#include "prune/recover.h"
#include "quant/calibrate.h"
#include "quant/pipeline.h"
#include "report/accuracy.h"
#include "report/cost.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

const std::string kLenet = std::string(KILN_SOURCE_DIR) + "/models/lenet.onnx";

struct Fixture {
  ir::Graph fp32;
  quant::CalibSource calib;
  io::LabeledImages test;
  double fp32_top1 = 0;
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture x;
    x.fp32 = onnx_io::load_model(kLenet).value();
    quant::CalibSpec spec;
    spec.items = {"fashion-mnist"};
    spec.count = 1000;
    x.calib = quant::open_calib_source(x.fp32, spec).value();
    x.test = io::load_fashion_mnist(io::kFashionMnistDir, "t10k").value();
    auto s = runtime::Session::create(x.fp32).value();
    x.fp32_top1 = report::evaluate(s, x.test, 0, 0, 500).value().top1();
    return x;
  }();
  return f;
}

double top1(const ir::Graph& g) {
  auto s = runtime::Session::create(g);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return report::evaluate(*s, fixture().test, 0, 0, 500).value().top1();
}

int64_t kiln_bytes(const ir::Graph& g) { return int64_t(onnx_io::encode_kiln(g).value().size()); }

int64_t conv_macs(const ir::Graph& g) {
  ir::Graph b = g;
  EXPECT_TRUE(ir::bind_symbols(b, {}, 1).ok());
  int64_t macs = 0;
  for (const auto& n : b.nodes)
    if (n.op == ir::OpKind::kConv) macs += report::node_cost(b, n).macs;
  return macs;
}

std::pair<int, std::string> sh(const std::string& cmd) {
  fs::path log = fs::temp_directory_path() / ("kiln-p-" + std::to_string(getpid()) + ".log");
  int st = std::system((cmd + " >" + log.string() + " 2>&1").c_str());
  std::ifstream f(log);
  std::stringstream ss;
  ss << f.rdbuf();
  fs::remove(log);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, ss.str()};
}

}  // namespace

TEST(PruneLenet, Unstructured50PercentGlobal) {
  auto& f = fixture();
  ir::Graph p = f.fp32;
  prune::MagnitudeOptions o;
  o.sparsity = 0.5;
  ASSERT_TRUE(prune::prune_magnitude(p, o).ok());
  double acc = top1(p);
  double file = double(kiln_bytes(p)) / double(kiln_bytes(f.fp32));
  std::printf("50%% global magnitude: top-1 %.2f%% (drop %.2f), .kiln file %.1f%% of the dense .kiln\n", acc,
              f.fp32_top1 - acc, 100 * file);
  EXPECT_LE(f.fp32_top1 - acc, 0.5);
  // Half the weights gone: 4 bytes per kept weight plus a bit per weight.
  EXPECT_LE(file, 0.56);
}

TEST(PruneLenet, ChannelsWithLeastSquaresRecovery) {
  auto& f = fixture();
  ir::Graph p = f.fp32;
  prune::ChannelPruneOptions o;
  o.ratio = 0.2;
  auto r = prune::prune_channels(p, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  double removed = 1.0 - double(conv_macs(p)) / double(conv_macs(f.fp32));
  double plain = top1(p);
  auto rec = prune::recover_least_squares(p, f.fp32, *r, f.calib);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  double recovered = top1(p);
  std::printf("channels 20%%: conv MACs -%.1f%%, top-1 pruned %.2f%% (drop %.2f), recovered %.2f%% (drop %.2f)\n",
              100 * removed, plain, f.fp32_top1 - plain, recovered, f.fp32_top1 - recovered);
  EXPECT_GE(removed, 0.30);
  EXPECT_LE(f.fp32_top1 - recovered, 1.5);
  EXPECT_GT(recovered, plain);
}

TEST(PruneLenet, Prune50ThenInt8) {
  auto& f = fixture();
  ir::Graph p = f.fp32;
  prune::MagnitudeOptions o;
  o.sparsity = 0.5;
  ASSERT_TRUE(prune::prune_magnitude(p, o).ok());
  ir::Graph prepared = quant::prepare_for_quantization(p).value();
  quant::BuildOptions b;
  auto obs = quant::calibrate(prepared, quant::activation_values(prepared, b.config), f.calib, 0);
  ASSERT_TRUE(obs.ok()) << obs.error().message;
  auto q = quant::build_quantized(prepared, b, *obs);
  ASSERT_TRUE(q.ok()) << q.error().message;
  ASSERT_TRUE(passes::lower_qdq(*q).ok());
  double acc = top1(*q);
  double file = double(kiln_bytes(*q)) / double(fs::file_size(kLenet));
  std::printf("50%% pruned + W8A8: top-1 %.2f%% (drop %.2f), .kiln file %lld bytes = %.1f%% of the float32 .onnx\n", acc,
              f.fp32_top1 - acc, (long long)kiln_bytes(*q), 100 * file);
  EXPECT_LE(f.fp32_top1 - acc, 1.0);
  EXPECT_LE(file, 0.20);
}

TEST(PruneLenet, CliSensitivityAndSearch) {
  std::string bin = KILN_BIN;
  auto [rc, log] = sh(bin + " prune " + kLenet + " --sensitivity --eval-limit 1000");
  ASSERT_EQ(rc, 0) << log;
  for (const char* layer : {"/conv1/Conv", "/conv2/Conv", "/fc1/Gemm", "/fc2/Gemm"}) EXPECT_NE(log.find(layer), std::string::npos) << log;
  std::string out = (fs::temp_directory_path() / ("kiln_prune_search_" + std::to_string(getpid()) + ".kiln")).string();
  auto [rc2, log2] = sh(bin + " prune " + kLenet + " --max-accuracy-drop 0.5 --eval-limit 2000 -o " + out);
  ASSERT_EQ(rc2, 0) << log2;
  std::printf("%s", log2.c_str());
  auto pos = log2.find("drop (points)");
  ASSERT_NE(pos, std::string::npos) << log2;
  std::istringstream row(log2.substr(pos + 13));
  double d0 = 1, d1 = 1;
  row >> d0 >> d1;
  EXPECT_EQ(d0, 0.0);
  EXPECT_LE(d1, 0.5);
  auto pruned = onnx_io::load_model(out);
  ASSERT_TRUE(pruned.ok()) << pruned.error().message;
  int64_t zeros = 0;
  for (const auto& l : prune::layer_sparsity(*pruned)) zeros += l.zeros;
  EXPECT_GT(zeros, 10000) << "the search should find well over 45% sparsity on LeNet";
  fs::remove(out);
}

TEST(PruneLenet, CliCombinedPruneQuantize) {
  std::string out = (fs::temp_directory_path() / ("kiln_combined_" + std::to_string(getpid()) + ".kiln")).string();
  auto [rc, log] = sh(std::string(KILN_BIN) + " optimize " + kLenet + " --prune 0.5 --quantize int8 -o " + out);
  ASSERT_EQ(rc, 0) << log;
  std::printf("%s", log.c_str());
  auto value_after = [&](const std::string& label, int column) {
    auto pos = log.find("\n" + label);
    EXPECT_NE(pos, std::string::npos) << label << " in:\n" << log;
    std::istringstream row(log.substr(pos + 1 + label.size()));
    std::string cell;
    for (int i = 0; i < column; ++i) row >> cell;
    return std::stod(cell);
  };
  EXPECT_LE(value_after("drop (points)", 1), 1.0);
  EXPECT_LE(value_after("file bytes", 3), 20.0);  // percent of the original file
  EXPECT_LE(value_after("non-zero parameters", 3), 55.0);
  EXPECT_LE(value_after("peak activation bytes", 3), 50.0);
  fs::remove(out);
}

// Channel groups on the torch CNNs (random weights, so accuracy says nothing):
// residual stages prune together, depthwise convolutions pass channels
// through, and the pruned network computes exactly what the original computes
// with those channels' filters and biases zeroed (the exports have BatchNorm
// folded, so a zeroed channel stays zero through Relu/Clip, depthwise Conv and Add).
class PruneTorchModels : public ::testing::TestWithParam<std::string> {};

TEST_P(PruneTorchModels, ChannelGroupsGiveTheZeroedFunction) {
  fs::path dir = fs::path(KILN_BINARY_DIR) / "models" / GetParam();
  auto g = onnx_io::load_model((dir / "model.onnx").string());
  ASSERT_TRUE(g.ok()) << g.error().message;
  auto x = io::load_npy((dir / "input_0.npy").string());
  ASSERT_TRUE(x.ok());
  ir::Graph p = *g;
  prune::ChannelPruneOptions o;
  o.ratio = 0.3;
  auto r = prune::prune_channels(p, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  size_t joined = 0;
  for (const auto& l : r->layers) joined = std::max(joined, l.producers.size());
  EXPECT_GT(joined, 1u) << "residual stages should form groups of several layers";
  ir::Graph z = *g;
  auto zero_rows = [&](const std::string& node, const std::vector<int64_t>& kept) {
    for (auto& n : z.nodes) {
      if (n.name != node) continue;
      for (size_t k = 1; k < n.inputs.size() && k < 3; ++k) {
        if (n.inputs[k] == ir::kNoValue) continue;
        Tensor& t = z.value(n.inputs[k]).constant;
        t = t.clone();
        int64_t inner = t.numel() / t.dim(0);
        for (int64_t c = 0; c < t.dim(0); ++c)
          if (!std::binary_search(kept.begin(), kept.end(), c))
            for (int64_t i = 0; i < inner; ++i) t.data<float>()[c * inner + i] = 0.0f;
      }
    }
  };
  for (const auto& l : r->layers) {
    for (const auto& n : l.producers) zero_rows(n, l.kept);
    for (const auto& n : l.channelwise) zero_rows(n, l.kept);
  }
  auto sp = runtime::Session::create(p);
  auto sz = runtime::Session::create(z);
  ASSERT_TRUE(sp.ok() && sz.ok());
  auto yp = sp->run(std::vector<Tensor>{*x}).value()[0];
  auto yz = sz->run(std::vector<Tensor>{*x}).value()[0];
  double d = 0, m = 0;
  for (int64_t i = 0; i < yz.numel(); ++i) {
    d = std::max(d, std::fabs(yp.as_double(i) - yz.as_double(i)));
    m = std::max(m, std::fabs(yz.as_double(i)));
  }
  double removed = 1.0 - double(conv_macs(p)) / double(conv_macs(*g));
  std::printf("%s: %zu channel groups (largest %zu layers), conv MACs -%.1f%%, max rel diff vs zeroed original %.2g\n",
              GetParam().c_str(), r->layers.size(), joined, 100 * removed, d / m);
  EXPECT_LE(d / m, 1e-4);
  EXPECT_GE(removed, 0.3);
}

INSTANTIATE_TEST_SUITE_P(Torch, PruneTorchModels, ::testing::Values("resnet18", "mobilenet_v2"));

TEST(PruneResnet18Bn, BatchNormRecalibrationRecoversOutputs) {
  fs::path dir = fs::path(KILN_BINARY_DIR) / "models" / "resnet18_bn";
  auto g = onnx_io::load_model((dir / "model.onnx").string());
  ASSERT_TRUE(g.ok()) << g.error().message;
  quant::CalibSpec spec;
  spec.items = {(dir / "input_0.npy").string()};
  auto calib = quant::open_calib_source(*g, spec);
  ASSERT_TRUE(calib.ok()) << calib.error().message;
  auto x = calib->batch(0, 1).value();
  auto ref = runtime::Session::create(*g).value().run(x).value()[0];
  ir::Graph p = *g;
  prune::ChannelPruneOptions o;
  o.ratio = 0.3;
  ASSERT_TRUE(prune::prune_channels(p, o).ok());
  double before = quant::sqnr_db(ref, runtime::Session::create(p).value().run(x).value()[0]);
  auto n = prune::recalibrate_batchnorm(p, *calib);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 20);
  double after = quant::sqnr_db(ref, runtime::Session::create(p).value().run(x).value()[0]);
  std::printf("resnet18_bn channels 30%%: output SQNR %.2f dB -> %.2f dB after BatchNorm recalibration\n", before, after);
  EXPECT_GT(after, before + 1.0);
}
