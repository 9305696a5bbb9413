// GPTQ rounding (gptq.h) and layer input covariance (input_covariance.h): lower
// output error than nearest rounding on correlated inputs, exactly the given
// params, the 2-column OBS update by hand, dead inputs, bad inputs, im2col
// statistics checked against the reference Conv, and LeNet end to end.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "io/npy.h"
#include "ir/edit.h"
#include "ir/infer.h"
#include "onnx/import.h"
#include "quant/calib_data.h"
#include "quant/gptq.h"
#include "quant/input_covariance.h"
#include "quant/pipeline.h"
#include "quant/weight_delta.h"
#include "runtime/session.h"

namespace kiln::quant {
namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

Tensor random_f32(Shape s, uint64_t seed, float sd = 1.0f) {
  Tensor t = Tensor::create(DType::kF32, s).value();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, sd);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = normal(rng);
  return t;
}

// n correlated input vectors of K features: x = M z + 0.05 e, M [K, K/3].
std::vector<std::vector<double>> correlated_inputs(int64_t k, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int64_t f = std::max<int64_t>(1, k / 3);
  std::vector<double> m(static_cast<size_t>(k * f));
  for (auto& v : m) v = normal(rng);
  std::vector<std::vector<double>> xs(static_cast<size_t>(n), std::vector<double>(static_cast<size_t>(k)));
  std::vector<double> z(static_cast<size_t>(f));
  for (auto& x : xs) {
    for (auto& v : z) v = normal(rng);
    for (int64_t i = 0; i < k; ++i) {
      double s = 0.05 * normal(rng);
      for (int64_t j = 0; j < f; ++j) s += m[size_t(i * f + j)] * z[size_t(j)];
      x[size_t(i)] = s;
    }
  }
  return xs;
}

InputCovariance covariance_of(const std::vector<std::vector<double>>& xs) {
  InputCovariance h;
  h.cols = int64_t(xs[0].size());
  h.vectors = int64_t(xs.size());
  h.h.assign(size_t(h.cols * h.cols), 0.0);
  for (const auto& x : xs)
    for (int64_t i = 0; i < h.cols; ++i)
      for (int64_t j = 0; j < h.cols; ++j) h.h[size_t(i * h.cols + j)] += x[size_t(i)] * x[size_t(j)] / double(xs.size());
  return h;
}

// mean over xs of ||(w - v) x||^2 with w, v [rows, K].
double direct_output_error(const Tensor& w, const Tensor& v, const std::vector<std::vector<double>>& xs) {
  const int64_t rows = w.dim(0), k = w.dim(1);
  double e = 0;
  for (const auto& x : xs)
    for (int64_t r = 0; r < rows; ++r) {
      double y = 0;
      for (int64_t c = 0; c < k; ++c) y += (w.as_double(r * k + c) - v.as_double(r * k + c)) * x[size_t(c)];
      e += y * y;
    }
  return e / double(xs.size());
}

QuantParams mse_params(const Tensor& w, int bits, int64_t axis, bool is_signed = true, bool symmetric = true,
                       int64_t group = 0) {
  WeightQuantOptions o;
  o.bits = bits;
  o.axis = axis;
  o.is_signed = is_signed;
  o.symmetric = symmetric;
  o.group_size = group;
  o.method = WeightMethod::kGptq;  // Delta as kMse
  return choose_weight_params(w, o, "w").value();
}

Tensor deq(const Tensor& q, const QuantParams& p) { return dequantize_tensor(q, p, "w").value(); }

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::equal(static_cast<const uint8_t*>(a.raw()), static_cast<const uint8_t*>(a.raw()) + a.nbytes(),
                    static_cast<const uint8_t*>(b.raw()));
}

TEST(Gptq, LowerOutputErrorThanNearestOnCorrelatedInputs) {
  const int64_t rows = 12, k = 24;
  auto xs = correlated_inputs(k, 3000, 7);
  InputCovariance h = covariance_of(xs);
  Tensor w = random_f32({rows, k}, 11);
  for (int bits : {2, 3, 4}) {
    QuantParams p = mse_params(w, bits, 0);
    Tensor plain = deq(quantize_tensor(w, p, true, "w").value(), p);
    for (bool act_order : {true, false}) {
      GptqOptions o;
      o.act_order = act_order;
      auto q = gptq_quantize(w, p, h, o, "w");
      ASSERT_TRUE(q.ok()) << q.error().message;
      Tensor g = deq(*q, p);
      double e_plain = layer_output_error(w, plain, h, 0).value();
      double e_gptq = layer_output_error(w, g, h, 0).value();
      EXPECT_LT(e_gptq, 0.7 * e_plain) << bits << " bits, act_order " << act_order;
      // The H form of the error is the mean squared output error itself.
      EXPECT_NEAR(direct_output_error(w, g, xs), e_gptq, 1e-6 * e_plain);
      EXPECT_NEAR(direct_output_error(w, plain, xs), e_plain, 1e-6 * e_plain);
    }
  }
}

TEST(Gptq, OutputAxisOneIsTheTransposedLayout) {
  const int64_t rows = 6, k = 15;
  InputCovariance h = covariance_of(correlated_inputs(k, 500, 3));
  Tensor w = random_f32({rows, k}, 5);
  Tensor wt = Tensor::create(DType::kF32, {k, rows}).value();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < k; ++c) wt.data<float>()[c * rows + r] = w.data<float>()[r * k + c];
  QuantParams p = mse_params(w, 3, 0), pt = p;
  pt.axis = 1;
  GptqOptions o;
  auto q = gptq_quantize(w, p, h, o, "w");
  o.out_axis = 1;
  o.pack_int4 = false;
  auto qt = gptq_quantize(wt, pt, h, o, "wt");
  ASSERT_TRUE(q.ok() && qt.ok());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < k; ++c) EXPECT_EQ(q->data<int8_t>()[r * k + c], qt->data<int8_t>()[c * rows + r]);
}

TEST(Gptq, IntegersUseExactlyTheGivenParams) {
  const int64_t rows = 8, k = 32;
  InputCovariance h = covariance_of(correlated_inputs(k, 800, 9));
  Tensor w = random_f32({rows, k}, 13, 0.2f);
  struct Case {
    QuantParams p;
    bool pack;
  };
  std::vector<Case> cases = {
      {mse_params(w, 4, 0), true},                      // int4 per channel, packed
      {mse_params(w, 4, 0, false, false), false},      // uint4 asymmetric in a u8 container
      {mse_params(w, 3, -1, true, false), false},      // int3 per tensor with a zero point
      {mse_params(w, 2, 1, true, true, 8), false},     // int2 per group of 8 inputs
      {mse_params(w, 8, 0, false, false), false},      // uint8 asymmetric
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.p.describe());
    GptqOptions o;
    o.pack_int4 = c.pack;
    auto q = gptq_quantize(w, c.p, h, o, "w");
    ASSERT_TRUE(q.ok()) << q.error().message;
    Tensor plain = quantize_tensor(w, c.p, c.pack, "w").value();
    EXPECT_EQ(q->dtype(), plain.dtype());
    EXPECT_EQ(q->shape(), plain.shape());
    EXPECT_FALSE(same_bytes(*q, plain));  // GPTQ moved some weights
    // Every stored integer is in range, and deQ lands on the params' grid:
    // quantizing it again with the same params gives the same storage.
    if (!c.pack)
      for (int64_t i = 0; i < q->numel(); ++i) {
        int64_t v = q->dtype() == DType::kU8 ? int64_t(q->data<uint8_t>()[i]) : int64_t(q->data<int8_t>()[i]);
        EXPECT_GE(v, c.p.qmin());
        EXPECT_LE(v, c.p.qmax());
      }
    Tensor back = quantize_tensor(deq(*q, c.p), c.p, c.pack, "w").value();
    EXPECT_TRUE(same_bytes(back, *q));
  }
}

TEST(Gptq, TwoColumnUpdateByHand) {
  // Column 0: 0.26 -> 3 (0.3), error 0.04. Column 1 absorbs -H01/H11 * 0.04:
  // 0.07 - 0.8 * 0.04 = 0.038 -> 0, where nearest rounding gives 1.
  Tensor w = Tensor::create(DType::kF32, {1, 2}).value();
  w.data<float>()[0] = 0.26f;
  w.data<float>()[1] = 0.07f;
  QuantParams p;
  p.bits = 8;
  p.scale = {0.1f};
  p.zero_point = {0};
  InputCovariance h;
  h.cols = 2;
  h.h = {1.0, 0.8, 0.8, 1.0};
  GptqOptions o;
  o.damp = 0;
  o.act_order = false;
  o.pack_int4 = false;
  auto q = gptq_quantize(w, p, h, o, "w");
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->data<int8_t>()[0], 3);
  EXPECT_EQ(q->data<int8_t>()[1], 0);
  EXPECT_EQ(quantize_tensor(w, p, false).value().data<int8_t>()[1], 1);
  // Uncorrelated inputs: nothing to compensate, nearest rounding.
  h.h = {1.0, 0.0, 0.0, 1.0};
  EXPECT_EQ(gptq_quantize(w, p, h, o, "w").value().data<int8_t>()[1], 1);
}

TEST(Gptq, DeadInputsAreRoundedToNearest) {
  const int64_t rows = 5, k = 12;
  auto xs = correlated_inputs(k, 400, 21);
  for (auto& x : xs) x[3] = x[7] = 0.0;  // two inputs that never move
  InputCovariance h = covariance_of(xs);
  Tensor w = random_f32({rows, k}, 17);
  QuantParams p = mse_params(w, 3, 0);
  auto q = gptq_quantize(w, p, h, {}, "w");
  ASSERT_TRUE(q.ok()) << q.error().message;
  Tensor plain = deq(quantize_tensor(w, p, true, "w").value(), p), g = deq(*q, p);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c : {3, 7}) EXPECT_EQ(g.data<float>()[r * k + c], plain.data<float>()[r * k + c]);
  EXPECT_LT(layer_output_error(w, g, h, 0).value(), layer_output_error(w, plain, h, 0).value());
  // No calibration signal at all: exactly nearest rounding.
  InputCovariance zero;
  zero.cols = k;
  zero.h.assign(size_t(k * k), 0.0);
  auto qz = gptq_quantize(w, p, zero, {}, "w");
  ASSERT_TRUE(qz.ok()) << qz.error().message;
  EXPECT_TRUE(same_bytes(*qz, quantize_tensor(w, p, true, "w").value()));
}

TEST(Gptq, BadInputsAreErrors) {
  Tensor w = random_f32({4, 6}, 1);
  QuantParams p = mse_params(w, 4, 0);
  InputCovariance h = covariance_of(correlated_inputs(6, 50, 2));
  InputCovariance wrong = covariance_of(correlated_inputs(5, 50, 2));
  auto r = gptq_quantize(w, p, wrong, {}, "fc.weight");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "fc.weight") && contains(r.error().message, "does not fit"))
      << r.error().message;
  InputCovariance nan = h;
  nan.h[7] = std::nan("");
  r = gptq_quantize(w, p, nan, {}, "w");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "non-finite")) << r.error().message;
  InputCovariance neg = h;
  neg.h[0] = -1;
  EXPECT_FALSE(gptq_quantize(w, p, neg, {}, "w").ok());
  InputCovariance groups = h;
  groups.groups = 3;  // 4 rows do not split into 3 groups (and the matrix count is wrong)
  EXPECT_FALSE(gptq_quantize(w, p, groups, {}, "w").ok());
  GptqOptions o;
  o.damp = -0.1;
  EXPECT_FALSE(gptq_quantize(w, p, h, o, "w").ok());
  o = {};
  o.out_axis = 2;
  EXPECT_FALSE(gptq_quantize(w, p, h, o, "w").ok());
  QuantParams few = p;
  few.scale.pop_back();
  few.zero_point.pop_back();
  EXPECT_FALSE(gptq_quantize(w, few, h, {}, "w").ok());
  Tensor bad = w.clone();
  bad.data<float>()[5] = INFINITY;
  EXPECT_FALSE(gptq_quantize(bad, p, h, {}, "w").ok());
  EXPECT_FALSE(gptq_quantize(Tensor::create(DType::kI8, {4, 6}).value(), p, h, {}, "w").ok());
}

// x -> Relu -> Conv(w) with the given attrs; the Conv is node 1.
ir::Graph relu_conv(Shape xs, const Tensor& w, ir::ConvAttrs a) {
  ir::Graph g;
  ir::ValueId x = g.add_value("x", {DType::kF32, xs});
  g.inputs = {x};
  ir::ValueId wv = g.add_constant("w", w);
  ir::ValueId r = ir::append_node(g, "relu", ir::OpKind::kRelu, {x}, ir::NoAttrs{})[0];
  g.outputs = {ir::append_node(g, "conv", ir::OpKind::kConv, {r, wv}, a)[0]};
  EXPECT_TRUE(ir::infer_graph(g).ok());
  return g;
}

TEST(InputCovariance, ConvPatchesMatchTheReferenceConv) {
  // For every output channel m of group gi: E[y_m^2] = w_m^T H_gi w_m, and for
  // two channels of one group E[y_m y_n] = w_m^T H w_n, where the expectation
  // runs over batch and output positions. Pads, strides, dilations and groups
  // all change which inputs a patch holds.
  ir::ConvAttrs a;
  a.group = 2;
  a.pads = {1, 0, 2, 1};
  a.strides = {2, 1};
  a.dilations = {1, 2};
  Tensor w = random_f32({6, 2, 3, 2}, 31);
  Tensor x = random_f32({3, 4, 7, 6}, 32);
  ir::Graph g = relu_conv({3, 4, 7, 6}, w, a);
  auto s = runtime::Session::create(g);
  ASSERT_TRUE(s.ok()) << s.error().message;
  std::vector<Tensor> in = {x};
  auto out = s->run(in);
  ASSERT_TRUE(out.ok()) << out.error().message;
  const Tensor& y = (*out)[0];
  const int64_t positions = y.dim(2) * y.dim(3);

  // The Relu output, fed straight to the accumulator.
  Tensor rx = x.clone();
  for (int64_t i = 0; i < rx.numel(); ++i) rx.data<float>()[i] = std::max(0.0f, rx.data<float>()[i]);
  auto acc = CovarianceAccumulator::create(g.nodes[1], w.shape(), "conv");
  ASSERT_TRUE(acc.ok()) << acc.error().message;
  ASSERT_TRUE(acc->add(rx).ok());
  InputCovariance h = acc->result();
  EXPECT_EQ(h.groups, 2);
  EXPECT_EQ(h.cols, 12);
  EXPECT_EQ(h.vectors, 3 * positions);

  auto expect_moment = [&](int64_t m, int64_t n) {
    double direct = 0;
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t p = 0; p < positions; ++p)
        direct += double(y.data<float>()[(b * 6 + m) * positions + p]) * y.data<float>()[(b * 6 + n) * positions + p];
    direct /= double(3 * positions);
    const double* hg = h.group(m / 3);
    double viah = 0;
    for (int64_t i = 0; i < 12; ++i)
      for (int64_t j = 0; j < 12; ++j) viah += w.as_double(m * 12 + i) * hg[i * 12 + j] * w.as_double(n * 12 + j);
    EXPECT_NEAR(viah, direct, 1e-4 * (std::fabs(direct) + 1e-3)) << "channels " << m << ", " << n;
  };
  for (int64_t m = 0; m < 6; ++m) expect_moment(m, m);
  expect_moment(0, 2);
  expect_moment(4, 5);

  // The same through a calibration source: the probe runs x -> Relu.
  auto dir = std::filesystem::temp_directory_path() / "kiln_gptq_cov";
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(io::save_npy(x, (dir / "x.npy").string()).ok());
  CalibSpec spec;
  spec.items = {(dir / "x.npy").string()};
  spec.batch = 2;  // two batches: 2 + 1 samples
  auto src = open_calib_source(g, spec);
  ASSERT_TRUE(src.ok()) << src.error().message;
  auto hs = layer_input_covariance(g, 1, *src, 0);
  ASSERT_TRUE(hs.ok()) << hs.error().message;
  ASSERT_EQ(hs->h.size(), h.h.size());
  for (size_t i = 0; i < h.h.size(); ++i) EXPECT_NEAR(hs->h[i], h.h[i], 1e-9 * (1 + std::fabs(h.h[i])));
  // Node 0 (Relu) is not a layer with a weight.
  EXPECT_FALSE(layer_input_covariance(g, 0, *src, 0).ok());
  EXPECT_FALSE(layer_input_covariance(g, 1, *src, 4).ok());  // more samples than exist
}

TEST(InputCovariance, GemmRowsAndBadShapes) {
  ir::Node n;
  n.op = ir::OpKind::kGemm;
  ir::GemmAttrs ga;
  ga.transB = 1;
  n.attrs = ga;
  auto acc = CovarianceAccumulator::create(n, {5, 3}, "fc");
  ASSERT_TRUE(acc.ok());
  Tensor x = random_f32({70, 3}, 41);  // more rows than one buffer
  ASSERT_TRUE(acc->add(x).ok());
  InputCovariance h = acc->result();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 3; ++j) {
      double d = 0;
      for (int64_t r = 0; r < 70; ++r) d += x.as_double(r * 3 + i) * x.as_double(r * 3 + j);
      EXPECT_NEAR(h.h[size_t(i * 3 + j)], d / 70, 1e-9);
    }
  auto e = acc->add(random_f32({4, 5}, 1));
  ASSERT_FALSE(e.ok());
  EXPECT_TRUE(contains(e.error().message, "fc")) << e.error().message;
  EXPECT_FALSE(acc->add(Tensor::create(DType::kI8, {4, 3}).value()).ok());
  ga.transA = 1;
  n.attrs = ga;
  EXPECT_FALSE(CovarianceAccumulator::create(n, {5, 3}, "fc").ok());
  n.op = ir::OpKind::kRelu;
  n.attrs = ir::NoAttrs{};
  EXPECT_FALSE(CovarianceAccumulator::create(n, {5, 3}, "relu").ok());
}

TEST(GptqQuantize, LenetWeightOnly3BitBeatsNearestRounding) {
  if (!std::filesystem::exists(std::string(io::kFashionMnistDir))) GTEST_SKIP() << "Fashion-MNIST not installed";
  auto loaded = onnx_io::load_model(std::string(KILN_SOURCE_DIR) + "/models/lenet.onnx");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  ir::Graph prepared = prepare_for_quantization(*loaded).value();
  CalibSpec spec;
  spec.items = {"fashion-mnist"};
  spec.count = 128;
  auto src = open_calib_source(prepared, spec);
  ASSERT_TRUE(src.ok()) << src.error().message;

  QuantizeConfig cfg;
  cfg.mode = QuantMode::kWeightOnly;
  cfg.weight_bits = 3;
  cfg.weight_method = "gptq";
  ir::Graph g = prepared;
  auto r = quantize_graph(g, cfg, {});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "calibration")) << r.error().message;

  // Logits SQNR against float on the calibration images: GPTQ > MSE rounding.
  auto logits = [&](const ir::Graph& m) {
    auto s = runtime::Session::create(m);
    EXPECT_TRUE(s.ok()) << s.error().message;
    auto batch = src->batch(0, 128).value();
    return s->run(batch).value()[0];
  };
  Tensor ref = logits(prepared);
  double sqnr[2];
  for (int k = 0; k < 2; ++k) {
    QuantizeConfig c = cfg;
    c.weight_method = k == 0 ? "mse" : "gptq";
    c.calib = &*src;
    ir::Graph q = prepared;
    auto ok = quantize_graph(q, c, {});
    ASSERT_TRUE(ok.ok()) << ok.error().message;
    sqnr[k] = sqnr_db(ref, logits(q));
  }
  EXPECT_GT(sqnr[1], sqnr[0] + 5.0) << "mse " << sqnr[0] << " dB, gptq " << sqnr[1] << " dB";
}

}  // namespace
}  // namespace kiln::quant
