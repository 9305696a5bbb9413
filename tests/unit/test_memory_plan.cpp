// The activation memory planner (map/memory_plan.h) on hand-built graphs:
// exact arenas on small chains, a residual diamond, graph outputs that must
// survive, where in place is and is not allowed, the brute-force checker
// rejecting bad plans, and LeNet against the reference backend's measured peak.
#include <gtest/gtest.h>

#include "ir/bind.h"
#include "ir/edit.h"
#include "ir/infer.h"
#include "map/memory_plan.h"
#include "onnx/import.h"
#include "runtime/session.h"

namespace kiln {
namespace {

using ir::OpKind;
using ir::ValueId;

const std::string kLenet = std::string(KILN_SOURCE_DIR) + "/models/lenet.onnx";

ValueId add_input(ir::Graph& g, const std::string& name, Shape s, DType dt = DType::kF32) {
  ValueId id = g.add_value(name, {dt, std::move(s), true});
  g.inputs.push_back(id);
  return id;
}
ValueId op(ir::Graph& g, const std::string& name, OpKind k, std::vector<ValueId> in, ir::Attrs a = ir::NoAttrs{}) {
  return ir::append_node(g, name, k, std::move(in), std::move(a))[0];
}

const map::ValuePlacement& placement(const map::MemoryPlan& p, ValueId id) {
  for (const auto& v : p.values)
    if (v.value == id) return v;
  ADD_FAILURE() << "value " << id << " not planned";
  return p.values.front();
}

map::MemoryPlan plan_checked(const ir::Graph& g, map::MemoryPlanOptions opts = {}) {
  auto p = map::plan_memory(g, opts);
  EXPECT_TRUE(p.ok()) << p.error().message;
  auto c = map::check_memory_plan(g, *p, opts);
  EXPECT_TRUE(c.ok()) << c.error().message;
  EXPECT_GE(p->arena_bytes, p->lower_bound_bytes);
  EXPECT_LE(p->arena_bytes, p->no_reuse_bytes + p->alignment * int64_t(p->values.size()));
  return std::move(p).value();
}

// x -> Sigmoid a -> Sigmoid b -> Sigmoid c (output), 25 floats = 100 B each.
ir::Graph chain(int length, Shape s = {1, 25}) {
  ir::Graph g;
  ValueId v = add_input(g, "x", s);
  for (int i = 0; i < length; ++i) v = op(g, "s" + std::to_string(i), OpKind::kSigmoid, {v});
  g.outputs.push_back(v);
  EXPECT_TRUE(ir::infer_graph(g).ok());
  return g;
}

}  // namespace

// A backend that runs s1 and s2 as one step (cpu_backend.cpp's expansion +
// depthwise pair): s1's output is never written (no bytes), and s0's output,
// s1's input, is read while s2's output is written, so they must not share.
TEST(MemoryPlan, FusedPairElidesItsIntermediateAndKeepsItsInputAlive) {
  ir::Graph g = chain(4);
  const ValueId a = g.nodes[0].outputs[0], b = g.nodes[1].outputs[0], c = g.nodes[2].outputs[0];
  auto plain = plan_checked(g, {.alignment = 64, .in_place = false});
  // Without the options s2's output takes s0's block, which dies at s1.
  EXPECT_EQ(placement(plain, c).offset, placement(plain, a).offset);
  map::MemoryPlanOptions o{.alignment = 64, .in_place = false, .elide = {b}, .read_until = {{a, 2}}};
  auto fused = plan_checked(g, o);
  EXPECT_EQ(placement(fused, b).bytes, 0);
  EXPECT_EQ(placement(fused, a).last, 2);
  const auto &pa = placement(fused, a), &pc = placement(fused, c);
  EXPECT_TRUE(pa.offset >= pc.offset + pc.bytes || pc.offset >= pa.offset + pa.bytes);
  EXPECT_EQ(fused.arena_bytes, 228);  // still two blocks: s0/s3 and s2
  // The check holds a plan to the options it was made with.
  EXPECT_FALSE(map::check_memory_plan(g, fused).ok());
}

TEST(MemoryPlan, ChainPingPongsBetweenTwoAlignedBlocks) {
  ir::Graph g = chain(3);
  auto p = plan_checked(g, {.alignment = 64, .in_place = false});
  ASSERT_EQ(p.values.size(), 3u);
  // s0 [0,1] at 0; s1 [1,2] clear of s0 at align_up(100) = 128; s2 [2,3] reuses 0.
  EXPECT_EQ(p.values[0].offset, 0);
  EXPECT_EQ(p.values[1].offset, 128);
  EXPECT_EQ(p.values[2].offset, 0);
  EXPECT_EQ(p.arena_bytes, 228);
  EXPECT_EQ(p.lower_bound_bytes, 200);
  EXPECT_EQ(p.no_reuse_bytes, 300);
  EXPECT_EQ(p.inplace_count, 0);
  EXPECT_EQ(p.values[2].last, 3);  // graph output lives to the end
}

TEST(MemoryPlan, ChainRunsInPlaceAfterTheGraphInput) {
  ir::Graph g = chain(4);
  auto p = plan_checked(g);
  // s0 may not overwrite the caller's input x; s1..s3 each take over their input.
  EXPECT_EQ(p.values[0].inplace_of, ir::kNoValue);
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(p.values[i].inplace_of, p.values[i - 1].value);
  EXPECT_EQ(p.inplace_count, 3);
  EXPECT_EQ(p.arena_bytes, 100);
  EXPECT_EQ(p.lower_bound_bytes, 100);
  EXPECT_EQ(p.no_reuse_bytes, 400);
}

TEST(MemoryPlan, ResidualDiamondKeepsTheSkipAlive) {
  // a = Relu(x); b = Sigmoid(a); c = Add(a, b). b must not overwrite a (Add
  // reads a later); c may take over a or b, both die at the Add.
  ir::Graph g;
  ValueId x = add_input(g, "x", {4, 16});
  ValueId a = op(g, "relu", OpKind::kRelu, {x});
  ValueId b = op(g, "sig", OpKind::kSigmoid, {a});
  ValueId c = op(g, "add", OpKind::kAdd, {a, b});
  g.outputs.push_back(c);
  ASSERT_TRUE(ir::infer_graph(g).ok());
  auto p = plan_checked(g);
  EXPECT_EQ(placement(p, b).inplace_of, ir::kNoValue);
  EXPECT_NE(placement(p, a).offset, placement(p, b).offset);
  EXPECT_EQ(placement(p, a).last, 2);
  EXPECT_EQ(placement(p, c).inplace_of, a);
  EXPECT_EQ(p.arena_bytes, 2 * 256);
  EXPECT_EQ(p.lower_bound_bytes, 2 * 256);
}

TEST(MemoryPlan, GraphOutputIsNeverOverwritten) {
  // a is a graph output and also read by Exp: Exp must not run in place of it,
  // and nothing later may reuse its bytes.
  ir::Graph g;
  ValueId x = add_input(g, "x", {8, 8});
  ValueId a = op(g, "relu", OpKind::kRelu, {x});
  ValueId b = op(g, "exp", OpKind::kExp, {a});
  ValueId c = op(g, "neg", OpKind::kNeg, {b});
  ValueId d = op(g, "tanh", OpKind::kTanh, {c});
  g.outputs = {a, d};
  ASSERT_TRUE(ir::infer_graph(g).ok());
  auto p = plan_checked(g);
  const auto& pa = placement(p, a);
  EXPECT_EQ(pa.last, 4);
  EXPECT_EQ(placement(p, b).inplace_of, ir::kNoValue);
  EXPECT_EQ(placement(p, c).inplace_of, b);
  EXPECT_EQ(placement(p, d).inplace_of, c);
  for (ValueId v : {b, c, d}) EXPECT_NE(placement(p, v).offset, pa.offset);
  EXPECT_EQ(p.arena_bytes, 256 + 256);
}

TEST(MemoryPlan, InPlaceNeedsSameShapeAndADyingActivation) {
  ir::Graph g;
  ValueId x = add_input(g, "x", {4, 8});
  ValueId row = add_input(g, "row", {1, 8});
  ValueId bias = ir::add_tensor_f32(g, "bias", std::vector<float>(8, 0.5f));
  ValueId a = op(g, "relu", OpKind::kRelu, {x});        // [4,8]
  ValueId s = op(g, "srow", OpKind::kSigmoid, {row});   // [1,8]
  ValueId t = op(g, "bc", OpKind::kAdd, {s, a});        // s is broadcast; a is read again below
  ValueId u = op(g, "bias", OpKind::kAdd, {t, bias});   // t dies, same shape: in place
  ValueId w = op(g, "mul", OpKind::kMul, {u, a});       // u and a both die: takes the first, u
  ValueId f = op(g, "flat", OpKind::kFlatten, {w}, ir::FlattenAttrs{});  // a view of the same bytes
  ValueId m = op(g, "mm", OpKind::kMatMul, {f, bias});  // not an in-place op
  g.outputs.push_back(m);
  ASSERT_TRUE(ir::infer_graph(g).ok());
  auto p = plan_checked(g);
  EXPECT_EQ(placement(p, t).inplace_of, ir::kNoValue);
  EXPECT_EQ(placement(p, u).inplace_of, t);
  EXPECT_EQ(placement(p, w).inplace_of, u);
  EXPECT_EQ(placement(p, f).inplace_of, w);
  EXPECT_EQ(placement(p, m).inplace_of, ir::kNoValue);
  EXPECT_EQ(p.inplace_count, 3);
  EXPECT_EQ(map::in_place_kind(OpKind::kConv), map::InPlaceKind::kNone);
  EXPECT_EQ(map::in_place_kind(OpKind::kRelu), map::InPlaceKind::kUnary);
}

TEST(MemoryPlan, CheckerRejectsOverlapsAndIllegalInPlace) {
  ir::Graph g = chain(3);
  auto good = plan_checked(g, {.alignment = 64, .in_place = false});
  auto overlap = good;
  overlap.values[1].offset = 0;  // s0 and s1 are alive together at node 1
  auto r = map::check_memory_plan(g, overlap);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("overlap"), std::string::npos) << r.error().message;

  auto unaligned = good;
  unaligned.values[1].offset = 100;
  EXPECT_FALSE(map::check_memory_plan(g, unaligned).ok());

  auto outside = good;
  outside.arena_bytes = 200;
  EXPECT_FALSE(map::check_memory_plan(g, outside).ok());

  // s2 claiming s0's block: s0 is not its input.
  auto wrong_donor = good;
  wrong_donor.values[2].inplace_of = wrong_donor.values[0].value;
  wrong_donor.inplace_count = 1;
  EXPECT_FALSE(map::check_memory_plan(g, wrong_donor).ok());

  // Relu whose input is read again later must not be in place, even if claimed.
  ir::Graph d;
  ValueId x = add_input(d, "x", {16});
  ValueId a = op(d, "e", OpKind::kExp, {x});
  ValueId b = op(d, "r", OpKind::kRelu, {a});
  ValueId c = op(d, "add", OpKind::kAdd, {a, b});
  d.outputs.push_back(c);
  ASSERT_TRUE(ir::infer_graph(d).ok());
  auto dp = plan_checked(d);
  auto forced = dp;
  for (auto& v : forced.values)
    if (v.value == b) {
      v.inplace_of = a;
      v.offset = placement(dp, a).offset;
      ++forced.inplace_count;
    }
  EXPECT_FALSE(map::check_memory_plan(d, forced).ok());
}

TEST(MemoryPlan, SymbolicShapeIsANamedError) {
  ir::Graph g;
  ValueId x = add_input(g, "x", {g.symbol("N"), 4});
  g.outputs.push_back(op(g, "relu", OpKind::kRelu, {x}));
  ASSERT_TRUE(ir::infer_graph(g).ok());
  auto p = map::plan_memory(g);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("'relu_out'"), std::string::npos) << p.error().message;
  EXPECT_NE(p.error().message.find("bind symbolic dims"), std::string::npos) << p.error().message;
}

// The reference backend frees each activation after its last reader and
// reports the most bytes it held at once: exactly the planner's lower bound
// without in-place sharing, so the arena can never be below it.
TEST(MemoryPlan, LenetMatchesReferencePeakAndChecks) {
  for (int64_t batch : {1, 8}) {
    auto loaded = onnx_io::load_model(kLenet);
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    ir::Graph g = std::move(loaded).value();
    ASSERT_TRUE(ir::bind_symbols(g, {}, batch).ok());
    auto shared = plan_checked(g);
    auto separate = plan_checked(g, {.alignment = 64, .in_place = false});
    EXPECT_GT(shared.inplace_count, 0);
    EXPECT_LE(shared.arena_bytes, separate.arena_bytes);
    EXPECT_LT(shared.arena_bytes, shared.no_reuse_bytes);

    auto s = runtime::Session::create(g);
    ASSERT_TRUE(s.ok()) << s.error().message;
    ASSERT_TRUE(s->plan().memory.has_value());
    EXPECT_EQ(s->plan().memory->arena_bytes, shared.arena_bytes);
    const auto& in = g.value(g.inputs[0]).type;
    Tensor x = Tensor::create(in.dtype, in.shape).value();
    RunStats stats;
    auto out = s->run(std::vector<Tensor>{x}, &stats);
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_EQ(separate.lower_bound_bytes, stats.peak_activation_bytes) << "batch " << batch;
    EXPECT_GE(separate.arena_bytes, stats.peak_activation_bytes);
  }
}

}  // namespace kiln
