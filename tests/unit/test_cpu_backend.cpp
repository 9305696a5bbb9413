// The CPU backend (backends/cpu) against the reference backend on small random
// graphs, for every instruction set this machine has and 1 and 3 threads (see
// cpu_test_util.h): Gemm / FusedGemm / MatMul with odd sizes, Attention,
// LayerNormalization, Softmax, Transpose, pools, broadcasting binary ops and
// activations; ops the CPU kernels do not take run on the reference kernels
// inside the CPU plan; sessions re-specialize on new shapes; bad options are
// named errors. Convolutions: test_cpu_conv.cpp; int8: test_cpu_quant.cpp;
// thread-count determinism: test_cpu_threads.cpp.
// Tolerance: max |cpu - ref| <= 1e-4 * max |ref|.
#include <gtest/gtest.h>

#include "cpu_test_util.h"

namespace kiln {
namespace {
using namespace cputest;

// ---- Gemm / FusedGemm / MatMul -----------------------------------------------

enum class Bias { kNone, kN, kOneN, kM1 };

TEST(CpuBackendGemm, TransposesBiasFormsOddSizes) {
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 5, 17},   {5, 17, 63},  {17, 63, 300}, {63, 300, 5},
                                                     {300, 1, 63}, {300, 17, 300}, {1, 1, 1}};
  uint64_t seed = 1000;
  for (auto [m, n, k] : sizes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (Bias bias : {Bias::kNone, Bias::kN, Bias::kOneN, Bias::kM1}) {
          Net net(seed++);
          const bool b_const = seed % 2 == 0, c_const = seed % 3 != 0;
          ValueId a = net.input(ta ? Shape{k, m} : Shape{m, k});
          Shape bs = tb ? Shape{n, k} : Shape{k, n};
          ValueId b = b_const ? net.cst(bs) : net.input(bs);
          std::vector<ValueId> in = {a, b};
          Shape cs;
          if (bias == Bias::kN) cs = {n};
          if (bias == Bias::kOneN) cs = {1, n};
          if (bias == Bias::kM1) cs = {m, 1};
          if (bias != Bias::kNone) in.push_back(c_const ? net.cst(cs) : net.input(cs));
          ir::GemmAttrs at;
          at.transA = ta;
          at.transB = tb;
          ValueId y = net.node(OpKind::kGemm, in, at);
          ASSERT_TRUE(net.done({y}));
          // C [1, 1] with M = 1 and N > 1 is a scalar bias: the CPU Gemm does not take it.
          const bool scalar_c = bias == Bias::kM1 && m == 1 && n != 1;
          std::ostringstream what;
          what << "Gemm M" << m << " N" << n << " K" << k << " transA " << ta << " transB " << tb << " C "
               << shape_str(cs) << (b_const ? " const B" : " input B") << (c_const ? " const C" : " input C");
          check(net, what.str(), scalar_c ? "reference (" : "gemm_f32(", scalar_c ? Expect::kFallback : Expect::kCpu);
        }
}

TEST(CpuBackendGemm, FusedGemmGelu) {
  uint64_t seed = 2000;
  for (auto act : {ir::FusedActivation::kGelu, ir::FusedActivation::kGeluTanh, ir::FusedActivation::kRelu})
    for (auto [m, n, k] : std::vector<std::array<int64_t, 3>>{{5, 17, 63}, {63, 300, 300}, {1, 33, 5}}) {
      Net net(seed++);
      ValueId a = net.input({m, k}, -2, 2);
      ir::FusedGemmAttrs at;
      at.transB = 1;
      at.activation = act;
      ValueId y = net.node(OpKind::kFusedGemm, {a, net.cst({n, k}), net.cst({n})}, at);
      ASSERT_TRUE(net.done({y}));
      check(net, "FusedGemm act " + std::to_string(int(act)) + " " + std::to_string(m) + "x" + std::to_string(n) +
                     "x" + std::to_string(k),
            "gemm_f32(");
    }
}

TEST(CpuBackendGemm, DeclinedFormsFallBack) {
  {
    Net net(2100);
    ir::GemmAttrs at;
    at.alpha = 0.5f;
    ValueId y = net.node(OpKind::kGemm, {net.input({5, 7}), net.cst({7, 9}), net.cst({9})}, at);
    ASSERT_TRUE(net.done({y}));
    check(net, "Gemm alpha 0.5", "reference (alpha != 1)", Expect::kFallback);
  }
  {
    Net net(2101);
    ir::GemmAttrs at;
    at.beta = 0.5f;
    ValueId y = net.node(OpKind::kGemm, {net.input({5, 7}), net.cst({7, 9}), net.cst({9})}, at);
    ASSERT_TRUE(net.done({y}));
    check(net, "Gemm beta 0.5", "reference (beta != 1)", Expect::kFallback);
  }
  {
    Net net(2102);
    ValueId y = net.node(OpKind::kGemm, {net.input({5, 7}), net.cst({7, 9}), net.cst({5, 9})}, ir::GemmAttrs{});
    ASSERT_TRUE(net.done({y}));
    check(net, "Gemm C [M, N]", "reference (", Expect::kFallback);
  }
}

TEST(CpuBackendMatMul, ConstantInputAndBatchedOperands) {
  struct Case {
    Shape a, b;
    bool b_const;
    const char* kernel;
  };
  const std::vector<Case> cases = {
      {{5, 17}, {17, 63}, true, "gemm_f32("},
      {{300, 63}, {63, 1}, true, "gemm_f32("},
      {{1, 300}, {300, 17}, true, "gemm_f32("},
      {{3, 17, 63}, {63, 5}, true, "gemm_f32("},
      {{3, 17, 63}, {63, 5}, false, "gemm_f32("},
      {{2, 3, 5, 300}, {300, 17}, true, "gemm_f32("},
      {{3, 17, 63}, {3, 63, 5}, false, "batched_gemm_f32("},
      {{4, 1, 300}, {4, 300, 17}, false, "batched_gemm_f32("},
      {{2, 3, 63, 5}, {2, 3, 5, 300}, false, "batched_gemm_f32("},
      {{2, 5, 600}, {2, 600, 17}, false, "batched_gemm_f32("},
  };
  uint64_t seed = 3000;
  for (const Case& c : cases) {
    Net net(seed++);
    ValueId a = net.input(c.a);
    ValueId b = c.b_const ? net.cst(c.b) : net.input(c.b);
    ValueId y = net.node(OpKind::kMatMul, {a, b});
    ASSERT_TRUE(net.done({y}));
    check(net, "MatMul " + shape_str(c.a) + " x " + shape_str(c.b) + (c.b_const ? " const" : " input"), c.kernel);
  }
  // Forms the CPU MatMul does not take: broadcast batch dims, a 1-D operand.
  const std::vector<Case> declined = {{{2, 1, 5, 7}, {1, 3, 7, 9}, false, "reference ("},
                                      {{7}, {7, 9}, true, "reference ("}};
  for (const Case& c : declined) {
    Net net(seed++);
    ValueId a = net.input(c.a);
    ValueId b = c.b_const ? net.cst(c.b) : net.input(c.b);
    ValueId y = net.node(OpKind::kMatMul, {a, b});
    ASSERT_TRUE(net.done({y}));
    check(net, "MatMul " + shape_str(c.a) + " x " + shape_str(c.b), c.kernel, Expect::kFallback);
  }
}

// ---- Attention, LayerNormalization, Softmax, Transpose ----------------------

TEST(CpuBackendOps, Attention) {
  struct Case {
    Shape q, k, v;
    int64_t k_transposed;
  };
  const std::vector<Case> cases = {
      {{2, 3, 5, 8}, {2, 3, 7, 8}, {2, 3, 7, 6}, 0},
      {{2, 3, 5, 8}, {2, 3, 8, 7}, {2, 3, 7, 6}, 1},
      {{4, 17, 33}, {4, 300, 33}, {4, 300, 5}, 0},
      {{4, 1, 33}, {4, 33, 19}, {4, 19, 64}, 1},
  };
  uint64_t seed = 4000;
  for (const Case& c : cases)
    for (auto form : {ir::AttentionScale::kScoresMul, ir::AttentionScale::kScoresDiv, ir::AttentionScale::kQueryMul,
                      ir::AttentionScale::kQueryDiv}) {
      Net net(seed++);
      ir::AttentionAttrs a;
      a.k_transposed = c.k_transposed;
      a.scale_form = form;
      a.scale = (form == ir::AttentionScale::kScoresDiv || form == ir::AttentionScale::kQueryDiv) ? 2.8284271f : 0.35f;
      ValueId y = net.node(OpKind::kAttention, {net.input(c.q, -2, 2), net.input(c.k, -2, 2), net.input(c.v)}, a);
      ASSERT_TRUE(net.done({y}));
      check(net,
            "Attention q" + shape_str(c.q) + " k" + shape_str(c.k) + " v" + shape_str(c.v) + " form " +
                std::to_string(int(form)),
            "attention_f32(");
    }
  // With a mask it runs on the reference kernel.
  Net net(seed++);
  ValueId y = net.node(OpKind::kAttention,
                       {net.input({2, 5, 8}), net.input({2, 7, 8}), net.input({2, 7, 6}), net.input({5, 7})},
                       ir::AttentionAttrs{});
  ASSERT_TRUE(net.done({y}));
  check(net, "Attention with mask", "reference (masked attention)", Expect::kFallback);
}

TEST(CpuBackendOps, LayerNormalizationLastAxis) {
  uint64_t seed = 5000;
  for (Shape s : {Shape{2, 5, 37}, Shape{300, 64}, Shape{3, 1}, Shape{1, 7, 9, 1000}})
    for (int form = 0; form < 3; ++form) {
      Net net(seed++);
      const int64_t c = s.back();
      ir::LayerNormAttrs a;
      a.axis = form == 1 ? int64_t(s.size()) - 1 : -1;
      a.epsilon = 1e-5f;
      std::vector<ValueId> in = {net.input(s, -3, 5), net.cst({c}, 0.5f, 1.5f)};
      if (form != 2) in.push_back(net.cst({c}));  // form 2: no bias
      ValueId y = net.node(OpKind::kLayerNormalization, in, a);
      ASSERT_TRUE(net.done({y}));
      check(net, "LayerNormalization " + shape_str(s) + " form " + std::to_string(form), "layernorm_f32(");
    }
  // Over the last two axes: the reference kernel.
  Net net(seed++);
  ir::LayerNormAttrs a;
  a.axis = -2;
  ValueId y = net.node(OpKind::kLayerNormalization, {net.input({2, 5, 7}), net.cst({5, 7}), net.cst({5, 7})}, a);
  ASSERT_TRUE(net.done({y}));
  check(net, "LayerNormalization axis -2", "reference (", Expect::kFallback);
}

TEST(CpuBackendOps, SoftmaxLastAxis) {
  uint64_t seed = 6000;
  for (Shape s : {Shape{3, 7, 33}, Shape{300, 1}, Shape{5, 1000}, Shape{17}}) {
    Net net(seed++);
    ValueId y = net.node(OpKind::kSoftmax, {net.input(s, -10, 10)}, ir::SoftmaxAttrs{-1});
    ASSERT_TRUE(net.done({y}));
    check(net, "Softmax " + shape_str(s), "softmax_f32(");
  }
  Net net(seed++);
  ValueId y = net.node(OpKind::kSoftmax, {net.input({3, 7, 33})}, ir::SoftmaxAttrs{1});
  ASSERT_TRUE(net.done({y}));
  check(net, "Softmax axis 1", "reference (axis is not the last)", Expect::kFallback);
}

TEST(CpuBackendOps, Transpose) {
  struct Case {
    Shape s;
    std::vector<int64_t> perm;
  };
  const std::vector<Case> cases = {
      {{3, 5, 7}, {2, 0, 1}},       {{3, 5, 7}, {1, 0, 2}},       {{3, 5, 7}, {0, 2, 1}},
      {{2, 3, 5, 7}, {0, 2, 3, 1}}, {{2, 3, 5, 7}, {0, 3, 1, 2}}, {{2, 3, 5, 7}, {3, 2, 1, 0}},
      {{2, 3, 5, 7}, {}},           {{4, 33, 65}, {0, 2, 1}},     {{2, 9, 1, 300}, {0, 2, 1, 3}},
  };
  uint64_t seed = 7000;
  for (const Case& c : cases) {
    Net net(seed++);
    ir::TransposeAttrs a;
    a.perm = c.perm;
    ValueId y = net.node(OpKind::kTranspose, {net.input(c.s)}, a);
    ASSERT_TRUE(net.done({y}));
    std::string perm;
    for (int64_t p : c.perm) perm += std::to_string(p);
    check(net, "Transpose " + shape_str(c.s) + " perm " + perm, "transpose_32bit", Expect::kCpu, 0.0);
  }
}

// Slice with constant starts/ends/axes/steps: the transformer's split of a
// fused QKV projection, a middle axis, negative starts and ends, steps of 2
// and -1 (and -3 from past the end), ends clamped to the axis, axes left out,
// an empty result. Same element moves as the reference, so exact.
TEST(CpuBackendOps, Slice) {
  struct Case {
    Shape s;
    std::vector<int64_t> starts, ends, axes, steps;  // axes / steps empty: input left out
  };
  const int64_t big = int64_t(1) << 40;
  const std::vector<Case> cases = {
      {{16, 1, 96}, {32}, {64}, {2}, {}},
      {{16, 1, 96}, {64}, {big}, {-1}, {1}},
      {{4, 9, 7}, {2}, {-2}, {1}, {}},
      {{4, 9, 7}, {-3, 1}, {big, 6}, {1, 2}, {1, 2}},
      {{4, 9, 7}, {8, 6}, {-big, 0}, {1, 2}, {-1, -3}},
      {{4, 9, 7}, {1, 0, 0}, {3, 9, 7}, {}, {}},
      {{2, 3, 5, 7}, {1}, {big}, {-3}, {2}},
      {{4, 9, 7}, {5}, {5}, {1}, {}},
      {{4, 9, 7}, {big}, {-big}, {2}, {-3}},
  };
  auto ints = [](const std::vector<int64_t>& v) {
    Tensor t = *Tensor::create(DType::kI64, Shape{int64_t(v.size())});
    for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
    return t;
  };
  uint64_t seed = 7100;
  for (const Case& c : cases) {
    Net net(seed++);
    std::vector<ValueId> in = {net.input(c.s), net.cst(ints(c.starts)), net.cst(ints(c.ends))};
    if (!c.axes.empty() || !c.steps.empty()) in.push_back(c.axes.empty() ? ir::kNoValue : net.cst(ints(c.axes)));
    if (!c.steps.empty()) in.push_back(net.cst(ints(c.steps)));
    ValueId y = net.node(OpKind::kSlice, in);
    ASSERT_TRUE(net.done({y}));
    std::string what = "Slice " + shape_str(c.s) + " starts";
    for (int64_t v : c.starts) what += " " + std::to_string(v);
    what += " steps";
    for (int64_t v : c.steps) what += " " + std::to_string(v);
    check(net, what, "slice_32bit", Expect::kCpu, 0.0);
  }
}

// ---- pools --------------------------------------------------------------------

TEST(CpuBackendOps, MaxAndAveragePool) {
  struct Case {
    int64_t k, s, dil, ceil;
    std::vector<int64_t> pads;
  };
  const std::vector<Case> cases = {
      {3, 2, 1, 0, {1, 1, 1, 1}}, {3, 2, 1, 1, {1, 1, 1, 1}}, {2, 2, 1, 0, {0, 0, 0, 0}},
      {2, 2, 1, 1, {0, 0, 0, 0}}, {3, 1, 1, 0, {0, 1, 1, 0}}, {3, 3, 1, 1, {1, 0, 0, 1}},
      {5, 2, 1, 1, {2, 2, 2, 2}}, {3, 2, 2, 0, {2, 2, 2, 2}}, {1, 2, 1, 1, {0, 0, 0, 0}},
  };
  uint64_t seed = 8000;
  for (const Case& c : cases)
    for (int kind = 0; kind < 3; ++kind) {  // MaxPool, AveragePool, AveragePool count_include_pad
      if (kind > 0 && c.dil != 1) continue;  // AveragePool dilations: opset 19 only
      Net net(seed++);
      ir::PoolWindow win;
      win.kernel_shape = {c.k, c.k};
      win.strides = {c.s, c.s};
      win.pads = c.pads;
      win.ceil_mode = c.ceil;
      if (c.dil != 1) win.dilations = {c.dil, c.dil};
      ValueId x = net.input({2, 5, 13, 11});
      ValueId y;
      std::string kernel;
      Expect expect = Expect::kCpu;
      if (kind == 0) {
        ir::MaxPoolAttrs a;
        static_cast<ir::PoolWindow&>(a) = win;
        y = net.node(OpKind::kMaxPool, {x}, a);
        kernel = "maxpool2d_f32";
      } else {
        ir::AveragePoolAttrs a;
        static_cast<ir::PoolWindow&>(a) = win;
        a.count_include_pad = kind == 2;
        y = net.node(OpKind::kAveragePool, {x}, a);
        kernel = "avgpool2d_f32";
        if (kind == 2 && c.ceil) {
          kernel = "reference (count_include_pad with ceil_mode)";
          expect = Expect::kFallback;
        }
      }
      ASSERT_TRUE(net.done({y}));
      std::ostringstream what;
      what << (kind == 0 ? "MaxPool" : kind == 1 ? "AveragePool" : "AveragePool count_include_pad") << " k" << c.k
           << " s" << c.s << " d" << c.dil << " ceil " << c.ceil << " pads " << c.pads[0] << c.pads[1] << c.pads[2]
           << c.pads[3];
      check(net, what.str(), kernel, expect);
    }
}

TEST(CpuBackendOps, GlobalAveragePool) {
  uint64_t seed = 8500;
  for (Shape s : {Shape{2, 7, 5, 9}, Shape{3, 4, 10}, Shape{1, 33, 1, 1}, Shape{2, 3, 2, 3, 4}}) {
    Net net(seed++);
    ValueId y = net.node(OpKind::kGlobalAveragePool, {net.input(s)});
    ASSERT_TRUE(net.done({y}));
    check(net, "GlobalAveragePool " + shape_str(s), "global_avgpool_f32");
  }
}

// ---- elementwise ----------------------------------------------------------------

TEST(CpuBackendOps, BinaryBroadcastForms) {
  struct Form {
    Shape big, small;
    const char* kernel;  // expected kernel-name suffix
  };
  const std::vector<Form> forms = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}, "binary_f32 "},
      {{2, 16, 33, 35}, {2, 16, 33, 35}, "binary_f32 "},  // large enough to split over threads
      {{2, 3, 4, 5}, {}, " scalar"},
      {{2, 3, 4, 5}, {1}, " scalar"},
      {{3, 140, 77}, {1, 1, 1}, " scalar"},
      {{2, 7, 33}, {33}, " row-broadcast"},
      {{2, 7, 33}, {7, 33}, " row-broadcast"},
      {{4, 300, 37}, {1, 37}, " row-broadcast"},
      {{2, 6, 5, 7}, {6, 1, 1}, " per-channel"},
      {{2, 6, 5, 7}, {1, 6, 1, 1}, " per-channel"},
      {{2, 16, 33, 35}, {16, 1, 1}, " per-channel"},
      {{2, 6, 1, 1}, {6, 1, 1}, "binary_f32 "},
  };
  const OpKind ops[] = {OpKind::kAdd, OpKind::kSub, OpKind::kMul, OpKind::kDiv};
  const char* names[] = {"Add", "Sub", "Mul", "Div"};
  uint64_t seed = 9000;
  for (const Form& f : forms)
    for (int o = 0; o < 4; ++o)
      for (bool big_first : {true, false}) {
        Net net(seed++);
        // Div: operands away from zero so that the quotients stay moderate.
        const float lo = ops[o] == OpKind::kDiv ? 0.5f : -1.0f, hi = ops[o] == OpKind::kDiv ? 2.0f : 1.0f;
        ValueId big = net.input(f.big, lo, hi), small = net.input(f.small, lo, hi);
        ValueId y = net.node(ops[o], big_first ? std::vector<ValueId>{big, small} : std::vector<ValueId>{small, big});
        ASSERT_TRUE(net.done({y}));
        check(net,
              std::string(names[o]) + " " + shape_str(f.big) + " with " + shape_str(f.small) +
                  (big_first ? " (full shape first)" : " (full shape second)"),
              f.kernel, Expect::kCpu, 1e-6);
      }
}

// [N, 1, 1, 1] against [N, C, H, W] broadcasts per image, not per channel,
// even when N == C.
TEST(CpuBackendOps, BinaryPerImageOperandWhenBatchEqualsChannels) {
  for (bool big_first : {true, false}) {
    Net net(9500);
    ValueId big = net.input({3, 3, 4, 5}), small = net.input({3, 1, 1, 1});
    ValueId y = net.node(OpKind::kSub, big_first ? std::vector<ValueId>{big, small} : std::vector<ValueId>{small, big});
    ASSERT_TRUE(net.done({y}));
    // Not a per-channel operand: the CPU kernels decline it and the reference runs it.
    check(net, std::string("Sub [3,3,4,5] with [3,1,1,1]") + (big_first ? "" : " swapped"), "", Expect::kFallback,
          1e-6);
  }
}

TEST(CpuBackendOps, BinaryUnhandledBroadcastFallsBack) {
  Net net(9600);
  // Both operands broadcast ([5, 1] x [1, 7] -> [5, 7]).
  ValueId y = net.node(OpKind::kMul, {net.input({5, 1}), net.input({1, 7})});
  ASSERT_TRUE(net.done({y}));
  check(net, "Mul [5,1] x [1,7]", "reference (", Expect::kFallback, 1e-6);
  Net net2(9601);
  ValueId y2 = net2.node(OpKind::kAdd, {net2.input({2, 5, 7}), net2.input({5, 1})});
  ASSERT_TRUE(net2.done({y2}));
  check(net2, "Add [2,5,7] + [5,1]", "reference (", Expect::kFallback, 1e-6);
}

TEST(CpuBackendOps, Activations) {
  struct Case {
    OpKind op;
    ir::Attrs attrs;
    const char* name;
  };
  ir::GeluAttrs tanh_gelu;
  tanh_gelu.approximate = ir::GeluApprox::kTanh;
  const std::vector<Case> cases = {
      {OpKind::kRelu, ir::NoAttrs{}, "Relu"},
      {OpKind::kSigmoid, ir::NoAttrs{}, "Sigmoid"},
      {OpKind::kGelu, ir::GeluAttrs{}, "Gelu"},
      {OpKind::kGelu, tanh_gelu, "Gelu"},
      {OpKind::kHardSwish, ir::NoAttrs{}, "HardSwish"},
      {OpKind::kLeakyRelu, ir::LeakyReluAttrs{0.1f}, "LeakyRelu"},
  };
  uint64_t seed = 10000;
  for (Shape s : {Shape{2, 3, 5, 7}, Shape{3, 100003}, Shape{1}}) {
    // One element: a positive one, so that the scale (max |ref|) is not a tiny Gelu(-8).
    const float lo = s.size() == 1 ? 0.25f : -8.0f;
    for (const Case& c : cases) {
      Net net(seed++);
      ValueId y = net.node(c.op, {net.input(s, lo, 8)}, c.attrs);
      ASSERT_TRUE(net.done({y}));
      check(net, std::string(c.name) + " " + shape_str(s), std::string("activation_f32 ") + c.name);
    }
    // Clip: both bounds, min only, neither.
    for (int form = 0; form < 3; ++form) {
      Net net(seed++);
      std::vector<ValueId> in = {net.input(s, lo, 8)};
      if (form < 2) in.push_back(net.cst(scalar_f32(0.0f)));
      if (form == 0) in.push_back(net.cst(scalar_f32(6.0f)));
      ValueId y = net.node(OpKind::kClip, in);
      ASSERT_TRUE(net.done({y}));
      check(net, "Clip form " + std::to_string(form) + " " + shape_str(s), "activation_f32 Clip");
    }
  }
  // Bounds that are graph inputs: the reference kernel.
  Net net(seed++);
  ValueId x = net.input({4, 9}, -8, 8);
  ValueId y = net.node(OpKind::kClip, {x, net.input(scalar_f32(-1.0f)), net.input(scalar_f32(2.0f))});
  ASSERT_TRUE(net.done({y}));
  check(net, "Clip with input bounds", "reference (Clip bounds are not constants)", Expect::kFallback);
}

// ---- fallback, views, specialization --------------------------------------------

TEST(CpuBackendFallback, OpWithoutCpuKernelRunsOnReference) {
  {
    Net net(11000);
    ValueId y = net.node(OpKind::kCos, {net.input({2, 3, 5})});
    ASSERT_TRUE(net.done({y}));
    check(net, "Cos", "reference (no CPU kernel for Cos)", Expect::kFallback, 1e-6);
  }
  {
    // CPU steps on both sides of a fallback step share the arena.
    Net net(11001);
    ir::ConvAttrs a;
    a.kernel_shape = {3, 3};
    a.pads = {1, 1, 1, 1};
    ValueId x = net.input({3, 5, 9, 8});
    ValueId c = net.node(OpKind::kConv, {x, net.cst({7, 5, 3, 3}), net.cst({7})}, a);
    ValueId cs = net.node(OpKind::kCos, {c});
    ValueId t = net.node(OpKind::kTanh, {cs});
    ValueId m = net.node(OpKind::kMul, {t, c});
    ValueId g = net.node(OpKind::kGlobalAveragePool, {m});
    ir::FlattenAttrs fa;
    fa.axis = 1;
    ValueId f = net.node(OpKind::kFlatten, {g}, fa);
    ValueId y = net.node(OpKind::kSoftmax, {f}, ir::SoftmaxAttrs{-1});
    ASSERT_TRUE(net.done({y, c}));
    check(net, "Conv-Cos-Tanh-Mul-GlobalAveragePool-Flatten-Softmax", "reference (no CPU kernel for", Expect::kFallback);
  }
}

TEST(CpuBackendSession, ReshapesAndRespecializesOnNewBatch) {
  Net net(12000);
  ir::ValueType t{DType::kF32, {net.g.symbol("N"), 5, 9, 8}, true};
  ValueId x = net.g.add_value("x", t);
  net.g.inputs.push_back(x);
  ir::ConvAttrs a;
  a.kernel_shape = {3, 3};
  a.pads = {1, 1, 1, 1};
  a.strides = {2, 2};
  ValueId c = net.node(OpKind::kConv, {x, net.cst({6, 5, 3, 3}), net.cst({6})}, a);
  ValueId r = net.node(OpKind::kRelu, {c});
  ir::FlattenAttrs fa;
  fa.axis = 1;
  ValueId f = net.node(OpKind::kFlatten, {r}, fa);
  ir::GemmAttrs ga;
  ga.transB = 1;
  ValueId y = net.node(OpKind::kGemm, {f, net.cst({10, 6 * 5 * 4}), net.cst({10})}, ga);
  ASSERT_TRUE(net.done({y}));
  for (const std::string& isa : available_isas()) {
    auto s = runtime::Session::create(net.g, cpu_options(isa, 2));
    ASSERT_TRUE(s.ok()) << s.error().message;
    for (int64_t batch : {1, 3, 1, 4}) {
      std::vector<Tensor> feeds = {random_f32({batch, 5, 9, 8}, net.rng)};
      auto got = s->run(feeds);
      ASSERT_TRUE(got.ok()) << got.error().message;
      auto want = run_ref(net.g, feeds);
      ASSERT_TRUE(want.ok()) << want.error().message;
      double e = rel_error(*got, *want);
      EXPECT_GE(e, 0) << "isa " << isa << " batch " << batch;
      EXPECT_LE(e, kTol) << "isa " << isa << " batch " << batch;
      EXPECT_NE(s->describe_plan().find("f32[" + std::to_string(batch) + ",10]"), std::string::npos)
          << s->describe_plan();
    }
  }
}

// ---- errors ----------------------------------------------------------------------------

ir::Graph tiny_graph() {
  Net net(13000);
  ValueId y = net.node(OpKind::kRelu, {net.input({2, 3})});
  EXPECT_TRUE(net.done({y}));
  return net.g;
}

TEST(CpuBackendErrors, UnknownIsaIsNamed) {
  auto s = runtime::Session::create(tiny_graph(), cpu_options("bogus", 1));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("'bogus'"), std::string::npos) << s.error().message;
}

TEST(CpuBackendSession, AutoIsaIsTheBestAvailable) {
  Net net(12500);
  ValueId y = net.node(OpKind::kRelu, {net.input({2, 3})});
  ASSERT_TRUE(net.done({y}));
  auto r = run_cpu(net.g, net.feeds, "auto", 1);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const std::string best(cpu::isa_name(cpu::best_isa()));
  EXPECT_NE(r->plan.find("kernels " + best + " "), std::string::npos) << r->plan;
  EXPECT_EQ(available_isas().back(), best);
}

TEST(CpuBackendErrors, UnavailableIsaIsNamed) {
  for (cpu::Isa isa : {cpu::Isa::kAvx2, cpu::Isa::kAvx512, cpu::Isa::kAvx512Amx}) {
    if (cpu::isa_available(isa)) continue;
    const std::string name(cpu::isa_name(isa));
    auto s = runtime::Session::create(tiny_graph(), cpu_options(name, 1));
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("'" + name + "' is not available"), std::string::npos) << s.error().message;
  }
}

TEST(CpuBackendErrors, UnknownConv3x3ChoiceIsNamed) {
  auto s = runtime::Session::create(tiny_graph(), cpu_options("auto", 1, "fast"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("'fast'"), std::string::npos) << s.error().message;
}

TEST(CpuBackendErrors, ThreadsBelowOneAreRefused) {
  for (int threads : {0, -2}) {
    auto s = runtime::Session::create(tiny_graph(), cpu_options("auto", threads));
    ASSERT_FALSE(s.ok()) << "threads " << threads;
    EXPECT_NE(s.error().message.find("threads"), std::string::npos) << s.error().message;
  }
}

}  // namespace
}  // namespace kiln
