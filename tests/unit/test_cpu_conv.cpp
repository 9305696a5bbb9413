// The CPU backend's Conv / FusedConv against the reference backend (see
// cpu_test_util.h): a sweep of sizes, kernels, strides, pads, dilations and
// groups (depthwise too; 3x3 stride 1 on both the direct and the Winograd
// kernel), FusedConv with an activation and a residual, auto_pad, and the
// forms the CPU kernels decline. Tolerance: max |cpu - ref| <= 1e-4 * max |ref|.
#include <gtest/gtest.h>

#include <numeric>

#include "backends/cpu/cpu_info.h"
#include "backends/cpu/kernel_set.h"
#include "backends/cpu/step.h"
#include "cpu_test_util.h"

namespace kiln {
namespace {
using namespace cputest;

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
  // Strided stems (at most 4 input channels, at least 64 taps) run the
  // direct tile on kernel sets with one (AVX2, AVX-512), implicit GEMM
  // elsewhere.
  bool direct_tile_shape() const {
    return group == 1 && !depthwise() && (sh > 1 || sw > 1) && cin <= 4 && cin * kh * kw >= 64;
  }
  // The sets whose tile is wide (AVX-512) take every kernel larger than 1x1
  // with at least 64 taps that Winograd does not take, and stems from 27 taps.
  bool wide_direct_shape() const {
    return group == 1 && !depthwise() && kh * kw > 1 &&
           (cin * kh * kw >= 64 || ((sh > 1 || sw > 1) && cin <= 4 && cin * kh * kw >= 27));
  }
  // 1x1 layers with many weights per output pixel take the chunked tile
  // where the batch does not share out by images (AVX-512).
  bool weighty_1x1() const {
    return group == 1 && kh * kw == 1 && cin * cout / (n * oh() * ow()) >= (sh * sw == 1 ? 1000 : 10000);
  }
  std::string direct_kernel() const {
    return depthwise() ? "conv2d_f32_depthwise_direct"
           : direct_tile_shape() || wide_direct_shape() || weighty_1x1()
               ? "conv2d_f32_implicit_gemm|conv2d_f32_direct("
               : "conv2d_f32_implicit_gemm";
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

// FusedConv(X, W[, B][, Z]) with the activation, Z a random input of the
// output's shape when `residual`.
ValueId fused_conv(Net& net, const ConvCase& c, ir::FusedActivation act, float alpha, float beta, bool residual) {
  std::vector<ValueId> in = conv_inputs(net, c);
  if (residual) {
    if (in.size() == 2) in.push_back(ir::kNoValue);
    in.push_back(net.input({c.n, c.cout, c.oh(), c.ow()}));
  }
  ir::FusedConvAttrs a;
  static_cast<ir::ConvAttrs&>(a) = c.attrs();
  a.activation = act;
  a.activation_alpha = alpha;
  a.activation_beta = beta;
  return net.node(OpKind::kFusedConv, in, a);
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
      // depthwise: rows of several 8-column blocks plus a tail, 4-row blocks
      // plus 2- and 1-row remainders, odd pads, stride 2 with dilation, stride 3
      {1, 4, 4, 23, 37, 3, 3, 1, 1, 1, 4, P{1, 1, 1, 1}, true},
      {2, 3, 3, 29, 45, 3, 3, 2, 2, 1, 3, P{0, 1, 1, 0}, false},
      {1, 3, 3, 21, 26, 3, 3, 2, 2, 2, 3, P{2, 3, 2, 1}, true},
      {1, 3, 3, 20, 26, 3, 3, 3, 3, 1, 3, P{1, 1, 1, 1}, true},
      {1, 2, 2, 18, 35, 5, 5, 3, 3, 1, 2, P{2, 2, 2, 2}, false},
      {1, 2, 2, 7, 7, 3, 3, 1, 1, 1, 2, P{1, 1, 1, 1}, true},
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
      // 1x1 stride 1 over wide images (B copied k row by k row): several
      // column tasks, a partial last panel, K over one block (300 > 256)
      {1, 300, 13, 23, 23, 1, 1, 1, 1, 1, 1, P{0, 0, 0, 0}, true},
      {2, 24, 40, 17, 33, 1, 1, 1, 1, 1, 1, P{0, 0, 0, 0}, false},
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
      {1, 8, 9, 16, 17, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true},    // Winograd F(4x4): whole and edge tiles
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
        ValueId y = fused_conv(net, c, act.act, act.alpha, act.beta, residual);
        ASSERT_TRUE(net.done({y}));
        const std::string what = std::string("FusedConv ") + act.name + (residual ? " +Z " : " ") + c.str();
        check(net, what, c.direct_kernel());
        if (c.winograd_shape()) check(net, what, "conv2d_f32_winograd", Expect::kCpu, kTol, "winograd");
      }
}

// Depthwise 3x3 / 5x5 at stride 1 / 2 with 8 channels or more: whole
// groups of 8 channels run channel-blocked (depthwise8 in kernels_impl.inc),
// the remaining channels one plane at a time. Planes down to 1x1 and 2x3
// (short rows read and stored whole only inside the planes), rows of several
// 8-column runs plus a tail, batches, asymmetric pads; FusedConv with an
// activation the kernel applies (Clip), one it leaves to the caller
// (HardSwish), and a residual.
TEST(CpuBackendConv, DepthwiseChannelBlocked) {
  using P = std::vector<int64_t>;
  const std::vector<ConvCase> cases = {
      {2, 19, 19, 1, 1, 3, 3, 1, 1, 1, 19, P{1, 1, 1, 1}, true},
      {1, 16, 16, 2, 3, 3, 3, 2, 2, 1, 16, P{1, 1, 1, 1}, false},
      {3, 24, 24, 14, 14, 3, 3, 2, 2, 1, 24, P{0, 0, 1, 1}, true},
      {1, 9, 9, 7, 7, 5, 5, 1, 1, 1, 9, P{2, 2, 2, 2}, true},
      {2, 16, 16, 23, 21, 5, 5, 2, 2, 1, 16, P{2, 1, 2, 1}, true},
      {1, 8, 8, 5, 19, 3, 3, 1, 1, 1, 8, P{0, 0, 0, 0}, true},
      {1, 40, 40, 28, 28, 3, 3, 1, 1, 1, 40, P{1, 1, 1, 1}, true},
  };
  const ir::FusedActivation acts[] = {ir::FusedActivation::kClip, ir::FusedActivation::kHardSwish};
  uint64_t seed = 1500;
  for (const ConvCase& c : cases) {
    check_conv(c, seed++);
    for (bool residual : {false, true})
      for (ir::FusedActivation act : acts) {
        Net net(seed++);
        ValueId y = fused_conv(net, c, act, -0.5f, 0.5f, residual);
        ASSERT_TRUE(net.done({y}));
        check(net, std::string("FusedConv ") + (residual ? "+Z " : "") + c.str(), "nchw8c");
      }
  }
}

// Weights over 512 KiB against at most 256 output pixels: gemm_f32 splits
// the rows over the tasks and packs the image once for all of them
// (rows_first in gemm.cpp); with 1 and 3 threads, a batch of 2, an output
// channel count that is not a multiple of the tile, residual and Relu.
TEST(CpuBackendConv, LargeWeightsFewPixelsSplitByRows) {
  using P = std::vector<int64_t>;
  const std::vector<ConvCase> convs = {
      {2, 576, 250, 7, 7, 1, 1, 1, 1, 1, 1, P{0, 0, 0, 0}, true},   // K 576, 49 pixels
      {1, 64, 250, 13, 13, 3, 3, 2, 2, 1, 1, P{1, 1, 1, 1}, false},  // K 576, stride 2, 49 pixels
      {1, 300, 500, 11, 9, 1, 1, 1, 1, 1, 1, P{0, 0, 0, 0}, true},   // K 300 > one block, 99 pixels
  };
  uint64_t seed = 1400;
  for (const ConvCase& c : convs)
    for (bool residual : {false, true}) {
      Net net(seed++);
      ValueId y = fused_conv(net, c, residual ? ir::FusedActivation::kRelu : ir::FusedActivation::kNone, 0, 0, residual);
      ASSERT_TRUE(net.done({y}));
      check(net, std::string("FusedConv ") + (residual ? "+Z Relu " : "") + c.str(),
            c.direct_kernel());
    }
}

// The direct tile (KernelSet::conv_direct, AVX2: 6 pixels x 16 output
// channels, AVX-512: 12 x 32, pixels read in place), taken for stems of at
// most 4 input channels and 64 taps or more, and on AVX-512 for every kernel
// larger than 1x1 with 64 taps or more: output channel counts that leave
// part of a block, pixel counts that leave part of a tile, batches,
// dilation, uneven strides, asymmetric pads, residuals, Relu and Clip in the
// tile; and shapes it does not take (implicit GEMM then): mobilenet_v2's
// 27-tap first layer, HardSwish, and on AVX2 more input channels.
// A case of the direct tiles' tests: a FusedConv with its activation, a
// residual or not, and (DirectChunkedTile) whether AVX-512 takes the chunked tile.
struct TileCase {
  ConvCase c;
  ir::FusedActivation act;
  bool residual;
  bool chunked = true;
};

TEST(CpuBackendConv, DirectStridedTile) {
  using P = std::vector<int64_t>;
  using A = ir::FusedActivation;
  const std::vector<TileCase> cases = {
      {{2, 3, 64, 29, 31, 7, 7, 2, 2, 1, 1, P{3, 3, 3, 3}, true}, A::kRelu, false},  // resnet conv1, smaller
      {{1, 3, 20, 23, 23, 5, 5, 2, 2, 1, 1, P{0, 0, 1, 1}, true}, A::kClip, false},  // 75 taps, 20 channels
      {{3, 4, 33, 9, 8, 5, 5, 2, 2, 1, 1, P{2, 2, 2, 2}, false}, A::kNone, false},   // 100 taps, 33 channels
      {{1, 2, 9, 15, 13, 7, 7, 2, 3, 2, 1, P{2, 1, 0, 2}, true}, A::kClip, false},   // dilation, uneven strides
      {{1, 3, 7, 4, 4, 5, 5, 3, 3, 1, 1, P{1, 1, 1, 1}, true}, A::kNone, false},     // one output pixel: a partial tile
      {{1, 3, 40, 20, 30, 7, 7, 2, 1, 1, 1, P{3, 3, 3, 3}, true}, A::kRelu, false},  // column stride 1, 40 channels
      {{1, 3, 32, 23, 23, 3, 3, 2, 2, 1, 1, P{0, 0, 1, 1}, true}, A::kClip, false},  // 27 taps: AVX-512 only
      {{1, 2, 16, 15, 15, 3, 3, 2, 2, 1, 1, P{1, 1, 1, 1}, true}, A::kClip, false},  // 18 taps: not taken
      {{1, 17, 33, 9, 8, 3, 3, 2, 2, 1, 1, P{1, 1, 1, 1}, true}, A::kRelu, false},   // 17 channels: AVX-512 only
      {{1, 17, 45, 9, 8, 3, 3, 2, 2, 1, 1, P{1, 1, 1, 1}, true}, A::kClip, true},    // the same, a residual
      {{1, 40, 37, 7, 7, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true}, A::kRelu, true},    // stride 1: AVX-512 only
      {{1, 3, 64, 29, 31, 7, 7, 2, 2, 1, 1, P{3, 3, 3, 3}, true}, A::kRelu, true},   // a residual
      {{4, 17, 45, 9, 8, 3, 3, 2, 2, 1, 1, P{1, 1, 1, 1}, true}, A::kRelu, true},    // a batch: image tasks (1 thread)
      {{5, 40, 37, 7, 7, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true}, A::kClip, true},    // block tasks (3 threads)
      {{1, 3, 64, 29, 31, 7, 7, 2, 2, 1, 1, P{3, 3, 3, 3}, true}, A::kHardSwish, false},
  };
  uint64_t seed = 1500;
  for (const TileCase& k : cases) {
    Net net(seed++);
    ValueId y = fused_conv(net, k.c, k.act, 0.0f, 6.0f, k.residual);
    ASSERT_TRUE(net.done({y}));
    const bool act_ok = k.act != A::kHardSwish;
    const std::string what = std::string("FusedConv ") + (k.residual ? "+Z " : "") + k.c.str();
    check(net, what, act_ok ? k.c.direct_kernel() : "conv2d_f32_implicit_gemm");
    for (cpu::Isa isa : {cpu::Isa::kAvx2, cpu::Isa::kAvx512}) {
      if (!cpu::isa_available(isa)) continue;
      const bool taken = act_ok && (k.c.direct_tile_shape() || (isa == cpu::Isa::kAvx512 && k.c.wide_direct_shape()));
      const std::string name(cpu::isa_name(isa));
      auto r = run_cpu(net.g, net.feeds, name, 2);
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ(r->plan.find("conv2d_f32_direct(" + name) != std::string::npos, taken) << what << "\n" << r->plan;
    }
  }
}

// The chunked direct tile (KernelSet::conv_chunk, AVX-512: 7 pixels x 64
// output channels), taken for layers with many input channels where a block
// of channels runs over the tiles of a batch or of a large image: reductions
// cut into several chunks with a shorter last one, tasks of several groups
// of tiles, a partial block of channels, a partial last tile, tiles that
// span two images (2 images on 3 threads), stride 2, 1x1 layers with many
// weights per pixel, residuals, Relu and Clip. The 12x32 tile keeps batches
// whose images share out evenly, and layers with too few output channels
// for 64 lanes.
TEST(CpuBackendConv, DirectChunkedTile) {
  using P = std::vector<int64_t>;
  using A = ir::FusedActivation;
  const std::vector<TileCase> cases = {
      {{1, 40, 120, 28, 28, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true}, A::kRelu, true},  // 6 chunks, 7 groups, 64 + 56
      {{2, 17, 45, 9, 8, 3, 3, 2, 2, 1, 1, P{1, 1, 1, 1}, true}, A::kClip, true},    // 20 pixels: a tile across images
      {{1, 64, 64, 5, 4, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, false}, A::kClip, false},  // tiles of 7, 7 and 6 pixels
      {{1, 130, 33, 15, 15, 3, 3, 2, 2, 1, 1, P{1, 1, 1, 1}, true}, A::kNone, false}, // stride 2, 130 channels
      {{1, 512, 200, 7, 7, 1, 1, 1, 1, 1, 1, P{0, 0, 0, 0}, true}, A::kRelu, true},   // 1x1, 2090 weights per pixel
      {{1, 512, 1100, 8, 8, 1, 1, 2, 2, 1, 1, P{0, 0, 0, 0}, false}, A::kNone, true}, // 1x1 stride 2, 35200 per pixel
      // LeNet's second layer: 20 of the chunked tile's 64 lanes; the 12x32 tile
      {{1, 10, 20, 12, 12, 5, 5, 1, 1, 1, 1, P{0, 0, 0, 0}, true}, A::kRelu, false, false},
  };
  uint64_t seed = 1700;
  for (const TileCase& k : cases) {
    Net net(seed++);
    ValueId y = fused_conv(net, k.c, k.act, 0.0f, 0.5f, k.residual);
    ASSERT_TRUE(net.done({y}));
    const std::string what = std::string("FusedConv ") + (k.residual ? "+Z " : "") + k.c.str();
    check(net, what, "conv2d_f32_implicit_gemm|conv2d_f32_direct(");
    if (!cpu::isa_available(cpu::Isa::kAvx512)) continue;
    auto r = run_cpu(net.g, net.feeds, "avx512", 3);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->plan.find("7px x 64oc, chunks of taps") != std::string::npos, k.chunked) << what << "\n" << r->plan;
    EXPECT_EQ(r->plan.find("12px x 32oc") != std::string::npos, !k.chunked) << what << "\n" << r->plan;
  }
}

// 3x3 stride-1 convolutions large enough for Winograd to pay (winograd_tile
// in ops_winograd.cpp, with a margin for GEMM tiles of 4 to 32 columns), with
// output sizes that are not multiples of the tile, on both kernels; the tile
// (F(4x4) or F(2x2), whichever pads less GEMM work) is pinned per case.
TEST(CpuBackendConv, WinogradAndDirect3x3) {
  using P = std::vector<int64_t>;
  const std::vector<ConvCase> cases = {
      {1, 3, 7, 16, 15, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true},    // F(4x4)
      {1, 24, 20, 7, 7, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true},    // 7x7 (ResNet's last stage): F(2x2)
      {1, 9, 13, 6, 5, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, false},   // F(2x2) with edge tiles
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
    check(net, "Conv " + c.str(), c.direct_kernel());
    // With the AVX2 tile (16 columns) the first case takes F(4x4), the 7x7 one F(2x2).
    if (seed == 601) EXPECT_EQ(cpu::winograd_tile_forced(c.n, c.oh(), c.ow(), 16), 4);
    if (seed == 602) EXPECT_EQ(cpu::winograd_tile_forced(c.n, c.oh(), c.ow(), 16), 2);
    for (const std::string& name : available_isas()) {
      cpu::Isa isa;
      ASSERT_TRUE(cpu::parse_isa(name, &isa));
      const int tile = cpu::winograd_tile_forced(c.n, c.oh(), c.ow(), cpu::kernel_set(isa).nr);
      const std::string want = tile == 4 ? "conv2d_f32_winograd_f4x4_3x3" : "conv2d_f32_winograd_f2x2_3x3";
      auto r = run_cpu(net.g, net.feeds, name, 1, "winograd");
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_NE(r->plan.find(want), std::string::npos) << r->plan;
    }
    check(net, "Conv " + c.str(), "conv2d_f32_winograd_f", Expect::kCpu, kTol, "winograd");
    // "auto" times both and keeps either: the result must match all the same.
    check(net, "Conv " + c.str(), "conv2d_f32_", Expect::kCpu, kTol, "auto");
  }
}

// A batch's Winograd GEMMs cut into tasks (winograd_blocking): on resnet18's
// shapes at batch 32 with AVX-512's 12x32 tile, the 7x7 layers' 36 MiB of
// transformed weights are read by blocks of two or more panels, not once per
// panel, and neither layer shares its rows out (a pass through memory);
// with one panel the rows are shared so that both threads work. Over a
// sweep of shapes the cut stays in range and, given 4 panel pairs per
// thread or more, loads no thread with more than 1.5x an even share. (With
// fewer, sharing the rows out can cost more traffic than it saves time.)
TEST(CpuBackendConv, WinogradBlocking) {
  const int64_t mib = 1 << 20;
  auto l4 = cpu::winograd_blocking(4, 43, 512, 36, 12, 32, 2, mib);
  EXPECT_GE(l4.panels, 2);
  EXPECT_EQ(l4.row_blocks, 1);
  auto l3 = cpu::winograd_blocking(16, 22, 256, 36, 12, 32, 2, mib);
  EXPECT_EQ(l3.row_blocks, 1);
  EXPECT_LE(l3.panels, 8);
  auto one = cpu::winograd_blocking(1, 22, 256, 36, 12, 32, 2, mib);
  EXPECT_GE(one.row_blocks, 2);
  for (int64_t cols : {1, 2, 3, 7, 16, 49, 196})
    for (int64_t rows : {1, 2, 5, 11, 43, 86})
      for (int64_t c : {3, 64, 512})
        for (int threads : {1, 2, 3, 8})
          for (int pts : {16, 36}) {
            auto b = cpu::winograd_blocking(cols, rows, c, pts, 12, 32, threads, mib);
            SCOPED_TRACE(std::to_string(cols) + " panels, " + std::to_string(rows) + " row panels, c " +
                         std::to_string(c) + ", threads " + std::to_string(threads) + ", pts " + std::to_string(pts));
            EXPECT_GE(b.panels, 1);
            EXPECT_LE(b.panels, cols);
            EXPECT_GE(b.row_blocks, 1);
            EXPECT_LE(b.row_blocks, rows);
            // The busiest thread's panel pairs: within 1.5x of an even share.
            const int64_t tasks = (cols + b.panels - 1) / b.panels * b.row_blocks;
            const int64_t busiest = (tasks + threads - 1) / threads * b.panels * ((rows + b.row_blocks - 1) / b.row_blocks);
            if (cols * rows >= 4 * threads)
              EXPECT_LE(2 * busiest, 3 * ((cols * rows + threads - 1) / threads)) << b.panels << " x " << b.row_blocks;
          }
}

// Winograd with more output channels than a task computes at once (the
// products of its row panels go in blocks of half of L2) and with tasks of
// several panels and shares of the rows, on every ISA with 1 and 3 threads.
TEST(CpuBackendConv, WinogradBlocksOfProducts) {
  using P = std::vector<int64_t>;
  const ConvCase c{4, 32, 480, 16, 16, 3, 3, 1, 1, 1, 1, P{1, 1, 1, 1}, true};
  Net net(611);
  ValueId y = net.node(OpKind::kConv, conv_inputs(net, c), c.attrs());
  ASSERT_TRUE(net.done({y}));
  check(net, "Conv " + c.str(), "conv2d_f32_winograd_f", Expect::kCpu, kTol, "winograd");
  // What the cuts above covered, by the same rules the step follows.
  bool several_panels = false, blocks_of_rows = false;
  for (const std::string& name : available_isas()) {
    cpu::Isa isa;
    ASSERT_TRUE(cpu::parse_isa(name, &isa));
    const cpu::KernelSet& ks = cpu::kernel_set(isa);
    const int tm = cpu::winograd_tile_forced(c.n, c.oh(), c.ow(), ks.nr), a = tm + 2;
    const int64_t tiles = c.n * ((c.oh() + tm - 1) / tm) * ((c.ow() + tm - 1) / tm);
    const int64_t cols = (tiles + ks.nr - 1) / ks.nr, rows = (c.cout + ks.mr - 1) / ks.mr;
    const int64_t budget = cpu::cpu_info().l2_bytes / 2;
    for (int threads : {1, 3}) {
      auto b = cpu::winograd_blocking(cols, rows, c.cin, a * a, ks.mr, ks.nr, threads, budget);
      several_panels |= b.panels > 1;
      const int64_t per_task = (rows + b.row_blocks - 1) / b.row_blocks;
      blocks_of_rows |= per_task * std::min(b.panels, cols) * a * a * ks.mr * ks.nr * 4 > budget;
    }
  }
  EXPECT_TRUE(several_panels);
  EXPECT_TRUE(blocks_of_rows);
}

// A 1x1 expansion (FusedConv, no activation) of x's c channels to e, then
// a 3x3 depthwise Conv with pad 1 reading it; *mid gets the expansion.
static ValueId expand_depthwise(Net& net, ValueId x, int64_t c, int64_t e, ValueId* mid) {
  ir::FusedConvAttrs a1;
  a1.kernel_shape = {1, 1};
  *mid = net.node(OpKind::kFusedConv, {x, net.cst({e, c, 1, 1})}, a1);
  ir::ConvAttrs a2;
  a2.kernel_shape = {3, 3};
  a2.pads = {1, 1, 1, 1};
  a2.group = e;
  return net.node(OpKind::kConv, {*mid, net.cst({e, 1, 3, 3})}, a2);
}

// An expansion 1x1 conv and the depthwise conv that reads it run as one step
// (ops_conv_block.cpp) when the pair qualifies; otherwise as two. The 120x120
// and 150x150 cases do not fit half of any L2 as whole planes: they run in
// bands of rows, whose overlapping input rows are computed twice.
TEST(CpuBackendConv, ExpansionAndDepthwisePair) {
  using A = ir::FusedActivation;
  struct Case {
    int64_t n, c, e, h, w, k, s, pad;
    A act1, act2;
    bool fused;
    const char* what;
  };
  const std::vector<Case> cases = {
      {1, 5, 24, 9, 11, 3, 1, 1, A::kClip, A::kClip, true, "MobileNet-v2's form, odd sizes"},
      {3, 16, 40, 16, 17, 3, 2, 1, A::kRelu, A::kNone, true, "a batch, stride 2, 40 channels (24 + 16)"},
      {2, 7, 16, 13, 10, 5, 2, 2, A::kNone, A::kClip, true, "5x5 stride 2"},
      {1, 8, 24, 120, 120, 3, 2, 1, A::kClip, A::kClip, true, "bands of rows, stride 2"},
      {2, 6, 48, 150, 150, 5, 1, 2, A::kClip, A::kRelu, true, "bands of rows, 5x5 stride 1"},
      {1, 5, 20, 9, 9, 3, 1, 1, A::kClip, A::kClip, false, "20 channels: not a multiple of 8"},
      {1, 5, 24, 9, 9, 3, 1, 1, A::kHardSwish, A::kClip, false, "an activation the epilogue does not take"},
  };
  uint64_t seed = 2100;
  for (const Case& k : cases) {
    Net net(seed++);
    ValueId x = net.input({k.n, k.c, k.h, k.w});
    ir::FusedConvAttrs a1;
    a1.kernel_shape = {1, 1};
    a1.activation = k.act1;
    a1.activation_beta = 6.0f;
    ValueId mid = net.node(OpKind::kFusedConv, {x, net.cst({k.e, k.c, 1, 1}), net.cst({k.e})}, a1);
    ir::FusedConvAttrs a2;
    a2.kernel_shape = {k.k, k.k};
    a2.strides = {k.s, k.s};
    a2.pads = {k.pad, k.pad, k.pad, k.pad};
    a2.group = k.e;
    a2.activation = k.act2;
    a2.activation_beta = 6.0f;
    ValueId y = net.node(OpKind::kFusedConv, {mid, net.cst({k.e, 1, k.k, k.k}), net.cst({k.e})}, a2);
    ASSERT_TRUE(net.done({y}));
    check(net, k.what, k.fused ? "conv2d_f32_expand_depthwise" : "conv2d_f32_depthwise_direct");
    if (!k.fused) {
      auto r = run_cpu(net.g, net.feeds, "portable", 1);
      ASSERT_TRUE(r.ok()) << r.error().message;
      EXPECT_EQ(r->plan.find("expand_depthwise"), std::string::npos) << k.what << "\n" << r->plan;
    }
  }
  // Form 2: the pair's input is an activation that the expansion reads last.
  // The fused step still reads it while it writes the depthwise output, so
  // the memory plan must not let that output take the input's place.
  {
    Net net(seed++);
    ValueId x = net.node(OpKind::kRelu, {net.input({2, 8, 20, 20})}), mid;
    ValueId y = expand_depthwise(net, x, 8, 32, &mid);
    ASSERT_TRUE(net.done({y}));
    check(net, "input read last by the expansion", "conv2d_f32_expand_depthwise");
  }
  // The intermediate also a graph output, or read by a second node: two steps.
  for (int form = 0; form < 2; ++form) {
    Net net(seed++);
    ValueId mid, y = expand_depthwise(net, net.input({1, 4, 10, 10}), 4, 16, &mid);
    std::vector<ValueId> outs = {y};
    if (form == 0) outs.push_back(mid);
    else outs[0] = net.node(OpKind::kAdd, {y, net.node(OpKind::kRelu, {mid})});
    ASSERT_TRUE(net.done(outs));
    check(net, form == 0 ? "intermediate is an output" : "intermediate has two readers", "conv2d_f32_depthwise_direct");
  }
}

// Whole blocks: expansion, depthwise and projection (with MobileNet-v2's
// residual, the block's input) as one step where the batch gives every
// thread 2 images or more; with fewer the projection stays a step of its
// own. A depthwise conv and its projection alone (the first block) likewise.
TEST(CpuBackendConv, InvertedResidualBlock) {
  using A = ir::FusedActivation;
  struct Case {
    int64_t n, c, e, p, h, w, k, s;
    bool expand, residual, always;  // always: the projection is in the step with 1 and 3 threads
    const char* what;
  };
  const std::vector<Case> cases = {
      {6, 8, 48, 8, 14, 13, 3, 1, true, true, true, "a residual block: fused with 1 and 3 threads"},
      {2, 16, 40, 24, 17, 16, 3, 2, true, false, false, "stride 2, no residual: the projection alone with 3 threads"},
      {2, 8, 48, 8, 120, 120, 3, 1, true, true, false, "bands of rows with the projection"},
      {6, 32, 32, 16, 30, 30, 3, 1, false, false, true, "a depthwise conv and its projection"},
      {2, 24, 24, 40, 11, 12, 5, 2, false, false, false, "depthwise 5x5/2 and projection; with 3 threads not fused"},
      {6, 16, 64, 64, 4, 4, 3, 1, true, false, false, "weights outweigh the pixels: the projection alone"},
  };
  uint64_t seed = 2300;
  for (const Case& k : cases) {
    Net net(seed++);
    ValueId x = net.input({k.n, k.c, k.h, k.w});
    ValueId mid = x;
    if (k.expand) {
      ir::FusedConvAttrs a1;
      a1.kernel_shape = {1, 1};
      a1.activation = A::kClip;
      a1.activation_beta = 6.0f;
      mid = net.node(OpKind::kFusedConv, {x, net.cst({k.e, k.c, 1, 1}), net.cst({k.e})}, a1);
    }
    ir::FusedConvAttrs a2;
    a2.kernel_shape = {k.k, k.k};
    a2.strides = {k.s, k.s};
    a2.pads = {k.k / 2, k.k / 2, k.k / 2, k.k / 2};
    a2.group = k.e;
    a2.activation = A::kClip;
    a2.activation_beta = 6.0f;
    ValueId d = net.node(OpKind::kFusedConv, {mid, net.cst({k.e, 1, k.k, k.k}), net.cst({k.e})}, a2);
    ir::FusedConvAttrs a3;
    a3.kernel_shape = {1, 1};
    a3.activation = A::kNone;
    std::vector<ValueId> in3 = {d, net.cst({k.p, k.e, 1, 1}), net.cst({k.p})};
    if (k.residual) in3.push_back(x);
    ValueId y = net.node(OpKind::kFusedConv, in3, a3);
    ASSERT_TRUE(net.done({y}));
    const std::string stem = std::string("conv2d_f32_") + (k.expand ? "expand_" : "") + "depthwise";
    check(net, k.what, stem);
    for (int threads : {1, 3}) {
      auto r = run_cpu(net.g, net.feeds, "portable", threads);
      ASSERT_TRUE(r.ok()) << r.error().message;
      const cpu::ConvBlockShape shape{k.n, k.c, k.e, k.h, k.w, (k.h - 1) / k.s + 1, (k.w - 1) / k.s + 1, k.k, k.s,
                                      k.expand, k.p};
      const bool project = cpu::project_pays(shape, cpu::kernel_set(cpu::Isa::kPortable).mr, threads);
      if (k.n < 2 * threads) EXPECT_FALSE(project);
      if (k.always) EXPECT_TRUE(project);
      if (k.p * k.e > shape.oh * shape.ow * (k.e + k.p)) EXPECT_FALSE(project);
      EXPECT_EQ(r->plan.find(stem + "_project(") != std::string::npos, project) << k.what << "\n" << r->plan;
      if (project) {
        const size_t at = r->plan.find("_project("), eol = r->plan.find('\n', at);
        EXPECT_EQ(r->plan.substr(at, eol - at).find("+residual") != std::string::npos, k.residual) << k.what;
      }
    }
  }
}

// The cut of a block's work: chunks of whole 8-channel groups (and whole
// GEMM row panels where there are enough channels), within the budget where
// the narrowest band allows it, and work for every thread.
TEST(CpuBackendConv, ConvBlockTiling) {
  struct Case {
    cpu::ConvBlockShape b;
    int mr, threads;
    int64_t budget;
  };
  const std::vector<Case> cases = {
      {{32, 16, 96, 112, 112, 56, 56, 3, 2, true, 0}, 12, 2, 1 << 20},   // MobileNet-v2 features.2, batch 32
      {{32, 16, 96, 112, 112, 56, 56, 3, 2, true, 24}, 12, 2, 1 << 20},  // the same with its projection
      {{1, 16, 96, 112, 112, 56, 56, 3, 2, true, 0}, 12, 2, 1 << 20},    // batch 1
      {{1, 160, 960, 7, 7, 7, 7, 3, 1, true, 0}, 12, 2, 1 << 20},        // 7x7, many channels
      {{1, 24, 144, 56, 56, 56, 56, 3, 1, true, 0}, 6, 8, 256 << 10},    // AVX2's mr, 8 threads, small budget
      {{4, 8, 16, 9, 9, 5, 5, 3, 2, true, 0}, 12, 3, 1 << 20},           // fewer channels than a panel
      {{1, 8, 24, 300, 300, 300, 300, 5, 1, true, 0}, 12, 1, 64 << 10},  // one row barely fits
      {{32, 32, 32, 112, 112, 112, 112, 3, 1, false, 16}, 12, 2, 1 << 20},  // features.1: depthwise + projection
      {{4, 24, 144, 56, 56, 56, 56, 3, 1, true, 24}, 12, 2, 1 << 20},    // projection, 2 images per thread
  };
  for (const Case& k : cases) {
    const cpu::ConvBlockShape& b = k.b;
    SCOPED_TRACE(std::to_string(b.e) + " channels " + std::to_string(b.h) + "x" + std::to_string(b.w) + " batch " +
                 std::to_string(b.n) + " threads " + std::to_string(k.threads) + " projection " + std::to_string(b.p));
    const auto t = cpu::conv_block_tiling(b, k.mr, k.threads, k.budget);
    const int64_t chunks = (b.e + t.chunk - 1) / t.chunk, bands = (b.oh + t.band - 1) / t.band;
    const int64_t least = b.expand ? std::min<int64_t>(b.e, std::lcm<int64_t>(8, k.mr)) : b.e;
    EXPECT_EQ(t.chunk % 8, 0);
    EXPECT_TRUE(t.chunk == b.e || (b.expand && t.chunk % std::lcm<int64_t>(8, k.mr) == 0)) << t.chunk;
    EXPECT_GE(t.band, 1);
    EXPECT_LE(t.band, b.oh);
    EXPECT_GE(t.groups, 1);
    EXPECT_LE(t.groups, chunks);
    if (b.p) EXPECT_EQ(t.groups, 1);
    auto bytes = [&](int64_t chunk, int64_t band) {
      const int64_t rows = std::min(b.h, (band - 1) * b.s + b.k);
      return ((b.expand ? (chunk + b.c) * rows * b.w : 0) + (b.p ? b.e * band * b.ow : 0)) * 4;
    };
    if (bytes(least, 1) <= k.budget) EXPECT_LE(bytes(t.chunk, t.band), k.budget);
    const int64_t tasks = b.n * bands * t.groups;
    const int64_t most = b.n * b.oh * (b.p ? 1 : b.e / 8);
    if (most >= 4 * k.threads) EXPECT_GE(tasks, 4 * k.threads) << t.chunk << " " << t.band;
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
  check(net, "Conv-Relu-Conv-Add-Relu", "conv2d_f32_winograd_f", Expect::kCpu, kTol, "winograd");
}

}  // namespace
}  // namespace kiln
