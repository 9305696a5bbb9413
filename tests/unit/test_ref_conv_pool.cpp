// Reference Conv / ConvTranspose / pools / DepthToSpace / SpaceToDepth on what
// the ONNX conformance data does not cover: random N-D configurations checked
// against a by-definition oracle written here, f16, the ceil_mode and
// count_include_pad corners, column-major MaxPool indices, symbolic shape
// inference, and bad inputs that must give clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "backends/reference/reference.h"
#include "core/half.h"
#include "ir/infer.h"
#include "ir/ops/conv_geometry.h"

namespace kiln {
namespace {

using ir::AutoPad;
using ir::OpKind;

Tensor f32(Shape s, const std::vector<float>& v) {
  Tensor t = Tensor::create(DType::kF32, std::move(s)).value();
  for (size_t i = 0; i < v.size() && int64_t(i) < t.numel(); ++i) t.data<float>()[i] = v[i];
  return t;
}

Tensor random_f32(Shape s, std::mt19937& rng) {
  Tensor t = Tensor::create(DType::kF32, std::move(s)).value();
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

std::vector<float> vals(const Tensor& t) { return std::vector<float>(t.data<float>(), t.data<float>() + t.numel()); }

// One-node graph over graph inputs (an undefined tensor = omitted optional
// input), inferred and run on the reference backend.
Result<std::vector<Tensor>> run1(OpKind op, const std::vector<Tensor>& ins, ir::Attrs attrs, int outputs = 1) {
  ir::Graph g;
  ir::Node n;
  n.name = "t";
  n.op = op;
  n.opset = 21;
  n.attrs = std::move(attrs);
  std::vector<Tensor> feeds;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i].defined()) {
      n.inputs.push_back(ir::kNoValue);
      continue;
    }
    ir::ValueId id = g.add_value("in" + std::to_string(i), {ins[i].dtype(), ins[i].shape(), true});
    n.inputs.push_back(id);
    g.inputs.push_back(id);
    feeds.push_back(ins[i]);
  }
  for (int o = 0; o < outputs; ++o) {
    n.outputs.push_back(g.add_value("out" + std::to_string(o)));
    g.outputs.push_back(n.outputs.back());
  }
  g.nodes.push_back(std::move(n));
  KILN_TRY(ir::infer_graph(g));
  ref::ReferenceBackend be;
  KILN_ASSIGN(auto exe, be.compile(g, map::Plan{}));
  return exe->run(feeds);
}

void expect_fail(const Result<std::vector<Tensor>>& r, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << "expected an error mentioning '" << fragment << "'";
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
}

void expect_near_all(const Tensor& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.numel(), int64_t(want.size()));
  for (int64_t i = 0; i < got.numel(); ++i)
    ASSERT_NEAR(got.as_double(i), want[size_t(i)], tol * (1 + std::fabs(want[size_t(i)]))) << "element " << i;
}

// Row-major coordinates of `flat` in `dims`.
std::vector<int64_t> unravel(int64_t flat, const std::vector<int64_t>& dims) {
  std::vector<int64_t> c(dims.size());
  for (size_t j = dims.size(); j-- > 0;) {
    c[j] = flat % dims[j];
    flat /= dims[j];
  }
  return c;
}
int64_t ravel(const std::vector<int64_t>& c, const std::vector<int64_t>& dims) {
  int64_t f = 0;
  for (size_t j = 0; j < dims.size(); ++j) f = f * dims[j] + c[j];
  return f;
}
int64_t volume(const std::vector<int64_t>& d) {
  int64_t v = 1;
  for (auto x : d) v *= x;
  return v;
}

// By definition: y[n, m, o] = B[m] + sum_{c, k} X[n, g*Cg + c, o*s + k*d - pb] * W[m, c, k],
// taps outside the input contribute nothing.
std::vector<double> oracle_conv(const Tensor& x, const Tensor& w, const Tensor* b, int64_t group,
                                const std::vector<int64_t>& s, const std::vector<int64_t>& d,
                                const std::vector<int64_t>& pb, const std::vector<int64_t>& out) {
  size_t nd = out.size();
  int64_t batch = x.dim(0), cin = x.dim(1), cout = w.dim(0), cg = w.dim(1), mg = cout / group;
  std::vector<int64_t> in(x.shape().begin() + 2, x.shape().end()), k(w.shape().begin() + 2, w.shape().end());
  std::vector<double> y(size_t(batch * cout * volume(out)), 0.0);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t m = 0; m < cout; ++m)
      for (int64_t of = 0; of < volume(out); ++of) {
        auto o = unravel(of, out);
        double acc = b ? b->as_double(m) : 0.0;
        for (int64_t c = 0; c < cg; ++c)
          for (int64_t kf = 0; kf < volume(k); ++kf) {
            auto kk = unravel(kf, k);
            std::vector<int64_t> i(nd);
            bool inside = true;
            for (size_t j = 0; j < nd; ++j) {
              i[j] = o[j] * s[j] + kk[j] * d[j] - pb[j];
              inside = inside && i[j] >= 0 && i[j] < in[j];
            }
            if (!inside) continue;
            int64_t xc = (m / mg) * cg + c;
            acc += x.as_double((n * cin + xc) * volume(in) + ravel(i, in)) *
                   w.as_double((m * cg + c) * volume(k) + kf);
          }
        y[size_t((n * cout + m) * volume(out) + of)] = acc;
      }
  return y;
}

// By definition: Y[n, g*Mg + m, i*s + k*d - pb] += X[n, g*Cg + c, i] * W[g*Cg + c, m, k].
std::vector<double> oracle_conv_transpose(const Tensor& x, const Tensor& w, int64_t group,
                                          const std::vector<int64_t>& s, const std::vector<int64_t>& d,
                                          const std::vector<int64_t>& pb, const std::vector<int64_t>& out) {
  size_t nd = out.size();
  int64_t batch = x.dim(0), cin = x.dim(1), mg = w.dim(1), cout = mg * group, cg = cin / group;
  std::vector<int64_t> in(x.shape().begin() + 2, x.shape().end()), k(w.shape().begin() + 2, w.shape().end());
  std::vector<double> y(size_t(batch * cout * volume(out)), 0.0);
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t c = 0; c < cin; ++c)
      for (int64_t m = 0; m < mg; ++m)
        for (int64_t inf = 0; inf < volume(in); ++inf) {
          auto i = unravel(inf, in);
          for (int64_t kf = 0; kf < volume(k); ++kf) {
            auto kk = unravel(kf, k);
            std::vector<int64_t> o(nd);
            bool inside = true;
            for (size_t j = 0; j < nd; ++j) {
              o[j] = i[j] * s[j] + kk[j] * d[j] - pb[j];
              inside = inside && o[j] >= 0 && o[j] < out[j];
            }
            if (!inside) continue;
            int64_t ym = (c / cg) * mg + m;
            y[size_t((n * cout + ym) * volume(out) + ravel(o, out))] +=
                x.as_double((n * cin + c) * volume(in) + inf) * w.as_double((c * mg + m) * volume(k) + kf);
          }
        }
  return y;
}

// ---- Conv ------------------------------------------------------------------

TEST(RefConv, RandomConfigurationsMatchTheDefinition) {
  std::mt19937 rng(7);
  auto pick = [&](int lo, int hi) { return int64_t(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  for (int trial = 0; trial < 60; ++trial) {
    size_t nd = size_t(pick(1, 3));
    int64_t group = pick(1, 3), cg = pick(1, 3), mg = pick(1, 6);  // mg not a multiple of the 4-channel block
    AutoPad ap = AutoPad(pick(0, 3));
    std::vector<int64_t> in, k, s, d, pads, pb(nd), out(nd);
    for (size_t j = 0; j < nd; ++j) {
      k.push_back(pick(1, 3));
      s.push_back(pick(1, 3));
      d.push_back(pick(1, 2));
      in.push_back(pick((k[j] - 1) * d[j] + 1, 9));
    }
    for (size_t j = 0; j < 2 * nd; ++j) pads.push_back(pick(0, 2));
    for (size_t j = 0; j < nd; ++j) {
      int64_t ext = (k[j] - 1) * d[j] + 1;
      if (ap == AutoPad::kNotSet) {
        pb[j] = pads[j];
        out[j] = (in[j] + pads[j] + pads[j + nd] - ext) / s[j] + 1;
      } else if (ap == AutoPad::kValid) {
        out[j] = (in[j] - ext) / s[j] + 1;
      } else {
        out[j] = (in[j] + s[j] - 1) / s[j];
        int64_t total = std::max<int64_t>(0, (out[j] - 1) * s[j] + ext - in[j]);
        pb[j] = ap == AutoPad::kSameUpper ? total / 2 : total - total / 2;
      }
    }
    Shape xs = {pick(1, 2), cg * group}, ws = {mg * group, cg};
    xs.insert(xs.end(), in.begin(), in.end());
    ws.insert(ws.end(), k.begin(), k.end());
    Tensor x = random_f32(xs, rng), w = random_f32(ws, rng), b = random_f32({mg * group}, rng);
    bool with_bias = trial % 2 == 0;
    ir::ConvAttrs a;
    a.auto_pad = ap;
    a.group = group;
    a.strides = s;
    a.dilations = d;
    if (ap == AutoPad::kNotSet) a.pads = pads;
    if (trial % 3 == 0) a.kernel_shape = k;
    auto r = run1(OpKind::kConv, {x, w, with_bias ? b : Tensor()}, a);
    ASSERT_TRUE(r.ok()) << r.error().message;
    Shape want_shape = {xs[0], mg * group};
    want_shape.insert(want_shape.end(), out.begin(), out.end());
    ASSERT_EQ((*r)[0].shape(), want_shape) << "trial " << trial;
    expect_near_all((*r)[0], oracle_conv(x, w, with_bias ? &b : nullptr, group, s, d, pb, out), 1e-5);
  }
}

TEST(RefConv, Float16MatchesFloat32WithinHalfPrecision) {
  std::mt19937 rng(3);
  Tensor x = random_f32({1, 4, 6, 5}, rng), w = random_f32({6, 2, 3, 3}, rng), b = random_f32({6}, rng);
  auto to_half = [](const Tensor& t) {
    Tensor h = Tensor::create(DType::kF16, t.shape()).value();
    for (int64_t i = 0; i < t.numel(); ++i) h.data<f16_t>()[i] = to_f16(t.data<float>()[i]);
    return h;
  };
  ir::ConvAttrs a;
  a.group = 2;
  a.pads = {1, 1, 1, 1};
  auto r32 = run1(OpKind::kConv, {x, w, b}, a);
  auto r16 = run1(OpKind::kConv, {to_half(x), to_half(w), to_half(b)}, a);
  ASSERT_TRUE(r32.ok() && r16.ok());
  ASSERT_EQ((*r16)[0].dtype(), DType::kF16);
  for (int64_t i = 0; i < (*r32)[0].numel(); ++i)
    EXPECT_NEAR(to_float((*r16)[0].data<f16_t>()[i]), (*r32)[0].data<float>()[i], 2e-2) << i;
}

TEST(RefConv, BadInputsGiveClearErrors) {
  Tensor x = f32({1, 4, 5, 5}, {}), w = f32({2, 3, 3, 3}, {});
  expect_fail(run1(OpKind::kConv, {x, w}, ir::ConvAttrs{}), "channels");
  ir::ConvAttrs ks;
  ks.kernel_shape = {2, 2};
  expect_fail(run1(OpKind::kConv, {x, f32({2, 4, 3, 3}, {})}, ks), "kernel_shape");
  ir::ConvAttrs neg;
  neg.pads = {-1, 0, 0, 0};
  expect_fail(run1(OpKind::kConv, {x, f32({2, 4, 3, 3}, {})}, neg), "pads");
  expect_fail(run1(OpKind::kConv, {x, f32({2, 4, 7, 7}, {})}, ir::ConvAttrs{}), "does not fit");
  expect_fail(run1(OpKind::kConv, {x, f32({2, 4, 3, 3}, {}), f32({3}, {})}, ir::ConvAttrs{}), "bias");
  expect_fail(run1(OpKind::kConv, {f32({4, 5}, {}), f32({2, 4}, {})}, ir::ConvAttrs{}), "rank");
  ir::ConvAttrs g0;
  g0.group = 0;
  expect_fail(run1(OpKind::kConv, {x, f32({2, 4, 3, 3}, {})}, g0), "group");
}

TEST(RefConv, StaticInferenceKeepsSymbolsWhereTheWindowKeepsTheSize) {
  ir::Graph g;
  int64_t n = g.symbol("N"), h = g.symbol("H");
  ir::ConvAttrs same;
  same.auto_pad = AutoPad::kSameUpper;
  auto s = ir::conv_output_shape(same, {n, 3, h, 8}, {5, 3, 3, 3}, [&] { return g.fresh_symbol(); });
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(*s, (Shape{n, 5, h, 8}));
  ir::ConvAttrs strided;
  strided.strides = {2, 2};
  s = ir::conv_output_shape(strided, {n, 3, h, 8}, {5, 3, 3, 3}, [&] { return g.fresh_symbol(); });
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[0], n);
  EXPECT_LT((*s)[2], 0);
  EXPECT_NE((*s)[2], h);  // a fresh symbol, not H
  EXPECT_EQ((*s)[3], 3);
}

// ---- ConvTranspose -----------------------------------------------------------

TEST(RefConvTranspose, RandomConfigurationsMatchTheDefinition) {
  std::mt19937 rng(11);
  auto pick = [&](int lo, int hi) { return int64_t(std::uniform_int_distribution<int>(lo, hi)(rng)); };
  for (int trial = 0; trial < 40; ++trial) {
    size_t nd = size_t(pick(1, 3));
    int64_t group = pick(1, 2), cg = pick(1, 3), mg = pick(1, 5);
    int mode = int(pick(0, 2));  // 0: pads + output_padding, 1: output_shape, 2: SAME_LOWER
    std::vector<int64_t> in, k, s, d, pads, op, pb(nd), out(nd), oshape;
    for (size_t j = 0; j < nd; ++j) {
      in.push_back(pick(1, 5));
      k.push_back(pick(1, 3));
      s.push_back(pick(1, 3));
      d.push_back(pick(1, 2));
      op.push_back(pick(0, s[j] - 1));
    }
    for (size_t j = 0; j < 2 * nd; ++j) pads.push_back(pick(0, 1));
    for (size_t j = 0; j < nd; ++j) {
      int64_t full = s[j] * (in[j] - 1) + op[j] + (k[j] - 1) * d[j] + 1;
      if (mode == 0) {
        pb[j] = pads[j];
        out[j] = full - pads[j] - pads[j + nd];
      } else {
        out[j] = mode == 1 ? std::max<int64_t>(1, full - pick(-1, 2)) : in[j] * s[j];
        int64_t total = std::max<int64_t>(0, full - out[j]);
        pb[j] = total - total / 2;  // NOTSET and SAME_LOWER put the odd pad first
        oshape.push_back(out[j]);
      }
    }
    Shape xs = {pick(1, 2), cg * group}, ws = {cg * group, mg};
    xs.insert(xs.end(), in.begin(), in.end());
    ws.insert(ws.end(), k.begin(), k.end());
    Tensor x = random_f32(xs, rng), w = random_f32(ws, rng);
    ir::ConvTransposeAttrs a;
    a.group = group;
    a.strides = s;
    a.dilations = d;
    a.output_padding = op;
    if (mode == 0) a.pads = pads;
    if (mode == 1) a.output_shape = oshape;
    if (mode == 2) a.auto_pad = AutoPad::kSameLower;
    auto r = run1(OpKind::kConvTranspose, {x, w}, a);
    ASSERT_TRUE(r.ok()) << r.error().message;
    Shape want_shape = {xs[0], mg * group};
    want_shape.insert(want_shape.end(), out.begin(), out.end());
    ASSERT_EQ((*r)[0].shape(), want_shape) << "trial " << trial;
    expect_near_all((*r)[0], oracle_conv_transpose(x, w, group, s, d, pb, out), 1e-5);
  }
}

TEST(RefConvTranspose, BadInputsGiveClearErrors) {
  Tensor x = f32({1, 2, 3, 3}, {});
  expect_fail(run1(OpKind::kConvTranspose, {x, f32({3, 1, 2, 2}, {})}, ir::ConvTransposeAttrs{}), "channels");
  ir::ConvTransposeAttrs big;
  big.pads = {3, 3, 3, 3};
  expect_fail(run1(OpKind::kConvTranspose, {x, f32({2, 1, 2, 2}, {})}, big), "remove more");
  ir::ConvTransposeAttrs os;
  os.output_shape = {1, 2, 3};
  expect_fail(run1(OpKind::kConvTranspose, {x, f32({2, 1, 2, 2}, {})}, os), "output_shape");
}

// ---- pools -------------------------------------------------------------------

ir::MaxPoolAttrs max_attrs(std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> p, int64_t ceil) {
  ir::MaxPoolAttrs a;
  a.kernel_shape = std::move(k);
  a.strides = std::move(s);
  a.pads = std::move(p);
  a.ceil_mode = ceil;
  return a;
}

TEST(RefPool, CeilModeDropsAWindowThatStartsInTheEndPadding) {
  // in 3, k 2, s 2, pads 1/1: ceil((5-2)/2)+1 = 3 windows, but the third starts at 3 (end padding).
  auto r = run1(OpKind::kMaxPool, {f32({1, 1, 3}, {1, 5, 2})}, max_attrs({2}, {2}, {1, 1}, 1));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), (Shape{1, 1, 2}));
  EXPECT_EQ(vals((*r)[0]), (std::vector<float>{1, 5}));
}

TEST(RefPool, CountIncludePadCountsPadsButNotTheCeilOverhang) {
  ir::AveragePoolAttrs a;
  a.kernel_shape = {3};
  a.strides = {2};
  a.pads = {1, 1};
  a.ceil_mode = 1;
  Tensor x = f32({1, 1, 4}, {1, 2, 3, 4});
  a.count_include_pad = 1;
  auto inc = run1(OpKind::kAveragePool, {x}, a);
  a.count_include_pad = 0;
  auto exc = run1(OpKind::kAveragePool, {x}, a);
  ASSERT_TRUE(inc.ok() && exc.ok());
  // windows: [-1,0,1] [1,2,3] [3,4,5]; 4 is end padding, 5 lies beyond it.
  EXPECT_EQ(vals((*inc)[0]), (std::vector<float>{1, 3, 2}));
  EXPECT_EQ(vals((*exc)[0]), (std::vector<float>{1.5f, 3, 4}));
}

TEST(RefPool, MaxPoolIndicesRowAndColumnMajorAcrossBatch) {
  // [2, 1, 2, 3]; window 2x2 stride 1 -> [2, 1, 1, 2].
  Tensor x = f32({2, 1, 2, 3}, {0, 9, 1, 2, 3, 4, /**/ 5, 0, 0, 0, 0, 8});
  auto a = max_attrs({2, 2}, {}, {}, 0);
  auto r = run1(OpKind::kMaxPool, {x}, a, 2);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals((*r)[0]), (std::vector<float>{9, 9, 5, 8}));
  const int64_t* idx = (*r)[1].data<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(idx, idx + 4), (std::vector<int64_t>{1, 1, 6, 11}));
  a.storage_order = 1;  // within each plane, index = h + w * H
  r = run1(OpKind::kMaxPool, {x}, a, 2);
  ASSERT_TRUE(r.ok());
  idx = (*r)[1].data<int64_t>();
  EXPECT_EQ(std::vector<int64_t>(idx, idx + 4), (std::vector<int64_t>{2, 2, 6, 6 + 5}));
}

TEST(RefPool, MaxPoolInt8AndNaNPropagation) {
  Tensor x = Tensor::create(DType::kI8, {1, 1, 4}).value();
  int8_t v[] = {-128, -5, 7, -1};
  for (int i = 0; i < 4; ++i) x.data<int8_t>()[i] = v[i];
  auto r = run1(OpKind::kMaxPool, {x}, max_attrs({2}, {1}, {}, 0));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].dtype(), DType::kI8);
  EXPECT_EQ(std::vector<int8_t>((*r)[0].data<int8_t>(), (*r)[0].data<int8_t>() + 3), (std::vector<int8_t>{-5, 7, 7}));
  auto n = run1(OpKind::kMaxPool, {f32({1, 1, 3}, {1, NAN, 0})}, max_attrs({2}, {1}, {}, 0));
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(std::isnan(vals((*n)[0])[0]));
  EXPECT_TRUE(std::isnan(vals((*n)[0])[1]));
}

TEST(RefPool, LpPoolAndGlobalPools) {
  ir::LpPoolAttrs lp;
  lp.kernel_shape = {2};
  lp.strides = {2};
  lp.p = 3;
  auto r = run1(OpKind::kLpPool, {f32({1, 1, 4}, {1, -2, 3, 0})}, lp);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_NEAR(vals((*r)[0])[0], std::cbrt(9.0), 1e-6);
  EXPECT_NEAR(vals((*r)[0])[1], 3.0, 1e-6);
  Tensor x = f32({1, 2, 2, 2}, {1, 2, 3, 4, -1, -2, -3, 4});
  auto avg = run1(OpKind::kGlobalAveragePool, {x}, ir::NoAttrs{});
  auto mx = run1(OpKind::kGlobalMaxPool, {x}, ir::NoAttrs{});
  auto l2 = run1(OpKind::kGlobalLpPool, {x}, ir::LpNormAttrs{});
  ASSERT_TRUE(avg.ok() && mx.ok() && l2.ok());
  EXPECT_EQ((*avg)[0].shape(), (Shape{1, 2, 1, 1}));
  EXPECT_EQ(vals((*avg)[0]), (std::vector<float>{2.5f, -0.5f}));
  EXPECT_EQ(vals((*mx)[0]), (std::vector<float>{4, 4}));
  EXPECT_NEAR(vals((*l2)[0])[0], std::sqrt(30.0), 1e-5);
}

TEST(RefPool, BadInputsGiveClearErrors) {
  expect_fail(run1(OpKind::kMaxPool, {f32({1, 1, 3, 3}, {})}, max_attrs({4, 4}, {}, {}, 0)), "does not fit");
  expect_fail(run1(OpKind::kMaxPool, {f32({1, 1, 3, 3}, {})}, max_attrs({2}, {}, {}, 0)), "kernel_shape");
  auto so = max_attrs({2, 2}, {}, {}, 0);
  so.storage_order = 2;
  expect_fail(run1(OpKind::kMaxPool, {f32({1, 1, 3, 3}, {})}, so), "storage_order");
  ir::AveragePoolAttrs a;
  a.kernel_shape = {2};
  Tensor xi = Tensor::create(DType::kI32, {1, 1, 4}).value();
  expect_fail(run1(OpKind::kAveragePool, {xi}, a), "floating-point");
  expect_fail(run1(OpKind::kMaxPool, {f32({1, 1, 3, 3}, {})}, max_attrs({2, 2}, {0, 1}, {}, 0)), "strides");
}

// ---- DepthToSpace / SpaceToDepth ------------------------------------------------

TEST(RefSpaceDepth, DepthToSpaceInvertsSpaceToDepthAndCrdDiffersFromDcr) {
  std::mt19937 rng(5);
  Tensor x = random_f32({2, 3, 4, 6}, rng);
  ir::SpaceToDepthAttrs s2d;
  s2d.blocksize = 2;
  auto packed = run1(OpKind::kSpaceToDepth, {x}, s2d);
  ASSERT_TRUE(packed.ok()) << packed.error().message;
  EXPECT_EQ((*packed)[0].shape(), (Shape{2, 12, 2, 3}));
  ir::DepthToSpaceAttrs d2s;
  d2s.blocksize = 2;
  auto back = run1(OpKind::kDepthToSpace, {(*packed)[0]}, d2s);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(vals((*back)[0]), vals(x));
  // CRD on channels [c0 c1 c2 c3] with one pixel: out block = [[c0 c1] [c2 c3]].
  d2s.mode = ir::DepthToSpaceMode::kCRD;
  auto crd = run1(OpKind::kDepthToSpace, {f32({1, 8, 1, 1}, {0, 1, 2, 3, 4, 5, 6, 7})}, d2s);
  ASSERT_TRUE(crd.ok());
  EXPECT_EQ(vals((*crd)[0]), (std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7}));
  d2s.mode = ir::DepthToSpaceMode::kDCR;  // DCR: block (i, j) of channel c is depth (i*2 + j)*2 + c
  auto dcr = run1(OpKind::kDepthToSpace, {f32({1, 8, 1, 1}, {0, 1, 2, 3, 4, 5, 6, 7})}, d2s);
  ASSERT_TRUE(dcr.ok());
  EXPECT_EQ(vals((*dcr)[0]), (std::vector<float>{0, 2, 4, 6, 1, 3, 5, 7}));
}

TEST(RefSpaceDepth, BadInputsGiveClearErrors) {
  ir::DepthToSpaceAttrs d2s;
  d2s.blocksize = 2;
  expect_fail(run1(OpKind::kDepthToSpace, {f32({1, 6, 2, 2}, {})}, d2s), "divisible");
  expect_fail(run1(OpKind::kDepthToSpace, {f32({1, 8, 2}, {})}, d2s), "rank 4");
  ir::SpaceToDepthAttrs s2d;
  s2d.blocksize = 2;
  expect_fail(run1(OpKind::kSpaceToDepth, {f32({1, 1, 3, 4}, {})}, s2d), "divisible");
  s2d.blocksize = 0;
  expect_fail(run1(OpKind::kSpaceToDepth, {f32({1, 1, 4, 4}, {})}, s2d), "blocksize");
}

}  // namespace
}  // namespace kiln
