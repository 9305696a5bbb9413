// Shape family (layout, gather/scatter, pad, resize): static inference with
// symbolic dims (PyTorch's Shape->Reshape chains), reference kernels on corners
// the ONNX conformance data leaves out (negative steps, wrap padding, scatter
// max/min, antialias, aspect-ratio policies, dtype-agnostic moves), and bad
// inputs that must give a clear error rather than a crash.
#include <gtest/gtest.h>

#include <limits>

#include "backends/reference/reference.h"
#include "core/half.h"
#include "ir/infer.h"

namespace kiln {
namespace {

using ir::OpKind;

template <class T>
Tensor make(DType dt, Shape shape, const std::vector<T>& v) {
  Tensor t = Tensor::create(dt, std::move(shape)).value();
  EXPECT_EQ(int64_t(v.size()), t.numel());
  for (size_t i = 0; i < v.size() && int64_t(i) < t.numel(); ++i) t.data<T>()[i] = v[i];
  return t;
}
Tensor f32(Shape s, const std::vector<float>& v) { return make(DType::kF32, std::move(s), v); }
Tensor i64(Shape s, const std::vector<int64_t>& v) { return make(DType::kI64, std::move(s), v); }
Tensor i32(Shape s, const std::vector<int32_t>& v) { return make(DType::kI32, std::move(s), v); }
Tensor boolean(Shape s, const std::vector<uint8_t>& v) { return make(DType::kBool, std::move(s), v); }

template <class T>
std::vector<T> vals(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

// A node input: a fed graph input, a constant (visible to static inference),
// or omitted (an undefined tensor).
struct In {
  Tensor t;
  bool constant = false;
};
In C(Tensor t) { return {std::move(t), true}; }

// One-node graph: infer statically, compile for the reference backend, run.
Result<std::vector<Tensor>> run_op(OpKind op, const std::vector<In>& ins, ir::Attrs attrs = ir::NoAttrs{},
                                   int outputs = 1, int opset = 21) {
  ir::Graph g;
  ir::Node n;
  n.name = "n";
  n.op = op;
  n.opset = opset;
  n.attrs = std::move(attrs);
  std::vector<Tensor> feeds;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i].t.defined()) {
      n.inputs.push_back(ir::kNoValue);
    } else if (ins[i].constant) {
      n.inputs.push_back(g.add_constant("c" + std::to_string(i), ins[i].t));
    } else {
      ir::ValueId id = g.add_value("x" + std::to_string(i), {ins[i].t.dtype(), ins[i].t.shape(), true});
      n.inputs.push_back(id);
      g.inputs.push_back(id);
      feeds.push_back(ins[i].t);
    }
  }
  for (int o = 0; o < outputs; ++o) {
    n.outputs.push_back(g.add_value("y" + std::to_string(o)));
    g.outputs.push_back(n.outputs.back());
  }
  g.nodes.push_back(std::move(n));
  KILN_TRY(ir::infer_graph(g));
  ref::ReferenceBackend be;
  KILN_ASSIGN(auto exe, be.compile(g, map::Plan{}));
  return exe->run(feeds);
}

void expect_error(const Result<std::vector<Tensor>>& r, const std::string& fragment) {
  ASSERT_FALSE(r.ok()) << "expected an error mentioning '" << fragment << "'";
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
}

// ---- static inference with symbolic dims ------------------------------------

struct SymGraph {
  ir::Graph g;
  int64_t N;
  ir::ValueId x;
  SymGraph(Shape rest) {
    N = g.symbol("N");
    Shape s{N};
    s.insert(s.end(), rest.begin(), rest.end());
    x = g.add_value("x", {DType::kF32, s, true});
    g.inputs.push_back(x);
  }
  ir::ValueId node(OpKind op, std::vector<ir::ValueId> in, ir::Attrs attrs = ir::NoAttrs{}) {
    ir::Node n;
    n.name = "n" + std::to_string(g.nodes.size());
    n.op = op;
    n.opset = 21;
    n.inputs = std::move(in);
    n.attrs = std::move(attrs);
    n.outputs.push_back(g.add_value(n.name + "_out"));
    g.nodes.push_back(n);
    EXPECT_TRUE(ir::infer_node(g, g.nodes.back()).ok());
    return n.outputs[0];
  }
  const ir::ValueType& type(ir::ValueId v) const { return g.value(v).type; }
};

TEST(ShapeInfer, ReshapeKeepsSymbolicBatchThroughZeroAndMinusOne) {
  SymGraph s({3, 4});
  auto a = s.node(OpKind::kReshape, {s.x, s.g.add_constant("s1", i64({2}, {0, -1}))}, ir::ReshapeAttrs{});
  EXPECT_EQ(s.type(a).shape, (Shape{s.N, 12}));
  // -1 takes the symbol when the static parts cancel.
  auto b = s.node(OpKind::kReshape, {s.x, s.g.add_constant("s2", i64({2}, {-1, 12}))}, ir::ReshapeAttrs{});
  EXPECT_EQ(s.type(b).shape, (Shape{s.N, 12}));
  // Not provable: -1 is N*2, a new symbol (never N itself).
  auto c = s.node(OpKind::kReshape, {s.x, s.g.add_constant("s3", i64({2}, {-1, 6}))}, ir::ReshapeAttrs{});
  ASSERT_EQ(s.type(c).shape.size(), 2u);
  EXPECT_LT(s.type(c).shape[0], 0);
  EXPECT_NE(s.type(c).shape[0], s.N);
}

TEST(ShapeInfer, FlattenAndTransposeKeepSymbols) {
  SymGraph s({3, 4});
  auto f = s.node(OpKind::kFlatten, {s.x}, ir::FlattenAttrs{1});
  EXPECT_EQ(s.type(f).shape, (Shape{s.N, 12}));
  auto t = s.node(OpKind::kTranspose, {s.x}, ir::TransposeAttrs{{2, 0, 1}});
  EXPECT_EQ(s.type(t).shape, (Shape{4, s.N, 3}));
}

TEST(ShapeInfer, PyTorchShapeGatherConcatReshapeChainGivesRank) {
  SymGraph s({3, 4});
  auto shp = s.node(OpKind::kShape, {s.x}, ir::ShapeAttrs{});
  EXPECT_EQ(s.type(shp).shape, (Shape{3}));
  auto n = s.node(OpKind::kGather, {shp, s.g.add_constant("i0", i64({}, {0}))}, ir::AxisAttrs{0});
  EXPECT_EQ(s.type(n).shape, Shape{});
  auto u = s.node(OpKind::kUnsqueeze, {n, s.g.add_constant("ax", i64({1}, {0}))});
  EXPECT_EQ(s.type(u).shape, (Shape{1}));
  auto cat = s.node(OpKind::kConcat, {u, s.g.add_constant("m1", i64({1}, {-1}))}, ir::ConcatAttrs{0});
  EXPECT_EQ(s.type(cat).shape, (Shape{2}));
  auto r = s.node(OpKind::kReshape, {s.x, cat}, ir::ReshapeAttrs{});
  EXPECT_TRUE(s.type(r).rank_known);
  EXPECT_EQ(s.type(r).shape.size(), 2u);
  // An unknown 1-element target still fixes the result: all elements in one dim.
  SymGraph v({});
  auto one = v.node(OpKind::kConcat, {v.g.add_constant("k", i64({1}, {-1}))}, ir::ConcatAttrs{0});
  auto flat = v.node(OpKind::kReshape, {v.x, one}, ir::ReshapeAttrs{});
  EXPECT_EQ(v.type(flat).shape, (Shape{v.N}));
}

TEST(ShapeInfer, SliceToEndKeepsSymbolAndSqueezeOfSymbolIsUnknownRank) {
  SymGraph s({5});
  int64_t big = std::numeric_limits<int64_t>::max();
  auto sl = s.node(OpKind::kSlice, {s.x, s.g.add_constant("b", i64({2}, {0, 1})), s.g.add_constant("e", i64({2}, {big, 4}))});
  EXPECT_EQ(s.type(sl).shape, (Shape{s.N, 3}));
  auto sq = s.node(OpKind::kSqueeze, {s.x});
  EXPECT_FALSE(s.type(sq).rank_known);  // N might be 1
  auto cat = s.node(OpKind::kConcat, {s.x, s.x}, ir::ConcatAttrs{0});
  EXPECT_LT(s.type(cat).shape[0], 0);
  EXPECT_EQ(s.type(cat).shape[1], 5);
}

// ---- kernels -----------------------------------------------------------------

TEST(RefShape, SliceNegativeStepClampsHugeEnds) {
  auto r = run_op(OpKind::kSlice, {{f32({10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9})}, C(i64({1}, {-1})),
                                   C(i64({1}, {std::numeric_limits<int64_t>::min()})), C(i64({1}, {0})),
                                   C(i64({1}, {-3}))});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{9, 6, 3, 0}));
}

TEST(RefShape, PadModesIncludingWrapAndNegativePads) {
  Tensor x = f32({3}, {1, 2, 3});
  auto run = [&](ir::PadMode m, std::vector<int64_t> pads) {
    auto r = run_op(OpKind::kPad, {{x}, C(i64({2}, pads)), C(f32({}, {9}))}, ir::PadAttrs{m});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? vals<float>((*r)[0]) : std::vector<float>{};
  };
  EXPECT_EQ(run(ir::PadMode::kWrap, {2, 2}), (std::vector<float>{2, 3, 1, 2, 3, 1, 2}));
  EXPECT_EQ(run(ir::PadMode::kReflect, {2, 2}), (std::vector<float>{3, 2, 1, 2, 3, 2, 1}));
  EXPECT_EQ(run(ir::PadMode::kEdge, {2, 1}), (std::vector<float>{1, 1, 1, 2, 3, 3}));
  EXPECT_EQ(run(ir::PadMode::kConstant, {-1, 1}), (std::vector<float>{2, 3, 9}));
}

TEST(RefShape, PadWithAxesInput) {
  auto r = run_op(OpKind::kPad, {{f32({2, 2}, {1, 2, 3, 4})}, C(i64({2}, {1, 0})), {}, C(i64({1}, {-1}))},
                  ir::PadAttrs{ir::PadMode::kConstant});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), (Shape{2, 3}));
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{0, 1, 2, 0, 3, 4}));
}

TEST(RefShape, TransposeAndConcatMoveBoolAndF16Unchanged) {
  auto r = run_op(OpKind::kTranspose, {{boolean({2, 3}, {1, 0, 0, 0, 1, 1})}}, ir::TransposeAttrs{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<uint8_t>((*r)[0]), (std::vector<uint8_t>{1, 0, 0, 1, 0, 1}));
  Tensor h = make(DType::kF16, {2}, std::vector<f16_t>{to_f16(1.5f), to_f16(-2.f)});
  auto c = run_op(OpKind::kConcat, {{h}, {h}}, ir::ConcatAttrs{0});
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)[0].dtype(), DType::kF16);
  EXPECT_EQ(to_float((*c)[0].data<f16_t>()[3]), -2.f);
}

TEST(RefShape, SplitNumOutputsLastChunkSmaller) {
  auto r = run_op(OpKind::kSplit, {{f32({7}, {0, 1, 2, 3, 4, 5, 6})}}, ir::SplitAttrs{0, 3}, 3);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{0, 1, 2}));
  EXPECT_EQ(vals<float>((*r)[2]), (std::vector<float>{6}));
}

TEST(RefShape, ScatterNDMaxMinAndScatterElementsMulOnDuplicates) {
  Tensor data = f32({4}, {5, 5, 5, 5});
  Tensor idx = i64({3, 1}, {0, 0, 2});
  Tensor upd = f32({3}, {7, 3, 1});
  auto mx = run_op(OpKind::kScatterND, {{data}, {idx}, {upd}}, ir::ScatterNDAttrs{ir::ScatterReduction::kMax});
  ASSERT_TRUE(mx.ok()) << mx.error().message;
  EXPECT_EQ(vals<float>((*mx)[0]), (std::vector<float>{7, 5, 5, 5}));
  auto mn = run_op(OpKind::kScatterND, {{data}, {idx}, {upd}}, ir::ScatterNDAttrs{ir::ScatterReduction::kMin});
  ASSERT_TRUE(mn.ok()) << mn.error().message;
  EXPECT_EQ(vals<float>((*mn)[0]), (std::vector<float>{3, 5, 1, 5}));
  auto mul = run_op(OpKind::kScatterElements, {{i32({3}, {2, 2, 2})}, {i64({2}, {-1, -1})}, {i32({2}, {3, 4})}},
                    ir::ScatterElementsAttrs{0, ir::ScatterReduction::kMul});
  ASSERT_TRUE(mul.ok()) << mul.error().message;
  EXPECT_EQ(vals<int32_t>((*mul)[0]), (std::vector<int32_t>{2, 2, 24}));
}

TEST(RefShape, GatherNDWithBatchDimsAndNegativeIndex) {
  Tensor data = f32({2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  auto r = run_op(OpKind::kGatherND, {{data}, {i64({2, 1}, {1, -2})}}, ir::GatherNDAttrs{1});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(vals<float>((*r)[0]), (std::vector<float>{2, 3, 4, 5}));
}

TEST(RefShape, OneHotOutOfRangeRowStaysOff) {
  auto r = run_op(OpKind::kOneHot, {{i64({3}, {-1, 3, 1})}, C(f32({}, {3})), C(i64({2}, {0, 1}))}, ir::OneHotAttrs{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<int64_t>((*r)[0]), (std::vector<int64_t>{0, 0, 1, 0, 0, 0, 0, 1, 0}));
}

TEST(RefShape, RangeAndNonZeroAndCompress) {
  auto r = run_op(OpKind::kRange, {{i64({}, {10})}, {i64({}, {3})}, {i64({}, {-3})}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<int64_t>((*r)[0]), (std::vector<int64_t>{10, 7, 4}));
  auto nz = run_op(OpKind::kNonZero, {{boolean({2, 2}, {0, 1, 1, 0})}});
  ASSERT_TRUE(nz.ok()) << nz.error().message;
  EXPECT_EQ((*nz)[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(vals<int64_t>((*nz)[0]), (std::vector<int64_t>{0, 1, 1, 0}));
  // A condition shorter than the axis drops the rest.
  auto cp = run_op(OpKind::kCompress, {{f32({2, 3}, {1, 2, 3, 4, 5, 6})}, {boolean({2}, {0, 1})}},
                   ir::CompressAttrs{1});
  ASSERT_TRUE(cp.ok()) << cp.error().message;
  EXPECT_EQ(vals<float>((*cp)[0]), (std::vector<float>{2, 5}));
}

TEST(RefShape, TriluLowerWithNegativeKOnInts) {
  auto r = run_op(OpKind::kTrilu, {{i32({3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9})}, C(i64({}, {-1}))}, ir::TriluAttrs{0});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(vals<int32_t>((*r)[0]), (std::vector<int32_t>{0, 0, 0, 4, 0, 0, 7, 8, 0}));
}

TEST(RefResize, LinearAntialiasDownsample) {
  ir::ResizeAttrs a;
  a.mode = ir::ResizeMode::kLinear;
  a.antialias = 1;
  auto r = run_op(OpKind::kResize, {{f32({4}, {0, 1, 2, 3})}, {}, C(f32({1}, {0.5f}))}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // Triangle filter of width 2/scale: weights 1/8, 3/8, 3/8, 1/8 around each output.
  auto v = vals<float>((*r)[0]);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_FLOAT_EQ(v[0], 0.625f);
  EXPECT_FLOAT_EQ(v[1], 2.375f);
}

TEST(RefResize, SizesWithAxesAndNotLargerPolicy) {
  ir::ResizeAttrs a;
  a.axes = {2, 3};
  a.keep_aspect_ratio_policy = ir::AspectPolicy::kNotLarger;
  std::vector<float> x(1 * 1 * 2 * 4, 1.f);
  auto r = run_op(OpKind::kResize, {{f32({1, 1, 2, 4}, x)}, {}, {}, C(i64({2}, {8, 6}))}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // scale = min(8/2, 6/4) = 1.5 -> [3, 6]
  EXPECT_EQ((*r)[0].shape(), (Shape{1, 1, 3, 6}));
}

TEST(RefResize, NearestOnIntegersAndCropExtrapolation) {
  ir::ResizeAttrs a;
  a.coordinate_transformation_mode = ir::ResizeCoord::kTfCropAndResize;
  a.extrapolation_value = 7;
  auto r = run_op(OpKind::kResize, {{i32({2}, {1, 2})}, C(f32({2}, {0.f, 2.f})), {}, C(i64({1}, {3}))}, a);
  ASSERT_TRUE(r.ok()) << r.error().message;
  // x_original = 0, 1, 2: the last lies outside [0, 1].
  EXPECT_EQ(vals<int32_t>((*r)[0]), (std::vector<int32_t>{1, 2, 7}));
}

// ---- bad inputs ----------------------------------------------------------------

TEST(ShapeErrors, GatherIndexOutOfRange) {
  auto r = run_op(OpKind::kGather, {{f32({3}, {1, 2, 3})}, {i64({1}, {3})}}, ir::AxisAttrs{0});
  expect_error(r, "out of range");
}

TEST(ShapeErrors, ReshapeElementCountMismatch) {
  auto r = run_op(OpKind::kReshape, {{f32({2, 3}, {1, 2, 3, 4, 5, 6})}, C(i64({2}, {4, 2}))}, ir::ReshapeAttrs{});
  expect_error(r, "element counts differ");
  auto two = run_op(OpKind::kReshape, {{f32({2, 3}, {1, 2, 3, 4, 5, 6})}, C(i64({2}, {-1, -1}))}, ir::ReshapeAttrs{});
  expect_error(two, "more than one -1");
}

TEST(ShapeErrors, ConcatMismatchedDims) {
  auto r = run_op(OpKind::kConcat, {{f32({1, 2}, {1, 2})}, {f32({1, 3}, {1, 2, 3})}}, ir::ConcatAttrs{0});
  expect_error(r, "outside axis");
}

TEST(ShapeErrors, SqueezeOfNonUnitAxisAndSliceZeroStep) {
  expect_error(run_op(OpKind::kSqueeze, {{f32({2, 1}, {1, 2})}, C(i64({1}, {0}))}), "cannot squeeze");
  expect_error(run_op(OpKind::kSlice, {{f32({2}, {1, 2})}, C(i64({1}, {0})), C(i64({1}, {2})), C(i64({1}, {0})),
                                       C(i64({1}, {0}))}),
               "steps must not be 0");
}

TEST(ShapeErrors, ExpandIncompatibleAndTileNegative) {
  expect_error(run_op(OpKind::kExpand, {{f32({3}, {1, 2, 3})}, C(i64({1}, {2}))}), "cannot expand");
  expect_error(run_op(OpKind::kTile, {{f32({3}, {1, 2, 3})}, C(i64({1}, {-1}))}), "negative");
}

TEST(ShapeErrors, ScatterOutOfRangeAndReverseSequenceTooLong) {
  expect_error(run_op(OpKind::kScatterElements, {{f32({2}, {0, 0})}, {i64({1}, {2})}, {f32({1}, {1})}},
                      ir::ScatterElementsAttrs{}),
               "out of range");
  expect_error(run_op(OpKind::kReverseSequence, {{f32({2, 1}, {1, 2})}, {i64({1}, {3})}}, ir::ReverseSequenceAttrs{}),
               "sequence_lens");
}

TEST(ShapeErrors, ResizeNeedsExactlyOneOfScalesAndSizes) {
  ir::ResizeAttrs a;
  expect_error(run_op(OpKind::kResize, {{f32({2}, {1, 2})}, {}, C(f32({1}, {2})), C(i64({1}, {4}))}, a),
               "only one of scales and sizes");
  expect_error(run_op(OpKind::kResize, {{f32({2}, {1, 2})}}, a), "one of scales or sizes");
}

TEST(ShapeErrors, SplitNumOutputsThatCannotChunkAndCompressBeyondAxis) {
  expect_error(run_op(OpKind::kSplit, {{f32({5}, {0, 1, 2, 3, 4})}}, ir::SplitAttrs{0, 4}, 4), "cannot split");
  expect_error(run_op(OpKind::kCompress, {{f32({2}, {1, 2})}, {boolean({3}, {0, 0, 1})}}, ir::CompressAttrs{0}),
               "beyond axis");
}

}  // namespace
}  // namespace kiln
