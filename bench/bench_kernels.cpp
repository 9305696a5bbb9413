// Kernel microbenchmarks (Google Benchmark) of the CPU backend on shapes taken
// from the benchmark models: the fp32 GEMM driver (resnet18's 3x3 convolutions
// as implicit GEMM, the transformer's projections) and the depthwise kernels,
// per plane and channel-blocked (mobilenet_v2), for every kernel set this CPU
// runs and 1 and 2 pool threads.
// Counters: GFLOP/s (a multiply-add counts 2); the depthwise kernels, which are
// memory bound, also report bytes_per_second (input read + output written).
// Not a test (no ctest; the kernels are tested in
// tests/unit/test_cpu_kernels.cpp). Run:
//   bench_kernels --benchmark_min_time=0.05 [--benchmark_filter=avx2]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/cpu_info.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kernel_set.h"
#include "backends/cpu/step.h"
#include "core/thread_pool.h"

namespace {

using namespace kiln;
using namespace kiln::cpu;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Runs body once per benchmark iteration and sets the GFLOP/s counter from
// the loop's wall time: with a pool of 2 the worker's share is not on the
// calling thread's CPU clock (the benchmarks are registered UseRealTime for
// the same reason). A plain number, not a Counter rate, so that the console
// shows "GFLOP/s=77.7" rather than a rate of a rate.
template <class F>
void timed_loop(benchmark::State& st, double flops_per_iter, F&& body) {
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : st) {
    body();
    benchmark::ClobberMemory();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  st.counters["GFLOP/s"] = s > 0 ? flops_per_iter * double(st.iterations()) / s * 1e-9 : 0.0;
}

// A convolution's GEMM as ops_conv.cpp sets it up: packed weights (A,
// m x k) against the image read through `view` (B, k x n) into c (m x n).
GemmJob conv_job(int64_t m, int64_t n, int64_t k, const Packed& a, const float* image, const MatrixView& view,
                 float* c) {
  GemmJob j;
  j.m = m;
  j.n = n;
  j.k = k;
  j.a_packed = &a;
  j.b = image;
  j.b_view = &view;
  j.c = c;
  j.ldc = n;
  return j;
}

// A 3x3 stride-1 pad-1 convolution run the way ops_conv.cpp runs it: weights
// packed once as A (M = Cout, K = Cin*9), the zero-bordered image read through
// the im2col offset view as B (N = H*W). The padding copy itself is not timed.
struct ConvCase {
  const char* name;
  int64_t cin, cout, h, w;
};

void bench_conv_gemm(benchmark::State& st, const ConvCase cc, Isa isa, int threads) {
  const KernelSet& ks = kernel_set(isa);
  ThreadPool pool(threads);
  const int64_t hp = cc.h + 2, wp = cc.w + 2, m = cc.cout, k = cc.cin * 9, n = cc.h * cc.w;
  std::vector<float> weights = random_floats(size_t(m * k), 1);
  std::vector<float> image(size_t(cc.cin * hp * wp), 0.0f);
  std::vector<float> interior = random_floats(size_t(cc.cin * cc.h * cc.w), 2);
  for (int64_t c = 0; c < cc.cin; ++c)
    for (int64_t y = 0; y < cc.h; ++y)
      for (int64_t x = 0; x < cc.w; ++x)
        image[size_t((c * hp + y + 1) * wp + x + 1)] = interior[size_t((c * cc.h + y) * cc.w + x)];
  Packed a = pack_a(weights.data(), MatrixView::dense(m, k, k), ks.mr);
  MatrixView view;
  for (int64_t ci = 0; ci < cc.cin; ++ci)
    for (int64_t ky = 0; ky < 3; ++ky)
      for (int64_t kx = 0; kx < 3; ++kx) view.row_off.push_back(ci * hp * wp + ky * wp + kx);
  for (int64_t oy = 0; oy < cc.h; ++oy)
    for (int64_t ox = 0; ox < cc.w; ++ox) view.col_off.push_back(oy * wp + ox);
  std::vector<float> out(size_t(m * n));
  const GemmJob j = conv_job(m, n, k, a, image.data(), view, out.data());
  timed_loop(st, 2.0 * double(m) * double(n) * double(k), [&] { gemm_f32(&j, 1, ks, &pool); });
}

// A MatMul with constant weights as ops_linalg.cpp runs it: activations
// [M, K] read through a dense view (packed per call), weights [K, N] packed
// once as B.
struct MatMulCase {
  const char* name;
  int64_t m, k, n;
};

void bench_matmul_gemm(benchmark::State& st, const MatMulCase mc, Isa isa, int threads) {
  const KernelSet& ks = kernel_set(isa);
  ThreadPool pool(threads);
  std::vector<float> act = random_floats(size_t(mc.m * mc.k), 3);
  std::vector<float> weights = random_floats(size_t(mc.k * mc.n), 4);
  MatrixView a_view = MatrixView::dense(mc.m, mc.k, mc.k);
  Packed b = pack_b(weights.data(), MatrixView::dense(mc.k, mc.n, mc.n), ks.nr);
  std::vector<float> out(size_t(mc.m * mc.n));
  GemmJob j;
  j.m = mc.m;
  j.n = mc.n;
  j.k = mc.k;
  j.a = act.data();
  j.a_view = &a_view;
  j.b_packed = &b;
  j.c = out.data();
  j.ldc = mc.n;
  timed_loop(st, 2.0 * double(mc.m) * double(mc.n) * double(mc.k), [&] { gemm_f32(&j, 1, ks, &pool); });
}

// A 3x3 pad-1 depthwise convolution with mobilenet_v2's fused ReLU6, split
// over channels as ops_conv.cpp splits it. The kernel pads each plane into
// its thread's scratch itself, so that copy is part of what is timed.
struct DepthwiseCase {
  const char* name;
  int64_t c, h, w, stride;
};

void bench_depthwise(benchmark::State& st, const DepthwiseCase dc, Isa isa, int threads) {
  const KernelSet& ks = kernel_set(isa);
  ThreadPool pool(threads);
  const int64_t oh = (dc.h + 2 - 3) / dc.stride + 1, ow = (dc.w + 2 - 3) / dc.stride + 1;
  std::vector<float> in = random_floats(size_t(dc.c * dc.h * dc.w), 5);
  std::vector<float> weights = random_floats(size_t(dc.c * 9), 6);
  std::vector<float> bias = random_floats(size_t(dc.c), 7);
  std::vector<float> out(size_t(dc.c * oh * ow));
  const double outputs = double(dc.c * oh * ow);
  timed_loop(st, 2.0 * 9.0 * outputs, [&] {
    parallel_ranges(&pool, dc.c, 1, [&](int64_t b, int64_t e) {
      thread_local std::vector<float> scratch;
      for (int64_t ch = b; ch < e; ++ch) {
        DepthwiseArgs a{in.data() + ch * dc.h * dc.w, out.data() + ch * oh * ow, weights.data() + ch * 9,
                        bias[size_t(ch)], dc.h, dc.w, 1, 1, dc.h + 2, dc.w + 2, oh, ow, 3, 3, dc.stride, dc.stride, 1, 1,
                        Act::kClip, 0.0f, 6.0f, nullptr};
        scratch.resize(size_t(depthwise_scratch_floats(a)));
        a.scratch = scratch.data();
        ks.depthwise(a);
      }
    });
  });
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(4.0 * (double(dc.c * dc.h * dc.w) + outputs)));
}

// The same on the channel-blocked kernel (what the CPU backend runs for
// every whole group of 8 channels): a task per group, the eight planes
// transposed into scratch and the output rows back, all timed.
void bench_depthwise8(benchmark::State& st, const DepthwiseCase dc, Isa isa, int threads) {
  const KernelSet& ks = kernel_set(isa);
  ThreadPool pool(threads);
  const int64_t oh = (dc.h + 2 - 3) / dc.stride + 1, ow = (dc.w + 2 - 3) / dc.stride + 1;
  const int64_t groups = dc.c / 8;
  std::vector<float> in = random_floats(size_t(dc.c * dc.h * dc.w), 5);
  std::vector<float> weights = random_floats(size_t(groups * 8 * 9), 6);  // [group][tap][8]
  std::vector<float> bias = random_floats(size_t(groups * 8), 7);
  std::vector<float> out(size_t(dc.c * oh * ow));
  const double outputs = double(groups * 8 * oh * ow);
  timed_loop(st, 2.0 * 9.0 * outputs, [&] {
    parallel_ranges(&pool, groups, 1, [&](int64_t b, int64_t e) {
      thread_local std::vector<float> scratch;
      for (int64_t g = b; g < e; ++g) {
        Depthwise8Args a{in.data() + g * 8 * dc.h * dc.w, out.data() + g * 8 * oh * ow, dc.h * dc.w, oh * ow,
                         weights.data() + g * 8 * 9, bias.data() + g * 8, dc.h, dc.w, 1, 1, dc.h + 2, dc.w + 2, oh, ow,
                         3, dc.stride, Act::kClip, 0.0f, 6.0f, nullptr};
        scratch.resize(size_t(depthwise8_scratch_floats(a)));
        a.scratch = scratch.data();
        ks.depthwise8(a);
      }
    });
  });
  st.SetBytesProcessed(int64_t(st.iterations()) * int64_t(4.0 * (double(dc.c * dc.h * dc.w) + outputs)));
}

// The last panel of a GEMM with 1-4 columns left (a 7x7 image's 49 = 3 x 16
// + 1, a 14x14 image's 196 = 12 x 16 + 4): the narrow kernel against the
// half-width tile into scratch that gemm.cpp ran before it, over one L1-warm
// A and B panel (kc = 256). GFLOP/s counts the valid columns only.
void bench_tail(benchmark::State& st, Isa isa, int cols, bool narrow) {
  const KernelSet& ks = kernel_set(isa);
  const int64_t kc = 256;
  std::vector<float> a = random_floats(size_t(kc * ks.mr), 8), b = random_floats(size_t(kc * ks.nr), 9);
  std::vector<float> c(size_t(ks.mr * 64)), tile(size_t(ks.mr * ks.nr));
  timed_loop(st, 2.0 * double(ks.mr * cols * kc), [&] {
    if (narrow) {
      ks.gemm_ukernel_narrow(kc, a.data(), b.data(), ks.nr, cols, c.data(), 64, false, ks.mr);
    } else {
      ks.gemm_ukernel_half(kc, a.data(), b.data(), tile.data(), ks.nr, false);
      for (int i = 0; i < ks.mr; ++i) std::copy(tile.data() + i * ks.nr, tile.data() + i * ks.nr + cols, c.data() + i * 64);
    }
  });
}

// A 1x1 stride-1 convolution as implicit GEMM (M = Cout, K = Cin, N = H*W,
// B read through the image's dense view), with and without the narrow tail
// kernel (narrow_cols = 0: the half-width tile into scratch, as before it).
struct PointwiseCase {
  const char* name;
  int64_t cin, cout, hw;
};

void bench_pointwise(benchmark::State& st, const PointwiseCase pc, Isa isa, bool narrow) {
  KernelSet ks = kernel_set(isa);
  if (!narrow) ks.narrow_cols = 0;
  const int64_t m = pc.cout, k = pc.cin, n = pc.hw;
  std::vector<float> weights = random_floats(size_t(m * k), 10), image = random_floats(size_t(k * n), 11);
  std::vector<float> out(size_t(m * n));
  Packed a = pack_a(weights.data(), MatrixView::dense(m, k, k), ks.mr);
  MatrixView view = MatrixView::dense(k, n, n);
  const GemmJob j = conv_job(m, n, k, a, image.data(), view, out.data());
  timed_loop(st, 2.0 * double(m) * double(n) * double(k), [&] { gemm_f32(&j, 1, ks, nullptr); });
}
constexpr PointwiseCase kPointwiseCases[] = {
    {"mobilenet_v2.96to576.14x14", 96, 576, 196},
    {"mobilenet_v2.576to96.14x14", 576, 96, 196},
    {"mobilenet_v2.960to320.7x7", 960, 320, 49},
    {"resnet50.512to2048.7x7", 512, 2048, 49},
};

// resnet18's 3x3 convolutions of each stage (the first stride-2 one of a
// stage is left out: most of a stage's time is in its stride-1 layers).
constexpr ConvCase kConvCases[] = {
    {"resnet18.layer1.3x3", 64, 64, 56, 56},
    {"resnet18.layer2.3x3", 128, 128, 28, 28},
    {"resnet18.layer3.3x3", 256, 256, 14, 14},
    {"resnet18.layer4.3x3", 512, 512, 7, 7},
};
// The transformer (BERT-base shapes) at batch 1, sequence 128.
constexpr MatMulCase kMatMulCases[] = {
    {"transformer.attn_proj", 128, 768, 768},
    {"transformer.ffn_up", 128, 768, 3072},
    {"transformer.ffn_down", 128, 3072, 768},
};
// mobilenet_v2's depthwise layers at 224x224 input.
constexpr DepthwiseCase kDepthwiseCases[] = {
    {"mobilenet_v2.32ch.112x112.s1", 32, 112, 112, 1},
    {"mobilenet_v2.144ch.56x56.s1", 144, 56, 56, 1},
    {"mobilenet_v2.144ch.56x56.s2", 144, 56, 56, 2},
    {"mobilenet_v2.96ch.112x112.s2", 96, 112, 112, 2},
    {"mobilenet_v2.576ch.14x14.s1", 576, 14, 14, 1},
    {"mobilenet_v2.576ch.14x14.s2", 576, 14, 14, 2},
    {"mobilenet_v2.960ch.7x7.s1", 960, 7, 7, 1},
};

void register_all() {
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    if (!isa_available(isa)) continue;
    const KernelSet& ks = kernel_set(isa);
    const std::string gemm = ks.gemm_name;
    const std::string dw = "depthwise_f32_" + std::string(isa_name(isa));
    const std::string dw8 = "depthwise8_f32_" + std::string(isa_name(isa));
    for (int cols = 1; cols <= ks.narrow_cols; ++cols) {
      const std::string shape = "/" + std::to_string(ks.mr) + "x" + std::to_string(cols) + "x256";
      benchmark::RegisterBenchmark((gemm + "/tail_narrow" + shape).c_str(), bench_tail, isa, cols, true);
      benchmark::RegisterBenchmark((gemm + "/tail_half" + shape).c_str(), bench_tail, isa, cols, false);
    }
    for (const PointwiseCase& c : kPointwiseCases)
      for (bool narrow : {true, false})
        benchmark::RegisterBenchmark((gemm + "/1x1/" + c.name + (narrow ? "/narrow_tail" : "/half_tail")).c_str(),
                                     bench_pointwise, c, isa, narrow);
    for (int t : {1, 2}) {
      const std::string pool = "/pool:" + std::to_string(t);
      for (const ConvCase& c : kConvCases) {
        std::string name = gemm + "/" + c.name + "/" + std::to_string(c.cout) + "x" + std::to_string(c.cin * 9) +
                           "x" + std::to_string(c.h * c.w) + pool;
        benchmark::RegisterBenchmark(name.c_str(), bench_conv_gemm, c, isa, t)->UseRealTime();
      }
      for (const MatMulCase& c : kMatMulCases) {
        std::string name = gemm + "/" + c.name + "/" + std::to_string(c.m) + "x" + std::to_string(c.k) + "x" +
                           std::to_string(c.n) + pool;
        benchmark::RegisterBenchmark(name.c_str(), bench_matmul_gemm, c, isa, t)->UseRealTime();
      }
      for (const DepthwiseCase& c : kDepthwiseCases) {
        benchmark::RegisterBenchmark((dw + "/" + c.name + pool).c_str(), bench_depthwise, c, isa, t)->UseRealTime();
        benchmark::RegisterBenchmark((dw8 + "/" + c.name + pool).c_str(), bench_depthwise8, c, isa, t)
            ->UseRealTime();
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("kiln_cpu", kiln::cpu::describe());
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
