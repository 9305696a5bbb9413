#include "passes/fold_shapes.h"

#include <algorithm>
#include <optional>

#include "passes/pass_util.h"

namespace kiln::passes {
namespace {

using ir::OpKind;

Tensor i64_tensor(const Shape& shape, const std::vector<int64_t>& v) {
  Tensor t = Tensor::create(DType::kI64, shape).value();
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

// The dims a Shape node outputs (possibly symbolic), or nullopt when the rank is unknown.
std::optional<Shape> shape_dims(const ir::Graph& g, const ir::Node& n) {
  const auto& t = g.value(n.inputs[0]).type;
  if (!t.rank_known) return std::nullopt;
  const auto& a = n.attr<ir::ShapeAttrs>();
  int64_t r = int64_t(t.shape.size());
  auto clampi = [r](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  int64_t start = clampi(a.start), end = a.end == ir::kAbsent ? r : clampi(a.end);
  if (end <= start) return Shape{};
  return Shape(t.shape.begin() + start, t.shape.begin() + end);
}

// The constant a Shape/Size/Gather(Shape) node computes, when static.
std::optional<Tensor> static_value(const Snapshot& s, const ir::Node& n) {
  const ir::Graph& g = s.g;
  if (n.op == OpKind::kShape) {
    auto d = shape_dims(g, n);
    if (!d || !is_static(*d)) return std::nullopt;
    return i64_tensor({int64_t(d->size())}, *d);
  }
  if (n.op == OpKind::kSize) {
    const auto& t = g.value(n.inputs[0]).type;
    if (!t.rank_known || !is_static(t.shape)) return std::nullopt;
    return i64_tensor({}, {numel(t.shape)});
  }
  if (n.op == OpKind::kGather) {
    int p = s.producer(n.inputs[0], OpKind::kShape);
    const Tensor* idx = s.constant(n.inputs[1]);
    if (p < 0 || !idx || is_float(idx->dtype()) || n.attr<ir::AxisAttrs>().axis != 0) return std::nullopt;
    auto d = shape_dims(g, g.nodes[size_t(p)]);
    if (!d) return std::nullopt;
    std::vector<int64_t> v;
    int64_t r = int64_t(d->size());
    for (int64_t k = 0; k < idx->numel(); ++k) {
      int64_t j = idx->as_int(k);
      if (j < 0) j += r;
      if (j < 0 || j >= r || (*d)[size_t(j)] < 0) return std::nullopt;
      v.push_back((*d)[size_t(j)]);
    }
    return i64_tensor(idx->shape(), v);
  }
  return std::nullopt;
}

}  // namespace

Result<int> fold_shapes(ir::Graph& g) {
  Snapshot s(g);
  int folded = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (n.outputs.size() != 1 || s.graph_io(n.outputs[0])) continue;
    auto t = static_value(s, n);
    if (!t) continue;
    ir::Value& v = g.value(n.outputs[0]);
    v.constant = std::move(*t);
    v.type = {DType::kI64, v.constant.shape(), true};
    s.kill(int(i));
    ++folded;
  }
  if (folded) KILN_TRY(s.finish());
  return folded;
}

}  // namespace kiln::passes
