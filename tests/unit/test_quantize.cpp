// The quantize pass and its helpers on small graphs and LeNet: equalization
// keeps the float function, relu_before_maxpool keeps outputs, the mixed
// precision search honours its bound, and bad configurations are refused.
#include <gtest/gtest.h>

#include <cmath>

#include "ir/edit.h"
#include "onnx/import.h"
#include "passes/relu_before_maxpool.h"
#include "quant/equalize.h"
#include "quant/mixed_precision.h"
#include "quant/quantize.h"
#include "runtime/session.h"

namespace kiln {
namespace {

const std::string kLenet = std::string(KILN_SOURCE_DIR) + "/models/lenet.onnx";

Tensor ramp(Shape s) {
  Tensor t = Tensor::create(DType::kF32, s).value();
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float((i * 37) % 255) / 255.0f;
  return t;
}

Tensor run(const ir::Graph& g, const Tensor& x) {
  auto s = runtime::Session::create(g);
  EXPECT_TRUE(s.ok());
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

}  // namespace

TEST(Quantize, ReluBeforeMaxPoolKeepsOutputs) {
  auto g = onnx_io::load_model(kLenet).value();
  ir::Graph h = g;
  auto n = passes::relu_before_maxpool(h);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  Tensor x = ramp({2, 1, 28, 28});
  EXPECT_EQ(max_rel_diff(run(h, x), run(g, x)), 0.0);
}

TEST(Quantize, EqualizationKeepsFunctionAndBalancesRanges) {
  auto g = onnx_io::load_model(kLenet).value();
  ir::Graph h = g;
  auto pairs = quant::equalize_layers(h);
  ASSERT_TRUE(pairs.ok());
  EXPECT_EQ(*pairs, 3);
  Tensor x = ramp({4, 1, 28, 28});
  EXPECT_LT(max_rel_diff(run(h, x), run(g, x)), 1e-5);
  // conv1 output channel ranges now (nearly) equal conv2 input channel ranges.
  const Tensor& w1 = h.value(h.nodes[0].inputs[1]).constant;
  const Tensor* w2 = nullptr;
  for (const auto& n : h.nodes)
    if (n.op == ir::OpKind::kConv && &n != &h.nodes[0]) w2 = &h.value(n.inputs[1]).constant;
  ASSERT_NE(w2, nullptr);
  for (int64_t c = 0; c < w1.dim(0); ++c) {
    double r1 = 0, r2 = 0;
    for (int64_t k = 0; k < 25; ++k) r1 = std::max(r1, std::fabs(w1.as_double(c * 25 + k)));
    for (int64_t o = 0; o < w2->dim(0); ++o)
      for (int64_t k = 0; k < 25; ++k) r2 = std::max(r2, std::fabs(w2->as_double((o * 10 + c) * 25 + k)));
    EXPECT_NEAR(r1, r2, 0.1 * r2) << "channel " << c;  // chained pairs converge over sweeps
  }
}

TEST(Quantize, RefusesBadConfigurations) {
  auto g = onnx_io::load_model(kLenet).value();
  quant::QuantizeConfig cfg;
  cfg.mode = quant::QuantMode::kWeightOnly;
  cfg.weight_bits = 9;
  auto r = quant::quantize_graph(g, cfg, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("bit width 9"), std::string::npos);
  cfg.weight_bits = 4;
  cfg.exclude = {"Conv", "Gemm"};
  r = quant::quantize_graph(g, cfg, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nothing to quantize"), std::string::npos);
  quant::QuantizeConfig st;
  r = quant::quantize_graph(g, st, {});  // static without calibrated ranges
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no calibrated range"), std::string::npos);
}

TEST(Quantize, WeightOnlyKeepsFloatActivationsAndRecordsBits) {
  auto g = onnx_io::load_model(kLenet).value();
  quant::QuantizeConfig cfg;
  cfg.mode = quant::QuantMode::kWeightOnly;
  cfg.weight_bits = 3;
  ASSERT_TRUE(quant::quantize_graph(g, cfg, {}).ok());
  int dq = 0, q = 0;
  for (const auto& n : g.nodes) {
    dq += n.op == ir::OpKind::kDequantizeLinear;
    q += n.op == ir::OpKind::kQuantizeLinear;
  }
  EXPECT_EQ(dq, 4);  // one per weight
  EXPECT_EQ(q, 0);   // activations stay float
  // 3-bit weights count 3/8 byte each: 21750 weights -> 8157 bytes + 90 float biases + scales
  int64_t bytes = quant::nominal_parameter_bytes(g);
  EXPECT_LT(bytes, 9000);
  EXPECT_GT(bytes, 8157);
}

TEST(MixedPrecision, SmallestPlanWithinBound) {
  // Synthetic metric: accuracy loses (8 - bits) * weight per layer.
  std::vector<quant::LayerInfo> layers = {{"big", 1000}, {"small", 10}, {"fragile", 500}};
  std::map<std::string, double> cost = {{"big", 0.05}, {"small", 0.05}, {"fragile", 1.0}};
  auto metric = [&](const std::map<std::string, int>& bits) -> Result<double> {
    double acc = 90.0;
    for (const auto& [n, b] : bits) acc -= (8 - b) * cost[n];
    return acc;
  };
  auto plan = quant::search_mixed_precision(layers, 90.0, 0.5, 8, {2, 3, 4, 5, 6, 8}, metric);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_LE(90.0 - plan->metric, 0.5);
  EXPECT_EQ(plan->bits.at("fragile"), 8);   // any lower width alone breaks the bound
  EXPECT_LT(plan->bits.at("big"), 8);       // the big layer is lowered first
  auto none = quant::search_mixed_precision(layers, 95.0, 0.5, 8, {4, 8}, metric);
  EXPECT_FALSE(none.ok());  // uniform 8-bit already breaks the bound
}

}  // namespace kiln
