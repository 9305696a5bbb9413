// Helpers of the graph-pass tests (test_passes.cpp, test_passes_transformer.cpp):
// a small graph builder, the printed IR's node lines, applying one pass to a
// copy (it must leave a valid graph), and running both graphs on the same
// random inputs to compare their outputs.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>

#include "ir/edit.h"
#include "ir/infer.h"
#include "ir/op_table.h"
#include "ir/print.h"
#include "ir/verify.h"
#include "passes/pipeline.h"
#include "runtime/session.h"

namespace kiln::passtest {

using ir::OpKind;
using ir::ValueId;

inline Tensor f32(Shape shape, const std::vector<float>& v) {
  Tensor t = Tensor::create(DType::kF32, std::move(shape)).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<float>()[i] = v[i];
  return t;
}
inline Tensor i64(Shape shape, const std::vector<int64_t>& v) {
  Tensor t = Tensor::create(DType::kI64, std::move(shape)).value();
  for (size_t i = 0; i < v.size(); ++i) t.data<int64_t>()[i] = v[i];
  return t;
}
inline Tensor random_f32(Shape shape, uint64_t seed, float lo = -1, float hi = 1) {
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

inline std::string ops(const ir::Graph& g) {
  std::string s;
  for (const auto& n : g.nodes) s += (s.empty() ? "" : ",") + std::string(ir::op_name(n.op));
  return s;
}

// Node lines of the printed IR without the trailing "# name -> type" comment.
inline std::vector<std::string> node_lines(const ir::Graph& g) {
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
inline ir::Graph apply(const ir::Graph& g, passes::PassFn pass, int* rewrites = nullptr) {
  ir::Graph r = g;
  auto n = pass(r);
  EXPECT_TRUE(n.ok()) << n.error().message;
  if (rewrites) *rewrites = n.ok() ? *n : -1;
  auto v = ir::verify(r);
  EXPECT_TRUE(v.ok()) << v.error().message;
  return r;
}

inline std::vector<Tensor> run(const ir::Graph& g, const std::vector<Tensor>& in) {
  auto s = runtime::Session::create(g);
  EXPECT_TRUE(s.ok()) << s.error().message;
  if (!s.ok()) return {};
  auto out = s->run(in);
  EXPECT_TRUE(out.ok()) << out.error().message;
  return out.ok() ? *out : std::vector<Tensor>{};
}

// Outputs of both graphs on random inputs agree within `tol` relative to the largest |output|.
inline void expect_same_outputs(const ir::Graph& a, const ir::Graph& b, double tol = 1e-5) {
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

}  // namespace kiln::passtest
