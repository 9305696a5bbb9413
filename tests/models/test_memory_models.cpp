// Activation memory planning on the exported torch models (resnet18, resnet50,
// mobilenet_v2, a BERT-base-shaped transformer) at batch 1, dims bound from the
// exported input and shape arithmetic folded (as `kiln info --memory` does):
// the brute-force checker accepts each plan, the arena is at least 2x below the
// no-reuse total, and the reference backend's measured peak equals the
// planner's lower bound without in-place sharing.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/npy.h"
#include "ir/bind.h"
#include "map/memory_plan.h"
#include "onnx/import.h"
#include "passes/pipeline.h"
#include "runtime/session.h"

namespace fs = std::filesystem;

namespace kiln {
namespace {

const fs::path kModels = fs::path(KILN_BINARY_DIR) / "models";

double mib(int64_t b) { return double(b) / (1024.0 * 1024.0); }

struct Loaded {
  ir::Graph graph;
  Tensor input;
};

// The model with its symbolic dims bound to the exported input's shape
// (batch 1; the transformer's sequence length 128) and its shape arithmetic
// (Shape -> Gather -> Concat -> Reshape) folded, so every activation is static.
Loaded load(const std::string& name) {
  fs::path dir = kModels / name;
  auto g = onnx_io::load_model((dir / "model.onnx").string());
  EXPECT_TRUE(g.ok()) << g.error().message;
  auto x = io::load_npy((dir / "input_0.npy").string());
  EXPECT_TRUE(x.ok()) << x.error().message;
  Loaded l{std::move(g).value(), std::move(x).value()};
  std::map<std::string, int64_t> dims;
  const Shape& s = l.graph.value(l.graph.inputs[0]).type.shape;
  EXPECT_EQ(s.size(), l.input.shape().size());
  for (size_t d = 0; d < s.size() && d < l.input.shape().size(); ++d)
    if (s[d] < 0) dims[l.graph.symbols[size_t(-s[d] - 1)]] = l.input.dim(int64_t(d));
  auto b = ir::bind_symbols(l.graph, dims);
  EXPECT_TRUE(b.ok()) << b.error().message;
  passes::PipelineOptions shapes_only;
  shapes_only.only = {"fold_shapes", "fold_constants", "cleanup"};
  auto f = passes::run_pipeline(l.graph, shapes_only);
  EXPECT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(l.input.dim(0), 1) << name << " was exported at batch " << l.input.dim(0);
  return l;
}

class MemoryModels : public ::testing::TestWithParam<std::string> {};

TEST_P(MemoryModels, PlanChecksAndHalvesNoReuseTotal) {
  const std::string name = GetParam();
  ASSERT_TRUE(fs::exists(kModels / name / "model.onnx")) << "run scripts/export_models.py --out " << kModels;
  Loaded l = load(name);
  auto plan = map::plan_memory(l.graph);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto ok = map::check_memory_plan(l.graph, *plan);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  const map::MemoryPlan& m = *plan;
  std::printf("%-13s arena %8.2f MiB  lower bound %8.2f MiB  no reuse %8.2f MiB  ratio %5.2fx  in place %d/%zu\n",
              name.c_str(), mib(m.arena_bytes), mib(m.lower_bound_bytes), mib(m.no_reuse_bytes),
              double(m.no_reuse_bytes) / double(m.arena_bytes), m.inplace_count, m.values.size());
  EXPECT_GE(m.arena_bytes, m.lower_bound_bytes);
  EXPECT_LE(m.arena_bytes * 2, m.no_reuse_bytes)
      << name << " peak activation memory at least 2x below the no-reuse total";
  if (name == "resnet50" || name == "resnet18") {
    EXPECT_GT(m.inplace_count, 0) << "Relu/Add should run in place";
  }

  // Without in-place sharing the lower bound is what the reference backend,
  // which frees each activation after its last reader, holds at its peak.
  auto separate = map::plan_memory(l.graph, {.alignment = 64, .in_place = false});
  ASSERT_TRUE(separate.ok()) << separate.error().message;
  ASSERT_TRUE(map::check_memory_plan(l.graph, *separate).ok());
  auto s = runtime::Session::create(l.graph);
  ASSERT_TRUE(s.ok()) << s.error().message;
  RunStats stats;
  auto out = s->run(std::vector<Tensor>{l.input}, &stats);
  ASSERT_TRUE(out.ok()) << out.error().message;
  std::printf("%-13s reference measured peak %.2f MiB, planned arena without in place %.2f MiB\n", name.c_str(),
              mib(stats.peak_activation_bytes), mib(separate->arena_bytes));
  EXPECT_EQ(separate->lower_bound_bytes, stats.peak_activation_bytes);
  EXPECT_GE(separate->arena_bytes, stats.peak_activation_bytes);
}

INSTANTIATE_TEST_SUITE_P(Torch, MemoryModels,
                         ::testing::Values("resnet18", "resnet50", "mobilenet_v2", "transformer"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kiln
