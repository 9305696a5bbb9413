// passes/lower_qdq on hand-built QDQ graphs: Conv+Relu, Gemm (both weight
// layouts), MatMul+bias, data movement (MaxPool, Reshape), Relu folding and Clip
// lower to the expected integer ops (counted); outputs agree with the
// fake-quant float graph within one quantization step and with an independent
// integer computation (int_reference.h) bit for bit. Cases that must not be
// lowered: non-constant weights, mismatched params around MaxPool, weight zero
// point != 0, GlobalAveragePool, shared Conv output, unrepresentable multiplier.
// Residual adds (DQ + DQ [-> Relu] -> Q) become QAdd; broadcasting ones stay.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "int_reference.h"
#include "ir/edit.h"
#include "ir/infer.h"
#include "ir/op_table.h"
#include "ir/verify.h"
#include "passes/lower_qdq.h"
#include "runtime/session.h"

namespace kiln {
namespace {

using ir::OpKind;
using ir::ValueId;
using testing::Conv2d;
using testing::RequantSpec;

Tensor f32(Shape shape, const std::vector<float>& v) {
  Tensor t = Tensor::create(DType::kF32, std::move(shape)).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}
Tensor ints(DType dt, Shape shape, const std::vector<int32_t>& v) {
  Tensor t = Tensor::create(dt, std::move(shape)).value();
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == DType::kI8) t.data<int8_t>()[i] = int8_t(v[i]);
    else if (dt == DType::kU8) t.data<uint8_t>()[i] = uint8_t(v[i]);
    else t.data<int32_t>()[i] = v[i];
  }
  return t;
}

// Builds QDQ graphs: a float input, Q/DQ pairs with scalar params, weights and
// biases as integer constants behind DequantizeLinear.
struct Builder {
  ir::Graph g;
  int counter = 0;

  ValueId input(Shape s, DType dt = DType::kF32, const std::string& name = "x") {
    ValueId id = g.add_value(name, {dt, std::move(s), true});
    g.inputs.push_back(id);
    return id;
  }
  ValueId cst(Tensor t) { return g.add_constant(g.unique_name("c"), std::move(t)); }
  ValueId node(OpKind op, std::vector<ValueId> in, ir::Attrs a = ir::NoAttrs{}) {
    return ir::append_node(g, "n" + std::to_string(counter++), op, std::move(in), std::move(a))[0];
  }
  ValueId quant(ValueId x, float s, int32_t zp, DType dt) {
    return node(OpKind::kQuantizeLinear, {x, cst(f32({}, {s})), cst(ints(dt, {}, {zp}))}, ir::QuantizeLinearAttrs{});
  }
  ValueId dequant(ValueId q, float s, int32_t zp, DType dt) {
    return node(OpKind::kDequantizeLinear, {q, cst(f32({}, {s})), cst(ints(dt, {}, {zp}))},
                ir::DequantizeLinearAttrs{});
  }
  ValueId qdq(ValueId x, float s, int32_t zp, DType dt) { return dequant(quant(x, s, zp, dt), s, zp, dt); }
  // DQ(int8 constant) with per-tensor (one scale) or per-axis scales, optional zero points.
  ValueId weight(DType dt, Shape shape, const std::vector<int32_t>& q, const std::vector<float>& scales, int64_t axis,
                 int32_t zp = 0, bool with_zp = false) {
    ir::DequantizeLinearAttrs a;
    a.axis = axis;
    Shape ss = scales.size() == 1 ? Shape{} : Shape{int64_t(scales.size())};
    std::vector<ValueId> in = {cst(ints(dt, shape, q)), cst(f32(ss, scales))};
    if (with_zp) in.push_back(cst(ints(dt, ss, std::vector<int32_t>(scales.size(), zp))));
    return node(OpKind::kDequantizeLinear, in, a);
  }
  ValueId bias(const std::vector<int32_t>& q, const std::vector<float>& scales) {
    ir::DequantizeLinearAttrs a;
    a.axis = 0;
    Shape ss = scales.size() == 1 ? Shape{} : Shape{int64_t(scales.size())};
    return node(OpKind::kDequantizeLinear, {cst(ints(DType::kI32, {int64_t(q.size())}, q)), cst(f32(ss, scales))}, a);
  }
  ir::Graph done(std::vector<ValueId> outs) {
    g.outputs = std::move(outs);
    EXPECT_TRUE(ir::infer_graph(g).ok());
    EXPECT_TRUE(ir::verify(g).ok());
    return g;
  }
};

std::map<std::string, int> op_counts(const ir::Graph& g) {
  std::map<std::string, int> m;
  for (const auto& n : g.nodes) ++m[std::string(ir::op_name(n.op))];
  return m;
}

// The pass on a copy: it must succeed, verify and infer.
ir::Graph lowered(const ir::Graph& g, int* rewrites = nullptr) {
  ir::Graph l = g;
  auto r = passes::lower_qdq(l);
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (rewrites) *rewrites = r.ok() ? *r : -1;
  auto v = ir::verify(l);
  EXPECT_TRUE(v.ok()) << v.error().message;
  auto i = ir::infer_graph(l);
  EXPECT_TRUE(i.ok()) << i.error().message;
  return l;
}

// Outputs of the QDQ graph run as fake quant (float) and lowered (integer).
struct BothRuns {
  std::vector<Tensor> fake, integer;
  ir::Graph integer_graph;
};
BothRuns run_both(const ir::Graph& g, const std::vector<Tensor>& feeds) {
  BothRuns r;
  auto fake = runtime::Session::create(g, runtime::SessionOptions{.lower_qdq = false});
  auto low = runtime::Session::create(g);
  EXPECT_TRUE(fake.ok()) << fake.error().message;
  EXPECT_TRUE(low.ok()) << low.error().message;
  if (!fake.ok() || !low.ok()) return r;
  auto a = fake->run(feeds), b = low->run(feeds);
  EXPECT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(b.ok()) << b.error().message;
  if (a.ok()) r.fake = *a;
  if (b.ok()) r.integer = *b;
  r.integer_graph = low->graph();
  return r;
}

std::vector<float> floats(const Tensor& t) { return std::vector<float>(t.data<float>(), t.data<float>() + t.numel()); }

// Every element within `steps` output steps; returns how many differ at all.
int expect_close(const Tensor& a, const Tensor& b, float step, int steps = 1) {
  EXPECT_EQ(a.shape(), b.shape());
  int differ = 0;
  for (int64_t i = 0; i < a.numel() && a.shape() == b.shape(); ++i) {
    float x = a.data<float>()[i], y = b.data<float>()[i];
    EXPECT_LE(std::fabs(x - y), step * steps * 1.0001f) << "element " << i;
    differ += x != y;
  }
  return differ;
}

// deQ of integer results as DequantizeLinear computes them.
std::vector<float> dequantized(const std::vector<int32_t>& q, float scale, int32_t zp) {
  std::vector<float> v;
  for (int32_t x : q) v.push_back(quant::dequantize_value(x, scale, zp));
  return v;
}

std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
std::vector<int32_t> random_ints(std::mt19937& rng, size_t n, int lo, int hi) {
  std::uniform_int_distribution<int> d(lo, hi);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
std::vector<int32_t> quantized(const std::vector<float>& x, float s, int32_t zp, int64_t lo, int64_t hi) {
  std::vector<int32_t> q;
  for (float v : x) q.push_back(quant::quantize_value(v, s, zp, lo, hi));
  return q;
}

TEST(LowerQdq, ConvReluBecomesQConv) {
  std::mt19937 rng(1);
  Conv2d s;
  s.n = 2, s.c = 4, s.h = 7, s.w = 6, s.m = 6, s.kh = 3, s.kw = 3, s.group = 2;
  s.sh = 2, s.sw = 1, s.pt = s.pl = s.pb = s.pr = 1;
  RequantSpec r;
  r.x_scale = 0.02f, r.x_zp = -10, r.y_scale = 0.03f, r.y_zp = -128, r.relu = true;
  r.w_scale = {0.002f, 0.003f, 0.004f, 0.0025f, 0.005f, 0.0035f};
  std::vector<float> bias_scale;
  for (float w : r.w_scale) bias_scale.push_back(r.x_scale * w);
  auto w = random_ints(rng, size_t(s.m * 2 * 9), -127, 127);
  auto b = random_ints(rng, size_t(s.m), -3000, 3000);

  Builder bl;
  ValueId x = bl.input({s.n, s.c, s.h, s.w});
  ValueId xd = bl.qdq(x, r.x_scale, r.x_zp, DType::kI8);
  ir::ConvAttrs ca;
  ca.group = 2;
  ca.pads = {1, 1, 1, 1};
  ca.strides = {2, 1};
  ValueId conv = bl.node(OpKind::kConv, {xd, bl.weight(DType::kI8, {6, 2, 3, 3}, w, r.w_scale, 0), bl.bias(b, bias_scale)}, ca);
  ValueId y = bl.dequant(bl.quant(bl.node(OpKind::kRelu, {conv}), r.y_scale, r.y_zp, DType::kI8), r.y_scale, r.y_zp, DType::kI8);
  ir::Graph g = bl.done({y});

  int rewrites = 0;
  ir::Graph l = lowered(g, &rewrites);
  EXPECT_EQ(rewrites, 1);
  EXPECT_EQ(op_counts(l), (std::map<std::string, int>{{"QuantizeLinear", 1}, {"QConv", 1}, {"DequantizeLinear", 1}}));
  for (const auto& n : l.nodes)
    if (n.op == OpKind::kQConv) {
      EXPECT_EQ(n.attr<ir::QConvAttrs>().fused_relu, 1);
      EXPECT_EQ(n.attr<ir::QConvAttrs>().group, 2);
    }
  EXPECT_EQ(l.value(l.outputs[0]).name, g.value(g.outputs[0]).name);

  auto xf = random_floats(rng, size_t(s.n * s.c * s.h * s.w), -2.0f, 3.0f);
  BothRuns runs = run_both(g, {f32({s.n, s.c, s.h, s.w}, xf)});
  ASSERT_EQ(runs.integer.size(), 1u);
  EXPECT_EQ(op_counts(runs.integer_graph)["QConv"], 1);  // Session lowered it
  expect_close(runs.integer[0], runs.fake[0], r.y_scale);
  auto want = testing::ref_qconv(s, quantized(xf, r.x_scale, r.x_zp, -128, 127), w, &b, r);
  EXPECT_EQ(floats(runs.integer[0]), dequantized(want, r.y_scale, r.y_zp));
}

TEST(LowerQdq, GemmBothWeightLayoutsBecomeQGemm) {
  for (int64_t trans_b : {0, 1}) {
    std::mt19937 rng(uint32_t(10 + trans_b));
    const int64_t m = 3, k = 10, n = 5;
    RequantSpec r;
    r.x_scale = 0.03f, r.x_zp = 120, r.y_scale = 0.05f, r.y_zp = 3, r.qmin = -128, r.qmax = 127;
    r.w_scale = {0.01f, 0.02f, 0.015f, 0.005f, 0.0125f};
    auto b_kn = random_ints(rng, size_t(k * n), -127, 127);
    std::vector<int32_t> stored(b_kn.size());
    for (int64_t t = 0; t < k; ++t)
      for (int64_t j = 0; j < n; ++j) stored[size_t(trans_b ? j * k + t : t * n + j)] = b_kn[size_t(t * n + j)];
    auto bias = random_ints(rng, size_t(n), -5000, 5000);
    std::vector<float> bias_scale;  // the product rounded from double: within 1 ulp of the float product
    for (float w : r.w_scale) bias_scale.push_back(float(double(r.x_scale) * double(w)));

    Builder bl;
    ValueId x = bl.input({m, k});
    ValueId xd = bl.qdq(x, r.x_scale, r.x_zp, DType::kU8);
    ir::GemmAttrs ga;
    ga.transB = trans_b;
    ValueId wv = bl.weight(DType::kI8, trans_b ? Shape{n, k} : Shape{k, n}, stored, r.w_scale, trans_b ? 0 : 1);
    ValueId gemm = bl.node(OpKind::kGemm, {xd, wv, bl.bias(bias, bias_scale)}, ga);
    ValueId y = bl.dequant(bl.quant(gemm, r.y_scale, r.y_zp, DType::kI8), r.y_scale, r.y_zp, DType::kI8);
    ir::Graph g = bl.done({y});

    ir::Graph l = lowered(g);
    EXPECT_EQ(op_counts(l), (std::map<std::string, int>{{"QuantizeLinear", 1}, {"QGemm", 1}, {"DequantizeLinear", 1}}));
    // The int32 bias constant is used as is (its scale is x_scale * w_scale within 1 ulp).
    for (const auto& nd : l.nodes)
      if (nd.op == OpKind::kQGemm) EXPECT_EQ(l.value(nd.inputs[8]).constant.data<int32_t>()[0], bias[0]);

    auto xf = random_floats(rng, size_t(m * k), -3.0f, 4.0f);
    BothRuns runs = run_both(g, {f32({m, k}, xf)});
    ASSERT_EQ(runs.integer.size(), 1u);
    expect_close(runs.integer[0], runs.fake[0], r.y_scale);
    auto want = testing::ref_qgemm(m, k, n, quantized(xf, r.x_scale, r.x_zp, 0, 255), b_kn, &bias, r);
    EXPECT_EQ(floats(runs.integer[0]), dequantized(want, r.y_scale, r.y_zp)) << "transB=" << trans_b;
  }
}

// MatMul with a batched A, a bias Add whose DQ scale is not x_scale * w_scale
// (so the pass re-derives the int32 bias), Relu, uint8 output.
TEST(LowerQdq, MatMulAddReluBecomesQGemmWithRederivedBias) {
  std::mt19937 rng(5);
  const int64_t batch = 2, m = 3, k = 8, n = 4;
  RequantSpec r;
  r.x_scale = 0.02f, r.x_zp = 5, r.y_scale = 0.04f, r.y_zp = 0, r.qmin = 0, r.qmax = 255, r.relu = true;
  r.w_scale = std::vector<float>(n, 0.01f);
  auto w = random_ints(rng, size_t(k * n), -127, 127);
  auto bq = random_ints(rng, size_t(n), -100, 100);
  float bs = 0.7f * r.x_scale * r.w_scale[0];

  Builder bl;
  ValueId x = bl.input({batch, m, k});
  ValueId xd = bl.qdq(x, r.x_scale, r.x_zp, DType::kI8);
  ValueId mm = bl.node(OpKind::kMatMul, {xd, bl.weight(DType::kI8, {k, n}, w, {0.01f}, 1)});
  ValueId add = bl.node(OpKind::kAdd, {bl.bias(bq, {bs}), mm});
  ValueId y = bl.dequant(bl.quant(bl.node(OpKind::kRelu, {add}), r.y_scale, r.y_zp, DType::kU8), r.y_scale, r.y_zp,
                         DType::kU8);
  ir::Graph g = bl.done({y});

  ir::Graph l = lowered(g);
  EXPECT_EQ(op_counts(l), (std::map<std::string, int>{{"QuantizeLinear", 1}, {"QGemm", 1}, {"DequantizeLinear", 1}}));

  // b_q' = round_half_even(deQ(b_q) / (x_scale * w_scale)) in double.
  std::vector<int32_t> rederived;
  for (int32_t q : bq)
    rederived.push_back(int32_t(quant::round_half_even(double(float(q) * bs) / (double(r.x_scale) * double(0.01f)))));
  auto xf = random_floats(rng, size_t(batch * m * k), -2.0f, 2.0f);
  BothRuns runs = run_both(g, {f32({batch, m, k}, xf)});
  ASSERT_EQ(runs.integer.size(), 1u);
  EXPECT_EQ(runs.integer[0].shape(), (Shape{batch, m, n}));
  expect_close(runs.integer[0], runs.fake[0], r.y_scale);
  auto want = testing::ref_qgemm(batch * m, k, n, quantized(xf, r.x_scale, r.x_zp, -128, 127), w, &rederived, r);
  EXPECT_EQ(floats(runs.integer[0]), dequantized(want, r.y_scale, r.y_zp));
}

// 2x2 / stride 2 max pool on NCHW integers.
std::vector<int32_t> ref_maxpool2(const std::vector<int32_t>& x, int64_t planes, int64_t h, int64_t w) {
  std::vector<int32_t> y;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i + 1 < h; i += 2)
      for (int64_t j = 0; j + 1 < w; j += 2) {
        const int32_t* b = x.data() + p * h * w;
        y.push_back(std::max({b[i * w + j], b[i * w + j + 1], b[(i + 1) * w + j], b[(i + 1) * w + j + 1]}));
      }
  return y;
}

// A LeNet-like chain: Conv -> Q -> DQ -> Relu -> Q (Relu folded into QConv),
// MaxPool without a Q after it, Conv+Relu, Reshape, Gemm. Only the input Q and
// the final DQ stay around the integer ops.
TEST(LowerQdq, CnnChainRunsInIntegers) {
  std::mt19937 rng(8);
  Conv2d c1;
  c1.c = 1, c1.h = 12, c1.w = 12, c1.m = 4, c1.kh = 3, c1.kw = 3;
  Conv2d c2;
  c2.c = 4, c2.h = 5, c2.w = 5, c2.m = 6, c2.kh = 3, c2.kw = 3, c2.pt = c2.pl = c2.pb = c2.pr = 1;
  RequantSpec r1, r2, r3;
  r1.x_scale = 0.02f, r1.y_scale = 0.05f, r1.y_zp = -20, r1.relu = true, r1.w_scale = {0.004f, 0.003f, 0.005f, 0.002f};
  r2.x_scale = 0.05f, r2.x_zp = -20, r2.y_scale = 0.04f, r2.y_zp = -128, r2.relu = true;
  r2.w_scale = {0.002f, 0.001f, 0.0015f, 0.002f, 0.0025f, 0.001f};
  r3.x_scale = 0.04f, r3.x_zp = -128, r3.y_scale = 0.1f, r3.y_zp = 0, r3.w_scale = std::vector<float>(10, 0.003f);
  auto w1 = random_ints(rng, 4 * 9, -127, 127);
  auto w2 = random_ints(rng, 6 * 4 * 9, -127, 127);
  auto w3 = random_ints(rng, 10 * 150, -127, 127);  // [10, 150], transB = 1
  auto b1 = random_ints(rng, 4, -500, 500);
  std::vector<float> b1s;
  for (float s : r1.w_scale) b1s.push_back(r1.x_scale * s);

  Builder bl;
  ValueId x = bl.input({1, 1, 12, 12});
  ValueId h = bl.qdq(x, r1.x_scale, 0, DType::kI8);
  h = bl.node(OpKind::kConv, {h, bl.weight(DType::kI8, {4, 1, 3, 3}, w1, r1.w_scale, 0), bl.bias(b1, b1s)}, ir::ConvAttrs{});
  h = bl.qdq(h, 0.05f, -20, DType::kI8);
  h = bl.qdq(bl.node(OpKind::kRelu, {h}), 0.05f, -20, DType::kI8);
  ir::MaxPoolAttrs mp;
  mp.kernel_shape = {2, 2};
  mp.strides = {2, 2};
  h = bl.node(OpKind::kMaxPool, {h}, mp);
  ir::ConvAttrs pad1;
  pad1.pads = {1, 1, 1, 1};
  h = bl.node(OpKind::kConv, {h, bl.weight(DType::kI8, {6, 4, 3, 3}, w2, r2.w_scale, 0)}, pad1);
  h = bl.qdq(bl.node(OpKind::kRelu, {h}), 0.04f, -128, DType::kI8);
  Tensor shape = Tensor::create(DType::kI64, {2}).value();
  shape.data<int64_t>()[0] = 1;
  shape.data<int64_t>()[1] = -1;
  h = bl.node(OpKind::kReshape, {h, bl.cst(shape)}, ir::ReshapeAttrs{});
  ir::GemmAttrs ga;
  ga.transB = 1;
  h = bl.node(OpKind::kGemm, {h, bl.weight(DType::kI8, {10, 150}, w3, {0.003f}, 0)}, ga);
  ValueId y = bl.qdq(h, 0.1f, 0, DType::kI8);
  ir::Graph g = bl.done({y});

  ir::Graph l = lowered(g);
  EXPECT_EQ(op_counts(l), (std::map<std::string, int>{{"QuantizeLinear", 1},
                                                      {"QConv", 2},
                                                      {"MaxPool", 1},
                                                      {"Reshape", 1},
                                                      {"QGemm", 1},
                                                      {"DequantizeLinear", 1}}));
  for (const auto& n : l.nodes)
    if (n.op == OpKind::kQConv) EXPECT_EQ(n.attr<ir::QConvAttrs>().fused_relu, 1) << n.name;
  ASSERT_EQ(l.nodes.front().op, OpKind::kQuantizeLinear);
  ASSERT_EQ(l.nodes.back().op, OpKind::kDequantizeLinear);

  auto xf = random_floats(rng, 144, -1.0f, 2.0f);
  BothRuns runs = run_both(g, {f32({1, 1, 12, 12}, xf)});
  ASSERT_EQ(runs.integer.size(), 1u);
  // Independent integer chain.
  auto q1 = testing::ref_qconv(c1, quantized(xf, r1.x_scale, 0, -128, 127), w1, &b1, r1);
  auto p1 = ref_maxpool2(q1, 4, 10, 10);
  auto q2 = testing::ref_qconv(c2, p1, w2, nullptr, r2);
  auto q3 = testing::ref_qgemm(1, 150, 10, q2, [&] {
    std::vector<int32_t> kn(150 * 10);
    for (int64_t j = 0; j < 10; ++j)
      for (int64_t t = 0; t < 150; ++t) kn[size_t(t * 10 + j)] = w3[size_t(j * 150 + t)];
    return kn;
  }(), nullptr, r3);
  EXPECT_EQ(floats(runs.integer[0]), dequantized(q3, 0.1f, 0));
  // Through three layers a one-step difference may grow a little; most elements agree exactly.
  int differ = expect_close(runs.integer[0], runs.fake[0], 0.1f, 3);
  EXPECT_LE(differ, 5);
}

TEST(LowerQdq, StandaloneReluBecomesIntegerMax) {
  Builder bl;
  ValueId x = bl.input({2, 3});
  ValueId y = bl.qdq(bl.node(OpKind::kRelu, {bl.qdq(x, 0.1f, 7, DType::kI8)}), 0.1f, 7, DType::kI8);
  ir::Graph g = bl.done({y});
  ir::Graph l = lowered(g);
  EXPECT_EQ(op_counts(l), (std::map<std::string, int>{{"QuantizeLinear", 1}, {"Max", 1}, {"DequantizeLinear", 1}}));
  BothRuns runs = run_both(g, {f32({2, 3}, {-1.0f, -0.65f, 0.0f, 0.04f, 0.66f, 20.0f})});
  ASSERT_EQ(runs.integer.size(), 1u);
  EXPECT_EQ(floats(runs.integer[0]), floats(runs.fake[0]));  // exact
}

// DQ -> Clip -> Q with the same params (ReLU6 and a one-sided clip): an
// integer Clip with quantized bounds, bit-identical to the float graph.
TEST(LowerQdq, ClipBetweenSameParamsRunsInIntegers) {
  for (bool upper : {true, false}) {
    Builder bl;
    ValueId x = bl.input({2, 5});
    std::vector<ValueId> in = {bl.qdq(x, 0.05f, -30, DType::kI8), bl.cst(f32({}, {0.0f}))};
    if (upper) in.push_back(bl.cst(f32({}, {0.97f})));  // 0.97 / 0.05 = 19.4: not on the grid
    ValueId y = bl.qdq(bl.node(OpKind::kClip, in), 0.05f, -30, DType::kI8);
    ir::Graph g = bl.done({y});
    ir::Graph l = lowered(g);
    EXPECT_EQ(op_counts(l), (std::map<std::string, int>{{"QuantizeLinear", 1}, {"Clip", 1}, {"DequantizeLinear", 1}}));
    for (const auto& n : l.nodes)
      if (n.op == OpKind::kClip) EXPECT_EQ(l.value(n.inputs[0]).type.dtype, DType::kI8);
    BothRuns runs = run_both(g, {f32({2, 5}, {-1.0f, -0.01f, 0.0f, 0.2f, 0.96f, 0.97f, 0.98f, 0.99f, 1.5f, 7.0f})});
    ASSERT_EQ(runs.integer.size(), 1u);
    EXPECT_EQ(floats(runs.integer[0]), floats(runs.fake[0])) << "upper=" << upper;
  }
}

// DQ(a) + DQ(b) [-> Relu] -> Q, operands of other params and types: one
// QAdd, bit-identical to the float graph (ties included: 0.25 + 0.125 steps
// land on half output steps). A broadcasting Add is left in float.
TEST(LowerQdq, ResidualAddBecomesQAdd) {
  for (bool relu : {true, false}) {
    Builder bl;
    ValueId x1 = bl.input({2, 6}, DType::kF32, "x1");
    ValueId x2 = bl.input({2, 6}, DType::kF32, "x2");
    ValueId s = bl.node(OpKind::kAdd, {bl.qdq(x1, 0.25f, 3, DType::kU8), bl.qdq(x2, 0.125f, -5, DType::kI8)});
    if (relu) s = bl.node(OpKind::kRelu, {s});
    ValueId y = bl.qdq(s, 0.25f, 10, DType::kU8);
    ir::Graph g = bl.done({y});
    ir::Graph l = lowered(g);
    EXPECT_EQ(op_counts(l), (std::map<std::string, int>{{"QuantizeLinear", 2}, {"QAdd", 1}, {"DequantizeLinear", 1}}));
    BothRuns runs = run_both(g, {f32({2, 6}, {-3.0f, -0.9f, 0.0f, 0.3f, 0.6f, 1.1f, 2.0f, 9.0f, 30.0f, -40.0f, 0.12f, 5.5f}),
                                 f32({2, 6}, {0.1f, 0.2f, -0.3f, 0.45f, 0.8f, -1.6f, 3.3f, -9.0f, 7.0f, 2.0f, 0.06f, -0.7f})});
    ASSERT_EQ(runs.integer.size(), 1u);
    EXPECT_EQ(floats(runs.integer[0]), floats(runs.fake[0])) << "relu=" << relu;
  }
  Builder bl;
  ValueId x1 = bl.input({2, 6}, DType::kF32, "x1");
  ValueId x2 = bl.input({6}, DType::kF32, "x2");
  ValueId y = bl.qdq(bl.node(OpKind::kAdd, {bl.qdq(x1, 0.25f, 3, DType::kU8), bl.qdq(x2, 0.125f, -5, DType::kI8)}), 0.25f,
                     10, DType::kU8);
  ir::Graph l = lowered(bl.done({y}));
  EXPECT_EQ(op_counts(l).count("QAdd"), 0u);
  EXPECT_EQ(op_counts(l).count("Add"), 1u);
}

// ---- cases the pass must leave alone ----

// A Conv graph with knobs that each break the pattern.
struct ConvCase {
  bool weights_are_input = false;
  int32_t weight_zp = 0;
  float y_scale = 0.05f;
  bool conv_is_output = false;
};
ir::Graph conv_graph(const ConvCase& cc) {
  Builder bl;
  ValueId x = bl.input({1, 2, 4, 4});
  ValueId xd = bl.qdq(x, 0.02f, 0, DType::kI8);
  std::vector<int32_t> w(3 * 2 * 4, 9);
  ValueId wd;
  if (cc.weights_are_input) {
    ir::DequantizeLinearAttrs a;
    a.axis = 0;
    wd = bl.node(OpKind::kDequantizeLinear, {bl.input({3, 2, 2, 2}, DType::kI8, "w"), bl.cst(f32({}, {0.01f}))}, a);
  } else {
    wd = bl.weight(DType::kI8, {3, 2, 2, 2}, w, {0.01f}, 0, cc.weight_zp, true);
  }
  ValueId conv = bl.node(OpKind::kConv, {xd, wd}, ir::ConvAttrs{});
  ValueId y = bl.qdq(conv, cc.y_scale, 0, DType::kI8);
  std::vector<ValueId> outs = {y};
  if (cc.conv_is_output) outs.push_back(conv);
  return bl.done(outs);
}

void expect_conv_kept(const ConvCase& cc, const char* what) {
  ir::Graph g = conv_graph(cc);
  int rewrites = -1;
  ir::Graph l = lowered(g, &rewrites);
  EXPECT_EQ(rewrites, 0) << what;
  EXPECT_EQ(op_counts(l), op_counts(g)) << what;
  EXPECT_EQ(op_counts(l)["Conv"], 1) << what;
}

TEST(LowerQdq, LeavesNonConstantWeightsAlone) { expect_conv_kept({.weights_are_input = true}, "weights input"); }
TEST(LowerQdq, LeavesWeightZeroPointAlone) { expect_conv_kept({.weight_zp = 3}, "weight zp 3"); }
TEST(LowerQdq, LeavesSharedConvOutputAlone) { expect_conv_kept({.conv_is_output = true}, "conv output used twice"); }
TEST(LowerQdq, LeavesUnrepresentableMultiplierAlone) {
  expect_conv_kept({.y_scale = 1e-16f}, "multiplier 0.02 * 0.01 / 1e-16 >= 2^30");
}

TEST(LowerQdq, ControlConvIsLowered) {
  ir::Graph l = lowered(conv_graph({}));
  EXPECT_EQ(op_counts(l)["QConv"], 1);
}

// DQ(s1, z1) -> MaxPool -> Q(s2, z2): MaxPool may run on the integers (exact),
// but the requantization to other params is kept, and results are identical.
TEST(LowerQdq, MismatchedParamsAroundMaxPoolAreKept) {
  struct P {
    float s2;
    int32_t z2;
  };
  for (P p : {P{0.2f, 0}, P{0.1f, 4}}) {
    Builder bl;
    ValueId x = bl.input({1, 2, 4, 4});
    ir::MaxPoolAttrs mp;
    mp.kernel_shape = {2, 2};
    ValueId pool = bl.node(OpKind::kMaxPool, {bl.qdq(x, 0.1f, 0, DType::kI8)}, mp);
    ValueId y = bl.qdq(pool, p.s2, p.z2, DType::kI8);
    ir::Graph g = bl.done({y});
    ir::Graph l = lowered(g);
    auto counts = op_counts(l);
    EXPECT_EQ(counts["QuantizeLinear"], 2);  // the input Q and the Q(s2, z2) re-quantization
    EXPECT_EQ(counts["DequantizeLinear"], 2);
    EXPECT_EQ(counts["MaxPool"], 1);
    std::mt19937 rng(3);
    auto xf = random_floats(rng, 32, -3.0f, 3.0f);
    BothRuns runs = run_both(g, {f32({1, 2, 4, 4}, xf)});
    ASSERT_EQ(runs.integer.size(), 1u);
    EXPECT_EQ(floats(runs.integer[0]), floats(runs.fake[0]));
  }
}

TEST(LowerQdq, LeavesGlobalAveragePoolInFloat) {
  Builder bl;
  ValueId x = bl.input({1, 3, 2, 2});
  ValueId gap = bl.node(OpKind::kGlobalAveragePool, {bl.qdq(x, 0.1f, 0, DType::kI8)});
  ir::Graph g = bl.done({bl.qdq(gap, 0.1f, 0, DType::kI8)});
  int rewrites = -1;
  ir::Graph l = lowered(g, &rewrites);
  EXPECT_EQ(rewrites, 0);
  EXPECT_EQ(op_counts(l), op_counts(g));
  for (const auto& n : l.nodes)
    if (n.op == OpKind::kGlobalAveragePool) EXPECT_EQ(l.value(n.inputs[0]).type.dtype, DType::kF32);
}

TEST(LowerQdq, SessionOptionSelectsFakeQuant) {
  ir::Graph g = conv_graph({});
  auto fake = runtime::Session::create(g, runtime::SessionOptions{.lower_qdq = false});
  auto real = runtime::Session::create(g);
  ASSERT_TRUE(fake.ok() && real.ok());
  EXPECT_EQ(op_counts(fake->graph())["Conv"], 1);
  EXPECT_EQ(op_counts(fake->graph())["QConv"], 0);
  EXPECT_EQ(op_counts(real->graph())["QConv"], 1);
}

}  // namespace
}  // namespace kiln
