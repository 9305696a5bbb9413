// Real models end to end through the `kiln` CLI:
// - the bundled LeNet reproduces its recorded Fashion-MNIST accuracy exactly;
// - `kiln bench` prints a latency table and valid JSON;
// - resnet18, resnet50, mobilenet_v2 and a BERT-base-shaped TransformerEncoder
//   (random weights, exported by scripts/export_models.py at test time) match
//   PyTorch's outputs within 1e-4 relative error.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/npy.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs a shell command; returns (exit code, stdout+stderr).
std::pair<int, std::string> sh(const std::string& cmd) {
  fs::path log = fs::temp_directory_path() / ("kiln-models-" + std::to_string(getpid()) + ".log");
  int st = std::system((cmd + " >" + log.string() + " 2>&1").c_str());
  std::string out = slurp(log);
  fs::remove(log);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

const std::string kBin = KILN_BIN;
const std::string kSrc = KILN_SOURCE_DIR;
const fs::path kModels = fs::path(KILN_BINARY_DIR) / "models";

}  // namespace

TEST(Models, LenetEvalReproducesRecordedAccuracy) {
  auto rec = nlohmann::json::parse(slurp(kSrc + "/models/lenet.json"));
  auto [rc, out] = sh(kBin + " eval " + kSrc + "/models/lenet.onnx --dataset fashion-mnist");
  ASSERT_EQ(rc, 0) << out;
  int correct = rec["correct"].get<int>();
  char expect[128];
  std::snprintf(expect, sizeof expect, "top-1      %.2f%% (%d/10000 correct)", correct / 100.0, correct);
  EXPECT_NE(out.find(expect), std::string::npos) << "expected '" << expect << "' in:\n" << out;
  EXPECT_GE(rec["top1"].get<double>(), 89.0);
}

TEST(Models, BenchPrintsTableAndJson) {
  auto [rc, out] = sh(kBin + " bench " + kSrc + "/models/lenet.onnx --iters 20 --warmup 2");
  ASSERT_EQ(rc, 0) << out;
  for (const char* row : {"median", "p90", "p99", "throughput", "peak RSS"}) EXPECT_NE(out.find(row), std::string::npos) << out;
  auto [rc2, js] = sh(kBin + " bench " + kSrc + "/models/lenet.onnx --iters 20 --warmup 2 --json --batch 4");
  ASSERT_EQ(rc2, 0) << js;
  auto j = nlohmann::json::parse(js);
  EXPECT_EQ(j["iterations"].get<int>(), 20);
  EXPECT_EQ(j["batch"].get<int>(), 4);
  EXPECT_GT(j["latency_ms"]["median"].get<double>(), 0.0);
  EXPECT_LE(j["latency_ms"]["median"].get<double>(), j["latency_ms"]["p99"].get<double>());
  EXPECT_GT(j["peak_activation_bytes"].get<int64_t>(), 0);
}

// --profile: one entry per step of the plan (the cpu plan's step count, the
// reference's node count), each with a node, a kernel and a positive time
// that together make up most of a run; the text lists the time per kernel.
TEST(Models, BenchProfileTimesEveryStep) {
  for (const char* backend : {"cpu", "reference"}) {
    SCOPED_TRACE(backend);
    const std::string base = kBin + " bench " + kSrc + "/models/lenet.onnx --iters 20 --warmup 2 --backend " + backend;
    auto [rc, js] = sh(base + " --profile --json");
    ASSERT_EQ(rc, 0) << js;
    auto j = nlohmann::json::parse(js);
    ASSERT_TRUE(j.contains("profile")) << js;
    EXPECT_EQ(j["profile"]["runs"].get<int>(), 20);
    const auto& steps = j["profile"]["steps"];
    ASSERT_GT(steps.size(), 3u);
    double sum = 0;
    for (const auto& st : steps) {
      EXPECT_FALSE(st["node"].get<std::string>().empty());
      EXPECT_FALSE(st["kernel"].get<std::string>().empty());
      EXPECT_GT(st["ms_per_run"].get<double>(), 0.0) << st.dump();
      sum += st["ms_per_run"].get<double>();
    }
    EXPECT_LT(sum, 10 * j["latency_ms"]["p99"].get<double>() + 1.0);
    auto [rc2, out] = sh(base + " --profile --print-plan");
    ASSERT_EQ(rc2, 0) << out;
    EXPECT_NE(out.find("profile over 20 runs"), std::string::npos) << out;
    EXPECT_NE(out.find("share  kernel"), std::string::npos) << out;
    if (std::string(backend) == "cpu") {
      const size_t at = out.find(" steps, ");
      ASSERT_NE(at, std::string::npos) << out;
      const size_t start = out.rfind('\n', at) + 1;
      EXPECT_EQ(std::stoul(out.substr(start, at - start)), steps.size()) << out;
    }
  }
}

class TorchModels : public ::testing::TestWithParam<std::string> {
 protected:
  // The models are exported once per test run by the CTest fixture
  // models.export (scripts/export_models.py); a manual run exports them here.
  static void SetUpTestSuite() {
    if (fs::exists(kModels / "transformer" / "output_0.npy")) return;
    auto [rc, out] = sh("/usr/bin/python3 " + kSrc + "/scripts/export_models.py --out " + kModels.string());
    ASSERT_EQ(rc, 0) << "scripts/export_models.py failed (needs Debian python3-torch, python3-torchvision, python3-onnx):\n" << out;
  }
};

TEST_P(TorchModels, KilnRunMatchesPytorch) {
  fs::path dir = kModels / GetParam();
  ASSERT_TRUE(fs::exists(dir / "model.onnx")) << dir;
  fs::path out_dir = dir / "kiln_out";
  fs::remove_all(out_dir);
  auto [rc, out] = sh(kBin + " run " + (dir / "model.onnx").string() + " --input " + (dir / "input_0.npy").string() +
                      " --output-dir " + out_dir.string());
  ASSERT_EQ(rc, 0) << out;
  auto got = kiln::io::load_npy((out_dir / "output.npy").string());
  auto want = kiln::io::load_npy((dir / "output_0.npy").string());
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_TRUE(want.ok()) << want.error().message;
  ASSERT_EQ(got->shape(), want->shape());
  // Relative error: largest absolute difference over the largest reference magnitude.
  double max_diff = 0, max_ref = 0;
  for (int64_t i = 0; i < want->numel(); ++i) {
    max_diff = std::max(max_diff, std::fabs(got->as_double(i) - want->as_double(i)));
    max_ref = std::max(max_ref, std::fabs(want->as_double(i)));
  }
  double rel = max_diff / max_ref;
  std::printf("%s: max |kiln - torch| = %.3g, max |torch| = %.3g, relative %.3g\n", GetParam().c_str(), max_diff,
              max_ref, rel);
  EXPECT_LE(rel, 1e-4);
}

// kiln's exporter writes opset 21; ONNX Runtime (pip, in the project's venv)
// must load the export and compute PyTorch's outputs.
TEST_P(TorchModels, OnnxRuntimeRunsKilnExport) {
  fs::path dir = kModels / GetParam();
  fs::path exported = dir / "kiln_export.onnx";
  auto [rc, out] = sh(kBin + " convert " + (dir / "model.onnx").string() + " -o " + exported.string());
  ASSERT_EQ(rc, 0) << out;
  std::string py = fs::exists(kSrc + "/.venv/bin/python") ? kSrc + "/.venv/bin/python" : "/usr/bin/python3";
  auto [rc2, out2] = sh(py + " " + kSrc + "/tests/models/ort_check.py " + exported.string() + " " +
                        (dir / "input_0.npy").string() + " " + (dir / "output_0.npy").string());
  if (rc2 == 77) GTEST_SKIP() << out2;
  std::printf("%s", out2.c_str());
  EXPECT_EQ(rc2, 0) << out2;
}

INSTANTIATE_TEST_SUITE_P(Torchvision, TorchModels,
                         ::testing::Values("resnet18", "resnet50", "mobilenet_v2", "transformer"));
