// Reference kernels of the reduction and quantization family on what the ONNX
// conformance data does not cover: empty-set reductions, noop axes, integer
// wrap and truncation, NaN and tie handling, rounding ties and saturation in
// every quantizing op, int4 packing, blocked scales, per-row/column/channel
// zero points, and bad inputs that must give clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backends/reference/reference.h"
#include "core/half.h"
#include "ir/infer.h"

namespace kiln {
namespace {

using ir::OpKind;

template <class T>
Tensor make(DType dt, Shape shape, const std::vector<T>& v) {
  Tensor t = Tensor::create(dt, std::move(shape)).value();
  EXPECT_EQ(int64_t(v.size()), t.numel());
  for (size_t i = 0; i < v.size() && int64_t(i) < t.numel(); ++i) t.data<T>()[i] = v[i];
  return t;
}
Tensor f32(Shape s, const std::vector<float>& v) { return make(DType::kF32, std::move(s), v); }
Tensor i64(Shape s, const std::vector<int64_t>& v) { return make(DType::kI64, std::move(s), v); }
Tensor i32(Shape s, const std::vector<int32_t>& v) { return make(DType::kI32, std::move(s), v); }
Tensor i8(Shape s, const std::vector<int8_t>& v) { return make(DType::kI8, std::move(s), v); }
Tensor u8(Shape s, const std::vector<uint8_t>& v) { return make(DType::kU8, std::move(s), v); }
Tensor none() { return Tensor(); }

// One-node graph over graph inputs (an undefined tensor omits that optional
// input); static inference, then a run on the reference backend.
Result<std::vector<Tensor>> run_op(OpKind op, const std::vector<Tensor>& ins, ir::Attrs attrs, int outputs = 1) {
  ir::Graph g;
  ir::Node n;
  n.name = "n";
  n.op = op;
  n.opset = 21;
  n.attrs = std::move(attrs);
  std::vector<Tensor> feeds;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i].defined()) {
      n.inputs.push_back(ir::kNoValue);
      continue;
    }
    ir::ValueId id = g.add_value("x" + std::to_string(i), {ins[i].dtype(), ins[i].shape(), true});
    n.inputs.push_back(id);
    g.inputs.push_back(id);
    feeds.push_back(ins[i]);
  }
  for (int o = 0; o < outputs; ++o) {
    n.outputs.push_back(g.add_value("y" + std::to_string(o)));
    g.outputs.push_back(n.outputs.back());
  }
  g.nodes.push_back(std::move(n));
  KILN_TRY(ir::infer_graph(g));
  ref::ReferenceBackend be;
  KILN_ASSIGN(auto exe, be.compile(g, map::Plan{}));
  return exe->run(feeds);
}

template <class T>
std::vector<T> vals(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}
std::vector<int64_t> ints(const Tensor& t) {
  std::vector<int64_t> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.as_int(i));
  return v;
}

void expect_fail(const Result<std::vector<Tensor>>& r, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << "expected an error mentioning '" << fragment << "'";
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
}

ir::ReduceAttrs reduce_attrs(int64_t keepdims = 1, int64_t noop = 0) {
  ir::ReduceAttrs a;
  a.keepdims = keepdims;
  a.noop_with_empty_axes = noop;
  return a;
}

const float kInf = std::numeric_limits<float>::infinity();

// ---- Reduce* ---------------------------------------------------------------

TEST(RefReduce, EmptySetGivesTheIdentityOfEachReduction) {
  Tensor x = Tensor::create(DType::kF32, {2, 0}).value();
  struct Case {
    OpKind op;
    float want;
  };
  for (Case k : {Case{OpKind::kReduceMin, kInf}, Case{OpKind::kReduceMax, -kInf}, Case{OpKind::kReduceProd, 1.0f},
                 Case{OpKind::kReduceSum, 0.0f}, Case{OpKind::kReduceSumSquare, 0.0f},
                 Case{OpKind::kReduceL2, 0.0f}, Case{OpKind::kReduceLogSumExp, -kInf},
                 Case{OpKind::kReduceLogSum, -kInf}}) {
    auto r = run_op(k.op, {x, i64({1}, {1})}, reduce_attrs());
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ((*r)[0].shape(), (Shape{2, 1}));
    EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{k.want, k.want})) << ir::op_name(k.op);
  }
  auto mean = run_op(OpKind::kReduceMean, {x, i64({1}, {1})}, reduce_attrs(0));
  ASSERT_TRUE(mean.ok()) << mean.error().message;
  EXPECT_EQ((*mean)[0].shape(), (Shape{2}));
  EXPECT_TRUE(std::isnan(vals<float>((*mean)[0])[0]));
}

TEST(RefReduce, IntegerEmptyMinIsTheTypeMaximum) {
  Tensor x = Tensor::create(DType::kI32, {0, 3}).value();
  auto r = run_op(OpKind::kReduceMin, {x, i64({1}, {0})}, reduce_attrs(0));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<int32_t>((*r)[0]), std::vector<int32_t>(3, std::numeric_limits<int32_t>::max()));
}

TEST(RefReduce, NoopWithEmptyAxesReducesEachElementAlone) {
  Tensor x = f32({2, 2}, {1, -2, 3, -4});
  auto sum = run_op(OpKind::kReduceSum, {x, none()}, reduce_attrs(1, 1));
  ASSERT_TRUE(sum.ok()) << sum.error().message;
  EXPECT_EQ(vals<float>((*sum)[0]), (std::vector<float>{1, -2, 3, -4}));
  auto sq = run_op(OpKind::kReduceSumSquare, {x, i64({0}, {})}, reduce_attrs(1, 1));
  ASSERT_TRUE(sq.ok()) << sq.error().message;
  EXPECT_EQ((*sq)[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(vals<float>((*sq)[0]), (std::vector<float>{1, 4, 9, 16}));
  // Without noop, empty axes reduce everything.
  auto all = run_op(OpKind::kReduceSum, {x, i64({0}, {})}, reduce_attrs(0, 0));
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ((*all)[0].shape(), Shape{});
  EXPECT_EQ(vals<float>((*all)[0]), std::vector<float>{-2});
}

TEST(RefReduce, IntegerSumWrapsAndMeanTruncatesTowardZero) {
  auto s = run_op(OpKind::kReduceSum, {i8({2}, {100, 100}), none()}, reduce_attrs(0));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(vals<int8_t>((*s)[0]), std::vector<int8_t>{-56});
  auto m = run_op(OpKind::kReduceMean, {i32({2, 2}, {-3, -4, 3, 4}), i64({1}, {1})}, reduce_attrs(0));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(vals<int32_t>((*m)[0]), (std::vector<int32_t>{-3, 3}));
  auto l1 = run_op(OpKind::kReduceL1, {i8({2}, {-128, 1}), none()}, reduce_attrs(0));
  ASSERT_TRUE(l1.ok()) << l1.error().message;
  EXPECT_EQ(vals<int8_t>((*l1)[0]), std::vector<int8_t>{-127});  // 129 wraps in int8
}

TEST(RefReduce, LogSumExpDoesNotOverflowAndMaxPropagatesNaN) {
  auto r = run_op(OpKind::kReduceLogSumExp, {f32({2}, {1000, 1000}), none()}, reduce_attrs(0));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FLOAT_EQ(vals<float>((*r)[0])[0], 1000.0f + std::log(2.0f));
  float nan = std::numeric_limits<float>::quiet_NaN();
  auto mx = run_op(OpKind::kReduceMax, {f32({3}, {1, nan, 2}), none()}, reduce_attrs(0));
  ASSERT_TRUE(mx.ok()) << mx.error().message;
  EXPECT_TRUE(std::isnan(vals<float>((*mx)[0])[0]));
}

TEST(RefReduce, BoolMaxIsAnyAndMinIsAll) {
  Tensor b = make<uint8_t>(DType::kBool, {2, 2}, {0, 1, 0, 0});
  auto mx = run_op(OpKind::kReduceMax, {b, i64({1}, {1})}, reduce_attrs(0));
  ASSERT_TRUE(mx.ok()) << mx.error().message;
  EXPECT_EQ(vals<uint8_t>((*mx)[0]), (std::vector<uint8_t>{1, 0}));
  auto mn = run_op(OpKind::kReduceMin, {b, i64({1}, {0})}, reduce_attrs(0));
  ASSERT_TRUE(mn.ok()) << mn.error().message;
  EXPECT_EQ(vals<uint8_t>((*mn)[0]), (std::vector<uint8_t>{0, 0}));
  expect_fail(run_op(OpKind::kReduceSum, {b, none()}, reduce_attrs()), "numeric");
}

TEST(RefReduce, BadAxesAreClearErrors) {
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_fail(run_op(OpKind::kReduceSum, {x, i64({2}, {1, -1})}, reduce_attrs()), "appears twice");
  expect_fail(run_op(OpKind::kReduceMean, {x, i64({1}, {2})}, reduce_attrs()), "axis");
  expect_fail(run_op(OpKind::kReduceMean, {x, i32({1}, {0})}, reduce_attrs()), "int64");
}

// ---- ArgMax / ArgMin / CumSum / TopK ---------------------------------------

TEST(RefArgReduce, TiesAndNaN) {
  ir::ArgReduceAttrs a;
  a.axis = 1;
  a.keepdims = 0;
  Tensor x = f32({2, 4}, {1, 3, 3, 0, 2, 0, 2, 0});
  auto first = run_op(OpKind::kArgMax, {x}, a);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(vals<int64_t>((*first)[0]), (std::vector<int64_t>{1, 0}));
  a.select_last_index = 1;
  auto last = run_op(OpKind::kArgMax, {x}, a);
  ASSERT_TRUE(last.ok()) << last.error().message;
  EXPECT_EQ(vals<int64_t>((*last)[0]), (std::vector<int64_t>{2, 2}));
  auto lastmin = run_op(OpKind::kArgMin, {x}, a);
  ASSERT_TRUE(lastmin.ok()) << lastmin.error().message;
  EXPECT_EQ(vals<int64_t>((*lastmin)[0]), (std::vector<int64_t>{3, 3}));
  a.select_last_index = 0;
  float nan = std::numeric_limits<float>::quiet_NaN();
  auto withnan = run_op(OpKind::kArgMin, {f32({1, 3}, {5, nan, -1})}, a);
  ASSERT_TRUE(withnan.ok()) << withnan.error().message;
  EXPECT_EQ(vals<int64_t>((*withnan)[0]), std::vector<int64_t>{1});  // numpy: NaN wins
  expect_fail(run_op(OpKind::kArgMax, {Tensor::create(DType::kF32, {2, 0}).value()}, a), "empty axis");
}

TEST(RefCumSum, ExclusiveReverseAndBadAxis) {
  ir::CumSumAttrs a;
  a.exclusive = 1;
  a.reverse = 1;
  auto r = run_op(OpKind::kCumSum, {i32({2, 3}, {1, 2, 3, 4, 5, 6}), i32({}, {-1})}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<int32_t>((*r)[0]), (std::vector<int32_t>{5, 3, 0, 11, 6, 0}));
  expect_fail(run_op(OpKind::kCumSum, {i32({2, 3}, {1, 2, 3, 4, 5, 6}), i64({}, {2})}, a), "axis");
}

TEST(RefTopK, TiesTakeTheLowerIndexFirst) {
  ir::TopKAttrs a;
  Tensor x = f32({1, 5}, {2, 7, 2, 7, 1});
  auto r = run_op(OpKind::kTopK, {x, i64({1}, {3})}, a, 2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{7, 7, 2}));
  EXPECT_EQ(vals<int64_t>((*r)[1]), (std::vector<int64_t>{1, 3, 0}));
  a.largest = 0;
  auto s = run_op(OpKind::kTopK, {x, i64({1}, {3})}, a, 2);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(vals<int64_t>((*s)[1]), (std::vector<int64_t>{4, 0, 2}));
  expect_fail(run_op(OpKind::kTopK, {x, i64({1}, {6})}, a, 2), "exceeds");
  expect_fail(run_op(OpKind::kTopK, {x, i64({1}, {-1})}, a, 2), "non-negative");
}

// ---- QuantizeLinear / DequantizeLinear -------------------------------------

TEST(RefQuantize, RoundsHalfToEvenThenSaturatesWithNegativeZeroPoint) {
  ir::QuantizeLinearAttrs a;
  Tensor x = f32({8}, {0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 1000.0f, -1000.0f});
  auto r = run_op(OpKind::kQuantizeLinear, {x, f32({}, {1.0f}), i8({}, {-3})}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ints((*r)[0]), (std::vector<int64_t>{-3, -1, -1, -3, -5, -5, 127, -128}));
  // Ties produced by the division itself: 5 / 2 = 2.5 -> 2, 7 / 2 = 3.5 -> 4.
  auto d = run_op(OpKind::kQuantizeLinear, {f32({2}, {5, 7}), f32({}, {2.0f})}, a);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ((*d)[0].dtype(), DType::kU8);  // default output dtype
  EXPECT_EQ(ints((*d)[0]), (std::vector<int64_t>{2, 4}));
}

TEST(RefQuantize, Int4PacksLowNibbleFirstAndSaturates) {
  ir::QuantizeLinearAttrs a;
  Tensor zp = Tensor::create(DType::kI4, {}).value();
  auto r = run_op(OpKind::kQuantizeLinear, {f32({5}, {1, -2, 7, 9, -9}), f32({}, {1.0f}), zp}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const Tensor& y = (*r)[0];
  EXPECT_EQ(y.dtype(), DType::kI4);
  EXPECT_EQ(ints(y), (std::vector<int64_t>{1, -2, 7, 7, -8}));
  EXPECT_EQ(y.nbytes(), 3);
  EXPECT_EQ(y.data<uint8_t>()[0], 0xE1);  // -2 = 0xE in the high nibble, 1 in the low
  a.output_dtype = 21;                    // UINT4, no zero point
  auto u = run_op(OpKind::kQuantizeLinear, {f32({3}, {3, 16, -1}), f32({}, {1.0f})}, a);
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ((*u)[0].dtype(), DType::kU4);
  EXPECT_EQ(ints((*u)[0]), (std::vector<int64_t>{3, 15, 0}));
}

TEST(RefQuantize, BlockedScalesCoverARemainderBlock) {
  ir::QuantizeLinearAttrs a;
  a.axis = 1;
  a.block_size = 2;
  // x [2, 3], blocks along axis 1 of size 2 -> scale [2, 2] (last block has one column).
  Tensor x = f32({2, 3}, {2, 4, 30, 8, 16, 90});
  Tensor s = f32({2, 2}, {2, 10, 4, 30});
  auto r = run_op(OpKind::kQuantizeLinear, {x, s, u8({2, 2}, {0, 1, 2, 3})}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ints((*r)[0]), (std::vector<int64_t>{1, 2, 4, 4, 6, 6}));
  ir::DequantizeLinearAttrs da;
  da.axis = 1;
  da.block_size = 2;
  auto back = run_op(OpKind::kDequantizeLinear, {(*r)[0], s, u8({2, 2}, {0, 1, 2, 3})}, da);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(vals<float>((*back)[0]), (std::vector<float>{2, 4, 30, 8, 16, 90}));
}

TEST(RefDequantize, PerAxisInt4AndHalfScale) {
  ir::DequantizeLinearAttrs a;
  a.axis = 0;
  Tensor x = Tensor::create(DType::kI4, {2, 2}).value();
  x.data<uint8_t>()[0] = 0x8F;  // elements -1, -8
  x.data<uint8_t>()[1] = 0x17;  // elements 7, 1
  Tensor s = make<f16_t>(DType::kF16, {2}, {to_f16(0.5f), to_f16(2.0f)});
  Tensor zp = Tensor::create(DType::kI4, {2}).value();
  zp.data<uint8_t>()[0] = 0x3F;  // -1 for row 0, 3 for row 1
  auto r = run_op(OpKind::kDequantizeLinear, {x, s, zp}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].dtype(), DType::kF16);
  std::vector<float> got;
  for (auto h : vals<f16_t>((*r)[0])) got.push_back(to_float(h));
  EXPECT_EQ(got, (std::vector<float>{0.0f, -3.5f, 8.0f, -4.0f}));
}

TEST(RefQuantize, BadLayoutsAreClearErrors) {
  ir::QuantizeLinearAttrs a;
  Tensor x = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_fail(run_op(OpKind::kQuantizeLinear, {x, f32({2}, {1, 1}), u8({2}, {0, 0})}, a), "per-axis scale");
  expect_fail(run_op(OpKind::kQuantizeLinear, {x, f32({3}, {1, 1, 1}), u8({2}, {0, 0})}, a), "zero point shape");
  a.output_dtype = 3;  // INT8, but the zero point is uint8
  expect_fail(run_op(OpKind::kQuantizeLinear, {x, f32({}, {1}), u8({}, {0})}, a), "differs");
  ir::DequantizeLinearAttrs da;
  expect_fail(run_op(OpKind::kDequantizeLinear, {i32({2}, {1, 2}), f32({}, {1}), i32({}, {5})}, da), "must be 0");
  expect_fail(run_op(OpKind::kDequantizeLinear, {f32({2}, {1, 2}), f32({}, {1})}, da), "expected i8");
}

// ---- DynamicQuantizeLinear -------------------------------------------------

TEST(RefDynamicQuantize, ZeroPointTiesRoundToEven) {
  // min -1, max 509: scale 2, zero point round(0.5) = 0; 509 / 2 = 254.5 -> 254.
  auto r = run_op(OpKind::kDynamicQuantizeLinear, {f32({3}, {-1, 509, 3})}, ir::NoAttrs{}, 3);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[1]), std::vector<float>{2.0f});
  EXPECT_EQ(vals<uint8_t>((*r)[2]), std::vector<uint8_t>{0});
  EXPECT_EQ(vals<uint8_t>((*r)[0]), (std::vector<uint8_t>{0, 254, 2}));
  // min -3, max 507: zero point round(1.5) = 2; 507 / 2 = 253.5 -> 254, + 2 = 256 saturates.
  auto s = run_op(OpKind::kDynamicQuantizeLinear, {f32({2}, {-3, 507})}, ir::NoAttrs{}, 3);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(vals<uint8_t>((*s)[2]), std::vector<uint8_t>{2});
  EXPECT_EQ(vals<uint8_t>((*s)[0]), (std::vector<uint8_t>{0, 255}));
  // All zeros: scale 0, zero point 0, nothing divided by zero.
  auto z = run_op(OpKind::kDynamicQuantizeLinear, {f32({2}, {0, 0})}, ir::NoAttrs{}, 3);
  ASSERT_TRUE(z.ok()) << z.error().message;
  EXPECT_EQ(vals<float>((*z)[1]), std::vector<float>{0.0f});
  EXPECT_EQ(vals<uint8_t>((*z)[0]), (std::vector<uint8_t>{0, 0}));
}

// ---- MatMulInteger / QLinearMatMul -----------------------------------------

TEST(RefMatMulInteger, PerRowAndPerColumnZeroPoints) {
  Tensor a = i8({2, 2}, {1, 2, 3, 4});
  Tensor b = i8({2, 3}, {1, 0, -1, 2, 5, -128});
  auto r = run_op(OpKind::kMatMulInteger, {a, b, i8({2}, {1, -2}), i8({3}, {0, 1, -1})}, ir::NoAttrs{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  // A - [[1],[-2]] = [[0,1],[5,6]]; B - [0,1,-1] = [[1,-1,0],[2,4,-127]].
  EXPECT_EQ(vals<int32_t>((*r)[0]), (std::vector<int32_t>{2, 4, -127, 17, 19, -762}));
  expect_fail(run_op(OpKind::kMatMulInteger, {a, i8({3, 1}, {1, 2, 3})}, ir::NoAttrs{}), "inner dimensions");
  expect_fail(run_op(OpKind::kMatMulInteger, {a, b, i8({3}, {1, 2, 3})}, ir::NoAttrs{}), "per-row");
}

TEST(RefQLinearMatMul, RequantizationTiesRoundToEvenAndSaturate) {
  // multiplier 0.5 * 1 / 1 = 0.5: accumulators 1, 3, 5 -> 0.5, 1.5, 2.5 -> 0, 2, 2, and the
  // zero point -1 is added after rounding (round(0.5) - 1 = -1, not round(-0.5) = 0).
  Tensor a = u8({3, 1}, {1, 3, 5});
  Tensor b = u8({1, 2}, {1, 255});
  auto r = run_op(OpKind::kQLinearMatMul,
                  {a, f32({}, {0.5f}), u8({}, {0}), b, f32({}, {1.0f}), u8({}, {0}), f32({}, {1.0f}), i8({}, {-1})},
                  ir::NoAttrs{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].dtype(), DType::kI8);
  // Column 1: 127.5 - 1, 382.5 - 1, 637.5 - 1 all saturate to 127.
  EXPECT_EQ(vals<int8_t>((*r)[0]), (std::vector<int8_t>{-1, 127, 1, 127, 1, 127}));
}

// ---- ConvInteger / QLinearConv ---------------------------------------------

TEST(RefConvInteger, GroupsWithPerChannelWeightZeroPoints) {
  ir::ConvAttrs a;
  a.group = 2;
  // x [1, 2, 1, 3]; w [2, 1, 1, 2]; channel c convolves with filter c.
  Tensor x = u8({1, 2, 1, 3}, {1, 2, 3, 10, 20, 30});
  Tensor w = i8({2, 1, 1, 2}, {1, 2, 3, -1});
  auto r = run_op(OpKind::kConvInteger, {x, w, u8({}, {1}), i8({2}, {1, -1})}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // x - 1: [0,1,2], [9,19,29]; w - zp: [0,1], [4,0].
  EXPECT_EQ((*r)[0].shape(), (Shape{1, 2, 1, 2}));
  EXPECT_EQ(vals<int32_t>((*r)[0]), (std::vector<int32_t>{1, 2, 36, 76}));
  a.group = 3;
  expect_fail(run_op(OpKind::kConvInteger, {x, w}, a), "group");
}

TEST(RefQLinearConv, PerChannelScalesBiasAndNegativeZeroPoint) {
  ir::ConvAttrs a;
  a.pads = {0, 1, 0, 1};
  Tensor x = u8({1, 1, 1, 2}, {3, 5});
  Tensor w = i8({2, 1, 1, 1}, {1, -2});
  Tensor ws = f32({2}, {0.5f, 0.25f});
  Tensor bias = i32({2}, {1, -1});
  auto r = run_op(OpKind::kQLinearConv,
                  {x, f32({}, {1.0f}), u8({}, {1}), w, ws, i8({2}, {0, 0}), f32({}, {1.0f}), i8({}, {-2}), bias}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // x - 1 = [2, 4] padded to [0, 2, 4, 0]. Channel 0: acc = 1 + [0, 2, 4, 0] = [1, 3, 5, 1],
  // times 0.5 -> [0.5, 1.5, 2.5, 0.5], + (-2) -> [-1.5, -0.5, 0.5, -1.5] -> [-2, -0, 0, -2].
  // Channel 1: acc = -1 - 2 * [0, 2, 4, 0] = [-1, -5, -9, -1], times 0.25, - 2 -> [-2.25, -3.25, -4.25, -2.25].
  EXPECT_EQ(vals<int8_t>((*r)[0]), (std::vector<int8_t>{-2, 0, 0, -2, -2, -3, -4, -2}));
  expect_fail(run_op(OpKind::kQLinearConv, {x, f32({}, {1.0f}), u8({}, {1}), w, ws, i8({2}, {0, 0}), f32({}, {1.0f}),
                                            i8({}, {-2}), i32({3}, {1, 2, 3})},
                     a),
              "bias");
}

}  // namespace
}  // namespace kiln
