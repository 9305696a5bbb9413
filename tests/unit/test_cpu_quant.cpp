// The CPU backend's integer path against the reference backend, bit for bit
// (see cpu_test_util.h: every ISA here, 1 and 3 threads, plan checked):
// QConv and QGemm (u8 and i8 activations and outputs, per-channel and
// per-tensor weight scales, bias, fused Relu, odd sizes, strides, pads,
// groups, K odd; 3x3 stride 1 also on the integer Winograd kernel),
// QuantizeLinear / DequantizeLinear (ties, NaN, infinities,
// saturation, odd lengths), 8-bit MaxPool, depthwise QConv, and the forms
// that decline to the reference kernels. The requantization row kernel of each ISA is also
// checked directly against quant::requantize over random and tie values.
#include <gtest/gtest.h>

#include <limits>

#include "backends/cpu/qkernels.h"
#include "cpu_test_util.h"
#include "ir/ops/kiln_quant.h"
#include "ir/ops/quant.h"
#include "quant/quant_params.h"

namespace kiln {
namespace {
using namespace cputest;

struct QConvCase {
  int64_t n, c, m, h, w, k, s, pad, group;
  bool bias, relu;
  QParams p;
};

void check_qconv(const QConvCase& q, uint64_t seed, const std::string& kernel = "conv2d_qs8_implicit_gemm",
                 Expect expect = Expect::kCpu) {
  Net net(seed);
  const int64_t xlo = q.p.xt == DType::kU8 ? 0 : -128, xhi = q.p.xt == DType::kU8 ? 255 : 127;
  ValueId x = net.input(int_tensor(q.p.xt, {q.n, q.c, q.h, q.w}, net.rng, xlo, xhi));
  ValueId w = net.cst(int_tensor(DType::kI8, {q.m, q.c / q.group, q.k, q.k}, net.rng, -127, 127));
  std::vector<ValueId> in = q_inputs(net, x, w, q.m, q.c / q.group * q.k * q.k, q.p);
  if (q.bias) in.push_back(net.cst(int_tensor(DType::kI32, {q.m}, net.rng, -30000, 30000)));
  ir::QConvAttrs a;
  a.kernel_shape = {q.k, q.k};
  a.strides = {q.s, q.s};
  a.pads = {q.pad, q.pad, q.pad, q.pad};
  a.group = q.group;
  a.fused_relu = q.relu;
  ValueId y = net.node(OpKind::kQConv, in, a);
  ASSERT_TRUE(net.done({y}));
  std::ostringstream what;
  what << "QConv N" << q.n << " C" << q.c << " M" << q.m << " " << q.h << "x" << q.w << " k" << q.k << " s" << q.s
       << " p" << q.pad << " g" << q.group << (q.bias ? " bias" : "") << (q.relu ? " relu" : "") << " x "
       << dtype_name(q.p.xt) << " zp " << q.p.x_zp << " y " << dtype_name(q.p.yt) << " zp " << q.p.y_zp
       << (q.p.per_channel ? " per-channel" : " per-tensor");
  check(net, what.str(), kernel, expect, 0.0);
  // 3x3 stride 1: also the exact integer Winograd kernel.
  if (expect == Expect::kCpu && q.k == 3 && q.s == 1 && q.group == 1)
    check(net, what.str(), "conv2d_qs8_winograd_f2x2_3x3", expect, 0.0, "winograd");
}

TEST(CpuBackendQuant, QConvSweep) {
  const QParams u8{DType::kU8, DType::kU8, 3, 0, true};
  const QParams u8zp{DType::kU8, DType::kU8, 131, 77, false};
  const QParams s8{DType::kI8, DType::kI8, -5, 2, true};
  const QParams mixed{DType::kU8, DType::kI8, 0, -10, true};
  const QConvCase cases[] = {
      {1, 3, 8, 9, 11, 3, 1, 1, 1, true, true, u8},      // K = 27 (odd)
      {1, 16, 19, 14, 14, 3, 1, 1, 1, true, false, u8zp}, // channels not a multiple of the tile
      {2, 7, 13, 17, 16, 1, 1, 0, 1, false, true, s8},   // 1x1, 16 contiguous columns
      {1, 5, 6, 23, 21, 7, 2, 3, 1, true, true, mixed},  // 7x7 stride 2 (ResNet's stem)
      {1, 12, 20, 10, 9, 3, 2, 1, 2, true, false, u8},   // groups
      {1, 33, 40, 32, 33, 3, 1, 1, 1, true, true, u8zp}, // several column chunks
      {1, 64, 6, 5, 5, 3, 1, 0, 1, false, false, s8},    // K = 576, tiny output
      {1, 4, 10, 12, 40, 3, 2, 1, 1, true, true, u8zp},  // stride 2, 16-column panels within a row
      {2, 6, 9, 8, 36, 1, 2, 0, 1, true, false, s8},     // 1x1 stride 2 (ResNet's downsample)
      {1, 5, 17, 6, 70, 3, 2, 1, 1, true, false, s8},    // stride 2, 32-column panels within a row
  };
  uint64_t seed = 500;
  for (const QConvCase& c : cases) check_qconv(c, seed++);
}

TEST(CpuBackendQuant, DepthwiseQConv) {
  const QParams u8{DType::kU8, DType::kU8, 10, 5, true};
  const QParams s8{DType::kI8, DType::kI8, -4, 3, false};
  check_qconv({1, 8, 8, 9, 9, 3, 1, 1, 8, true, true, u8}, 600, "conv2d_qs8_depthwise_direct");
  check_qconv({2, 13, 13, 14, 11, 3, 2, 1, 13, false, false, s8}, 601, "conv2d_qs8_depthwise_direct");  // stride 2
  check_qconv({1, 5, 5, 12, 12, 5, 1, 2, 5, true, false, u8}, 602, "conv2d_qs8_depthwise_direct");    // 5x5
}

TEST(CpuBackendQuant, QGemmForms) {
  struct Case {
    Shape a;
    int64_t n;
    bool transB, bias, relu;
    QParams p;
  };
  const Case cases[] = {
      {{1, 512}, 1000, true, true, false, {DType::kU8, DType::kU8, 7, 100, true}},
      {{5, 33}, 17, false, true, true, {DType::kU8, DType::kI8, 128, 3, false}},
      {{2, 7, 29}, 40, true, false, false, {DType::kI8, DType::kI8, -3, -1, true}},
  };
  uint64_t seed = 700;
  for (const Case& c : cases) {
    Net net(seed++);
    const int64_t k = c.a.back();
    const int64_t xlo = c.p.xt == DType::kU8 ? 0 : -128, xhi = c.p.xt == DType::kU8 ? 255 : 127;
    ValueId a = net.input(int_tensor(c.p.xt, c.a, net.rng, xlo, xhi));
    ValueId b = net.cst(int_tensor(DType::kI8, c.transB ? Shape{c.n, k} : Shape{k, c.n}, net.rng, -127, 127));
    std::vector<ValueId> in = q_inputs(net, a, b, c.n, k, c.p);
    if (c.bias) in.push_back(net.cst(int_tensor(DType::kI32, {c.n}, net.rng, -30000, 30000)));
    ir::QGemmAttrs at;
    at.transB = c.transB;
    at.fused_relu = c.relu;
    ValueId y = net.node(OpKind::kQGemm, in, at);
    ASSERT_TRUE(net.done({y}));
    check(net, "QGemm a " + shape_str(c.a) + " n " + std::to_string(c.n), "gemm_qs8", Expect::kCpu, 0.0);
  }
}

// Values that probe the rounding: exact ties (k + 0.5) * scale, NaN, infinities,
// values far outside the range, and an odd length (vector tails).
Tensor tricky_floats(int64_t n, float scale, std::mt19937_64& rng) {
  Tensor t = random_f32({n}, rng, -3.0f, 3.0f);
  float* p = t.data<float>();
  std::uniform_int_distribution<int> k(-140, 140);
  for (int64_t i = 0; i < n; i += 3) p[i] = (float(k(rng)) + 0.5f) * scale;
  p[1] = std::numeric_limits<float>::quiet_NaN();
  p[4] = std::numeric_limits<float>::infinity();
  p[7] = -std::numeric_limits<float>::infinity();
  p[10] = 1e30f;
  p[13] = -1e30f;
  p[16] = -0.0f;
  return t;
}

// QAdd (the residual add of a lowered QDQ graph): u8 and i8 operands and
// outputs, with and without the fused Relu, a length that splits over tasks
// and 1024-element chunks with tails, and output scales that make ties.
TEST(CpuBackendQuant, QAdd) {
  struct Case {
    DType ta, tb, ty;
    float sa, sb, sy;
    int32_t za, zb, zy;
    bool relu;
  };
  const Case cases[] = {
      {DType::kU8, DType::kU8, DType::kU8, 0.02f, 0.03f, 0.04f, 128, 3, 0, true},
      {DType::kU8, DType::kU8, DType::kU8, 0.0625f, 0.0625f, 0.125f, 10, 250, 7, false},  // sums on half steps: ties
      {DType::kI8, DType::kU8, DType::kI8, 0.011f, 0.07f, 0.05f, -9, 100, 4, true},
      {DType::kI8, DType::kI8, DType::kU8, 0.5f, 0.25f, 0.003f, 0, -128, 200, false},  // saturates both ways
  };
  uint64_t seed = 850;
  for (const Case& c : cases) {
    Net net(seed++);
    auto range = [](DType t) { return t == DType::kU8 ? std::pair<int64_t, int64_t>{0, 255} : std::pair<int64_t, int64_t>{-128, 127}; };
    const Shape s = {1, 7, 61, 73};  // 31171 elements
    ValueId a = net.input(int_tensor(c.ta, s, net.rng, range(c.ta).first, range(c.ta).second));
    ValueId b = net.input(int_tensor(c.tb, s, net.rng, range(c.tb).first, range(c.tb).second));
    ir::QAddAttrs at;
    at.fused_relu = c.relu;
    ValueId y = net.node(OpKind::kQAdd,
                         {a, net.cst(scalar_f32(c.sa)), net.cst(scalar_int(c.ta, c.za)), b, net.cst(scalar_f32(c.sb)),
                          net.cst(scalar_int(c.tb, c.zb)), net.cst(scalar_f32(c.sy)), net.cst(scalar_int(c.ty, c.zy))},
                         at);
    ASSERT_TRUE(net.done({y}));
    check(net, "QAdd " + std::string(dtype_name(c.ta)) + " + " + std::string(dtype_name(c.tb)) + " -> " +
                   std::string(dtype_name(c.ty)) + (c.relu ? " relu" : ""),
          "add_qs8", Expect::kCpu, 0.0);
  }
}

TEST(CpuBackendQuant, QuantizeDequantizeRoundTrip) {
  struct Case {
    DType t;
    int32_t zp;
    float scale;
  };
  const Case cases[] = {{DType::kU8, 128, 0.0235f}, {DType::kU8, 0, 0.01f}, {DType::kI8, -7, 0.05f}, {DType::kI8, 0, 0.013f}};
  uint64_t seed = 800;
  for (const Case& c : cases) {
    Net net(seed++);
    ValueId x = net.input(tricky_floats(1001, c.scale, net.rng));
    ValueId s = net.cst(scalar_f32(c.scale));
    ValueId z = net.cst(scalar_int(c.t, c.zp));
    ValueId q = net.node(OpKind::kQuantizeLinear, {x, s, z}, ir::QuantizeLinearAttrs{});
    ValueId d = net.node(OpKind::kDequantizeLinear, {q, s, z}, ir::DequantizeLinearAttrs{});
    ASSERT_TRUE(net.done({q, d}));
    check(net, "Q/DQ " + std::string(dtype_name(c.t)) + " zp " + std::to_string(c.zp), "quantize_f32_", Expect::kCpu,
          0.0);
  }
}

TEST(CpuBackendQuant, PerAxisQuantizeFallsBack) {
  Net net(900);
  ValueId x = net.input({2, 3, 4});
  Tensor s = random_f32({3}, net.rng, 0.01f, 0.05f);
  ValueId q = net.node(OpKind::kQuantizeLinear, {x, net.cst(std::move(s))}, ir::QuantizeLinearAttrs{});
  ASSERT_TRUE(net.done({q}));
  check(net, "per-axis QuantizeLinear", "", Expect::kFallback, 0.0);
}

// ResNet's 3x3 stride-2 window (rows narrower than a vector, and rows of 37
// and 38 columns: vector loops with tails), and stride 3 with dilation 2
// (taps falling in every stride phase of the row max).
TEST(CpuBackendQuant, MaxPool8Bit) {
  for (DType t : {DType::kU8, DType::kI8})
    for (int64_t form : {0, 1, 2, 3}) {
      Net net(t == DType::kU8 ? 910 + form : 920 + form);
      const Shape xs = form < 2 ? Shape{2, 5, 13, 12} : Shape{1, 3, 9, 35 + form};
      ValueId x = net.input(int_tensor(t, xs, net.rng, t == DType::kU8 ? 0 : -128, t == DType::kU8 ? 255 : 127));
      ir::MaxPoolAttrs mp;
      mp.kernel_shape = {3, 3};
      mp.strides = form != 1 ? std::vector<int64_t>{2, 2} : std::vector<int64_t>{3, 3};
      mp.pads = form != 1 ? std::vector<int64_t>{1, 1, 1, 1} : std::vector<int64_t>{2, 1, 0, 2};
      if (form == 1) mp.dilations = {2, 2};
      ValueId y = net.node(OpKind::kMaxPool, {x}, mp);
      ASSERT_TRUE(net.done({y}));
      check(net, "MaxPool " + std::string(dtype_name(t)) + " form " + std::to_string(form), "maxpool2d_", Expect::kCpu,
            0.0);
    }
}

// Each ISA's requant_row against quant::requantize: random sums and shifts,
// exact ties (acc * multiplier = (2q + 1) * 2^(shift-1)), the int32 extremes,
// a zero multiplier, both output types, lengths with tails.
TEST(CpuBackendQuant, RequantRowMatchesDefinition) {
  std::mt19937_64 rng(1000);
  std::uniform_int_distribution<int32_t> acc_d(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
  std::uniform_int_distribution<int32_t> small(-70000, 70000);
  for (cpu::Isa isa : {cpu::Isa::kPortable, cpu::Isa::kAvx2, cpu::Isa::kAvx512, cpu::Isa::kAvx512Amx}) {
    if (!cpu::isa_available(isa)) continue;
    const cpu::QKernels& k = cpu::qkernels(isa);
    for (int trial = 0; trial < 300; ++trial) {
      const bool is_signed = trial % 2 == 1;
      const double real = trial == 7 ? 0.0 : std::ldexp(1.0 + double(trial % 13) / 13.0, -(trial % 30) - 1);
      cpu::QRow r;
      if (real > 0) {
        auto rq = quant::make_requant(real);
        ASSERT_TRUE(rq.ok());
        r.set_requant(rq->multiplier, rq->shift);
      }
      r.bias = small(rng);
      r.zero_point = is_signed ? trial % 20 - 10 : trial % 200;
      r.lo = is_signed ? -128 : 0;
      r.hi = is_signed ? 127 : 255;
      if (trial % 5 == 0) r.lo = r.zero_point;  // fused Relu
      const int64_t n = 1 + trial % 41;
      std::vector<int32_t> acc(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        acc[size_t(i)] = i % 4 == 0 ? acc_d(rng) : small(rng);
        if (i % 7 == 3 && r.multiplier != 0 && r.shift <= 40) {
          // A tie: pick q, then acc with (acc + bias) * m = (2q + 1) * 2^(shift - 1) when m divides it.
          const int64_t target = (2 * int64_t(small(rng) % 50) + 1) << (r.shift - 1);
          if (target % r.multiplier == 0) acc[size_t(i)] = int32_t(target / r.multiplier - r.bias);
        }
      }
      acc[0] = std::numeric_limits<int32_t>::min();
      if (n > 1) acc[1] = std::numeric_limits<int32_t>::max();
      std::vector<uint8_t> got(static_cast<size_t>(n));
      k.requant_row(acc.data(), n, r, got.data(), is_signed);
      for (int64_t i = 0; i < n; ++i) {
        const int32_t want = quant::requantize(int32_t(uint32_t(acc[size_t(i)]) + uint32_t(r.bias)),
                                               quant::Requant{r.multiplier, r.shift}, r.zero_point, r.lo, r.hi);
        const int32_t g = is_signed ? int32_t(int8_t(got[size_t(i)])) : int32_t(got[size_t(i)]);
        ASSERT_EQ(g, want) << cpu::isa_name(isa) << " trial " << trial << " element " << i << " acc " << acc[size_t(i)];
      }
    }
  }
}

}  // namespace
}  // namespace kiln
