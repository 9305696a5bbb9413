// Graph passes of passes/pipeline.h on small hand-built graphs: for each pass
// the op sequence (and printed IR lines) after the pass, cases where it must
// not fire (shared Conv output, non-constant Clip bounds, a noop writing a
// graph output from a graph input, broadcasting constants, softmax on another
// axis, ...), and for every fold/fuse the outputs of the original and
// rewritten graphs agree within 1e-5 relative on a random input (activation
// and elementwise-chain fusion: bit for bit; attention: 1e-6). Also
// relu_before_maxpool.
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
#include "passes/fuse_attention.h"
#include "passes/fuse_conv_add.h"
#include "passes/fuse_elementwise.h"
#include "passes/fuse_elementwise_chain.h"
#include "passes/fuse_gelu.h"
#include "passes/fuse_layernorm.h"
#include "passes/fuse_matmul_bias.h"
#include "passes/pipeline.h"
#include "passes/relu_before_maxpool.h"
#include "runtime/session.h"

namespace kiln {
namespace {

using ir::OpKind;
using ir::ValueId;

Tensor f32(Shape shape, const std::vector<float>& v) {
  Tensor t = Tensor::create(DType::kF32, std::move(shape)).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}
Tensor i64(Shape shape, const std::vector<int64_t>& v) {
  Tensor t = Tensor::create(DType::kI64, std::move(shape)).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}
Tensor random_f32(Shape shape, uint64_t seed, float lo = -1, float hi = 1) {
  Tensor t = Tensor::create(DType::kF32, std::move(shape)).value();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

struct Builder {
  ir::Graph g;
  int counter = 0;
  uint64_t seed = 1;

  ValueId input(Shape s, const std::string& name = "x") {
    ValueId id = g.add_value(name, {DType::kF32, std::move(s), true});
    g.inputs.push_back(id);
    return id;
  }
  ValueId cst(Tensor t, const std::string& name = "c") { return g.add_constant(g.unique_name(name), std::move(t)); }
  ValueId rnd(Shape s, float lo = -1, float hi = 1) { return cst(random_f32(std::move(s), seed++, lo, hi), "w"); }
  ValueId node(OpKind op, std::vector<ValueId> in, ir::Attrs a = ir::NoAttrs{}) {
    return ir::append_node(g, "n" + std::to_string(counter++), op, std::move(in), std::move(a))[0];
  }
  ValueId conv(ValueId x, int64_t cout, int64_t cin, bool bias = true) {
    ir::ConvAttrs a;
    a.pads = {1, 1, 1, 1};
    std::vector<ValueId> in = {x, rnd({cout, cin, 3, 3})};
    if (bias) in.push_back(rnd({cout}));
    return node(OpKind::kConv, in, a);
  }
  ValueId gemm(ValueId x, int64_t n, int64_t k, bool trans_b = true) {
    ir::GemmAttrs a;
    a.transB = trans_b;
    a.beta = 0.5f;
    return node(OpKind::kGemm, {x, rnd(trans_b ? Shape{n, k} : Shape{k, n}), rnd({n})}, a);
  }
  ValueId bn(ValueId x, int64_t c) {
    return node(OpKind::kBatchNormalization, {x, rnd({c}, 0.5, 1.5), rnd({c}), rnd({c}), rnd({c}, 0.2, 2)},
                ir::BatchNormAttrs{});
  }
  ir::Graph done(std::vector<ValueId> outs) {
    g.outputs = std::move(outs);
    auto r = ir::infer_graph(g);
    EXPECT_TRUE(r.ok()) << r.error().message;
    auto v = ir::verify(g);
    EXPECT_TRUE(v.ok()) << v.error().message;
    return g;
  }
};

std::string ops(const ir::Graph& g) {
  std::string s;
  for (const auto& n : g.nodes) s += (s.empty() ? "" : ",") + std::string(ir::op_name(n.op));
  return s;
}

// Node lines of the printed IR without the trailing "# name -> type" comment.
std::vector<std::string> node_lines(const ir::Graph& g) {
  std::istringstream is(ir::print_graph(g));
  std::vector<std::string> out;
  for (std::string line; std::getline(is, line);) {
    if (line.find(" = ") == std::string::npos) continue;
    auto hash = line.find("  # ");
    out.push_back(line.substr(2, hash == std::string::npos ? std::string::npos : hash - 2));
  }
  return out;
}

// Runs the pass on a copy; it must succeed and leave a valid, inferred graph.
ir::Graph apply(const ir::Graph& g, passes::PassFn pass, int* rewrites = nullptr) {
  ir::Graph r = g;
  auto n = pass(r);
  EXPECT_TRUE(n.ok()) << n.error().message;
  if (rewrites) *rewrites = n.ok() ? *n : -1;
  auto v = ir::verify(r);
  EXPECT_TRUE(v.ok()) << v.error().message;
  return r;
}

std::vector<Tensor> run(const ir::Graph& g, const std::vector<Tensor>& in) {
  auto s = runtime::Session::create(g);
  EXPECT_TRUE(s.ok()) << s.error().message;
  if (!s.ok()) return {};
  auto out = s->run(in);
  EXPECT_TRUE(out.ok()) << out.error().message;
  return out.ok() ? *out : std::vector<Tensor>{};
}

// Outputs of both graphs on random inputs agree within `tol` relative to the largest |output|.
void expect_same_outputs(const ir::Graph& a, const ir::Graph& b, double tol = 1e-5) {
  std::vector<Tensor> in;
  uint64_t seed = 100;
  for (auto id : a.inputs) in.push_back(random_f32(a.value(id).type.shape, seed++, -2, 2));
  auto ra = run(a, in), rb = run(b, in);
  ASSERT_EQ(ra.size(), rb.size());
  for (size_t k = 0; k < ra.size(); ++k) {
    ASSERT_EQ(ra[k].shape(), rb[k].shape());
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < ra[k].numel(); ++i) {
      diff = std::max(diff, std::fabs(ra[k].as_double(i) - rb[k].as_double(i)));
      scale = std::max(scale, std::fabs(ra[k].as_double(i)));
    }
    EXPECT_GT(scale, 0.0);
    EXPECT_LE(diff, tol * scale) << "output " << k;
  }
  for (size_t k = 0; k < a.outputs.size(); ++k) EXPECT_EQ(a.value(a.outputs[k]).name, b.value(b.outputs[k]).name);
}

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

// ---- fuse_layernorm / fuse_gelu ----------------------------------------------

// PyTorch's opset-14 LayerNorm over the last axis.
ValueId layernorm_subgraph(Builder& b, ValueId x, int64_t d, bool pow = true, float eps = 1e-5f) {
  ValueId axes = b.cst(i64({1}, {-1}));
  ValueId m = b.node(OpKind::kReduceMean, {x, axes}, ir::ReduceAttrs{});
  ValueId dv = b.node(OpKind::kSub, {x, m});
  ValueId sq = pow ? b.node(OpKind::kPow, {dv, b.cst(f32({}, {2.0f}))}) : b.node(OpKind::kMul, {dv, dv});
  ValueId var = b.node(OpKind::kReduceMean, {sq, axes}, ir::ReduceAttrs{});
  ValueId ve = b.node(OpKind::kAdd, {var, b.cst(f32({}, {eps}))});
  ValueId nrm = b.node(OpKind::kDiv, {dv, b.node(OpKind::kSqrt, {ve})});
  ValueId sc = b.node(OpKind::kMul, {nrm, b.rnd({d}, 0.5, 1.5)});
  return b.node(OpKind::kAdd, {sc, b.rnd({d})});
}

TEST(FuseLayernorm, SubgraphBecomesLayerNormalization) {
  Builder b;
  ValueId x = b.input({2, 3, 8});
  ValueId y = layernorm_subgraph(b, b.node(OpKind::kRelu, {x}), 8);
  y = layernorm_subgraph(b, y, 8, /*pow=*/false, 1e-3f);
  ir::Graph g = b.done({y});
  int n = 0;
  ir::Graph f = apply(g, &passes::fuse_layernorm, &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(ops(f), "Relu,LayerNormalization,LayerNormalization");
  auto lines = node_lines(f);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "%n9_out = LayerNormalization(%n0_out, @n7_layernorm_scale, @n7_layernorm_bias)");  // eps 1e-5: default
  EXPECT_EQ(lines[2],
            "%n18_out = LayerNormalization(%n9_out, @n16_layernorm_scale, @n16_layernorm_bias) {epsilon=0.001}");
  expect_same_outputs(g, f);
}

TEST(FuseLayernorm, NotWhenAnIntermediateIsAlsoAnOutput) {
  Builder b;
  ValueId x = b.input({2, 8});
  ValueId y = layernorm_subgraph(b, x, 8);
  ValueId centered = b.g.nodes[1].outputs[0];  // x - mean
  ir::Graph g = b.done({y, centered});
  int n = -1;
  ir::Graph f = apply(g, &passes::fuse_layernorm, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(f.nodes.size(), g.nodes.size());
}

// x * 0.5 * (1 + Erf(x / sqrt 2)) in the two orders exporters use.
ValueId gelu_subgraph(Builder& b, ValueId x, bool half_first, float root2 = 1.4142135f) {
  ValueId e = b.node(OpKind::kErf, {b.node(OpKind::kDiv, {x, b.cst(f32({}, {root2}))})});
  ValueId a = b.node(OpKind::kAdd, {e, b.cst(f32({}, {1.0f}))});
  if (half_first) return b.node(OpKind::kMul, {b.node(OpKind::kMul, {x, b.cst(f32({}, {0.5f}))}), a});
  return b.node(OpKind::kMul, {b.node(OpKind::kMul, {x, a}), b.cst(f32({}, {0.5f}))});
}

TEST(FuseGelu, BothOrdersBecomeGelu) {
  Builder b;
  ValueId x = b.input({4, 16});
  ValueId y = gelu_subgraph(b, gelu_subgraph(b, x, false), true);
  ir::Graph g = b.done({y});
  int n = 0;
  ir::Graph f = apply(g, &passes::fuse_gelu, &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(ops(f), "Gelu,Gelu");
  expect_same_outputs(g, f);
}

TEST(FuseGelu, NotWithAnotherConstant) {
  Builder b;
  ValueId x = b.input({4, 16});
  ir::Graph g = b.done({gelu_subgraph(b, x, false, 1.5f)});
  int n = -1;
  ir::Graph f = apply(g, &passes::fuse_gelu, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f), "Div,Erf,Add,Mul,Mul");
}

// ---- fuse_attention ----------------------------------------------------------

ir::TransposeAttrs perm(std::vector<int64_t> p) {
  ir::TransposeAttrs t;
  t.perm = std::move(p);
  return t;
}
ir::SoftmaxAttrs softmax_axis(int64_t axis) {
  ir::SoftmaxAttrs a;
  a.axis = axis;
  return a;
}

// Softmax(MatMul(q, Transpose(k)) * scale + mask) . v, the textbook form.
ir::Graph attention_graph(ir::SoftmaxAttrs sm = {}, bool runtime_scale = false, bool scores_out = false) {
  Builder b;
  ValueId q = b.input({2, 3, 5, 8}, "q");
  ValueId k = b.input({2, 3, 6, 8}, "k");
  ValueId v = b.input({2, 3, 6, 4}, "v");
  ValueId mask = b.input({2, 1, 1, 6}, "mask");
  ValueId s = b.node(OpKind::kMatMul, {q, b.node(OpKind::kTranspose, {k}, perm({0, 1, 3, 2}))});
  ValueId scale = runtime_scale ? b.input({}, "scale") : b.cst(f32({}, {0.125f}));
  ValueId scaled = b.node(OpKind::kMul, {s, scale});
  ValueId p = b.node(OpKind::kSoftmax, {b.node(OpKind::kAdd, {mask, scaled})}, sm);
  ValueId y = b.node(OpKind::kMatMul, {p, v});
  return scores_out ? b.done({y, scaled}) : b.done({y});
}

TEST(FuseAttention, ScaledMaskedAttentionBecomesOneNode) {
  ir::Graph g = attention_graph();
  int n = 0;
  ir::Graph f = apply(g, &passes::fuse_attention, &n);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(ops(f), "Attention");
  auto lines = node_lines(f);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "%n5_out = Attention(%q, %k, %v, %mask) {scale=0.125}");
  expect_same_outputs(g, f, 1e-6);
  EXPECT_FALSE(onnx_io::save_model(f, ::testing::TempDir() + "/attention.onnx").ok());  // kiln-only
}

TEST(FuseAttention, TorchExportFormScalesQueryAndKeepsPermutedK) {
  // nn.MultiheadAttention as exported: Q / sqrt(d), K [S, B, D] permuted to [B, D, S], no mask.
  Builder b;
  ValueId q = b.input({4, 5, 16}, "q");
  ValueId k = b.input({6, 4, 16}, "k");
  ValueId v = b.input({4, 6, 16}, "v");
  ValueId qs = b.node(OpKind::kDiv, {q, b.cst(f32({}, {4.0f}))});
  ValueId s = b.node(OpKind::kMatMul, {qs, b.node(OpKind::kTranspose, {k}, perm({1, 2, 0}))});
  ValueId y = b.node(OpKind::kMatMul, {b.node(OpKind::kSoftmax, {s}, softmax_axis(2)), v});
  ir::Graph g = b.done({y});
  int n = 0;
  ir::Graph f = apply(g, &passes::fuse_attention, &n);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(ops(f), "Transpose,Attention");
  auto lines = node_lines(f);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1], "%n4_out = Attention(%q, %n1_out, %v) {k_transposed=1, scale=4, scale_form=\"QueryDiv\"}");
  expect_same_outputs(g, f, 1e-6);
}

TEST(FuseAttention, NotOnAnotherAxisRuntimeScaleOrSharedIntermediate) {
  for (int c = 0; c < 3; ++c) {
    SCOPED_TRACE(c);
    ir::Graph g = c == 0   ? attention_graph(softmax_axis(-2))  // softmax over the query axis
                  : c == 1 ? attention_graph({}, /*runtime_scale=*/true)
                           : attention_graph({}, false, /*scores_out=*/true);
    int n = -1;
    ir::Graph f = apply(g, &passes::fuse_attention, &n);
    EXPECT_EQ(n, 0);
    EXPECT_EQ(ops(f), "Transpose,MatMul,Mul,Add,Softmax,MatMul");
  }
  // The attention weights are read again (e.g. returned): no fusion.
  Builder b;
  ValueId q = b.input({5, 8}, "q");
  ValueId k = b.input({6, 8}, "k");
  ValueId v = b.input({6, 4}, "v");
  ValueId p = b.node(OpKind::kSoftmax, {b.node(OpKind::kMatMul, {q, b.node(OpKind::kTranspose, {k}, perm({1, 0}))})}, softmax_axis(-1));
  ir::Graph g = b.done({b.node(OpKind::kMatMul, {p, v}), p});
  int n = -1;
  ir::Graph f = apply(g, &passes::fuse_attention, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f), "Transpose,MatMul,Softmax,MatMul");
}

// ---- fuse_elementwise_chain --------------------------------------------------

ir::LeakyReluAttrs leaky(float alpha) {
  ir::LeakyReluAttrs a;
  a.alpha = alpha;
  return a;
}

TEST(FuseElementwiseChain, EveryStepBitForBit) {
  Builder b;
  ValueId x = b.input({3, 40});
  auto c = [&](float v) { return b.cst(f32({}, {v})); };
  // Kept finite on inputs in [-2, 2]: every step sees values where it is defined.
  ValueId v = b.node(OpKind::kMul, {x, c(0.7f)});
  v = b.node(OpKind::kAdd, {c(0.3f), v});
  v = b.node(OpKind::kTanh, {v});
  v = b.node(OpKind::kSub, {v, c(0.1f)});
  v = b.node(OpKind::kSub, {c(2.5f), v});  // (1.4, 3.6)
  v = b.node(OpKind::kSqrt, {v});
  v = b.node(OpKind::kLog, {v});
  v = b.node(OpKind::kNeg, {v});
  v = b.node(OpKind::kAbs, {v});
  v = b.node(OpKind::kExp, {v});
  v = b.node(OpKind::kDiv, {v, c(3.0f)});
  v = b.node(OpKind::kDiv, {c(1.5f), v});
  v = b.node(OpKind::kHardSwish, {v});
  v = b.node(OpKind::kSigmoid, {v});
  v = b.node(OpKind::kErf, {v});
  ir::HardSigmoidAttrs hs;
  hs.alpha = 0.3f;
  hs.beta = 0.4f;
  v = b.node(OpKind::kHardSigmoid, {v}, hs);
  ValueId y1 = b.node(OpKind::kClip, {v, c(0.642f), c(0.646f)});  // v in (0.639, 0.649)
  // Negative values: Neg, LeakyRelu, Clip with only a min, Relu, Mul with the constant first.
  ValueId w = b.node(OpKind::kNeg, {x});
  w = b.node(OpKind::kLeakyRelu, {w}, leaky(0.2f));
  w = b.node(OpKind::kClip, {w, c(-0.3f)});
  w = b.node(OpKind::kMul, {c(3.0f), w});
  w = b.node(OpKind::kSigmoid, {w});
  ValueId y2 = b.node(OpKind::kRelu, {b.node(OpKind::kSub, {w, c(0.5f)})});
  ir::Graph g = b.done({y1, y2});
  int n = 0;
  ir::Graph f = apply(g, &passes::fuse_elementwise_chain, &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(ops(f), "ElementwiseChain,ElementwiseChain");
  const auto& a1 = f.nodes[0].attr<ir::ElementwiseChainAttrs>();
  EXPECT_EQ(a1.steps, (std::vector<std::string>{"Mul", "Add", "Tanh", "Sub", "SubFrom", "Sqrt", "Log", "Neg", "Abs",
                                                "Exp", "Div", "DivInto", "HardSwish", "Sigmoid", "Erf", "HardSigmoid",
                                                "Clip"}));
  auto lines = node_lines(f);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1],
            "%n23_out = ElementwiseChain(%x) {params=[0,0,0.2,0,-0.3,inf,3,0,0,0,0.5,0,0,0], "
            "steps=[Neg,LeakyRelu,Clip,Mul,Sigmoid,Sub,Relu]}");
  expect_same_outputs(g, f, 0.0);  // bit for bit
  EXPECT_FALSE(onnx_io::save_model(f, ::testing::TempDir() + "/chain.onnx").ok());  // kiln-only
}

TEST(FuseElementwiseChain, NotForSingleOpsSharedOrOutputIntermediatesOrNonScalars) {
  Builder b;
  ValueId x = b.input({2, 8});
  ValueId hi = b.input({}, "hi");
  ValueId single = b.node(OpKind::kRelu, {x});                       // one op: nothing to chain
  ValueId shared = b.node(OpKind::kExp, {x});                        // read twice
  ValueId s1 = b.node(OpKind::kTanh, {shared});
  ValueId s2 = b.node(OpKind::kNeg, {shared});
  ValueId out = b.node(OpKind::kSigmoid, {x});                       // also a graph output
  ValueId o1 = b.node(OpKind::kAbs, {out});
  ValueId vec = b.node(OpKind::kMul, {b.node(OpKind::kNeg, {x}), b.rnd({8})});  // per-column constant
  ValueId clip = b.node(OpKind::kClip, {b.node(OpKind::kAbs, {x}), b.cst(f32({}, {0.0f})), hi});  // runtime max
  ValueId up = b.node(OpKind::kAdd, {b.node(OpKind::kTanh, {x}), b.cst(f32({1, 1, 1}, {1.0f}))});  // adds a dim
  ir::Graph g = b.done({single, s1, s2, out, o1, vec, clip, up});
  int n = -1;
  ir::Graph f = apply(g, &passes::fuse_elementwise_chain, &n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(ops(f), ops(g));

  // Through the pipeline, Conv + Relu fuse first; what follows the Relu chains.
  Builder p;
  ValueId xi = p.input({1, 2, 5, 5});
  ValueId r = p.node(OpKind::kRelu, {p.conv(xi, 3, 2)});
  ir::Graph h = p.done({p.node(OpKind::kTanh, {p.node(OpKind::kSigmoid, {r})})});
  ir::Graph full = h;
  passes::PipelineOptions po;
  po.verify = true;
  ASSERT_TRUE(passes::run_pipeline(full, po).ok());
  EXPECT_EQ(ops(full), "FusedConv,ElementwiseChain");
  expect_same_outputs(h, full, 0.0);
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
