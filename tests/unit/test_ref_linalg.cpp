// Reference kernels of the linear algebra, normalization, softmax and loss
// family on what the ONNX conformance data does not cover: 1-D and broadcast
// MatMul, integer wrap, double accumulation, Einsum parsing corners, NaN and
// tie handling, zero-norm vectors, and bad inputs that must give clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backends/reference/reference.h"
#include "core/half.h"
#include "ir/infer.h"
#include "ir/ops/einsum.h"

namespace kiln {
namespace {

using ir::OpKind;

template <class T>
Tensor tensor_of(DType dt, Shape shape, const std::vector<T>& v) {
  Tensor t = Tensor::create(dt, std::move(shape)).value();
  for (size_t i = 0; i < v.size() && int64_t(i) < t.numel(); ++i) t.data<T>()[i] = v[i];
  return t;
}
Tensor f32(Shape s, const std::vector<float>& v) { return tensor_of(DType::kF32, std::move(s), v); }
Tensor i64(Shape s, const std::vector<int64_t>& v) { return tensor_of(DType::kI64, std::move(s), v); }
Tensor i32(Shape s, const std::vector<int32_t>& v) { return tensor_of(DType::kI32, std::move(s), v); }

// Builds a one-node graph whose inputs are graph inputs (undefined tensor =
// omitted optional input), infers it and runs it on the reference backend.
Result<std::vector<Tensor>> run1(OpKind op, const std::vector<Tensor>& ins, ir::Attrs attrs = ir::NoAttrs{},
                                 int outputs = 1) {
  ir::Graph g;
  ir::Node n;
  n.name = "t";
  n.op = op;
  n.opset = 21;
  n.attrs = std::move(attrs);
  std::vector<Tensor> feeds;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i].defined()) {
      n.inputs.push_back(ir::kNoValue);
      continue;
    }
    ir::ValueId id = g.add_value("in" + std::to_string(i), {ins[i].dtype(), ins[i].shape(), true});
    n.inputs.push_back(id);
    g.inputs.push_back(id);
    feeds.push_back(ins[i]);
  }
  for (int o = 0; o < outputs; ++o) {
    n.outputs.push_back(g.add_value("out" + std::to_string(o)));
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

void expect_fail(const Result<std::vector<Tensor>>& r, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << "expected an error mentioning '" << fragment << "'";
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
}

// ---- MatMul / Gemm ---------------------------------------------------------

TEST(RefLinalg, MatMulVectorTimesVectorIsScalar) {
  auto r = run1(OpKind::kMatMul, {f32({3}, {1, 2, 3}), f32({3}, {4, 5, 6})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), Shape{});
  EXPECT_EQ(vals<float>((*r)[0]), std::vector<float>{32});
}

TEST(RefLinalg, MatMulVectorTimesBatchedMatrixDropsTheVectorDim) {
  // [2] x [2,2,3] -> [2,3]: the 1-D A is a row vector broadcast over B's batch.
  auto r = run1(OpKind::kMatMul, {f32({2}, {1, 10}), f32({2, 2, 3}, {1, 2, 3, 4, 5, 6, 0, 0, 1, 1, 0, 0})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{41, 52, 63, 10, 0, 1}));
}

TEST(RefLinalg, MatMulBroadcastsBatchDims) {
  // A [2,1,1,2] x B [3,2,1] -> [2,3,1,1]
  auto r = run1(OpKind::kMatMul, {f32({2, 1, 1, 2}, {1, 2, 3, 4}), f32({3, 2, 1}, {1, 0, 0, 1, 1, 1})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), (Shape{2, 3, 1, 1}));
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{1, 2, 3, 3, 4, 7}));
}

TEST(RefLinalg, MatMulAccumulatesInDoubleAndRoundsOnce) {
  // In float, 1e8 + 1 == 1e8 and the 1 is lost; the exact sum is 1.
  auto r = run1(OpKind::kMatMul, {f32({1, 3}, {1e8f, 1.0f, -1e8f}), f32({3, 1}, {1, 1, 1})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[0]), std::vector<float>{1.0f});
}

TEST(RefLinalg, MatMulF16RoundsOnlyTheFinalSum) {
  // Summed in f16, 2048 + 1 + 1 stays 2048 (the f16 spacing at 2048 is 2); the exact 2050 is representable.
  std::vector<f16_t> a = {to_f16(2048), to_f16(1), to_f16(1)}, b = {to_f16(1), to_f16(1), to_f16(1)};
  auto r = run1(OpKind::kMatMul, {tensor_of(DType::kF16, {1, 3}, a), tensor_of(DType::kF16, {3}, b)});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), Shape{1});
  EXPECT_EQ(to_float((*r)[0].data<f16_t>()[0]), 2050.0f);
}

TEST(RefLinalg, MatMulInt32WrapsLikeNumpy) {
  auto r = run1(OpKind::kMatMul, {i32({1, 2}, {INT32_MAX, 1}), i32({2, 1}, {1, 1})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<int32_t>((*r)[0]), std::vector<int32_t>{INT32_MIN});
}

TEST(RefLinalg, MatMulRejectsMismatchedInnerDims) {
  expect_fail(run1(OpKind::kMatMul, {f32({2, 3}, {}), f32({2, 3}, {})}), "inner dimensions differ");
  expect_fail(run1(OpKind::kMatMul, {f32({2, 3}, {}), i64({3, 2}, {})}), "dtype");
}

TEST(RefLinalg, GemmTransposesScalesAndBroadcastsC) {
  // A stored [K=2, M=2] (transA), B stored [N=3, K=2] (transB), C [N] broadcast over rows.
  ir::GemmAttrs at;
  at.transA = 1;
  at.transB = 1;
  at.alpha = 2.0f;
  at.beta = 0.5f;
  auto r = run1(OpKind::kGemm, {f32({2, 2}, {1, 2, 3, 4}), f32({3, 2}, {1, 0, 0, 1, 1, 1}), f32({3}, {10, 20, 30})}, at);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // op(A) = [[1,3],[2,4]], op(B) = [[1,0,1],[0,1,1]] -> [[1,3,4],[2,4,6]]
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{7, 16, 23, 9, 18, 27}));
}

TEST(RefLinalg, GemmRejectsBadShapes) {
  expect_fail(run1(OpKind::kGemm, {f32({2, 3}, {}), f32({2, 3}, {})}, ir::GemmAttrs{}), "inner dimensions differ");
  expect_fail(run1(OpKind::kGemm, {f32({2, 3}, {}), f32({3, 4}, {}), f32({3, 4}, {})}, ir::GemmAttrs{}),
              "does not broadcast");
  expect_fail(run1(OpKind::kGemm, {f32({2, 3, 1}, {}), f32({3, 4}, {})}, ir::GemmAttrs{}), "must be 2-D");
}

// ---- Einsum ----------------------------------------------------------------

ir::EinsumAttrs eq(const char* s) {
  ir::EinsumAttrs a;
  a.equation = s;
  return a;
}

TEST(RefLinalg, EinsumTraceAndImplicitOutputOrder) {
  auto tr = run1(OpKind::kEinsum, {f32({2, 2}, {1, 2, 3, 4})}, eq("ii"));
  ASSERT_TRUE(tr.ok()) << tr.error().message;
  EXPECT_EQ((*tr)[0].shape(), Shape{});
  EXPECT_EQ(vals<float>((*tr)[0]), std::vector<float>{5});
  // Implicit output sorts labels: "ba" names the dims (b, a) and outputs (a, b), a transpose.
  auto t = run1(OpKind::kEinsum, {f32({2, 3}, {1, 2, 3, 4, 5, 6})}, eq("ba"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ((*t)[0].shape(), (Shape{3, 2}));
  EXPECT_EQ(vals<float>((*t)[0]), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(RefLinalg, EinsumEllipsisBroadcastsAndMissingOutputEllipsisSums) {
  // Batched matmul with a broadcast batch: [2,1,2] x [2,1] -> [2,1,1].
  auto r = run1(OpKind::kEinsum, {f32({2, 1, 2}, {1, 2, 3, 4}), f32({2, 1}, {1, 1})}, eq("...ij, jk -> ...ik"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), (Shape{2, 1, 1}));
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{3, 7}));
  auto s = run1(OpKind::kEinsum, {f32({2, 2}, {1, 2, 3, 4})}, eq("...j->j"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(vals<float>((*s)[0]), (std::vector<float>{4, 6}));
}

TEST(RefLinalg, EinsumThreeOperands) {
  auto r = run1(OpKind::kEinsum, {f32({2}, {1, 2}), f32({2, 2}, {1, 2, 3, 4}), f32({2}, {1, 1})}, eq("i,ij,j->"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[0]), std::vector<float>{1 * 3 + 2 * 7});
}

TEST(RefLinalg, EinsumRejectsBadEquations) {
  expect_fail(run1(OpKind::kEinsum, {f32({2, 2}, {})}, eq("ij->ii")), "appears twice");
  expect_fail(run1(OpKind::kEinsum, {f32({2, 2}, {})}, eq("ij,jk->ik")), "input terms");
  expect_fail(run1(OpKind::kEinsum, {f32({2, 2}, {})}, eq("ijk->i")), "rank");
  expect_fail(run1(OpKind::kEinsum, {f32({2, 2}, {})}, eq("ij->k")), "in no input");
  expect_fail(run1(OpKind::kEinsum, {f32({2, 2}, {})}, eq("i.j")), "'...'");
  expect_fail(run1(OpKind::kEinsum, {f32({2, 3}, {}), f32({4}, {})}, eq("ij,j->i")), "size");
}

TEST(RefLinalg, EinsumLabelsResolveEllipsisRightAligned) {
  auto L = ir::einsum_labels("...i,...i", {3, 2});
  ASSERT_TRUE(L.ok()) << L.error().message;
  // Two '...' dims in input 0, one in input 1 (aligned to the second); implicit output = '...' dims only.
  EXPECT_EQ(L->output.size(), 2u);
  EXPECT_EQ(L->inputs[1][0], L->inputs[0][1]);
  EXPECT_EQ(ir::einsum_output_rank("ij,jk", 2).value(), 2);
  EXPECT_EQ(ir::einsum_output_rank("...ij->...", 1).value(), -1);
}

// ---- Softmax family ----------------------------------------------------------

TEST(RefLinalg, SoftmaxAlongAxisZeroAndHugeValues) {
  ir::SoftmaxAttrs at;
  at.axis = 0;
  auto r = run1(OpKind::kSoftmax, {f32({2, 2}, {1000, 0, 1000, 0})}, at);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f}));
  auto l = run1(OpKind::kLogSoftmax, {f32({3}, {1e30f, 0, -1e30f})}, ir::SoftmaxAttrs{});
  ASSERT_TRUE(l.ok()) << l.error().message;
  EXPECT_EQ(vals<float>((*l)[0]), (std::vector<float>{0, -1e30f, -2e30f}));
}

TEST(RefLinalg, SoftmaxNaNPoisonsOnlyItsSlice) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto r = run1(OpKind::kSoftmax, {f32({2, 2}, {nan, 1, 0, 0})}, ir::SoftmaxAttrs{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto v = vals<float>((*r)[0]);
  EXPECT_TRUE(std::isnan(v[0]) && std::isnan(v[1]));
  EXPECT_EQ(v[2], 0.5f);
}

TEST(RefLinalg, HardmaxPicksFirstOfTies) {
  auto r = run1(OpKind::kHardmax, {f32({2, 3}, {1, 3, 3, -1, -1, -1})}, ir::SoftmaxAttrs{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{0, 1, 0, 1, 0, 0}));
}

TEST(RefLinalg, SoftmaxRejectsBadAxis) {
  ir::SoftmaxAttrs at;
  at.axis = 2;
  expect_fail(run1(OpKind::kSoftmax, {f32({2, 2}, {})}, at), "axis");
}

// ---- Normalization -------------------------------------------------------------

TEST(RefLinalg, LayerNormMeanAndInvStdDevHaveReducedShape) {
  ir::LayerNormAttrs at;
  at.axis = 1;
  at.epsilon = 0;
  auto r = run1(OpKind::kLayerNormalization, {f32({2, 2}, {1, 3, 5, 5}), f32({2}, {1, 2}), Tensor()}, at, 3);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[1].shape(), (Shape{2, 1}));
  EXPECT_EQ(vals<float>((*r)[1]), (std::vector<float>{2, 5}));
  // Row 0: var 1 -> y = [-1, 1] * scale; row 1: var 0, eps 0 -> 0 * inf = NaN as the formula gives.
  auto y = vals<float>((*r)[0]);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[1], 2.0f);
  EXPECT_EQ(vals<float>((*r)[2])[0], 1.0f);
}

TEST(RefLinalg, LayerNormRejectsBadAxisAndScale) {
  ir::LayerNormAttrs at;
  at.axis = 3;
  expect_fail(run1(OpKind::kLayerNormalization, {f32({2, 2}, {}), f32({2}, {})}, at), "axis");
  expect_fail(run1(OpKind::kLayerNormalization, {f32({2, 2}, {}), f32({3}, {})}, ir::LayerNormAttrs{}),
              "does not broadcast");
}

TEST(RefLinalg, BatchNormRejectsTrainingModeAndWrongChannelCount) {
  Tensor x = f32({1, 2, 2}, {1, 2, 3, 4});
  Tensor p = f32({2}, {1, 1});
  ir::BatchNormAttrs train;
  train.training_mode = 1;
  expect_fail(run1(OpKind::kBatchNormalization, {x, p, p, p, p}, train), "training_mode");
  expect_fail(run1(OpKind::kBatchNormalization, {x, p, p, f32({3}, {}), p}, ir::BatchNormAttrs{}), "expected [C]");
  ir::BatchNormAttrs at;
  at.epsilon = 0;
  auto r = run1(OpKind::kBatchNormalization, {x, f32({2}, {2, 1}), f32({2}, {0, 1}), f32({2}, {1, 3}), f32({2}, {4, 1})},
                at);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{0, 1, 1, 2}));
}

TEST(RefLinalg, LpNormalizationKeepsZeroVectorsZero) {
  auto r = run1(OpKind::kLpNormalization, {f32({2, 2}, {3, -4, 0, 0})}, ir::LpNormAttrs{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{0.6f, -0.8f, 0, 0}));
  ir::LpNormAttrs l1;
  l1.p = 1;
  auto s = run1(OpKind::kLpNormalization, {f32({2}, {3, -1})}, l1);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(vals<float>((*s)[0]), (std::vector<float>{0.75f, -0.25f}));
  ir::LpNormAttrs p3;
  p3.p = 3;
  expect_fail(run1(OpKind::kLpNormalization, {f32({2}, {3, -1})}, p3), "p must be 1 or 2");
}

TEST(RefLinalg, MvnOverChosenAxes) {
  ir::MvnAttrs at;
  at.axes = {-1};
  auto r = run1(OpKind::kMeanVarianceNormalization, {f32({2, 2}, {1, 3, 7, 7})}, at);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto y = vals<float>((*r)[0]);
  EXPECT_NEAR(y[0], -1.0f, 1e-6f);
  EXPECT_NEAR(y[1], 1.0f, 1e-6f);
  EXPECT_EQ(y[2], 0.0f);  // zero variance: 0 / (0 + 1e-9)
  at.axes = {1, 1};
  expect_fail(run1(OpKind::kMeanVarianceNormalization, {f32({2, 2}, {})}, at), "twice");
}

TEST(RefLinalg, LrnRejectsNonPositiveSize) {
  ir::LrnAttrs at;
  at.size = 0;
  expect_fail(run1(OpKind::kLRN, {f32({1, 2, 1, 1}, {})}, at), "size must be positive");
}

// ---- Losses ----------------------------------------------------------------------

TEST(RefLinalg, NllMeanDividesByWeightsOfCountedTargets) {
  ir::LossAttrs at;  // mean
  at.ignore_index = -1;
  // log-probs [N=3, C=2]; targets 0, -1 (ignored), 1 -> weights 2, -, 3.
  auto r = run1(OpKind::kNegativeLogLikelihoodLoss,
                {f32({3, 2}, {-1, -2, -3, -4, -5, -6}), i64({3}, {0, -1, 1}), f32({2}, {2, 3})}, at);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), Shape{});
  EXPECT_FLOAT_EQ(vals<float>((*r)[0])[0], (2 * 1 + 3 * 6) / 5.0f);
}

TEST(RefLinalg, LossesRejectOutOfRangeTargetsAndBadShapes) {
  expect_fail(run1(OpKind::kNegativeLogLikelihoodLoss, {f32({2, 2}, {}), i64({2}, {0, 2})}, ir::LossAttrs{}),
              "not a class");
  expect_fail(run1(OpKind::kSoftmaxCrossEntropyLoss, {f32({2, 2}, {}), i64({2}, {-1, 0})}, ir::LossAttrs{}),
              "not a class");
  expect_fail(run1(OpKind::kSoftmaxCrossEntropyLoss, {f32({2, 2, 3}, {}), i64({2, 2}, {})}, ir::LossAttrs{}),
              "does not match");
  expect_fail(run1(OpKind::kSoftmaxCrossEntropyLoss, {f32({2, 2}, {}), f32({2}, {})}, ir::LossAttrs{}), "target");
}

TEST(RefLinalg, SceNoneReductionWithLogProb) {
  ir::LossAttrs at;
  at.reduction = ir::LossReduction::kNone;
  auto r = run1(OpKind::kSoftmaxCrossEntropyLoss, {f32({1, 2, 1}, {0, 0}), i32({1, 1}, {1})}, at, 2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), (Shape{1, 1}));
  EXPECT_FLOAT_EQ(vals<float>((*r)[0])[0], std::log(2.0f));
  EXPECT_EQ((*r)[1].shape(), (Shape{1, 2, 1}));
  EXPECT_FLOAT_EQ(vals<float>((*r)[1])[0], -std::log(2.0f));
}

}  // namespace
}  // namespace kiln
