// Transformer-pattern graph passes on small hand-built graphs: fuse_layernorm,
// fuse_gelu, fuse_attention and fuse_elementwise_chain. For each, the op
// sequence after the pass, the cases where it must not fire (an intermediate
// that is also an output or has another reader, another axis or constant,
// a runtime scale), and the outputs of the original and rewritten graphs
// (layernorm and gelu within 1e-5 relative, attention 1e-6, elementwise
// chains bit for bit).
#include <gtest/gtest.h>

#include "onnx/export.h"
#include "passes/fuse_attention.h"
#include "passes/fuse_elementwise_chain.h"
#include "passes/fuse_gelu.h"
#include "passes/fuse_layernorm.h"
#include "passes_test_util.h"

namespace kiln {
namespace {

using namespace passtest;

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

}  // namespace
}  // namespace kiln
