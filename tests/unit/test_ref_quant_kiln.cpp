// kiln's integer ops QConv / QGemm (domain "kiln"): the reference kernels agree
// bit for bit with straightforward loops (int_reference.h) on random shapes,
// groups, pads, strides, dilations, dtypes, per-tensor/per-channel scales,
// bias and fused Relu; bad inputs give clear errors; the domain keeps them
// apart from ONNX ops and the exporter refuses them.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <random>

#include "backends/reference/reference.h"
#include "int_reference.h"
#include "ir/infer.h"
#include "ir/op_table.h"
#include "ir/verify.h"
#include "onnx/export.h"

namespace kiln {
namespace {

using ir::OpKind;
using testing::Conv2d;
using testing::RequantSpec;

// An integer tensor (i8, u8, i32, i4 packed two per byte).
Tensor ints(DType dt, Shape shape, const std::vector<int32_t>& v) {
  Tensor t = Tensor::create(dt, std::move(shape)).value();
  for (size_t i = 0; i < v.size(); ++i) {
    switch (dt) {
      case DType::kI8: t.data<int8_t>()[i] = int8_t(v[i]); break;
      case DType::kU8: t.data<uint8_t>()[i] = uint8_t(v[i]); break;
      case DType::kI32: t.data<int32_t>()[i] = v[i]; break;
      case DType::kI4: t.data<uint8_t>()[i / 2] |= uint8_t((uint32_t(v[i]) & 0xfu) << ((i & 1) * 4)); break;
      default: ADD_FAILURE() << "dtype"; break;
    }
  }
  return t;
}
Tensor f32(Shape shape, const std::vector<float>& v) {
  Tensor t = Tensor::create(DType::kF32, std::move(shape)).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}
Tensor scalar_f32(float v) { return f32({}, {v}); }
Tensor scalar_int(DType dt, int32_t v) { return ints(dt, {}, {v}); }
std::vector<int32_t> values(const Tensor& t) {
  std::vector<int32_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(int32_t(t.as_int(i)));
  return v;
}

// One node over input 0 (a graph input) and constant inputs 1..; static
// inference, verify, then a run on the reference backend.
Result<Tensor> run_node(OpKind op, const std::vector<Tensor>& ins, ir::Attrs attrs) {
  ir::Graph g;
  ir::Node n;
  n.name = "q";
  n.op = op;
  n.attrs = std::move(attrs);
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i].defined()) {
      n.inputs.push_back(ir::kNoValue);
    } else if (i == 0) {
      n.inputs.push_back(g.add_value("x", {ins[0].dtype(), ins[0].shape(), true}));
      g.inputs.push_back(n.inputs.back());
    } else {
      n.inputs.push_back(g.add_constant("c" + std::to_string(i), ins[i]));
    }
  }
  n.outputs.push_back(g.add_value("y"));
  g.outputs.push_back(n.outputs[0]);
  g.nodes.push_back(std::move(n));
  KILN_TRY(ir::verify(g));
  KILN_TRY(ir::infer_graph(g));
  ref::ReferenceBackend be;
  KILN_ASSIGN(auto exe, be.compile(g, map::Plan{}));
  std::vector<Tensor> feeds = {ins[0]};
  KILN_ASSIGN(auto outs, exe->run(feeds));
  return outs[0];
}

int64_t rand_in(std::mt19937& rng, int64_t lo, int64_t hi) { return lo + int64_t(rng() % uint32_t(hi - lo + 1)); }
float rand_f(std::mt19937& rng, float lo, float hi) { return lo + (hi - lo) * float(rng() % 100000) / 100000.0f; }

// Random activation/output params: dtype, zero point, scale.
struct ActChoice {
  DType dt;
  int32_t zp;
  int64_t lo, hi;
};
ActChoice rand_act(std::mt19937& rng) {
  bool u8 = rng() & 1;
  ActChoice a{u8 ? DType::kU8 : DType::kI8, 0, u8 ? 0 : -128, u8 ? 255 : 127};
  a.zp = int32_t(rand_in(rng, a.lo, a.hi));
  return a;
}

TEST(QConv, MatchesLoopsOnRandomShapes) {
  std::mt19937 rng(2024);
  for (int iter = 0; iter < 60; ++iter) {
    Conv2d s;
    s.group = rand_in(rng, 1, 3);
    s.c = s.group * rand_in(rng, 1, 3);
    s.m = s.group * rand_in(rng, 1, 3);
    s.n = rand_in(rng, 1, 2);
    s.h = rand_in(rng, 1, 9);
    s.w = rand_in(rng, 1, 9);
    s.kh = rand_in(rng, 1, 3);
    s.kw = rand_in(rng, 1, 3);
    s.sh = rand_in(rng, 1, 3);
    s.sw = rand_in(rng, 1, 2);
    s.dh = rand_in(rng, 1, 2);
    s.dw = rand_in(rng, 1, 2);
    s.pt = rand_in(rng, 0, 2);
    s.pl = rand_in(rng, 0, 2);
    s.pb = rand_in(rng, 0, 2);
    s.pr = rand_in(rng, 0, 2);
    if (s.h + s.pt + s.pb < (s.kh - 1) * s.dh + 1 || s.w + s.pl + s.pr < (s.kw - 1) * s.dw + 1) continue;
    ActChoice xa = rand_act(rng), ya = rand_act(rng);
    bool int4 = iter % 5 == 0, per_channel = rng() & 1, with_bias = rng() & 1;
    RequantSpec r;
    r.x_scale = rand_f(rng, 0.005f, 0.05f);
    r.y_scale = rand_f(rng, 0.01f, 0.5f);
    r.x_zp = xa.zp;
    r.y_zp = ya.zp;
    r.qmin = ya.lo;
    r.qmax = ya.hi;
    r.relu = rng() & 1;
    float ws = rand_f(rng, 0.001f, 0.02f);
    for (int64_t m = 0; m < s.m; ++m) r.w_scale.push_back(per_channel ? rand_f(rng, 0.001f, 0.02f) : ws);
    std::vector<int32_t> x, w, bias;
    for (int64_t i = 0; i < s.n * s.c * s.h * s.w; ++i) x.push_back(int32_t(rand_in(rng, xa.lo, xa.hi)));
    for (int64_t i = 0; i < s.m * (s.c / s.group) * s.kh * s.kw; ++i)
      w.push_back(int32_t(int4 ? rand_in(rng, -8, 7) : rand_in(rng, -127, 127)));
    for (int64_t i = 0; i < s.m; ++i) bias.push_back(int32_t(rand_in(rng, -20000, 20000)));

    DType wdt = int4 ? DType::kI4 : DType::kI8;
    ir::QConvAttrs a;
    a.group = s.group;
    a.strides = {s.sh, s.sw};
    a.dilations = {s.dh, s.dw};
    a.pads = {s.pt, s.pl, s.pb, s.pr};
    a.kernel_shape = iter % 2 ? std::vector<int64_t>{s.kh, s.kw} : std::vector<int64_t>{};
    a.fused_relu = r.relu;
    std::vector<Tensor> ins = {
        ints(xa.dt, {s.n, s.c, s.h, s.w}, x),
        scalar_f32(r.x_scale),
        scalar_int(xa.dt, xa.zp),
        ints(wdt, {s.m, s.c / s.group, s.kh, s.kw}, w),
        per_channel ? f32({s.m}, r.w_scale) : scalar_f32(ws),
        per_channel ? ints(wdt, {s.m}, std::vector<int32_t>(size_t(s.m), 0)) : scalar_int(wdt, 0),
        scalar_f32(r.y_scale),
        scalar_int(ya.dt, ya.zp),
        with_bias ? ints(DType::kI32, {s.m}, bias) : Tensor(),
    };
    if (!with_bias) ins.pop_back();
    auto y = run_node(OpKind::kQConv, ins, a);
    ASSERT_TRUE(y.ok()) << "case " << iter << ": " << y.error().message;
    EXPECT_EQ(y->dtype(), ya.dt);
    EXPECT_EQ(y->shape(), (Shape{s.n, s.m, s.oh(), s.ow()}));
    auto want = testing::ref_qconv(s, x, w, with_bias ? &bias : nullptr, r);
    ASSERT_EQ(values(*y), want) << "case " << iter;
  }
}

// acc near the int32 limits: wraps like an int32 accumulator (the bias pushes it over).
TEST(QConv, AccumulatorWrapsAtInt32) {
  Conv2d s;  // 1x1 conv, one input channel
  std::vector<int32_t> x = {127}, w = {127}, bias = {INT32_MAX - 100};
  RequantSpec r;
  r.x_scale = 1.0f;
  r.y_scale = 1.0f;
  r.w_scale = {std::ldexp(1.0f, -24)};
  auto y = run_node(OpKind::kQConv,
                    {ints(DType::kI8, {1, 1, 1, 1}, x), scalar_f32(1), scalar_int(DType::kI8, 0),
                     ints(DType::kI8, {1, 1, 1, 1}, w), scalar_f32(r.w_scale[0]), scalar_int(DType::kI8, 0),
                     scalar_f32(1), scalar_int(DType::kI8, 0), ints(DType::kI32, {1}, bias)},
                    ir::QConvAttrs{});
  ASSERT_TRUE(y.ok()) << y.error().message;
  // INT32_MAX - 100 + 16129 wraps to a large negative value: -128 after scaling by 2^-24.
  EXPECT_EQ(values(*y), testing::ref_qconv(s, x, w, &bias, r));
  EXPECT_EQ(values(*y)[0], -128);
}

TEST(QGemm, MatchesLoopsOnRandomShapes) {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 40; ++iter) {
    int64_t batch = rand_in(rng, 1, 3), m = rand_in(rng, 1, 5), k = rand_in(rng, 1, 40), n = rand_in(rng, 1, 7);
    bool trans_b = rng() & 1, per_col = rng() & 1, with_bias = rng() & 1, rank3 = rng() & 1;
    ActChoice xa = rand_act(rng), ya = rand_act(rng);
    RequantSpec r;
    r.x_scale = rand_f(rng, 0.005f, 0.05f);
    r.y_scale = rand_f(rng, 0.01f, 0.5f);
    r.x_zp = xa.zp;
    r.y_zp = ya.zp;
    r.qmin = ya.lo;
    r.qmax = ya.hi;
    r.relu = rng() & 1;
    float ws = rand_f(rng, 0.001f, 0.02f);
    for (int64_t j = 0; j < n; ++j) r.w_scale.push_back(per_col ? rand_f(rng, 0.001f, 0.02f) : ws);
    int64_t rows = rank3 ? batch * m : m;
    std::vector<int32_t> a, b_kn(size_t(k * n)), b_stored(size_t(k * n)), bias;
    for (int64_t i = 0; i < rows * k; ++i) a.push_back(int32_t(rand_in(rng, xa.lo, xa.hi)));
    for (int64_t t = 0; t < k; ++t)
      for (int64_t j = 0; j < n; ++j) {
        int32_t v = int32_t(rand_in(rng, -127, 127));
        b_kn[size_t(t * n + j)] = v;
        b_stored[size_t(trans_b ? j * k + t : t * n + j)] = v;
      }
    for (int64_t j = 0; j < n; ++j) bias.push_back(int32_t(rand_in(rng, -20000, 20000)));
    Shape ashape = rank3 ? Shape{batch, m, k} : Shape{m, k};
    std::vector<Tensor> ins = {
        ints(xa.dt, ashape, a),
        scalar_f32(r.x_scale),
        scalar_int(xa.dt, xa.zp),
        ints(DType::kI8, trans_b ? Shape{n, k} : Shape{k, n}, b_stored),
        per_col ? f32({n}, r.w_scale) : scalar_f32(ws),
        scalar_int(DType::kI8, 0),
        scalar_f32(r.y_scale),
        scalar_int(ya.dt, ya.zp),
    };
    if (with_bias) ins.push_back(ints(DType::kI32, {n}, bias));
    auto y = run_node(OpKind::kQGemm, ins, ir::QGemmAttrs{trans_b, r.relu});
    ASSERT_TRUE(y.ok()) << "case " << iter << ": " << y.error().message;
    Shape want_shape = ashape;
    want_shape.back() = n;
    EXPECT_EQ(y->shape(), want_shape);
    ASSERT_EQ(values(*y), testing::ref_qgemm(rows, k, n, a, b_kn, with_bias ? &bias : nullptr, r)) << "case " << iter;
  }
}

// Inputs of a small valid QConv: x [1, 2, 3, 3] i8, w [2, 2, 1, 1] i8.
std::vector<Tensor> qconv_inputs() {
  return {ints(DType::kI8, {1, 2, 3, 3}, std::vector<int32_t>(18, 5)),
          scalar_f32(0.1f),
          scalar_int(DType::kI8, 1),
          ints(DType::kI8, {2, 2, 1, 1}, {1, -2, 3, 4}),
          f32({2}, {0.01f, 0.02f}),
          scalar_int(DType::kI8, 0),
          scalar_f32(0.05f),
          scalar_int(DType::kI8, -3)};
}

void expect_error(const Result<Tensor>& r, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << "expected an error mentioning '" << fragment << "'";
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
}

TEST(QConv, BadInputsGiveClearErrors) {
  ASSERT_TRUE(run_node(OpKind::kQConv, qconv_inputs(), ir::QConvAttrs{}).ok());
  auto in = qconv_inputs();
  in[5] = scalar_int(DType::kI8, 2);
  expect_error(run_node(OpKind::kQConv, in, ir::QConvAttrs{}), "w_zero_point must be 0");
  in = qconv_inputs();
  in[0] = f32({1, 2, 3, 3}, std::vector<float>(18, 1.0f));
  expect_error(run_node(OpKind::kQConv, in, ir::QConvAttrs{}), "x has dtype f32");
  in = qconv_inputs();
  in[4] = f32({3}, {0.1f, 0.1f, 0.1f});
  expect_error(run_node(OpKind::kQConv, in, ir::QConvAttrs{}), "w_scale of shape [3]");
  in = qconv_inputs();
  in.push_back(ints(DType::kI32, {3}, {1, 2, 3}));
  expect_error(run_node(OpKind::kQConv, in, ir::QConvAttrs{}), "bias of shape [3]");
  in = qconv_inputs();
  in[6] = scalar_f32(1e-15f);  // multiplier 0.1 * 0.01 / 1e-15 = 1e12 >= 2^30
  expect_error(run_node(OpKind::kQConv, in, ir::QConvAttrs{}), "requantization multiplier");
  in = qconv_inputs();
  in[7] = scalar_int(DType::kI32, 0);
  expect_error(run_node(OpKind::kQConv, in, ir::QConvAttrs{}), "y_zero_point has dtype i32");
  ir::QConvAttrs bad;
  bad.fused_relu = 2;
  expect_error(run_node(OpKind::kQConv, qconv_inputs(), bad), "fused_relu 2");
}

TEST(QGemm, BadInputsGiveClearErrors) {
  auto gemm_inputs = [] {
    return std::vector<Tensor>{ints(DType::kU8, {2, 3}, {1, 2, 3, 4, 5, 6}), scalar_f32(0.1f),
                               scalar_int(DType::kU8, 128), ints(DType::kI8, {3, 2}, {1, 2, 3, 4, 5, 6}),
                               scalar_f32(0.01f), scalar_int(DType::kI8, 0), scalar_f32(0.05f),
                               scalar_int(DType::kU8, 7)};
  };
  ASSERT_TRUE(run_node(OpKind::kQGemm, gemm_inputs(), ir::QGemmAttrs{}).ok());
  auto in = gemm_inputs();
  in[0] = ints(DType::kU8, {3}, {1, 2, 3});
  expect_error(run_node(OpKind::kQGemm, in, ir::QGemmAttrs{}), "rank >= 2");
  expect_error(run_node(OpKind::kQGemm, gemm_inputs(), ir::QGemmAttrs{1, 0}), "inner dimensions differ");
  in = gemm_inputs();
  in.push_back(ints(DType::kI32, {3}, {1, 2, 3}));
  expect_error(run_node(OpKind::kQGemm, in, ir::QGemmAttrs{}), "bias of shape [3]");
  in = gemm_inputs();
  in[2] = scalar_int(DType::kI8, 0);
  expect_error(run_node(OpKind::kQGemm, in, ir::QGemmAttrs{}), "x_zero_point has dtype i8, expected u8");
  in = gemm_inputs();
  in[1] = f32({2}, {0.1f, 0.1f});
  expect_error(run_node(OpKind::kQGemm, in, ir::QGemmAttrs{}), "x_scale must have one element");
}

TEST(KilnDomain, OpsLiveOnlyInTheirDomain) {
  EXPECT_EQ(ir::op_from_name("kiln", "QConv"), OpKind::kQConv);
  EXPECT_EQ(ir::op_from_name("kiln", "QGemm"), OpKind::kQGemm);
  EXPECT_FALSE(ir::op_from_name("", "QConv").has_value());
  EXPECT_FALSE(ir::op_from_name("ai.onnx", "QGemm").has_value());
  EXPECT_FALSE(ir::op_from_name("kiln", "Conv").has_value());
  EXPECT_EQ(ir::op_from_name("ai.onnx", "Conv"), OpKind::kConv);
  EXPECT_EQ(ir::op_domain(OpKind::kQConv), "kiln");
  EXPECT_EQ(ir::op_domain(OpKind::kConv), "");
}

TEST(KilnDomain, ExporterRefusesKilnOps) {
  ir::Graph g;
  auto in = qconv_inputs();
  ir::Node n;
  n.name = "my_qconv";
  n.op = OpKind::kQConv;
  n.attrs = ir::QConvAttrs{};
  n.inputs.push_back(g.add_value("x", {DType::kI8, in[0].shape(), true}));
  g.inputs.push_back(n.inputs[0]);
  for (size_t i = 1; i < in.size(); ++i) n.inputs.push_back(g.add_constant("c" + std::to_string(i), in[i]));
  n.outputs.push_back(g.add_value("y"));
  g.outputs.push_back(n.outputs[0]);
  g.nodes.push_back(n);
  ASSERT_TRUE(ir::infer_graph(g).ok());
  onnx::ModelProto m;
  auto r = onnx_io::export_model(g, &m);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("node 'my_qconv' (QConv)"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("domain 'kiln'"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace kiln
