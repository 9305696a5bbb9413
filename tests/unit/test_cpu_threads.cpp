// CpuBackendThreads: outputs of the CPU backend are bit for bit the same for
// 1-4 threads, fp32 and int8 (also run under ThreadSanitizer by
// scripts/test.sh, through kiln_thread_tests).
#include <gtest/gtest.h>

#include "cpu_test_util.h"

namespace kiln {
namespace {
using namespace cputest;

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


// An int8 chain (QuantizeLinear, QConv 3x3 with K > one tile and strides,
// 8-bit MaxPool, QConv 1x1, QGemm head, DequantizeLinear) on 1-4 threads:
// every byte equal to the single-thread run and to the reference.
TEST(CpuBackendThreads, Int8BitIdenticalForOneToFourThreads) {
  Net net(14100);
  ValueId x = net.input({2, 9, 21, 19}, -2.0f, 2.0f);
  ValueId q = net.node(OpKind::kQuantizeLinear, {x, net.cst(scalar_f32(0.017f)), net.cst(scalar_int(DType::kU8, 120))},
                       ir::QuantizeLinearAttrs{});
  const QParams u8{DType::kU8, DType::kU8, 120, 3, true};
  ir::QConvAttrs a1;
  a1.kernel_shape = {3, 3};
  a1.pads = {1, 1, 1, 1};
  a1.fused_relu = 1;
  std::vector<ValueId> in1 = q_inputs(net, q, net.cst(int_tensor(DType::kI8, {37, 9, 3, 3}, net.rng, -127, 127)), 37, 81, u8);
  in1.push_back(net.cst(int_tensor(DType::kI32, {37}, net.rng, -5000, 5000)));
  ValueId c1 = net.node(OpKind::kQConv, in1, a1);
  ir::MaxPoolAttrs mp;
  mp.kernel_shape = {2, 2};
  mp.strides = {2, 2};
  ValueId m = net.node(OpKind::kMaxPool, {c1}, mp);  // [2, 37, 10, 9]
  ir::QConvAttrs a2;
  a2.kernel_shape = {1, 1};
  const QParams u8b{DType::kU8, DType::kU8, 3, 9, false};
  ValueId c2 = net.node(OpKind::kQConv,
                        q_inputs(net, m, net.cst(int_tensor(DType::kI8, {23, 37, 1, 1}, net.rng, -127, 127)), 23, 37, u8b),
                        a2);
  ir::FlattenAttrs fa;
  fa.axis = 1;
  ValueId f = net.node(OpKind::kFlatten, {c2}, fa);  // [2, 23 * 90]
  ir::QGemmAttrs ga;
  ga.transB = 1;
  const QParams u8c{DType::kU8, DType::kU8, 9, 0, true};
  ValueId g = net.node(OpKind::kQGemm,
                       q_inputs(net, f, net.cst(int_tensor(DType::kI8, {31, 2070}, net.rng, -127, 127)), 31, 2070, u8c), ga);
  ValueId d = net.node(OpKind::kDequantizeLinear, {c2, net.cst(scalar_f32(0.05f)), net.cst(scalar_int(DType::kU8, 9))},
                       ir::DequantizeLinearAttrs{});
  ASSERT_TRUE(net.done({g, d}));
  auto ref = run_ref(net.g, net.feeds);
  ASSERT_TRUE(ref.ok()) << ref.error().message;
  for (const std::string& isa : available_isas())
    for (int threads : {1, 2, 3, 4}) {
      SCOPED_TRACE("isa " + isa + ", threads " + std::to_string(threads));
      auto got = run_cpu(net.g, net.feeds, isa, threads);
      ASSERT_TRUE(got.ok()) << got.error().message;
      EXPECT_NE(got->plan.find(" 0 on the reference kernels"), std::string::npos) << got->plan;
      ASSERT_EQ(got->outs.size(), ref->size());
      for (size_t o = 0; o < ref->size(); ++o) {
        const Tensor &a = got->outs[o], &b = (*ref)[o];
        ASSERT_EQ(a.shape(), b.shape());
        ASSERT_EQ(a.dtype(), b.dtype());
        EXPECT_EQ(std::memcmp(a.data<uint8_t>(), b.data<uint8_t>(), size_t(a.nbytes())), 0) << "output " << o;
      }
    }
}
}  // namespace
}  // namespace kiln
