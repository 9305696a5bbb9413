// Pruning (src/prune): magnitude (global and per layer) zeroes exactly the
// smallest weights; N:M keeps the N largest of every M; channel pruning gives a
// smaller dense model equal to the original with those channels zeroed; layers
// whose channels reach Add / graph outputs are left whole with a reason; the
// least-squares re-fit lowers every re-fitted layer's output error.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "ir/edit.h"
#include "ir/infer.h"
#include "onnx/import.h"
#include "prune/channel.h"
#include "prune/magnitude.h"
#include "prune/recover.h"
#include "runtime/session.h"

namespace kiln {
namespace {

const std::string kLenet = std::string(KILN_SOURCE_DIR) + "/models/lenet.onnx";

Tensor images(int64_t n) {
  Tensor t = Tensor::create(DType::kF32, {n, 1, 28, 28}).value();
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float((i * 7919) % 256) / 255.0f;
  return t;
}

Tensor run(const ir::Graph& g, const Tensor& x) {
  auto s = runtime::Session::create(g);
  EXPECT_TRUE(s.ok()) << s.error().message;
  return s->run(std::vector<Tensor>{x}).value()[0];
}

double max_rel_diff(const Tensor& a, const Tensor& b) {
  double d = 0, m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    d = std::max(d, std::fabs(a.as_double(i) - b.as_double(i)));
    m = std::max(m, std::fabs(b.as_double(i)));
  }
  return d / m;
}

Tensor random_f32(Shape s, uint32_t seed) {
  Tensor t = Tensor::create(DType::kF32, s).value();
  for (int64_t i = 0; i < t.numel(); ++i) {
    seed = seed * 1664525u + 1013904223u;
    t.data<float>()[i] = float(int32_t(seed >> 8) % 2001 - 1000) / 1000.0f;
  }
  return t;
}

}  // namespace

TEST(PruneMagnitude, GlobalRemovesExactlyTheSmallestWeights) {
  auto g = onnx_io::load_model(kLenet).value();
  std::vector<float> before;
  for (const auto& l : prune::prunable_layers(g))
    for (int64_t i = 0; i < g.value(l.weight).constant.numel(); ++i) before.push_back(g.value(l.weight).constant.data<float>()[i]);
  prune::MagnitudeOptions o;
  o.sparsity = 0.5;
  auto r = prune::prune_magnitude(g, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  int64_t total = 0, zeros = 0;
  for (const auto& l : *r) total += l.params, zeros += l.zeros;
  EXPECT_EQ(zeros, std::llround(0.5 * double(total)));
  // Every removed weight is no larger in magnitude than every kept one.
  float max_removed = 0, min_kept = 1e30f;
  size_t k = 0;
  for (const auto& l : prune::prunable_layers(g))
    for (int64_t i = 0; i < g.value(l.weight).constant.numel(); ++i, ++k) {
      float now = g.value(l.weight).constant.data<float>()[i];
      if (now == 0.0f) {
        max_removed = std::max(max_removed, std::fabs(before[k]));
      } else {
        min_kept = std::min(min_kept, std::fabs(now));
        EXPECT_EQ(now, before[k]);
      }
    }
  EXPECT_LE(max_removed, min_kept);
  // Global: the layers end up with different sparsities.
  double lo = 1, hi = 0;
  for (const auto& l : *r) lo = std::min(lo, l.sparsity()), hi = std::max(hi, l.sparsity());
  EXPECT_GT(hi - lo, 0.05);
}

TEST(PruneMagnitude, PruningACopyLeavesTheOriginalAlone) {
  auto g = onnx_io::load_model(kLenet).value();
  ir::Graph p = g;
  prune::MagnitudeOptions o;
  ASSERT_TRUE(prune::prune_magnitude(p, o).ok());
  ASSERT_TRUE(prune::prune_n_m(p, 1, 2, {}).ok());
  for (const auto& l : prune::layer_sparsity(g)) EXPECT_EQ(l.zeros, 0) << l.node;
}

TEST(PruneMagnitude, PerLayerHitsEachTarget) {
  auto g = onnx_io::load_model(kLenet).value();
  prune::MagnitudeOptions o;
  o.sparsity = 0.3;
  o.global = false;
  o.layer_sparsity["/fc1/Gemm"] = 0.8;
  auto r = prune::prune_magnitude(g, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  for (const auto& l : *r) {
    double want = l.node == "/fc1/Gemm" ? 0.8 : 0.3;
    EXPECT_EQ(l.zeros, std::llround(want * double(l.params))) << l.node;
  }
  o.layer_sparsity["nope"] = 0.5;
  EXPECT_NE(prune::prune_magnitude(g, o).error().message.find("'nope' is not a prunable layer"), std::string::npos);
  o.layer_sparsity.clear();
  o.sparsity = 1.0;
  EXPECT_FALSE(prune::prune_magnitude(g, o).ok());
}

TEST(PruneNM, KeepsTheLargestNOfEveryM) {
  for (int64_t trans : {0, 1}) {
    ir::Graph g;
    ir::ValueId x = g.add_value("x", {DType::kF32, {2, 16}});
    g.inputs = {x};
    Tensor w = random_f32(trans ? Shape{8, 16} : Shape{16, 8}, 7 + uint32_t(trans));
    Tensor orig = w;
    ir::ValueId wv = g.add_constant("w", w);
    ir::GemmAttrs a;
    a.transB = trans;
    g.outputs = ir::append_node(g, "fc", ir::OpKind::kGemm, {x, wv}, a);
    ASSERT_TRUE(ir::infer_graph(g).ok());
    auto r = prune::prune_n_m(g, 2, 4, {});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*r)[0].zeros, 64);
    const float* p = g.value(wv).constant.data<float>();
    const float* q = orig.data<float>();
    for (int64_t u = 0; u < 8; ++u)
      for (int64_t k0 = 0; k0 < 16; k0 += 4) {
        std::vector<float> kept, gone;
        for (int64_t j = 0; j < 4; ++j) {
          int64_t idx = trans ? u * 16 + k0 + j : (k0 + j) * 8 + u;
          (p[idx] == 0.0f ? gone : kept).push_back(std::fabs(q[idx]));
        }
        ASSERT_EQ(kept.size(), 2u);
        EXPECT_LE(*std::max_element(gone.begin(), gone.end()), *std::min_element(kept.begin(), kept.end()));
      }
  }
  // LeNet: conv1 (1 input channel), conv2 (10) and fc2 (50 inputs) are not
  // multiples of 4: skipped, named; fc1 (320 inputs) is pruned 2:4.
  auto g = onnx_io::load_model(kLenet).value();
  std::vector<std::string> skipped;
  auto r = prune::prune_n_m(g, 2, 4, {}, &skipped);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(skipped.size(), 3u);
  EXPECT_NE(skipped[0].find("/conv1/Conv (reduction length 1 is not a multiple of 4)"), std::string::npos) << skipped[0];
  for (const auto& l : *r) EXPECT_EQ(l.sparsity(), l.node == "/fc1/Gemm" ? 0.5 : 0.0) << l.node;
  EXPECT_FALSE(prune::prune_n_m(g, 4, 4, {}).ok());
}

TEST(PruneChannels, SmallerModelEqualsOriginalWithChannelsZeroed) {
  auto g = onnx_io::load_model(kLenet).value();
  ir::Graph p = g;
  prune::ChannelPruneOptions o;
  o.ratio = 0.3;
  auto r = prune::prune_channels(p, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->layers.size(), 3u);
  std::map<std::string, size_t> kept;
  for (const auto& l : r->layers) kept[l.node] = l.kept.size();
  EXPECT_EQ(kept["/conv1/Conv"], 7u);
  EXPECT_EQ(kept["/conv2/Conv"], 14u);
  EXPECT_EQ(kept["/fc1/Gemm"], 35u);
  ASSERT_EQ(r->skipped.size(), 1u);
  EXPECT_NE(r->skipped[0].find("graph output 'logits'"), std::string::npos) << r->skipped[0];
  EXPECT_LT(p.constant_bytes(), g.constant_bytes());
  // The original with the removed channels' weights and biases zeroed computes the same function.
  ir::Graph z = g;
  for (const auto& l : r->layers) {
    for (const auto& n : z.nodes) {
      if (n.name != l.node) continue;
      Tensor& w = z.value(n.inputs[1]).constant;
      Tensor& b = z.value(n.inputs[2]).constant;
      w = w.clone();  // tensor copies share bytes
      b = b.clone();
      int64_t inner = w.numel() / w.dim(0);
      for (int64_t c = 0; c < w.dim(0); ++c) {
        if (std::binary_search(l.kept.begin(), l.kept.end(), c)) continue;
        for (int64_t i = 0; i < inner; ++i) w.data<float>()[c * inner + i] = 0.0f;
        b.data<float>()[c] = 0.0f;
      }
    }
  }
  Tensor x = images(3);
  EXPECT_LT(max_rel_diff(run(p, x), run(z, x)), 1e-5);
}

namespace {

// x [1,4,6,6] -> conv a -> conv b; add(a, b) -> conv c -> output; 1x1 convs.
// With `input_residual`, the Add takes the graph input instead of a; with
// `concat`, a Concat of a and b replaces the Add (c then has 8 inputs).
ir::Graph residual_graph(bool input_residual, bool concat) {
  ir::Graph g;
  ir::ValueId x = g.add_value("x", {DType::kF32, {1, 4, 6, 6}});
  g.inputs = {x};
  ir::ConvAttrs ca;
  ca.kernel_shape = {1, 1};
  auto conv = [&](const std::string& name, ir::ValueId in, int64_t cin, uint32_t seed) {
    ir::ValueId w = g.add_constant(name + ".w", random_f32({4, cin, 1, 1}, seed));
    ir::ValueId b = g.add_constant(name + ".b", random_f32({4}, seed + 1));
    return ir::append_node(g, name, ir::OpKind::kConv, {in, w, b}, ca)[0];
  };
  ir::ValueId a = conv("a", x, 4, 1);
  ir::ValueId r = ir::append_node(g, "relu", ir::OpKind::kRelu, {a}, ir::NoAttrs{})[0];
  ir::ValueId b = conv("b", r, 4, 3);
  ir::ValueId joined;
  if (concat) {
    ir::ConcatAttrs cc;
    cc.axis = 1;
    joined = ir::append_node(g, "cat", ir::OpKind::kConcat, {a, b}, cc)[0];
  } else {
    joined = ir::append_node(g, "add", ir::OpKind::kAdd, {input_residual ? x : a, b}, ir::NoAttrs{})[0];
  }
  g.outputs = {conv("c", joined, concat ? 8 : 4, 5)};
  EXPECT_TRUE(ir::infer_graph(g).ok());
  return g;
}

}  // namespace

TEST(PruneChannels, ResidualGroupLosesTheSameChannelsEverywhere) {
  ir::Graph g = residual_graph(false, false);
  auto found = prune::find_prunable_channels(g);
  ASSERT_EQ(found.layers.size(), 1u);
  EXPECT_EQ(found.layers[0].producers, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(found.layers[0].sinks.size(), 2u);  // b reads a's channels, c reads the sum
  ir::Graph p = g;
  prune::ChannelPruneOptions o;
  o.ratio = 0.5;
  auto r = prune::prune_channels(p, o);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto& kept = r->layers[0].kept;
  ASSERT_EQ(kept.size(), 2u);
  // Zeroing those channels of a and b in the original computes the same function.
  ir::Graph z = g;
  for (const char* name : {"a.w", "a.b", "b.w", "b.b"})
    for (auto& v : z.values) {
      if (v.name != name) continue;
      v.constant = v.constant.clone();
      int64_t inner = v.constant.numel() / 4;
      for (int64_t c = 0; c < 4; ++c)
        if (!std::binary_search(kept.begin(), kept.end(), c))
          for (int64_t i = 0; i < inner; ++i) v.constant.data<float>()[c * inner + i] = 0.0f;
    }
  Tensor x = random_f32({1, 4, 6, 6}, 11);
  EXPECT_LT(max_rel_diff(run(p, x), run(z, x)), 1e-5);
}

TEST(PruneChannels, GroupsReachingInputsOrConcatAreLeftWhole) {
  ir::Graph g = residual_graph(true, false);
  auto found = prune::find_prunable_channels(g);
  // a (-> relu -> b) alone can go; b's channels meet the graph input in the Add.
  ASSERT_EQ(found.layers.size(), 1u);
  EXPECT_EQ(found.layers[0].node, "a");
  bool named = false;
  for (const auto& s : found.skipped) named |= s.find("b: its channels reach node 'add' (Add) with an operand outside the group") == 0;
  EXPECT_TRUE(named) << found.skipped[0];
  ir::Graph c = residual_graph(false, true);
  auto fc = prune::find_prunable_channels(c);
  EXPECT_TRUE(fc.layers.empty());
  EXPECT_NE(fc.skipped[0].find("'cat' (Concat)"), std::string::npos) << fc.skipped[0];
  prune::ChannelPruneOptions o;
  auto r = prune::prune_channels(c, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no layer can be channel-pruned"), std::string::npos);
}

TEST(PruneRecover, LeastSquaresLowersEveryRefittedLayersError) {
  auto g = onnx_io::load_model(kLenet).value();
  ir::Graph p = g;
  prune::ChannelPruneOptions o;
  o.ratio = 0.5;
  auto r = prune::prune_channels(p, o);
  ASSERT_TRUE(r.ok());
  quant::CalibSpec spec;
  spec.items = {"fashion-mnist"};
  spec.count = 256;
  auto calib = quant::open_calib_source(g, spec);
  ASSERT_TRUE(calib.ok()) << calib.error().message;
  ir::Graph before = p;
  auto rec = prune::recover_least_squares(p, g, *r, *calib);
  ASSERT_TRUE(rec.ok()) << rec.error().message;
  ASSERT_EQ(rec->size(), 3u);  // conv2, fc1, fc2 lost input channels
  for (const auto& l : *rec) {
    EXPECT_TRUE(l.skipped.empty()) << l.node << ": " << l.skipped;
    EXPECT_LT(l.error_after, l.error_before) << l.node;
  }
  // End to end: the re-fitted model is closer to the original's logits.
  Tensor x = images(16);
  Tensor ref = run(g, x);
  EXPECT_LT(max_rel_diff(run(p, x), ref), max_rel_diff(run(before, x), ref));
}

}  // namespace kiln
