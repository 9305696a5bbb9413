// Shared by the CPU backend's tests (test_cpu_backend.cpp, test_cpu_conv.cpp,
// test_cpu_quant.cpp, test_cpu_threads.cpp): building small random graphs,
// running them on the reference and the CPU backend, and comparing. check()
// runs a graph on every instruction set this machine has with 1 and 3
// threads and also reads the printed plan, so that a case meant for a CPU
// kernel cannot pass by falling back to the reference kernels.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "backends/cpu/cpu_info.h"
#include "ir/edit.h"
#include "ir/infer.h"
#include "runtime/session.h"
#include "ir/ops/kiln_quant.h"

namespace kiln::cputest {

using ir::OpKind;
using ir::ValueId;

constexpr double kTol = 1e-4;

inline Tensor random_f32(const Shape& s, std::mt19937_64& rng, float lo = -1.0f, float hi = 1.0f) {
  Tensor t = Tensor::create(DType::kF32, s).value();
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

inline Tensor scalar_f32(float v) {
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

inline std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (cpu::Isa isa : {cpu::Isa::kPortable, cpu::Isa::kAvx2, cpu::Isa::kAvx512, cpu::Isa::kAvx512Amx})
    if (cpu::isa_available(isa)) out.emplace_back(cpu::isa_name(isa));
  return out;
}

struct CpuRun {
  std::vector<Tensor> outs;
  std::string plan;
};

inline Result<std::vector<Tensor>> run_backend(const ir::Graph& g, const std::vector<Tensor>& feeds,
                                        const runtime::SessionOptions& o, std::string* plan = nullptr) {
  KILN_ASSIGN(auto s, runtime::Session::create(g, o));
  KILN_ASSIGN(auto outs, s.run(feeds));
  if (plan) *plan = s.describe_plan();
  return outs;
}

inline Result<std::vector<Tensor>> run_ref(const ir::Graph& g, const std::vector<Tensor>& feeds) {
  runtime::SessionOptions o;
  o.backend = "reference";
  return run_backend(g, feeds, o);
}

// conv3x3 "direct" by default: "auto" picks a 3x3 kernel by timing it, so the
// plan (and the rounding) would depend on the machine's load.
inline runtime::SessionOptions cpu_options(const std::string& isa, int threads, const std::string& conv3x3 = "direct") {
  runtime::SessionOptions o;
  o.backend = "cpu";
  o.isa = isa;
  o.threads = threads;
  o.conv3x3 = conv3x3;
  return o;
}

inline Result<CpuRun> run_cpu(const ir::Graph& g, const std::vector<Tensor>& feeds, const std::string& isa, int threads,
                       const std::string& conv3x3 = "direct") {
  runtime::SessionOptions o = cpu_options(isa, threads, conv3x3);
  CpuRun r;
  KILN_ASSIGN(r.outs, run_backend(g, feeds, o, &r.plan));
  return r;
}

// max |got - want| / max |want| over every output; -1 on a shape or dtype mismatch.
inline double rel_error(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
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
// must name the ISA, contain `kernel` (when given; or one of its
// '|'-separated alternatives) and, for Expect::kCpu, run
// no node on the reference kernels; for Expect::kFallback at least one.
inline void check(const Net& net, const std::string& what, const std::string& kernel, Expect expect = Expect::kCpu,
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
      if (!kernel.empty()) {  // alternatives separated by '|' (kernels that depend on the ISA)
        bool found = false;
        for (size_t a = 0; a <= kernel.size();) {
          const size_t e = std::min(kernel.find('|', a), kernel.size());
          found |= plan.find(kernel.substr(a, e - a)) != std::string::npos;
          a = e + 1;
        }
        EXPECT_TRUE(found) << "no '" << kernel << "' in\n" << plan;
      }
      const bool all_cpu = plan.find(" 0 on the reference kernels") != std::string::npos;
      EXPECT_EQ(all_cpu, expect == Expect::kCpu) << plan;
      double e = rel_error(cpu->outs, *ref);
      EXPECT_GE(e, 0) << "output shapes differ";
      EXPECT_LE(e, tol) << "relative max error " << e << "\n" << plan;
    }
}

// ---- integer operands (int8 tests) ----

inline Tensor int_tensor(DType dt, const Shape& s, std::mt19937_64& rng, int64_t lo, int64_t hi) {
  Tensor t = Tensor::create(dt, s).value();
  std::uniform_int_distribution<int64_t> d(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t v = d(rng);
    if (dt == DType::kU8) t.data<uint8_t>()[i] = uint8_t(v);
    else if (dt == DType::kI8) t.data<int8_t>()[i] = int8_t(v);
    else t.data<int32_t>()[i] = int32_t(v);
  }
  return t;
}

inline Tensor scalar_int(DType dt, int64_t v) {
  Tensor t = Tensor::create(dt, {}).value();
  if (dt == DType::kU8) t.data<uint8_t>()[0] = uint8_t(v);
  else t.data<int8_t>()[0] = int8_t(v);
  return t;
}

// The eight parameter inputs 1, 2 and 4..7 of a QConv / QGemm with `ch`
// output channels and reduction length k: scales chosen so that outputs
// spread over the 8-bit range and some saturate.
struct QParams {
  DType xt = DType::kU8, yt = DType::kU8;
  int32_t x_zp = 0, y_zp = 0;
  bool per_channel = true;
};
inline std::vector<ValueId> q_inputs(Net& net, ValueId x, ValueId w, int64_t ch, int64_t k, const QParams& p) {
  const float xs = 0.021f;
  Tensor ws = Tensor::create(DType::kF32, {p.per_channel ? ch : 1}).value();
  std::uniform_real_distribution<float> d(0.004f, 0.02f);
  double mean = 0;
  for (int64_t i = 0; i < ws.numel(); ++i) mean += (ws.data<float>()[i] = d(net.rng));
  mean /= double(ws.numel());
  Tensor wz = Tensor::create(DType::kI8, {p.per_channel ? ch : 1}).value();  // zeros
  const float ys = float(xs * mean * std::sqrt(double(k)) * 75.0 * 70.0 / 60.0);
  return {x,
          net.cst(scalar_f32(xs)),
          net.cst(scalar_int(p.xt, p.x_zp)),
          w,
          net.cst(std::move(ws)),
          net.cst(std::move(wz)),
          net.cst(scalar_f32(ys)),
          net.cst(scalar_int(p.yt, p.y_zp))};
}

}  // namespace kiln::cputest
