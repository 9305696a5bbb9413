// Graph passes of passes/pipeline.h on small hand-built graphs: for each pass
// the op sequence (and printed IR lines) after the pass, cases where it must
// not fire (shared Conv output, non-constant Clip bounds, a noop writing a
// graph output from a graph input, broadcasting constants, softmax on another
// axis, ...), and for every fold/fuse the outputs of the original and
// rewritten graphs agree within 1e-5 relative on a random input (activation
// fusion: bit for bit). Also relu_before_maxpool. The transformer patterns
// (layernorm, gelu, attention, elementwise chains) are in
// test_passes_transformer.cpp; shared helpers in passes_test_util.h.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>

#include "ir/edit.h"
#include "ir/infer.h"
#include "ir/op_table.h"
#include "ir/print.h"
#include "ir/verify.h"
#include "onnx/export.h"
#include "passes/cleanup.h"
#include "passes/eliminate_noops.h"
#include "passes/fold_batchnorm.h"
#include "passes/fold_constants.h"
#include "passes/fold_shapes.h"
#include "passes/fuse_activation.h"
#include "passes/fuse_conv_add.h"
#include "passes/fuse_elementwise.h"
#include "passes/fuse_matmul_bias.h"
#include "passes/pipeline.h"
#include "passes/relu_before_maxpool.h"
#include "runtime/session.h"
#include "passes_test_util.h"

namespace kiln {
namespace {

using namespace passtest;

// ---- fold_constants ----------------------------------------------------------

TEST(FoldConstants, FoldsChainsOfConstantNodes) {
  Builder b;
  ValueId x = b.input({2, 3});
  ValueId c = b.node(OpKind::kAdd, {b.cst(f32({3}, {1, 2, 3})), b.cst(f32({3}, {0.5f, 0.5f, 0.5f}))});
  ValueId c2 = b.node(OpKind::kSqrt, {c});
  ValueId y = b.node(OpKind::kMul, {x, c2});
  ir::Graph g = b.done({y});
  int n = 0;
  ir::Graph f = apply(g, &passes::fold_constants, &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(ops(f), "Mul");
  const ir::Value& folded = f.value(f.nodes[0].inputs[1]);
  ASSERT_TRUE(folded.is_constant());
  EXPECT_FLOAT_EQ(folded.constant.data<float>()[2], std::sqrt(3.5f));
  expect_same_outputs(g, f);
}

TEST(FoldConstants, LeavesGraphOutputsAndLargeResults) {
  Builder b;
  ValueId x = b.input({2});
  ValueId out_const = b.node(OpKind::kAdd, {b.cst(f32({2}, {1, 2})), b.cst(f32({2}, {3, 4}))});
  ir::ConstantOfShapeAttrs big;  // 5 * 2^20 floats = 20 MiB > 16 MiB
  ValueId huge = b.node(OpKind::kConstantOfShape, {b.cst(i64({3}, {5, 1024, 1024}))}, big);
  ValueId s = b.node(OpKind::kReduceSum, {huge, b.cst(i64({2}, {1, 2}))}, ir::ReduceAttrs{});
  ValueId y = b.node(OpKind::kAdd, {x, s});
  ir::Graph g = b.done({out_const, y});
  int n = -1;
  ir::Graph f = apply(g, &passes::fold_constants, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f), "Add,ConstantOfShape,ReduceSum,Add");
}

// ---- fold_shapes -------------------------------------------------------------

// Reshape(x, Concat(Unsqueeze(Gather(Shape(x), k)), [-1])), as PyTorch exports view(x.size(k), -1).
ir::Graph reshape_by_shape(Shape xs, int64_t k) {
  Builder b;
  ValueId x = b.input(xs);
  ValueId shape = b.node(OpKind::kShape, {x}, ir::ShapeAttrs{});
  ValueId dim = b.node(OpKind::kGather, {shape, b.cst(i64({}, {k}))}, ir::AxisAttrs{});
  ValueId u = b.node(OpKind::kUnsqueeze, {dim, b.cst(i64({1}, {0}))});
  ir::ConcatAttrs ca;
  ValueId target = b.node(OpKind::kConcat, {u, b.cst(i64({1}, {-1}))}, ca);
  ValueId y = b.node(OpKind::kReshape, {x, target}, ir::ReshapeAttrs{});
  return b.done({b.node(OpKind::kRelu, {y})});
}

TEST(FoldShapes, StaticShapeChainFoldsAway) {
  ir::Graph g = reshape_by_shape({2, 3, 4}, 1);
  int n = 0;
  ir::Graph f = apply(g, &passes::fold_shapes, &n);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(ops(f), "Gather,Unsqueeze,Concat,Reshape,Relu");  // the Shape is a constant now
  f = apply(f, &passes::fold_constants);
  EXPECT_EQ(ops(f), "Reshape,Relu");
  EXPECT_EQ(f.value(f.nodes[0].outputs[0]).type.shape, (Shape{3, 8}));
  expect_same_outputs(g, f);
}

TEST(FoldShapes, StaticDimOfSymbolicShapeFoldsButSymbolicDimDoesNot) {
  ir::Graph g = reshape_by_shape({-1, 3, 4}, 2);
  g.symbols = {"N"};
  ASSERT_TRUE(ir::infer_graph(g).ok());
  ir::Graph f = apply(g, &passes::fold_shapes);
  f = apply(f, &passes::fold_constants);
  EXPECT_EQ(ops(f), "Reshape,Relu");

  ir::Graph h = reshape_by_shape({-1, 3, 4}, 0);  // N itself: only known at run time
  h.symbols = {"N"};
  ASSERT_TRUE(ir::infer_graph(h).ok());
  int n = -1;
  ir::Graph fh = apply(h, &passes::fold_shapes, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(fh), ops(h));
}

// ---- eliminate_noops ---------------------------------------------------------

TEST(EliminateNoops, RemovesEachKindOfNoop) {
  Builder b;
  ValueId x = b.input({2, 3, 4});
  ValueId v = b.node(OpKind::kRelu, {x});
  v = b.node(OpKind::kIdentity, {v});
  v = b.node(OpKind::kDropout, {v}, ir::DropoutAttrs{});
  ir::TransposeAttrs ta;
  ta.perm = {0, 1, 2};
  v = b.node(OpKind::kTranspose, {v}, ta);
  ir::CastAttrs ca;
  ca.to = 1;  // FLOAT
  v = b.node(OpKind::kCast, {v}, ca);
  v = b.node(OpKind::kReshape, {v, b.cst(i64({3}, {2, 3, 4}))}, ir::ReshapeAttrs{});
  v = b.node(OpKind::kPad, {v, b.cst(i64({6}, {0, 0, 0, 0, 0, 0}))}, ir::PadAttrs{});
  v = b.node(OpKind::kMul, {b.cst(f32({}, {1.0f})), v});
  v = b.node(OpKind::kAdd, {v, b.cst(f32({4}, {0, 0, 0, 0}))});
  ir::Graph g = b.done({b.node(OpKind::kSigmoid, {v})});
  int n = 0;
  ir::Graph f = apply(g, &passes::eliminate_noops, &n);
  EXPECT_EQ(n, 8);
  EXPECT_EQ(ops(f), "Relu,Sigmoid");
  expect_same_outputs(g, f);
}

TEST(EliminateNoops, KeepsRealWork) {
  Builder b;
  ValueId x = b.input({2, 3});
  ir::TransposeAttrs ta;
  ta.perm = {1, 0};
  ValueId t = b.node(OpKind::kTranspose, {x}, ta);
  ValueId m = b.node(OpKind::kMul, {t, b.cst(f32({}, {2.0f}))});
  ValueId a = b.node(OpKind::kAdd, {m, b.cst(f32({2, 3, 2}, std::vector<float>(12, 0.0f)))});  // broadcasts up
  ir::Graph g = b.done({a});
  int n = -1;
  ir::Graph f = apply(g, &passes::eliminate_noops, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f), "Transpose,Mul,Add");
}

TEST(EliminateNoops, GraphOutputKeepsItsName) {
  // Relu -> Identity -> "y": the Identity goes and the Relu's value is named "y".
  Builder b;
  ValueId x = b.input({4});
  ValueId r = b.node(OpKind::kRelu, {x});
  ValueId y = b.node(OpKind::kIdentity, {r});
  b.g.value(y).name = "y";
  ir::Graph g = b.done({y});
  ir::Graph f = apply(g, &passes::eliminate_noops);
  EXPECT_EQ(ops(f), "Relu");
  ASSERT_EQ(node_lines(f).size(), 1u);
  EXPECT_EQ(node_lines(f)[0], "%y = Relu(%x)");
  expect_same_outputs(g, f);

  // Identity(x) -> "y" with x a graph input: removing it would rename the input.
  Builder c;
  ValueId xi = c.input({4});
  ValueId yi = c.node(OpKind::kIdentity, {xi});
  c.g.value(yi).name = "y";
  ir::Graph h = c.done({yi});
  int n = -1;
  ir::Graph fh = apply(h, &passes::eliminate_noops, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(fh), "Identity");
}

// ---- fold_batchnorm ----------------------------------------------------------

TEST(FoldBatchnorm, ConvGemmAndMatMul) {
  Builder b;
  ValueId x = b.input({1, 3, 6, 6});
  ValueId y = b.bn(b.conv(x, 4, 3), 4);
  ValueId y2 = b.bn(b.conv(b.node(OpKind::kRelu, {y}), 5, 4, /*bias=*/false), 5);
  ir::Graph g = b.done({y2});
  int n = 0;
  ir::Graph f = apply(g, &passes::fold_batchnorm, &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(ops(f), "Conv,Relu,Conv");
  expect_same_outputs(g, f);

  Builder m;
  ValueId a = m.input({3, 8});
  ValueId ga = m.bn(m.gemm(a, 6, 8, true), 6);
  ValueId gb = m.bn(m.gemm(ga, 5, 6, false), 5);
  ValueId mm = m.bn(m.node(OpKind::kMatMul, {gb, m.rnd({5, 4})}), 4);
  ir::Graph gm = m.done({mm});
  ir::Graph fm = apply(gm, &passes::fold_batchnorm, &n);
  EXPECT_EQ(n, 3);
  EXPECT_EQ(ops(fm), "Gemm,Gemm,Gemm");
  expect_same_outputs(gm, fm);
}

TEST(FoldBatchnorm, NotWhenConvOutputHasAnotherReader) {
  Builder b;
  ValueId x = b.input({1, 3, 5, 5});
  ValueId c = b.conv(x, 3, 3);
  ValueId y = b.node(OpKind::kAdd, {b.bn(c, 3), c});
  ir::Graph g = b.done({y});
  int n = -1;
  ir::Graph f = apply(g, &passes::fold_batchnorm, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f), "Conv,BatchNormalization,Add");
}

// ---- fuse_activation ---------------------------------------------------------

TEST(FuseActivation, EachActivationOnConvAndGemm) {
  Builder b;
  ValueId x = b.input({1, 2, 5, 5});
  ValueId v = b.node(OpKind::kRelu, {b.conv(x, 3, 2)});
  v = b.node(OpKind::kClip, {b.conv(v, 3, 3), b.cst(f32({}, {0.0f})), b.cst(f32({}, {0.25f}))});
  v = b.node(OpKind::kHardSwish, {b.conv(v, 3, 3)});
  ir::LeakyReluAttrs la;
  la.alpha = 0.2f;
  v = b.node(OpKind::kLeakyRelu, {b.conv(v, 3, 3)}, la);
  ir::FlattenAttrs fa;
  v = b.node(OpKind::kFlatten, {v}, fa);
  v = b.node(OpKind::kSigmoid, {b.gemm(v, 8, 75)});
  v = b.node(OpKind::kGelu, {b.gemm(v, 6, 8, false)}, ir::GeluAttrs{});
  ir::Graph g = b.done({v});
  int n = 0;
  ir::Graph f = apply(g, &passes::fuse_activation, &n);
  EXPECT_EQ(n, 6);
  EXPECT_EQ(ops(f), "FusedConv,FusedConv,FusedConv,FusedConv,Flatten,FusedGemm,FusedGemm");
  auto lines = node_lines(f);
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[1], "%n3_out = FusedConv(%n1_out, @w_2, @w_3) {activation=\"Clip\", activation_beta=0.25, pads=[1,1,1,1]}");
  EXPECT_EQ(lines[3],
            "%n7_out = FusedConv(%n5_out, @w_6, @w_7) {activation=\"LeakyRelu\", activation_alpha=0.2, pads=[1,1,1,1]}");
  EXPECT_EQ(lines[6], "%n12_out = FusedGemm(%n10_out, @w_10, @w_11) {activation=\"Gelu\", beta=0.5}");
  expect_same_outputs(g, f, 0.0);  // the fused kernels run the same activation code: bit for bit
  // FusedConv is kiln-only: ONNX export refuses it.
  std::string path = ::testing::TempDir() + "/fused.onnx";
  EXPECT_FALSE(onnx_io::save_model(f, path).ok());
}

TEST(FuseActivation, NotWithRuntimeClipBoundsOrSharedOutput) {
  Builder b;
  ValueId x = b.input({1, 2, 4, 4});
  ValueId hi = b.input({}, "hi");
  ValueId c1 = b.conv(x, 2, 2);
  ValueId v = b.node(OpKind::kClip, {c1, b.cst(f32({}, {0.0f})), hi});
  ValueId c2 = b.conv(v, 2, 2);
  ValueId r = b.node(OpKind::kRelu, {c2});
  ir::Graph g = b.done({b.node(OpKind::kAdd, {r, c2})});
  int n = -1;
  ir::Graph f = apply(g, &passes::fuse_activation, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f), "Conv,Clip,Conv,Relu,Add");
}

// ---- fuse_conv_add / fuse_matmul_bias -------------------------------------------

TEST(FuseConvAdd, ResidualThenReluIntoOneNode) {
  Builder b;
  ValueId x = b.input({1, 3, 6, 6});
  ValueId skip = b.conv(x, 4, 3);
  ValueId main = b.conv(b.node(OpKind::kRelu, {b.conv(x, 4, 3)}), 4, 4);
  ValueId v = b.node(OpKind::kRelu, {b.node(OpKind::kAdd, {skip, main})});
  ir::Graph g = b.done({v});
  ir::Graph f = g;
  int n = 0;
  for (auto pass : {&passes::fuse_conv_add, &passes::fuse_activation}) {
    auto r = pass(f);
    ASSERT_TRUE(r.ok()) << r.error().message;
    n += *r;
  }
  EXPECT_EQ(n, 3);  // the residual add, then both Relus
  EXPECT_EQ(ops(f), "FusedConv,Conv,FusedConv");  // the skip conv (first Add operand) takes the residual
  auto lines = node_lines(f);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[2].find("activation=\"Relu\""), std::string::npos) << lines[2];
  EXPECT_EQ(f.nodes[2].inputs.size(), 4u);  // X, W, B, Z
  expect_same_outputs(g, f, 0.0);  // the same adds in the same order: bit for bit
}

TEST(FuseConvAdd, NotWhenConvOutputIsSharedOrBroadcast) {
  Builder b;
  ValueId x = b.input({1, 2, 4, 4});
  ValueId c = b.conv(x, 2, 2);
  ValueId shared = b.node(OpKind::kAdd, {c, x});
  ValueId c2 = b.conv(x, 2, 2);
  ValueId bcast = b.node(OpKind::kAdd, {c2, b.rnd({2, 1, 1})});
  ir::Graph g = b.done({shared, c, bcast});
  int n = -1;
  ir::Graph f = apply(g, &passes::fuse_conv_add, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f), "Conv,Add,Conv,Add");
}

TEST(FuseMatMulBias, ThreeDimMatMulPlusBiasBecomesGemm) {
  Builder b;
  ValueId x = b.input({2, 5, 8});
  ValueId v = b.node(OpKind::kAdd, {b.node(OpKind::kMatMul, {x, b.rnd({8, 6})}), b.rnd({6})});
  ValueId w = b.node(OpKind::kAdd, {b.rnd({1, 3}), b.node(OpKind::kMatMul, {v, b.rnd({6, 3})})});
  ir::Graph g = b.done({w});
  int n = 0;
  ir::Graph f = apply(g, &passes::fuse_matmul_bias, &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(ops(f), "Reshape,Gemm,Reshape,Reshape,Gemm,Reshape");
  EXPECT_EQ(ir::type_str(f, f.value(f.outputs[0]).type), "f32[2,5,3]");
  expect_same_outputs(g, f, 1e-6);
}

// A transformer's MatMul + bias + Gelu: fuse_matmul_bias leaves Gemm ->
// Reshape, and the Gelu moves into the Gemm ahead of the view. Not when the
// Gemm's rows are read by another node too, nor through any other op.
TEST(FuseActivation, GemmSeenThroughTheRowsView) {
  Builder b;
  ValueId x = b.input({2, 5, 8});
  ValueId mm = b.node(OpKind::kAdd, {b.node(OpKind::kMatMul, {x, b.rnd({8, 6})}), b.rnd({6})});
  ValueId y = b.node(OpKind::kGelu, {mm}, ir::GeluAttrs{});
  ValueId mm2 = b.node(OpKind::kAdd, {b.node(OpKind::kMatMul, {y, b.rnd({6, 4})}), b.rnd({4})});
  ValueId z = b.node(OpKind::kRelu, {b.node(OpKind::kNeg, {mm2})});
  ir::Graph g = b.done({z});
  ir::Graph f = apply(g, &passes::fuse_matmul_bias);
  int n = -1;
  ir::Graph h = apply(f, &passes::fuse_activation, &n);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(ops(h), "Reshape,FusedGemm,Reshape,Reshape,Gemm,Reshape,Neg,Relu");
  EXPECT_EQ(ir::type_str(h, h.value(h.outputs[0]).type), "f32[2,5,4]");
  expect_same_outputs(g, h, 1e-5);

  Builder c;
  ValueId x2 = c.input({2, 5, 8});
  ValueId v = c.node(OpKind::kAdd, {c.node(OpKind::kMatMul, {x2, c.rnd({8, 6})}), c.rnd({6})});
  ir::Graph g2 = c.done({c.node(OpKind::kGelu, {v}, ir::GeluAttrs{}), v});
  ir::Graph f2 = apply(apply(g2, &passes::fuse_matmul_bias), &passes::fuse_activation, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f2), "Reshape,Gemm,Reshape,Gelu");
}

TEST(FuseMatMulBias, NotWithRuntimeWeightsOrFullBias) {
  Builder b;
  ValueId x = b.input({4, 8});
  ValueId wt = b.input({8, 6}, "w");
  ValueId v = b.node(OpKind::kAdd, {b.node(OpKind::kMatMul, {x, wt}), b.rnd({6})});
  ValueId u = b.node(OpKind::kAdd, {b.node(OpKind::kMatMul, {x, b.rnd({8, 6})}), b.rnd({4, 6})});
  ir::Graph g = b.done({v, u});
  int n = -1;
  ir::Graph f = apply(g, &passes::fuse_matmul_bias, &n);
  EXPECT_EQ(n, 0);
}

// ---- fuse_elementwise --------------------------------------------------------

TEST(FuseElementwise, PerChannelScaleAndShiftIntoConvAndGemm) {
  Builder b;
  ValueId x = b.input({1, 3, 5, 5});
  ValueId v = b.node(OpKind::kMul, {b.conv(x, 4, 3), b.rnd({4, 1, 1}, 0.5, 2)});
  v = b.node(OpKind::kAdd, {b.rnd({1, 4, 1, 1}), v});
  v = b.node(OpKind::kDiv, {b.conv(v, 2, 4, false), b.cst(f32({}, {4.0f}))});
  v = b.node(OpKind::kSub, {v, b.cst(f32({}, {0.25f}))});
  ir::FlattenAttrs fa;
  v = b.node(OpKind::kFlatten, {v}, fa);
  v = b.node(OpKind::kMul, {b.gemm(v, 3, 50), b.rnd({3})});
  ir::Graph g = b.done({v});
  int total = 0;
  ir::Graph f = g;
  for (int round = 0; round < 3; ++round) {
    int n = 0;
    f = apply(f, &passes::fuse_elementwise, &n);
    total += n;
  }
  EXPECT_EQ(total, 5);
  EXPECT_EQ(ops(f), "Conv,Conv,Flatten,Gemm");
  expect_same_outputs(g, f);
}

TEST(FuseElementwise, NotForBroadcastingOrLeftSubtraction) {
  Builder b;
  ValueId x = b.input({1, 2, 4, 4});
  ValueId v = b.node(OpKind::kMul, {b.conv(x, 2, 2), b.rnd({4})});  // varies along width, not channels
  v = b.node(OpKind::kSub, {b.cst(f32({}, {1.0f})), b.conv(v, 2, 2)});
  ir::Graph g = b.done({v});
  int n = -1;
  ir::Graph f = apply(g, &passes::fuse_elementwise, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f), "Conv,Mul,Conv,Sub");
}

// ---- cleanup, relu_before_maxpool, pipeline ----------------------------------

TEST(Cleanup, DropsDeadNodesAndUnusedConstants) {
  Builder b;
  ValueId x = b.input({3});
  b.node(OpKind::kAdd, {x, b.cst(f32({3}, {1, 2, 3}))});  // nobody reads it
  b.cst(f32({2}, {4, 5}), "orphan");
  ir::Graph g = b.done({b.node(OpKind::kRelu, {x})});
  int n = 0;
  ir::Graph f = apply(g, &passes::cleanup, &n);
  EXPECT_EQ(n, 3);  // the Add, its constant, the orphan
  EXPECT_EQ(ops(f), "Relu");
  EXPECT_EQ(f.values.size(), 2u);
  expect_same_outputs(g, f);
}

TEST(ReluBeforeMaxpool, SwapsPair) {
  Builder b;
  ValueId x = b.input({1, 1, 4, 4});
  ir::MaxPoolAttrs pa;
  pa.kernel_shape = {2, 2};
  ir::Graph g = b.done({b.node(OpKind::kRelu, {b.node(OpKind::kMaxPool, {x}, pa)})});
  ir::Graph f = apply(g, &passes::relu_before_maxpool);
  EXPECT_EQ(ops(f), "Relu,MaxPool");
  expect_same_outputs(g, f, 0.0);
}

// Conv -> BN -> Mul(scale) -> Clip(0, 6), behind an Identity.
ir::Graph small_cnn() {
  Builder b;
  ValueId x = b.input({1, 3, 6, 6});
  ValueId v = b.node(OpKind::kIdentity, {x});
  v = b.bn(b.conv(v, 4, 3), 4);
  v = b.node(OpKind::kMul, {v, b.cst(f32({}, {0.5f}))});
  v = b.node(OpKind::kClip, {v, b.cst(f32({}, {0.0f})), b.cst(f32({}, {6.0f}))});
  return b.done({v});
}

TEST(Pipeline, FullAndOnnxOnly) {
  ir::Graph g = small_cnn();
  ir::Graph full = g;
  passes::PipelineOptions po;
  po.verify = true;
  std::vector<std::string> seen;
  po.after_pass = [&](std::string_view name, int, int, const ir::Graph&) { seen.emplace_back(name); };
  auto r = passes::run_pipeline(full, po);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ops(full), "FusedConv");
  EXPECT_TRUE(r->skipped.empty());
  EXPECT_EQ(seen.back(), "cleanup");
  expect_same_outputs(g, full);

  ir::Graph onnx = g;
  po.onnx_only = true;
  r = passes::run_pipeline(onnx, po);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ops(onnx), "Conv,Clip");
  EXPECT_EQ(r->skipped, (std::vector<std::string>{"fuse_attention", "fuse_conv_add", "fuse_activation", "fuse_elementwise_chain"}));
  EXPECT_TRUE(onnx_io::save_model(onnx, ::testing::TempDir() + "/opt.onnx").ok());
  expect_same_outputs(g, onnx);

  ir::Graph some = g;
  passes::PipelineOptions only;
  only.only = {"eliminate_noops"};
  ASSERT_TRUE(passes::run_pipeline(some, only).ok());
  EXPECT_EQ(ops(some), "Conv,BatchNormalization,Mul,Clip");
}

TEST(Pipeline, UnknownPassIsAnError) {
  ir::Graph g = small_cnn();
  passes::PipelineOptions po;
  po.only = {"fold_constants", "fuse_everything"};
  auto r = passes::run_pipeline(g, po);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unknown pass 'fuse_everything'"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace kiln
