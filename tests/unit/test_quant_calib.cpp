// Step choice and calibration: weight Delta methods (maxabs, percentile, MSE;
// per tensor/channel/group), Q/deQ round trips and int4 packing, activation
// observers on known distributions, LeNet calibration on Fashion-MNIST, and
// the errors bad calibration data must give.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "io/npy.h"
#include "onnx/import.h"
#include "onnx/tensor_proto.h"
#include "quant/calib_data.h"
#include "quant/calibrate.h"
#include "quant/observer.h"
#include "quant/range.h"
#include "quant/weight_delta.h"

namespace kiln::quant {
namespace {

const std::string kLenet = std::string(KILN_SOURCE_DIR) + "/models/lenet.onnx";

Tensor make_f32(Shape s, const std::vector<float>& v) {
  Tensor t = Tensor::create(DType::kF32, s).value();
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

// Gaussian weights/activations with a few large outliers.
std::vector<float> gaussian_with_outliers(int64_t n, int outliers, float outlier_value, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = normal(rng);
  for (int i = 0; i < outliers; ++i) v[size_t(i * 997 % n)] = (i % 2 ? -1.0f : 1.0f) * outlier_value;
  return v;
}

std::filesystem::path fresh_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("kiln_calib_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---------------------------------------------------------------- weights

TEST(WeightDelta, PerChannelMaxAbsIsMaxOverQmax) {
  Tensor w = make_f32({3, 4}, {0.5f, -1.0f, 0.25f, 0.0f,  //
                               3.0f, 2.0f, -2.5f, 1.0f,   //
                               0.0f, 0.0f, 0.0f, 0.0f});
  WeightQuantOptions o;
  o.axis = 0;
  auto p = choose_weight_params(w, o, "w");
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->scale.size(), 3u);
  EXPECT_FLOAT_EQ(p->scale[0], 1.0f / 127);
  EXPECT_FLOAT_EQ(p->scale[1], 3.0f / 127);
  EXPECT_EQ(p->scale[2], kZeroRangeScale) << "an all-zero channel gets the documented tiny scale";
  EXPECT_EQ(p->zero_point, (std::vector<int32_t>{0, 0, 0}));
  EXPECT_EQ(p->axis, 0);
  // Channel max maps to qmax exactly; the zero channel stays zero.
  auto q = quantize_tensor(w, *p, false, "w");
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->dtype(), DType::kI8);
  EXPECT_EQ(q->data<int8_t>()[1], -127);
  EXPECT_EQ(q->data<int8_t>()[4], 127);
  for (int i = 8; i < 12; ++i) EXPECT_EQ(q->data<int8_t>()[i], 0);
}

TEST(WeightDelta, PerChannelOnInnerAxis) {
  // Conv-like [2, 3, 2]: channel axis 1, each channel spans outer and inner dims.
  std::vector<float> v(12);
  for (int i = 0; i < 12; ++i) v[size_t(i)] = float(i + 1) * (i % 2 ? -1.0f : 1.0f);
  WeightQuantOptions o;
  o.axis = 1;
  o.bits = 4;
  auto p = choose_weight_params(make_f32({2, 3, 2}, v), o, "w");
  ASSERT_TRUE(p.ok()) << p.error().message;
  // channel c holds elements (o*3 + c)*2 + {0,1}: max |w| = 6 + 2c + 2 for o = 1
  EXPECT_FLOAT_EQ(p->scale[0], 8.0f / 7);
  EXPECT_FLOAT_EQ(p->scale[1], 10.0f / 7);
  EXPECT_FLOAT_EQ(p->scale[2], 12.0f / 7);
}

TEST(WeightDelta, PerGroupScalesFollowBlockLayout) {
  // [2, 10], groups of 4 along axis 1: 3 groups per row (4, 4, 2 elements).
  std::vector<float> v(20, 0.0f);
  float maxes[6] = {1, 2, 4, 8, 0, 0.5f};
  for (int r = 0; r < 2; ++r)
    for (int g = 0; g < 3; ++g) v[size_t(r * 10 + g * 4)] = -maxes[r * 3 + g];
  WeightQuantOptions o;
  o.axis = 1;
  o.group_size = 4;
  auto p = choose_weight_params(make_f32({2, 10}, v), o, "w");
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->scale.size(), 6u);
  for (int k = 0; k < 6; ++k)
    if (maxes[k] > 0)
      EXPECT_FLOAT_EQ(p->scale[size_t(k)], maxes[k] / 127) << k;
    else
      EXPECT_EQ(p->scale[size_t(k)], kZeroRangeScale);
  EXPECT_EQ(p->describe(), "int8 per-group(4, axis 1)");
  o.axis = -1;
  EXPECT_FALSE(choose_weight_params(make_f32({2, 10}, v), o, "w").ok()) << "groups need an axis";
}

TEST(WeightDelta, MseNeverWorseThanMaxAbs) {
  for (int bits : {3, 4, 8}) {
    for (int64_t axis : {int64_t(-1), int64_t(0)}) {
      Tensor w = make_f32({16, 256}, gaussian_with_outliers(16 * 256, 8, 12.0f, uint64_t(bits)));
      WeightQuantOptions o;
      o.bits = bits;
      o.axis = axis;
      auto pm = choose_weight_params(w, o, "w");
      o.method = WeightMethod::kMse;
      auto pe = choose_weight_params(w, o, "w");
      ASSERT_TRUE(pm.ok() && pe.ok());
      double em = weight_sq_error(w, *pm).value(), ee = weight_sq_error(w, *pe).value();
      EXPECT_LE(ee, em) << bits << " bits, axis " << axis;
      if (bits <= 4) EXPECT_LT(ee, 0.9 * em) << "clipping the outliers must pay at " << bits << " bits";
    }
  }
}

TEST(WeightDelta, PercentileClipsOutliersAndAsymmetricKeepsZero) {
  Tensor w = make_f32({4096}, gaussian_with_outliers(4096, 2, 40.0f, 7));
  WeightQuantOptions o;
  o.method = WeightMethod::kPercentile;
  o.percentile = 99.9;
  auto p = choose_weight_params(w, o, "w");
  ASSERT_TRUE(p.ok());
  EXPECT_LT(p->scale[0] * 127, 6.0f);
  EXPECT_GT(p->scale[0] * 127, 2.0f);
  // Asymmetric uint8 on positive data: the range is widened to include 0, z = 0.
  Tensor pos = make_f32({4}, {0.5f, 1.0f, 2.0f, 3.0f});
  WeightQuantOptions a;
  a.symmetric = false;
  a.is_signed = false;
  auto pa = choose_weight_params(pos, a, "pos");
  ASSERT_TRUE(pa.ok());
  EXPECT_EQ(pa->zero_point[0], 0);
  EXPECT_FLOAT_EQ(pa->scale[0], 3.0f / 255);
  // Asymmetric on a lopsided range: the zero point is an in-range integer and 0 round-trips exactly.
  Tensor lop = make_f32({3}, {-0.3f, 0.0f, 5.0f});
  a.is_signed = true;
  auto pl = choose_weight_params(lop, a, "lop");
  ASSERT_TRUE(pl.ok());
  EXPECT_GE(pl->zero_point[0], -128);
  EXPECT_LE(pl->zero_point[0], 127);
  auto d = dequantize_tensor(quantize_tensor(lop, *pl, false).value(), *pl).value();
  EXPECT_EQ(d.data<float>()[1], 0.0f);
  EXPECT_NEAR(d.data<float>()[0], -0.3f, pl->scale[0] / 2 + 1e-6f);
}

TEST(WeightDelta, RoundTripWithinHalfStep) {
  Tensor w = make_f32({8, 33}, gaussian_with_outliers(8 * 33, 0, 0, 3));
  for (int bits : {2, 3, 5, 8, 16}) {
    WeightQuantOptions o;
    o.bits = bits;
    o.axis = 0;
    auto p = choose_weight_params(w, o, "w").value();
    auto q = quantize_tensor(w, p, true, "w");
    ASSERT_TRUE(q.ok()) << q.error().message;
    EXPECT_EQ(q->dtype(), bits == 16 ? DType::kI16 : DType::kI8);
    auto d = dequantize_tensor(*q, p, "w").value();
    for (int64_t i = 0; i < w.numel(); ++i) {
      float s = p.scale[size_t(i / 33)];
      EXPECT_LE(std::fabs(w.data<float>()[i] - d.data<float>()[i]), s / 2 * 1.0001f) << bits << " bits, element " << i;
      if (bits < 8) {
        int v = q->data<int8_t>()[i];
        EXPECT_TRUE(v >= p.qmin() && v <= p.qmax()) << v;
      }
    }
  }
}

TEST(WeightDelta, Int4PacksLowNibbleFirst) {
  Tensor w = make_f32({5}, {1.0f, -1.0f, 0.625f, -0.375f, 3.0f});
  QuantParams p;
  p.bits = 4;
  p.scale = {0.25f};
  p.zero_point = {0};
  auto packed = quantize_tensor(w, p, true, "w");
  auto plain = quantize_tensor(w, p, false, "w");
  ASSERT_TRUE(packed.ok() && plain.ok());
  EXPECT_EQ(packed->dtype(), DType::kI4);
  EXPECT_EQ(packed->shape(), (Shape{5}));
  EXPECT_EQ(packed->nbytes(), 3);
  // 2.5 and -1.5 round to even; 12 saturates to 7.
  const int8_t want[5] = {4, -4, 2, -2, 7};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(plain->data<int8_t>()[i], want[i]) << i;
  const uint8_t* b = packed->data<uint8_t>();
  EXPECT_EQ(b[0], 0xc4);
  EXPECT_EQ(b[1], 0xe2);
  EXPECT_EQ(b[2], 0x07);
  auto d1 = dequantize_tensor(*packed, p).value(), d2 = dequantize_tensor(*plain, p).value();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(d1.data<float>()[i], d2.data<float>()[i]);
  EXPECT_EQ(d1.data<float>()[1], -1.0f);
  EXPECT_EQ(d1.data<float>()[4], 1.75f);
  // Unsigned int4 with a zero point.
  p.is_signed = false;
  p.zero_point = {8};
  auto u = quantize_tensor(w, p, true).value();
  EXPECT_EQ(u.dtype(), DType::kU4);
  EXPECT_EQ(u.data<uint8_t>()[0], 0x4c);  // 12 | (4 << 4)
  EXPECT_EQ(dequantize_tensor(u, p).value().data<float>()[1], -1.0f);
}

TEST(WeightDelta, BadInputsAreErrors) {
  Tensor w = make_f32({2, 2}, {1.0f, NAN, 0.0f, 2.0f});
  WeightQuantOptions o;
  auto r = choose_weight_params(w, o, "conv1.weight");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "conv1.weight")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "NaN")) << r.error().message;
  w.data<float>()[1] = INFINITY;
  EXPECT_TRUE(contains(choose_weight_params(w, o, "w").error().message, "infinite"));
  w.data<float>()[1] = 1.0f;
  o.bits = 17;
  auto b = choose_weight_params(w, o, "w");
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(contains(b.error().message, "17")) << b.error().message;
  o.bits = 8;
  o.axis = 2;
  EXPECT_FALSE(choose_weight_params(w, o, "w").ok());
  QuantParams p;
  p.axis = 0;
  p.scale = {1.0f};
  p.zero_point = {0};
  auto q = quantize_tensor(w, p, false, "w");
  ASSERT_FALSE(q.ok());
  EXPECT_TRUE(contains(q.error().message, "needs 2 scale(s)")) << q.error().message;
  Tensor ints = Tensor::create(DType::kI64, {2}).value();
  EXPECT_FALSE(choose_weight_params(ints, WeightQuantOptions{}, "ids").ok());
  EXPECT_FALSE(parse_weight_method("median").ok());
}

// ---------------------------------------------------------------- observers

Observer observe_all(const std::vector<float>& v, size_t batch = 1000) {
  Observer o;
  for (size_t s = 0; s < v.size(); s += batch)
    o.observe(std::span<const float>(v.data() + s, std::min(batch, v.size() - s)));
  return o;
}

double threshold(const Observer& o, ActMethod m, bool is_signed = true) {
  ActQuantOptions a;
  a.method = m;
  a.is_signed = is_signed;
  return choose_threshold(o, a, "x").value();
}

TEST(Observer, UniformKeepsNearlyFullRange) {
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(200000);
  for (auto& x : v) x = u(rng);
  Observer o = observe_all(v);
  EXPECT_EQ(o.count(), 200000);
  EXPECT_GT(o.min(), -1.0);
  EXPECT_LT(o.max(), 1.0);
  EXPECT_EQ(threshold(o, ActMethod::kMinMax), o.max_abs());
  EXPECT_NEAR(threshold(o, ActMethod::kPercentile), 0.9999, 2e-3);
  EXPECT_GT(threshold(o, ActMethod::kEntropy), 0.9);
  EXPECT_GT(threshold(o, ActMethod::kMse), 0.95);
}

TEST(Observer, GaussianOutliersAreClippedExceptByMinMax) {
  // Two outliers in a million: rare enough that clipping them pays under MSE too.
  std::vector<float> v = gaussian_with_outliers(1000000, 2, 40.0f, 11);
  Observer o = observe_all(v, 65536);
  EXPECT_EQ(threshold(o, ActMethod::kMinMax), 40.0);
  double tp = threshold(o, ActMethod::kPercentile), te = threshold(o, ActMethod::kEntropy),
         tm = threshold(o, ActMethod::kMse);
  EXPECT_GT(tp, 3.0);
  EXPECT_LT(tp, 6.0);
  EXPECT_GT(te, 2.5);
  EXPECT_LT(te, 20.0);
  EXPECT_GT(tm, 2.5);
  EXPECT_LT(tm, 20.0);
  ActQuantOptions a;
  a.method = ActMethod::kMinMax;
  auto pmin = choose_activation_params(o, a, "x").value();
  a.method = ActMethod::kMse;
  auto pmse = choose_activation_params(o, a, "x").value();
  EXPECT_LT(expected_sq_error(o, pmse), 0.5 * expected_sq_error(o, pmin));
  // The expected error under the histogram matches the actual error of Q/deQ.
  double actual = 0;
  for (float x : v) {
    float r = dequantize_value(quantize_value(x, pmse.scale[0], 0, -128, 127), pmse.scale[0], 0);
    actual += (double(x) - r) * (double(x) - r);
  }
  actual /= double(v.size());
  EXPECT_NEAR(expected_sq_error(o, pmse), actual, 0.02 * actual);
  // Heavier outliers (8 in 400k): MSE keeps more range but still beats minmax.
  Observer heavy = observe_all(gaussian_with_outliers(400000, 8, 60.0f, 12));
  a.method = ActMethod::kMinMax;
  pmin = choose_activation_params(heavy, a, "x").value();
  a.method = ActMethod::kMse;
  pmse = choose_activation_params(heavy, a, "x").value();
  EXPECT_LT(expected_sq_error(heavy, pmse), expected_sq_error(heavy, pmin));
  EXPECT_LT(threshold(heavy, ActMethod::kMse), 60.0);
}

TEST(Observer, PostReluUsesUnsignedRangeAndClips) {
  std::vector<float> v = gaussian_with_outliers(2000000, 1, 60.0f, 5);
  for (auto& x : v) x = std::max(x, 0.0f);
  Observer o = observe_all(v, 65536);
  EXPECT_EQ(o.min(), 0.0);
  EXPECT_EQ(o.max(), 60.0);
  EXPECT_GT(o.zeros(), 900000);
  for (ActMethod m : {ActMethod::kEntropy, ActMethod::kMse, ActMethod::kPercentile}) {
    ActQuantOptions a;
    a.method = m;
    a.is_signed = false;
    a.symmetric = false;
    auto p = choose_activation_params(o, a, "relu").value();
    EXPECT_EQ(p.zero_point[0], 0) << "non-negative data: all 256 levels on [0, T]";
    EXPECT_LT(p.scale[0] * 255, 30.0f) << int(m);
    EXPECT_GT(p.scale[0] * 255, 2.5f) << int(m);
  }
  // Symmetric int8 on the same data: z = 0 and the zero spike does not drag the
  // entropy threshold down (exact zeros are their own atom).
  ActQuantOptions s;
  s.method = ActMethod::kEntropy;
  EXPECT_GT(choose_threshold(o, s, "relu").value(), 2.5);
}

TEST(Observer, ZeroPointIsAnInRangeInteger) {
  std::vector<float> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = -0.3f + 5.3f * float(i) / 999.0f;
  Observer o = observe_all(v);
  for (bool is_signed : {true, false})
    for (ActMethod m : {ActMethod::kMinMax, ActMethod::kPercentile, ActMethod::kEntropy, ActMethod::kMse}) {
      ActQuantOptions a;
      a.method = m;
      a.is_signed = is_signed;
      a.symmetric = false;
      auto p = choose_activation_params(o, a, "x").value();
      EXPECT_GE(p.zero_point[0], p.qmin());
      EXPECT_LE(p.zero_point[0], p.qmax());
      EXPECT_EQ(dequantize_value(quantize_value(0.0f, p.scale[0], p.zero_point[0], p.qmin(), p.qmax()), p.scale[0],
                                 p.zero_point[0]),
                0.0f);
    }
}

TEST(Observer, IndependentOfBatchOrderAndSplit) {
  std::vector<float> v = gaussian_with_outliers(50000, 3, 9.0f, 21);
  Observer a = observe_all(v, 7);
  std::vector<float> r = v;
  std::mt19937_64 rng(3);
  std::shuffle(r.begin(), r.end(), rng);
  // Small values first, so the range grows several times while observing.
  std::stable_sort(r.begin(), r.begin() + 25000, [](float x, float y) { return std::fabs(x) < std::fabs(y); });
  Observer b = observe_all(r, 1000);
  Observer c, d;
  c.observe(std::span<const float>(v.data(), 20000));
  d.observe(std::span<const float>(v.data() + 20000, 30000));
  ASSERT_TRUE(d.merge(c).ok());
  for (const Observer* x : {&b, &d}) {
    EXPECT_EQ(x->histogram(), a.histogram());
    EXPECT_EQ(x->half_range(), a.half_range());
    EXPECT_EQ(x->min(), a.min());
    EXPECT_EQ(x->max(), a.max());
    for (ActMethod m : {ActMethod::kPercentile, ActMethod::kEntropy, ActMethod::kMse})
      EXPECT_EQ(threshold(*x, m), threshold(a, m));
  }
}

TEST(Observer, DegenerateAndBadCases) {
  Observer zeros;
  std::vector<float> z(100, 0.0f);
  zeros.observe(z);
  EXPECT_EQ(zeros.histogram().size(), 0u);
  auto p = choose_activation_params(zeros, ActQuantOptions{}, "dead_relu");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->scale[0], kZeroRangeScale);
  EXPECT_EQ(p->zero_point[0], 0);
  // Zeros seen before the range was known still land in the zero bin.
  zeros.observe(std::vector<float>{2.0f, NAN, INFINITY});
  EXPECT_EQ(zeros.count(), 101);
  EXPECT_EQ(zeros.nonfinite(), 2);
  EXPECT_EQ(zeros.histogram()[size_t(zeros.bins() / 2)], 100);
  Observer empty;
  auto e = choose_activation_params(empty, ActQuantOptions{}, "never_seen");
  ASSERT_FALSE(e.ok());
  EXPECT_TRUE(contains(e.error().message, "never_seen")) << e.error().message;
  ActQuantOptions bad;
  bad.bits = 17;
  auto b = choose_activation_params(zeros, bad, "x");
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(contains(b.error().message, "17")) << b.error().message;
  EXPECT_FALSE(zeros.observe(Tensor::create(DType::kI64, {3}).value()).ok());
  EXPECT_FALSE(parse_act_method("kl").ok());
  EXPECT_EQ(parse_act_method("entropy").value(), ActMethod::kEntropy);
}

// ---------------------------------------------------------------- calibration

ir::ValueId first_conv_output(const ir::Graph& g) {
  for (const auto& n : g.nodes)
    if (n.op == ir::OpKind::kConv) return n.outputs[0];
  return ir::kNoValue;
}

TEST(Calibrate, LenetFirstConvRangeIsPlausibleAndDeterministic) {
  if (!std::filesystem::exists(std::string(io::kFashionMnistDir)))
    GTEST_SKIP() << "Fashion-MNIST not installed";
  auto g = onnx_io::load_model(kLenet);
  ASSERT_TRUE(g.ok()) << g.error().message;
  ir::ValueId conv = first_conv_output(*g), input = g->inputs[0];
  ASSERT_NE(conv, ir::kNoValue);
  std::map<ir::ValueId, Observer> runs[2];
  for (int run = 0; run < 2; ++run) {
    CalibSpec spec;
    spec.items = {"fashion-mnist"};
    spec.count = 256;
    spec.batch = run == 0 ? 64 : 100;  // another split must not change the result
    auto src = open_calib_source(*g, spec);
    ASSERT_TRUE(src.ok()) << src.error().message;
    EXPECT_EQ(src->size(), 256);
    EXPECT_EQ(src->labels().numel(), 256);
    int64_t last_done = 0;
    auto obs = calibrate(*g, {conv, input}, *src, 0, [&](int64_t done, int64_t total) {
      EXPECT_EQ(total, 256);
      last_done = done;
    });
    ASSERT_TRUE(obs.ok()) << obs.error().message;
    EXPECT_EQ(last_done, 256);
    runs[run] = std::move(*obs);
  }
  const Observer& c0 = runs[0].at(conv);
  const Observer& c1 = runs[1].at(conv);
  const auto& ct = g->value(conv).type;
  EXPECT_EQ(c0.count(), 256 * ct.shape[1] * ct.shape[2] * ct.shape[3]);
  EXPECT_LT(c0.min(), 0.0);
  EXPECT_GT(c0.max(), 0.0);
  EXPECT_LT(c0.max_abs(), 100.0);
  EXPECT_EQ(c0.min(), c1.min());
  EXPECT_EQ(c0.max(), c1.max());
  EXPECT_EQ(c0.histogram(), c1.histogram());
  const Observer& in = runs[0].at(input);
  EXPECT_EQ(in.min(), 0.0);
  EXPECT_LE(in.max(), 1.0);
  EXPECT_GT(in.max(), 0.9);
  auto p = choose_activation_params(c0, ActQuantOptions{.method = ActMethod::kEntropy}, "conv1");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_GT(p->scale[0], 0.0f);
}

TEST(CalibData, FilesFoldersAndIdx) {
  auto g = onnx_io::load_model(kLenet);
  ASSERT_TRUE(g.ok());
  auto dir = fresh_dir("files");
  // One batch of 3 and two single samples; the folder holds a README that is ignored.
  Tensor batch = Tensor::create(DType::kF32, {3, 1, 28, 28}).value();
  for (int64_t i = 0; i < batch.numel(); ++i) batch.data<float>()[i] = float(i % 7);
  Tensor one = Tensor::create(DType::kF32, {1, 28, 28}).value();
  ASSERT_TRUE(io::save_npy(batch, (dir / "a.npy").string()).ok());
  ASSERT_TRUE(io::save_npy(one, (dir / "b.npy").string()).ok());
  ASSERT_TRUE(io::save_npy(one, (dir / "c.npy").string()).ok());
  std::ofstream(dir / "README") << "not a tensor";
  CalibSpec spec;
  spec.items = {dir.string()};
  spec.batch = 2;
  auto src = open_calib_source(*g, spec);
  ASSERT_TRUE(src.ok()) << src.error().message;
  EXPECT_EQ(src->size(), 5);
  EXPECT_FALSE(src->labels().defined());
  auto b = src->batch(2, 2);  // crosses from a.npy into b.npy
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ((*b)[0].shape(), (Shape{2, 1, 28, 28}));
  EXPECT_EQ((*b)[0].data<float>()[0], batch.data<float>()[2 * 784]);
  EXPECT_EQ((*b)[0].data<float>()[784], 0.0f);
  std::vector<int64_t> sizes;
  ASSERT_TRUE(src->for_each_batch(0, [&](std::span<const Tensor> in, int64_t, int64_t n) -> Result<void> {
                   sizes.push_back(n);
                   EXPECT_EQ(in[0].dim(0), n);
                   return {};
                 }).ok());
  EXPECT_EQ(sizes, (std::vector<int64_t>{2, 2, 1}));
  // Named item and a count smaller than the set.
  spec.items = {"input=" + (dir / "a.npy").string()};
  spec.count = 2;
  auto named = open_calib_source(*g, spec);
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ(named->size(), 2);
  // The Fashion-MNIST IDX file itself, fed as pixel / 255.
  if (std::filesystem::exists(std::string(io::kFashionMnistDir))) {
    spec.items = {std::string(io::kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz"};
    spec.count = 10;
    auto idx = open_calib_source(*g, spec);
    ASSERT_TRUE(idx.ok()) << idx.error().message;
    auto x = idx->batch(0, 2).value()[0];
    EXPECT_EQ(x.shape(), (Shape{2, 1, 28, 28}));
    float mx = *std::max_element(x.data<float>(), x.data<float>() + x.numel());
    EXPECT_LE(mx, 1.0f);
    EXPECT_GT(mx, 0.5f);
  }
}

// y = a + b with inputs a, b: f32[N, 3].
ir::Graph two_input_graph() {
  ir::Graph g;
  int64_t n = g.symbol("N");
  ir::ValueId a = g.add_value("a", {DType::kF32, {n, 3}}), b = g.add_value("b", {DType::kF32, {n, 3}});
  ir::ValueId y = g.add_value("y", {DType::kF32, {n, 3}});
  ir::Node add;
  add.name = "add";
  add.op = ir::OpKind::kAdd;
  add.inputs = {a, b};
  add.outputs = {y};
  g.nodes.push_back(add);
  g.inputs = {a, b};
  g.outputs = {y};
  return g;
}

TEST(CalibData, SeveralInputsNeedNamesAndStaticBatchMustDivide) {
  ir::Graph g = two_input_graph();
  auto dir = fresh_dir("multi");
  Tensor a = Tensor::create(DType::kF32, {4, 3}).value(), b = Tensor::create(DType::kF32, {4, 3}).value();
  for (int i = 0; i < 12; ++i) {
    a.data<float>()[i] = float(i);
    b.data<float>()[i] = -2.0f * float(i);
  }
  ASSERT_TRUE(io::save_npy(a, (dir / "a.npy").string()).ok());
  ASSERT_TRUE(onnx_io::save_tensor_pb(b, "b", (dir / "b.pb").string()).ok());
  CalibSpec spec;
  spec.items = {(dir / "a.npy").string(), (dir / "b.pb").string()};
  auto r = open_calib_source(g, spec);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "NAME=PATH")) << r.error().message;
  spec.items = {"b=" + (dir / "b.pb").string(), "a=" + (dir / "a.npy").string()};
  spec.batch = 3;
  auto src = open_calib_source(g, spec);
  ASSERT_TRUE(src.ok()) << src.error().message;
  EXPECT_EQ(src->size(), 4);
  auto obs = calibrate(g, {g.outputs[0], g.inputs[1]}, *src, 0);
  ASSERT_TRUE(obs.ok()) << obs.error().message;
  EXPECT_EQ(obs->at(g.outputs[0]).min(), -11.0);  // a + b = -i
  EXPECT_EQ(obs->at(g.outputs[0]).max(), 0.0);
  EXPECT_EQ(obs->at(g.inputs[1]).min(), -22.0);
  // Only a: b has no samples.
  spec.items = {"a=" + (dir / "a.npy").string()};
  EXPECT_TRUE(contains(open_calib_source(g, spec).error().message, "no samples for input 'b'"));
  // A fixed batch of 3 does not divide 4 samples; 3 samples are fine.
  g.value(g.inputs[0]).type.shape[0] = 3;
  g.value(g.inputs[1]).type.shape[0] = 3;
  spec.items = {"a=" + (dir / "a.npy").string(), "b=" + (dir / "b.pb").string()};
  r = open_calib_source(g, spec);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "fixed batches of 3")) << r.error().message;
  spec.count = 3;
  spec.batch = 100;
  src = open_calib_source(g, spec);
  ASSERT_TRUE(src.ok()) << src.error().message;
  EXPECT_EQ(src->batch_size(), 3);
  // Non-float values cannot be observed.
  ir::ValueId ids = g.add_value("ids", {DType::kI64, {3}});
  EXPECT_FALSE(calibrate(g, {ids}, *src, 0).ok());
}

TEST(CalibData, BadInputsGiveClearErrors) {
  auto g = onnx_io::load_model(kLenet);
  ASSERT_TRUE(g.ok());
  auto open = [&](std::vector<std::string> items, int64_t count = 0) {
    CalibSpec spec;
    spec.items = std::move(items);
    spec.count = count;
    return open_calib_source(*g, spec);
  };
  auto dir = fresh_dir("bad");
  // Wrong shape: the message names the file, its shape and the expected input type.
  std::string wrong = (dir / "wrong.npy").string();
  ASSERT_TRUE(io::save_npy(Tensor::create(DType::kF32, {2, 3}).value(), wrong).ok());
  auto r = open({wrong});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "wrong.npy")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "[2,3]")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "28")) << r.error().message;
  // Wrong dtype.
  std::string f64 = (dir / "f64.npy").string();
  ASSERT_TRUE(io::save_npy(Tensor::create(DType::kF64, {1, 1, 28, 28}).value(), f64).ok());
  r = open({f64});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "f64")) << r.error().message;
  // Empty folder.
  auto empty = fresh_dir("empty");
  r = open({empty.string()});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "empty calibration set")) << r.error().message;
  EXPECT_FALSE(open({}).ok());
  // Corrupt files.
  std::string corrupt = (dir / "corrupt.npy").string();
  std::ofstream(corrupt) << "\x93NUMPY garbage";
  r = open({corrupt});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "corrupt.npy")) << r.error().message;
  std::string idx = (dir / "broken-idx3-ubyte").string();
  std::ofstream(idx) << "not idx";
  r = open({idx});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "broken-idx3-ubyte")) << r.error().message;
  // Missing file, unknown type, unknown input name.
  EXPECT_TRUE(contains(open({(dir / "nope.npy").string()}).error().message, "not found"));
  std::string txt = (dir / "x.txt").string();
  std::ofstream(txt) << "1 2 3";
  EXPECT_TRUE(contains(open({txt}).error().message, "unknown calibration file type"));
  EXPECT_TRUE(contains(open({"pixels=" + txt}).error().message, "no input named 'pixels'"));
  // More samples than exist.
  std::string ok = (dir / "ok.npy").string();
  ASSERT_TRUE(io::save_npy(Tensor::create(DType::kF32, {4, 1, 28, 28}).value(), ok).ok());
  r = open({ok}, 5);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "asked for 5")) << r.error().message;
  if (std::filesystem::exists(std::string(io::kFashionMnistDir))) {
    r = open({"fashion-mnist"}, 60001);
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(contains(r.error().message, "60000")) << r.error().message;
  }
  auto src = open({ok});
  ASSERT_TRUE(src.ok());
  auto c = calibrate(*g, {g->inputs[0]}, *src, 9);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(contains(c.error().message, "asked for 9")) << c.error().message;
}

}  // namespace
}  // namespace kiln::quant
