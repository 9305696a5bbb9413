// Reference elementwise kernels on cases the ONNX conformance data does not
// cover: cast rounding/saturation, integer wrap/division/modulo/pow, NaN
// propagation, broadcasting edge cases, and inputs that must give a clear error.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backends/reference/reference.h"
#include "core/half.h"
#include "ir/infer.h"

namespace kiln {
namespace {

template <class T>
Tensor make(DType dt, Shape shape, std::vector<T> v) {
  Tensor t = Tensor::create(dt, std::move(shape)).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<T>()[i] = v[i];
  return t;
}
Tensor f32(Shape s, std::vector<float> v) { return make(DType::kF32, std::move(s), std::move(v)); }
Tensor i32(Shape s, std::vector<int32_t> v) { return make(DType::kI32, std::move(s), std::move(v)); }
Tensor boolean(Shape s, std::vector<bool> v) {
  Tensor t = Tensor::create(DType::kBool, std::move(s)).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<bool>()[i] = v[i];
  return t;
}

// One node over graph inputs (or constants where `constant[i]`), run on the
// reference backend. Errors from inference or the kernel come back as Error.
Result<std::vector<Tensor>> run_op(ir::OpKind op, std::vector<Tensor> inputs, ir::Attrs attrs = ir::NoAttrs{},
                                   int num_outputs = 1, std::vector<bool> constant = {}) {
  ir::Graph g;
  ir::Node n;
  n.name = "n";
  n.op = op;
  n.opset = 21;
  n.attrs = std::move(attrs);
  std::vector<Tensor> feeds;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string name = "x" + std::to_string(i);
    if (!inputs[i].defined()) {
      n.inputs.push_back(ir::kNoValue);
    } else if (i < constant.size() && constant[i]) {
      n.inputs.push_back(g.add_constant(name, inputs[i]));
      g.value(n.inputs.back()).type = {inputs[i].dtype(), inputs[i].shape(), true};
    } else {
      n.inputs.push_back(g.add_value(name, {inputs[i].dtype(), inputs[i].shape(), true}));
      g.inputs.push_back(n.inputs.back());
      feeds.push_back(inputs[i]);
    }
  }
  for (int o = 0; o < num_outputs; ++o) {
    n.outputs.push_back(g.add_value("y" + std::to_string(o)));
    g.outputs.push_back(n.outputs.back());
  }
  g.nodes.push_back(std::move(n));
  KILN_TRY(ir::infer_graph(g));
  ref::ReferenceBackend backend;
  KILN_ASSIGN(auto exe, backend.compile(g, map::Plan{}));
  return exe->run(feeds);
}

template <class T>
std::vector<T> values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

void expect_error(const Result<std::vector<Tensor>>& r, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << fragment << "'";
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
}

using ir::OpKind;
const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

TEST(RefElementwise, CastFloatToIntTruncatesSaturatesAndZeroesNaN) {
  auto r = run_op(OpKind::kCast, {f32({7}, {-1.7f, 2.9f, kNaN, 1e10f, -1e10f, 127.9f, -kInf})},
                  ir::CastAttrs{3 /*INT8*/});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(values<int8_t>((*r)[0]), (std::vector<int8_t>{-1, 2, 0, 127, -128, 127, -128}));
  auto u = run_op(OpKind::kCast, {f32({3}, {-3.5f, 255.5f, 4e9f})}, ir::CastAttrs{12 /*UINT32*/});
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(values<uint32_t>((*u)[0]), (std::vector<uint32_t>{0, 255, 4000000000u}));
}

TEST(RefElementwise, CastIntToIntWrapsAndToBoolTestsNonZero) {
  auto r = run_op(OpKind::kCast, {i32({3}, {300, -1, 255})}, ir::CastAttrs{2 /*UINT8*/});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(values<uint8_t>((*r)[0]), (std::vector<uint8_t>{44, 255, 255}));
  auto b = run_op(OpKind::kCast, {f32({3}, {0.0f, kNaN, -0.0f})}, ir::CastAttrs{9 /*BOOL*/});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(values<bool>((*b)[0]), (std::vector<bool>{false, true, false}));
}

TEST(RefElementwise, CastDoubleToHalfRoundsOnce) {
  // 1 + 2^-11 + 2^-40 lies just above the f16 tie between 1 and 1 + 2^-10:
  // rounding via float first would land on the tie and round down to 1.
  double d = 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40);
  auto r = run_op(OpKind::kCast, {make<double>(DType::kF64, {2}, {d, 70000.0})}, ir::CastAttrs{10 /*FLOAT16*/});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].data<f16_t>()[0].bits, 0x3c01);
  EXPECT_EQ((*r)[0].data<f16_t>()[1].bits, 0x7c00);  // overflow -> inf
}

TEST(RefElementwise, CastFloatToBFloat16RoundsToNearestEven) {
  auto r = run_op(OpKind::kCast, {f32({2}, {0.48033667f, kNaN})}, ir::CastAttrs{16 /*BFLOAT16*/});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].data<bf16_t>()[0].bits, 0x3ef6);  // truncation would give 0x3ef5
  EXPECT_TRUE(std::isnan(to_float((*r)[0].data<bf16_t>()[1])));
}

TEST(RefElementwise, IntegerArithmeticWrapsAndDivTruncates) {
  int32_t mn = std::numeric_limits<int32_t>::min();
  auto add = run_op(OpKind::kAdd, {i32({2}, {std::numeric_limits<int32_t>::max(), 5}), i32({}, {1})});
  ASSERT_TRUE(add.ok()) << add.error().message;
  EXPECT_EQ(values<int32_t>((*add)[0]), (std::vector<int32_t>{mn, 6}));
  auto div = run_op(OpKind::kDiv, {i32({3}, {-7, 7, mn}), i32({3}, {2, -2, -1})});
  ASSERT_TRUE(div.ok()) << div.error().message;
  EXPECT_EQ(values<int32_t>((*div)[0]), (std::vector<int32_t>{-3, -3, mn}));
  auto abs = run_op(OpKind::kAbs, {make<int8_t>(DType::kI8, {2}, {-128, -5})});
  ASSERT_TRUE(abs.ok()) << abs.error().message;
  EXPECT_EQ(values<int8_t>((*abs)[0]), (std::vector<int8_t>{-128, 5}));
}

TEST(RefElementwise, ModFollowsDivisorSignUnlessFmod) {
  auto py = run_op(OpKind::kMod, {i32({4}, {-7, 7, -7, 5}), i32({4}, {3, -3, -1, 5})}, ir::ModAttrs{0});
  ASSERT_TRUE(py.ok()) << py.error().message;
  EXPECT_EQ(values<int32_t>((*py)[0]), (std::vector<int32_t>{2, -2, 0, 0}));
  auto c = run_op(OpKind::kMod, {i32({2}, {-7, 7}), i32({2}, {3, -3})}, ir::ModAttrs{1});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(values<int32_t>((*c)[0]), (std::vector<int32_t>{-1, 1}));
}

TEST(RefElementwise, IntegerPow) {
  auto r = run_op(OpKind::kPow, {i32({5}, {2, 3, -1, 1, 7}), make<int64_t>(DType::kI64, {5}, {10, -1, -3, -5, 0})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(values<int32_t>((*r)[0]), (std::vector<int32_t>{1024, 0, -1, 1, 1}));
  auto f = run_op(OpKind::kPow, {i32({2}, {2, 9}), f32({2}, {0.5f, 0.5f})});
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(values<int32_t>((*f)[0]), (std::vector<int32_t>{1, 3}));
}

TEST(RefElementwise, RoundHalfToEven) {
  auto r = run_op(OpKind::kRound, {f32({6}, {0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 8388609.0f})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto v = values<float>((*r)[0]);
  EXPECT_EQ(v, (std::vector<float>{0.0f, 2.0f, 2.0f, -2.0f, -0.0f, 8388609.0f}));
  EXPECT_TRUE(std::signbit(v[4]));
}

TEST(RefElementwise, NaNPropagatesThroughMaxReluClip) {
  auto mx = run_op(OpKind::kMax, {f32({2}, {kNaN, 1.0f}), f32({2}, {0.0f, kNaN}), f32({}, {5.0f})});
  ASSERT_TRUE(mx.ok()) << mx.error().message;
  EXPECT_TRUE(std::isnan(values<float>((*mx)[0])[0]));
  EXPECT_TRUE(std::isnan(values<float>((*mx)[0])[1]));
  auto relu = run_op(OpKind::kRelu, {f32({2}, {kNaN, -1.0f})});
  ASSERT_TRUE(relu.ok()) << relu.error().message;
  EXPECT_TRUE(std::isnan(values<float>((*relu)[0])[0]));
  EXPECT_EQ(values<float>((*relu)[0])[1], 0.0f);
}

TEST(RefElementwise, ClipMinAboveMaxGivesMaxAndOptionalBounds) {
  auto r = run_op(OpKind::kClip, {f32({3}, {-5.0f, 0.0f, 5.0f}), f32({}, {2.0f}), f32({}, {1.0f})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(values<float>((*r)[0]), (std::vector<float>{1.0f, 1.0f, 1.0f}));
  // Only max given (min omitted), integer input, f32 bound as older opsets produce.
  auto m = run_op(OpKind::kClip, {i32({3}, {-5, 0, 5}), Tensor(), f32({}, {2.5f})});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(values<int32_t>((*m)[0]), (std::vector<int32_t>{-5, 0, 2}));
}

TEST(RefElementwise, WhereBroadcastsAllThreeAndVariadicOneInput) {
  auto r = run_op(OpKind::kWhere, {boolean({2, 1}, {true, false}), i32({3}, {1, 2, 3}), i32({}, {0})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), (Shape{2, 3}));
  EXPECT_EQ(values<int32_t>((*r)[0]), (std::vector<int32_t>{1, 2, 3, 0, 0, 0}));
  auto mean = run_op(OpKind::kMean, {f32({2}, {1.0f, 3.0f})});
  ASSERT_TRUE(mean.ok()) << mean.error().message;
  EXPECT_EQ(values<float>((*mean)[0]), (std::vector<float>{1.0f, 3.0f}));
}

TEST(RefElementwise, SoftplusAndSigmoidDoNotOverflow) {
  auto sp = run_op(OpKind::kSoftplus, {f32({2}, {100.0f, -100.0f})});
  ASSERT_TRUE(sp.ok()) << sp.error().message;
  EXPECT_FLOAT_EQ(values<float>((*sp)[0])[0], 100.0f);
  EXPECT_GT(values<float>((*sp)[0])[1], 0.0f);
  auto sg = run_op(OpKind::kSigmoid, {f32({2}, {-200.0f, 200.0f})});
  ASSERT_TRUE(sg.ok()) << sg.error().message;
  EXPECT_EQ(values<float>((*sg)[0]), (std::vector<float>{0.0f, 1.0f}));
}

TEST(RefElementwise, OpsWithoutConformanceData) {
  // Gelu (opset 20), Mish (18) and the Bitwise ops (18) have no cases in the
  // packaged ONNX data; values from numpy / math.erf in double.
  auto g = run_op(OpKind::kGelu, {f32({2}, {1.0f, -2.0f})}, ir::GeluAttrs{});
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_NEAR(values<float>((*g)[0])[0], 0.8413447f, 1e-6f);
  EXPECT_NEAR(values<float>((*g)[0])[1], -0.0455003f, 1e-6f);
  auto gt = run_op(OpKind::kGelu, {f32({1}, {1.0f})}, ir::GeluAttrs{ir::GeluApprox::kTanh});
  ASSERT_TRUE(gt.ok()) << gt.error().message;
  EXPECT_NEAR(values<float>((*gt)[0])[0], 0.8411920f, 1e-6f);
  auto m = run_op(OpKind::kMish, {f32({1}, {1.0f})});
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_NEAR(values<float>((*m)[0])[0], 0.8650984f, 1e-6f);
  auto band = run_op(OpKind::kBitwiseAnd, {i32({2}, {-1, 12}), i32({}, {10})});
  ASSERT_TRUE(band.ok()) << band.error().message;
  EXPECT_EQ(values<int32_t>((*band)[0]), (std::vector<int32_t>{10, 8}));
  // Shifts by the bit width or more give 0 (UB in C++, 0 in numpy).
  auto sh = run_op(OpKind::kBitShift,
                   {make<uint8_t>(DType::kU8, {3}, {0xff, 0xff, 1}), make<uint8_t>(DType::kU8, {3}, {8, 200, 7})},
                   ir::BitShiftAttrs{ir::ShiftDir::kLeft});
  ASSERT_TRUE(sh.ok()) << sh.error().message;
  EXPECT_EQ(values<uint8_t>((*sh)[0]), (std::vector<uint8_t>{0, 0, 128}));
}

TEST(RefElementwise, DropoutInferenceCopiesAndRejectsTraining) {
  Tensor x = f32({3}, {1.0f, 2.0f, 3.0f});
  auto ok = run_op(OpKind::kDropout, {x, f32({}, {0.0f}), boolean({}, {true})}, ir::DropoutAttrs{}, 2);
  ASSERT_TRUE(ok.ok()) << ok.error().message;  // ratio 0: training is the identity
  EXPECT_EQ(values<float>((*ok)[0]), (std::vector<float>{1.0f, 2.0f, 3.0f}));
  EXPECT_EQ(values<bool>((*ok)[1]), (std::vector<bool>{true, true, true}));
  // training_mode a constant true: inference rejects the graph before it runs.
  expect_error(run_op(OpKind::kDropout, {x, f32({}, {0.5f}), boolean({}, {true})}, ir::DropoutAttrs{}, 1,
                      {false, true, true}),
               "training mode is not supported");
  // ... and a runtime-fed true is rejected by the kernel.
  expect_error(run_op(OpKind::kDropout, {x, Tensor(), boolean({}, {true})}), "training mode is not supported");
}

TEST(RefElementwise, BadInputsGiveClearErrors) {
  expect_error(run_op(OpKind::kAdd, {f32({2, 3}, {}), f32({4, 3}, {})}), "node 'n' (Add)");
  expect_error(run_op(OpKind::kAdd, {f32({2}, {}), i32({2}, {})}), "expected f32");
  expect_error(run_op(OpKind::kAnd, {f32({2}, {}), boolean({2}, {})}), "bool");
  expect_error(run_op(OpKind::kSigmoid, {i32({2}, {})}), "floating-point");
  expect_error(run_op(OpKind::kBitShift, {i32({2}, {1, 2}), i32({2}, {1, 1})}, ir::BitShiftAttrs{}),
               "unsigned integer");
  expect_error(run_op(OpKind::kMod, {f32({2}, {}), f32({2}, {1, 1})}, ir::ModAttrs{0}), "fmod=1");
  expect_error(run_op(OpKind::kPRelu, {f32({3}, {}), f32({2, 3}, {})}), "does not broadcast");
  expect_error(run_op(OpKind::kClip, {f32({3}, {}), f32({2}, {0, 1})}), "min must be a scalar");
  expect_error(run_op(OpKind::kWhere, {boolean({2}, {}), f32({2}, {}), i32({2}, {})}), "same dtype");
}

TEST(RefElementwise, IntegerDivisionByZeroIsAnError) {
  expect_error(run_op(OpKind::kDiv, {i32({2}, {1, 2}), i32({2}, {1, 0})}), "division by zero");
  expect_error(run_op(OpKind::kMod, {i32({2}, {1, 2}), i32({}, {0})}, ir::ModAttrs{0}), "division by zero");
  expect_error(run_op(OpKind::kPow, {i32({1}, {0}), i32({1}, {-2})}), "negative power");
  // Float division by zero is IEEE, not an error.
  auto f = run_op(OpKind::kDiv, {f32({2}, {1.0f, -1.0f}), f32({}, {0.0f})});
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(values<float>((*f)[0]), (std::vector<float>{kInf, -kInf}));
}

}  // namespace
}  // namespace kiln
