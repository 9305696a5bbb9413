// The CPU backend (backends/cpu) against the reference backend on small random
// graphs, for every instruction set this machine has and 1 and 3 threads:
// Conv over a sweep of sizes, kernels, strides, pads, dilations and groups
// (depthwise too; 3x3 stride 1 on both the direct and the Winograd kernel),
// FusedConv with an activation and a residual, Gemm /
// FusedGemm / MatMul with odd sizes, Attention, LayerNormalization, Softmax,
// Transpose, pools, broadcasting binary ops and activations; ops the CPU
// kernels do not take run on the reference kernels inside the CPU plan.
// Each case also checks the printed plan, so that a case meant for a CPU
// kernel cannot pass by falling back; 3x3 convolutions are pinned to one
// kernel (conv3x3 "direct" or "winograd") except where "auto" is the subject.
// CpuBackendThreads: outputs are bit for bit the same for 1-4 threads (also
// run under ThreadSanitizer by scripts/test.sh, through kiln_thread_tests).
// Tolerance: max |cpu - ref| <= 1e-4 * max |ref|.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "backends/cpu/cpu_info.h"
#include "ir/edit.h"
#include "ir/infer.h"
#include "runtime/session.h"

namespace kiln {
namespace {

using ir::OpKind;
using ir::ValueId;

constexpr double kTol = 1e-4;

Tensor random_f32(const Shape& s, std::mt19937_64& rng, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::create(DType::kF32, s).value();
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

Tensor scalar_f32(float v) {
  Tensor t = Tensor::create(DType::kF32, {}).value();
  t.data<float>()[0] = v;
  return t;
}

// A graph under construction and the feeds for its inputs.
struct Net {
  ir::Graph g;
  std::vector<Tensor> feeds;
  std::mt19937_64 rng;
  int counter = 0;
  explicit Net(uint64_t seed = 1) : rng(seed) {}

  ValueId input(Tensor t) {
    ValueId id = g.add_value("in" + std::to_string(g.inputs.size()), {t.dtype(), t.shape(), true});
    g.inputs.push_back(id);
    feeds.push_back(std::move(t));
    return id;
  }
  ValueId input(const Shape& s, float lo = -1.0f, float hi = 1.0f) { return input(random_f32(s, rng, lo, hi)); }
  ValueId cst(Tensor t) { return g.add_constant(g.unique_name("c"), std::move(t)); }
  ValueId cst(const Shape& s, float lo = -1.0f, float hi = 1.0f) { return cst(random_f32(s, rng, lo, hi)); }
  ValueId node(OpKind op, std::vector<ValueId> in, ir::Attrs a = ir::NoAttrs{}) {
    return ir::append_node(g, "n" + std::to_string(counter++), op, std::move(in), std::move(a))[0];
  }
  // Finishes the graph (shape inference); false (with a test failure) when it does not infer.
  bool done(std::vector<ValueId> outs) {
    g.outputs = std::move(outs);
    auto r = ir::infer_graph(g);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok();
  }
};

std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (cpu::Isa isa : {cpu::Isa::kPortable, cpu::Isa::kAvx2, cpu::Isa::kAvx512})
    if (cpu::isa_available(isa)) out.emplace_back(cpu::isa_name(isa));
  return out;
}

struct CpuRun {
  std::vector<Tensor> outs;
  std::string plan;
};

Result<std::vector<Tensor>> run_backend(const ir::Graph& g, const std::vector<Tensor>& feeds,
                                        const runtime::SessionOptions& o, std::string* plan = nullptr) {
  KILN_ASSIGN(auto s, runtime::Session::create(g, o));
  KILN_ASSIGN(auto outs, s.run(feeds));
  if (plan) *plan = s.describe_plan();
  return outs;
}

Result<std::vector<Tensor>> run_ref(const ir::Graph& g, const std::vector<Tensor>& feeds) {
  runtime::SessionOptions o;
  o.backend = "reference";
  return run_backend(g, feeds, o);
}

// conv3x3 "direct" by default: "auto" picks a 3x3 kernel by timing it, so the
// plan (and the rounding) would depend on the machine's load.
runtime::SessionOptions cpu_options(const std::string& isa, int threads, const std::string& conv3x3 = "direct") {
  runtime::SessionOptions o;
  o.backend = "cpu";
  o.isa = isa;
  o.threads = threads;
  o.conv3x3 = conv3x3;
  return o;
}

Result<CpuRun> run_cpu(const ir::Graph& g, const std::vector<Tensor>& feeds, const std::string& isa, int threads,
                       const std::string& conv3x3 = "direct") {
  runtime::SessionOptions o = cpu_options(isa, threads, conv3x3);
  CpuRun r;
  KILN_ASSIGN(r.outs, run_backend(g, feeds, o, &r.plan));
  return r;
}

// max |got - want| / max |want| over every output; -1 on a shape or dtype mismatch.
double rel_error(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  if (got.size() != want.size()) return -1;
  double err = 0, scale = 1e-30;
  for (size_t o = 0; o < got.size(); ++o) {
    if (got[o].shape() != want[o].shape() || got[o].dtype() != want[o].dtype()) return -1;
    for (int64_t i = 0; i < want[o].numel(); ++i) {
      double w = want[o].as_double(i), d = std::fabs(got[o].as_double(i) - w);
      scale = std::max(scale, std::fabs(w));
      err = std::max(err, std::isnan(d) ? INFINITY : d);
    }
  }
  return err / scale;
}

enum class Expect { kCpu, kFallback };

// Runs the graph on the reference backend and on the CPU backend for every
// ISA here, with 1 and 3 threads; outputs must agree within kTol. The plan
// must name the ISA, contain `kernel` (when given) and, for Expect::kCpu, run
// no node on the reference kernels; for Expect::kFallback at least one.
void check(const Net& net, const std::string& what, const std::string& kernel, Expect expect = Expect::kCpu,
           double tol = kTol, const std::string& conv3x3 = "direct") {
  SCOPED_TRACE(what + " (conv3x3 " + conv3x3 + ")");
  auto ref = run_ref(net.g, net.feeds);
  ASSERT_TRUE(ref.ok()) << "reference: " << ref.error().message;
  for (const std::string& isa : available_isas())
    for (int threads : {1, 3}) {
      SCOPED_TRACE("isa " + isa + ", threads " + std::to_string(threads));
      auto cpu = run_cpu(net.g, net.feeds, isa, threads, conv3x3);
      ASSERT_TRUE(cpu.ok()) << "cpu: " << cpu.error().message;
      const std::string& plan = cpu->plan;
      EXPECT_NE(plan.find("kernels " + isa + " "), std::string::npos) << plan;
      if (!kernel.empty()) {
        EXPECT_NE(plan.find(kernel), std::string::npos) << "no '" << kernel << "' in\n" << plan;
      }
      const bool all_cpu = plan.find(" 0 on the reference kernels") != std::string::npos;
      EXPECT_EQ(all_cpu, expect == Expect::kCpu) << plan;
      double e = rel_error(cpu->outs, *ref);
      EXPECT_GE(e, 0) << "output shapes differ";
      EXPECT_LE(e, tol) << "relative max error " << e << "\n" << plan;
    }
}

// ---- Conv / FusedConv --------------------------------------------------------

struct ConvCase {
  int64_t n, cin, cout, h, w, kh, kw, sh, sw, dil, group;
  std::vector<int64_t> pads;  // ONNX order: top, left, bottom, right
  bool bias;
  ir::AutoPad auto_pad = ir::AutoPad::kNotSet;

  std::string str() const {
    std::ostringstream s;
    s << "N" << n << " Cin" << cin << " Cout" << cout << " " << h << "x" << w << " k" << kh << "x" << kw << " s" << sh
      << "," << sw << " d" << dil << " g" << group << " pads";
    for (int64_t p : pads) s << " " << p;
    s << (bias ? " bias" : " no-bias") << " auto_pad " << int(auto_pad);
    return s.str();
  }
  bool depthwise() const { return cin / group == 1 && cout / group == 1; }
  // The convolutions the Winograd kernel takes (when its work pays).
  bool winograd_shape() const { return group == 1 && kh == 3 && kw == 3 && sh == 1 && sw == 1 && dil == 1; }
  std::string direct_kernel() const {
    return depthwise() ? "conv2d_f32_depthwise_direct" : "conv2d_f32_implicit_gemm";
  }
  ir::ConvAttrs attrs() const {
    ir::ConvAttrs a;
    a.kernel_shape = {kh, kw};
    a.strides = {sh, sw};
    a.dilations = {dil, dil};
    a.pads = pads;
    a.group = group;
    a.auto_pad = auto_pad;
    return a;
  }
  // Output dims (explicit pads only).
  int64_t oh() const { return (h + pads[0] + pads[2] - (kh - 1) * dil - 1) / sh + 1; }
  int64_t ow() const { return (w + pads[1] + pads[3] - (kw - 1) * dil - 1) / sw + 1; }
};

std::vector<ValueId> conv_inputs(Net& net, const ConvCase& c) {
  ValueId x = net.input({c.n, c.cin, c.h, c.w});
  ValueId w = net.cst({c.cout, c.cin / c.group, c.kh, c.kw});
  std::vector<ValueId> in = {x, w};
  if (c.bias) in.push_back(net.cst({c.cout}));
  return in;
}

// Direct kernels always; a 3x3 stride-1 case also with conv3x3 "winograd"
// (which keeps the direct kernel where Winograd does not pay).
void check_conv(const ConvCase& c, uint64_t seed) {
  Net net(seed);
  ValueId y = net.node(OpKind::kConv, conv_inputs(net, c), c.attrs());
  ASSERT_TRUE(net.done({y}));
  check(net, "Conv " + c.str(), c.direct_kernel());
  if (c.winograd_shape()) check(net, "Conv " + c.str(), "conv2d_f32_", Expect::kCpu, kTol, "winograd");
}

TEST(CpuBackendConv, SweepOfSizesKernelsStridesPads) {
  const std::vector<std::vector<int64_t>> pad_forms = {{0, 0, 0, 0}, {1, 1, 1, 1}, {0, 1, 2, 1}};
  const std::vector<std::pair<int64_t, int64_t>> channels = {{3, 1}, {5, 7}, {17, 33}};
  int idx = 0;
  for (int64_t k : {1, 3, 5, 7})
    for (auto [cin, cout] : channels)
      for (int64_t stride : {1, 2}) {
        ConvCase c;
        c.n = idx % 2 ? 3 : 1;
        c.cin = cin;
        c.cout = cout;
        c.kh = c.kw = k;
        c.sh = c.sw = stride;
        c.dil = idx % 4 == 3 ? 2 : 1;
        c.group = 1;
        c.pads = pad_forms[size_t(idx % 3)];
        c.bias = (idx / 2) % 2 == 0;
        const int64_t extent = (k - 1) * c.dil + 1;
        c.h = extent + 4 + k % 2;  // odd and even, never a multiple of the tile
        c.w = extent + 3;
        check_conv(c, 100 + uint64_t(idx));
        ++idx;
      }
}

TEST(CpuBackendConv, GroupedDepthwiseDilatedAndOddShapes) {
  using P = std::vector<int64_t>;
  const std::vector<ConvCase> cases = {
      // grouped (group 2 / 3) with per-group channel counts that are not tile multiples
      {3, 10, 14, 9, 11, 3, 3, 1, 1, 1, 2, P{1, 1, 1, 1}, true},
      {1, 6, 2, 12, 10, 5, 5, 2, 2, 1, 2, P{0, 1, 2, 1}, false},
      {3, 9, 33, 7, 8, 1, 1, 1, 1, 1, 3, P{0, 0, 0, 0}, true},
      {1, 10, 14, 13, 13, 3, 3, 2, 2, 2, 2, P{2, 2, 2, 2}, true},
      // depthwise (group = C = Cout)
      {1, 17, 17, 13, 11, 3, 3, 1, 1, 1, 17, P{1, 1, 1, 1}, true},
      {3, 17, 17, 14, 15, 5, 5, 2, 2, 1, 17, P{2, 2, 2, 2}, false},
      {1, 17, 17, 13, 12, 3, 3, 1, 1, 2, 17, P{2, 2, 2, 2}, true},
      {3, 5, 5, 16, 13, 7, 7, 2, 2, 1, 5, P{0, 1, 3, 2}, true},
      {1, 3, 3, 9, 9, 3, 3, 2, 2, 1, 3, P{0, 0, 0, 0}, false},
      // depthwise with a channel multiplier (Cout = 2C): a grouped GEMM
      {3, 5, 10, 11, 9, 3, 3, 1, 1, 1, 5, P{1, 1, 1, 1}, true},
      // rectangular kernel and strides
      {1, 5, 7, 12, 17, 3, 5, 1, 2, 1, 1, P{1, 2, 1, 2}, true},
      {3, 3, 33, 15, 10, 5, 3, 2, 1, 2, 1, P{2, 0, 1, 1}, false},
      // the stride cuts off the end padding
      {1, 5, 7, 10, 10, 3, 3, 2, 2, 1, 1, P{1, 1, 1, 1}, true},
      {1, 5, 7, 10, 10, 1, 1, 2, 2, 1, 1, P{0, 0, 0, 0}, true},
      // output of a single pixel / larger K than one K block (17*25 = 425 > 256)
      {3, 17, 7, 5, 5, 5, 5, 1, 1, 1, 1, P{0, 0, 0, 0}, true},
      {1, 17, 33, 9, 7, 5, 5, 1, 1, 1, 1, P{2, 2, 2, 2}, true},
  };
  uint64_t seed = 500;
  for (const ConvCase& c : cases) check_conv(c, seed++);
}

TEST(CpuBackendConv, AutoPadSame) {
  for (ir::AutoPad ap : {ir::AutoPad::kSameUpper, ir::AutoPad::kSameLower, ir::AutoPad::kValid}) {
    ConvCase c{1, 5, 7, 10, 9, 3, 3, 2, 2, 1, 1, {}, true, ap};
    check_conv(c, 700 + uint64_t(ap));
    ConvCase dw{3, 6, 6, 11, 10, 4, 4, 2, 2, 1, 6, {}, false, ap};
    check_conv(dw, 710 + uint64_t(ap));
  }
}

TEST(CpuBackendConv, DeclinedFormsFallBack) {
  {
    Net net(800);  // 1-D convolution
    ir::ConvAttrs a;
    a.kernel_shape = {3};
    a.pads = {1, 1};
    ValueId y = net.node(OpKind::kConv, {net.input({2, 5, 17}), net.cst({7, 5, 3}), net.cst({7})}, a);
    ASSERT_TRUE(net.done({y}));
    check(net, "Conv 1-D", "reference (not a 2-D convolution)", Expect::kFallback);
  }
  {
    Net net(801);  // weights that are a graph input
    ir::ConvAttrs a;
    a.kernel_shape = {3, 3};
    ValueId y = net.node(OpKind::kConv, {net.input({1, 5, 9, 9}), net.input({7, 5, 3, 3})}, a);
    ASSERT_TRUE(net.done({y}));
    check(net, "Conv with input weights", "reference (weights are not a constant)", Expect::kFallback);
  }
}

TEST(CpuBackendConv, FusedConvActivationsAndResidual) {
  using P = std::vector<int64_t>;
  const std::vector<ConvCase> convs = {
      {3, 5, 7, 9, 11, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true},     // implicit GEMM
      {1, 17, 33, 8, 7, 3, 3, 2, 2, 1, 1, P{1, 1, 1, 1}, false},   // implicit GEMM, stride 2
      {3, 10, 14, 9, 11, 3, 3, 1, 1, 1, 2, P{0, 1, 2, 1}, true},   // grouped
      {1, 17, 17, 13, 11, 3, 3, 1, 1, 1, 17, P{1, 1, 1, 1}, true},  // depthwise
      {3, 6, 6, 12, 9, 5, 5, 2, 2, 1, 6, P{2, 2, 2, 2}, false},    // depthwise, stride 2
  };
  struct ActCase {
    ir::FusedActivation act;
    float alpha, beta;
    const char* name;
  };
  const ActCase acts[] = {{ir::FusedActivation::kRelu, 0, 0, "Relu"},
                          {ir::FusedActivation::kClip, 0, 6, "Clip(0,6)"},
                          {ir::FusedActivation::kNone, 0, 0, "None"}};
  uint64_t seed = 900;
  for (const ConvCase& c : convs)
    for (const ActCase& act : acts)
      for (bool residual : {false, true}) {
        Net net(seed++);
        std::vector<ValueId> in = conv_inputs(net, c);
        if (residual) {
          if (in.size() == 2) in.push_back(ir::kNoValue);
          in.push_back(net.input({c.n, c.cout, c.oh(), c.ow()}));
        }
        ir::FusedConvAttrs a;
        static_cast<ir::ConvAttrs&>(a) = c.attrs();
        a.activation = act.act;
        a.activation_alpha = act.alpha;
        a.activation_beta = act.beta;
        ValueId y = net.node(OpKind::kFusedConv, in, a);
        ASSERT_TRUE(net.done({y}));
        const std::string what = std::string("FusedConv ") + act.name + (residual ? " +Z " : " ") + c.str();
        check(net, what, c.direct_kernel());
        if (c.winograd_shape()) check(net, what, "conv2d_f32_winograd", Expect::kCpu, kTol, "winograd");
      }
}

// 3x3 stride-1 convolutions large enough for Winograd F(4x4, 3x3) to pay
// (winograd_pays in ops_winograd.cpp, with a margin for GEMM tiles of 4 to 32
// columns), with output sizes that are not multiples of the 4x4 tile, on both
// kernels.
TEST(CpuBackendConv, WinogradAndDirect3x3) {
  using P = std::vector<int64_t>;
  const std::vector<ConvCase> cases = {
      {1, 3, 7, 16, 15, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true},
      {3, 5, 1, 9, 10, 3, 3, 1, 1, 1, 1, P{0, 0, 0, 0}, false},
      {1, 17, 33, 15, 14, 3, 3, 1, 1, 1, 1, P{0, 1, 2, 1}, true},
      {3, 17, 33, 10, 9, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true},
      {1, 64, 40, 17, 19, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, false},
      {1, 300, 5, 17, 19, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true},  // Cin > one K block
      {3, 5, 7, 9, 7, 3, 3, 1, 1, 1, 1, P{2, 1, 0, 2}, true},
  };
  uint64_t seed = 600;
  for (const ConvCase& c : cases) {
    Net net(seed++);
    ValueId y = net.node(OpKind::kConv, conv_inputs(net, c), c.attrs());
    ASSERT_TRUE(net.done({y}));
    check(net, "Conv " + c.str(), "conv2d_f32_implicit_gemm");
    check(net, "Conv " + c.str(), "conv2d_f32_winograd_f4x4_3x3", Expect::kCpu, kTol, "winograd");
    // "auto" times both and keeps either: the result must match all the same.
    check(net, "Conv " + c.str(), "conv2d_f32_", Expect::kCpu, kTol, "auto");
  }
}

// A Conv followed by Relu / Add runs fused after the pass pipeline; the result
// must still match the unfused reference graph.
TEST(CpuBackendConv, PipelineFusedConvAddRelu) {
  Net net(31);
  ValueId x = net.input({3, 5, 10, 9});
  ir::ConvAttrs a;
  a.kernel_shape = {3, 3};
  a.pads = {1, 1, 1, 1};
  ValueId c1 = net.node(OpKind::kConv, {x, net.cst({7, 5, 3, 3}), net.cst({7})}, a);
  ValueId r1 = net.node(OpKind::kRelu, {c1});
  ValueId c2 = net.node(OpKind::kConv, {r1, net.cst({7, 7, 3, 3}), net.cst({7})}, a);
  ValueId s = net.node(OpKind::kAdd, {c2, r1});
  ValueId y = net.node(OpKind::kRelu, {s});
  ASSERT_TRUE(net.done({y}));
  check(net, "Conv-Relu-Conv-Add-Relu", "+residual +act");
  check(net, "Conv-Relu-Conv-Add-Relu", "conv2d_f32_winograd_f4x4_3x3(", Expect::kCpu, kTol, "winograd");
}

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
  for (cpu::Isa isa : {cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
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

// ---- determinism over thread counts ---------------------------------------------------

// A small conv net (implicit GEMM with K > kKc, depthwise, pool, residual,
// activations) with a Gemm head, and transformer-style ops on rows that do
// not split evenly: every output bit for bit equal for 1-4 threads.
TEST(CpuBackendThreads, BitIdenticalForOneToFourThreads) {
  Net net(14000);
  ValueId x = net.input({2, 5, 23, 19});
  ir::ConvAttrs p1;
  p1.kernel_shape = {3, 3};
  p1.pads = {1, 1, 1, 1};
  ValueId c1 = net.node(OpKind::kConv, {x, net.cst({19, 5, 3, 3}), net.cst({19})}, p1);
  ValueId r1 = net.node(OpKind::kRelu, {c1});
  ir::ConvAttrs p2 = p1;
  p2.strides = {2, 2};
  ValueId c2 = net.node(OpKind::kConv, {r1, net.cst({40, 19, 3, 3}), net.cst({40})}, p2);  // K = 171
  ir::ConvAttrs dw = p1;
  dw.group = 40;
  ValueId c3 = net.node(OpKind::kConv, {c2, net.cst({40, 1, 3, 3}), net.cst({40})}, dw);
  ValueId s3 = net.node(OpKind::kAdd, {c3, c2});
  ValueId h3 = net.node(OpKind::kHardSwish, {s3});
  ir::ConvAttrs p4 = p1;
  ValueId c4 = net.node(OpKind::kConv, {h3, net.cst({33, 40, 3, 3}), net.cst({33})}, p4);  // K = 360 > 256
  ValueId sg = net.node(OpKind::kSigmoid, {c4});
  ir::MaxPoolAttrs mp;
  mp.kernel_shape = {2, 2};
  mp.strides = {2, 2};
  mp.ceil_mode = 1;
  ValueId m = net.node(OpKind::kMaxPool, {sg}, mp);
  ir::FlattenAttrs fa;
  fa.axis = 1;
  ValueId f = net.node(OpKind::kFlatten, {m}, fa);  // [2, 33 * 6 * 5 = 990]
  ir::GemmAttrs ga;
  ga.transB = 1;
  ValueId logits = net.node(OpKind::kGemm, {f, net.cst({77, 990}), net.cst({77})}, ga);
  ValueId gap = net.node(OpKind::kGlobalAveragePool, {c4});

  // Sequence part: [3, 37, 61] -> LayerNorm -> MatMul -> Gelu -> attention -> Softmax.
  ValueId t = net.input({3, 37, 61}, -2, 2);
  ir::LayerNormAttrs ln;
  ValueId n1 = net.node(OpKind::kLayerNormalization, {t, net.cst({61}, 0.5f, 1.5f), net.cst({61})}, ln);
  ValueId mm = net.node(OpKind::kMatMul, {n1, net.cst({61, 300})});  // K 61, N 300
  ValueId ge = net.node(OpKind::kGelu, {mm}, ir::GeluAttrs{});
  ValueId q = net.node(OpKind::kMatMul, {ge, net.cst({300, 32}, -0.1f, 0.1f)});
  ir::AttentionAttrs at;
  at.scale = 0.17677669f;
  ValueId att = net.node(OpKind::kAttention, {q, q, ge}, at);  // [3, 37, 300]
  ValueId bm = net.node(OpKind::kMatMul, {att, net.input({3, 300, 29})});
  ValueId sm = net.node(OpKind::kSoftmax, {bm}, ir::SoftmaxAttrs{-1});
  // A large elementwise tensor whose split points are not multiples of 8.
  ValueId big = net.input({100003});
  ValueId sg2 = net.node(OpKind::kGelu, {big}, ir::GeluAttrs{});
  ValueId mul = net.node(OpKind::kMul, {sg2, big});
  ASSERT_TRUE(net.done({logits, gap, sm, mul}));

  auto ref = run_ref(net.g, net.feeds);
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  // Both 3x3 kernels, each pinned ("auto" picks one by timing, per session).
  for (const std::string conv3x3 : {"direct", "winograd"})
    for (const std::string& isa : available_isas()) {
      SCOPED_TRACE("isa " + isa + ", conv3x3 " + conv3x3);
      auto one = run_cpu(net.g, net.feeds, isa, 1, conv3x3);
      ASSERT_TRUE(one.ok()) << one.error().message;
      EXPECT_NE(one->plan.find(" 0 on the reference kernels"), std::string::npos) << one->plan;
      EXPECT_EQ(one->plan.find("winograd") != std::string::npos, conv3x3 == "winograd") << one->plan;
      EXPECT_LE(rel_error(one->outs, *ref), kTol);
      for (int threads : {2, 3, 4}) {
        auto s = runtime::Session::create(net.g, cpu_options(isa, threads, conv3x3));
        ASSERT_TRUE(s.ok()) << s.error().message;
        for (int rep = 0; rep < 2; ++rep) {  // the second run reuses the specialization
          auto got = s->run(net.feeds);
          ASSERT_TRUE(got.ok()) << got.error().message;
          ASSERT_EQ(got->size(), one->outs.size());
          for (size_t o = 0; o < got->size(); ++o) {
            const Tensor &a = (*got)[o], &b = one->outs[o];
            ASSERT_EQ(a.shape(), b.shape());
            int64_t first_diff = -1;
            for (int64_t i = 0; i < a.numel() && first_diff < 0; ++i)
              if (std::memcmp(a.data<float>() + i, b.data<float>() + i, sizeof(float)) != 0) first_diff = i;
            EXPECT_EQ(first_diff, -1) << "output " << o << " differs with " << threads << " threads (run " << rep
                                      << ") first at element " << first_diff << ": "
                                      << (first_diff >= 0 ? a.data<float>()[first_diff] : 0.0f) << " vs "
                                      << (first_diff >= 0 ? b.data<float>()[first_diff] : 0.0f);
          }
        }
      }
    }
}

}  // namespace
}  // namespace kiln
