#include "quant/equalize.h"

#include <cmath>

#include "ir/edit.h"
#include "ir/infer.h"

namespace kiln::quant {
namespace {

using ir::OpKind;

struct Pair {
  int first, second;  // node indices
  int64_t spatial;    // input features of `second` per channel of `first` (Flatten: H*W)
};

bool is_layer(const ir::Graph& g, const ir::Node& n) {
  if (n.op == OpKind::kConv)
    return n.attr<ir::ConvAttrs>().group == 1 && g.value(n.inputs[1]).is_constant();
  if (n.op == OpKind::kGemm) {
    const auto& a = n.attr<ir::GemmAttrs>();
    return !a.transA && a.transB && g.value(n.inputs[1]).is_constant();
  }
  return false;
}

// Follows single-consumer chains of Relu/MaxPool/Flatten from layer i to the next layer.
std::vector<Pair> find_pairs(const ir::Graph& g) {
  std::vector<Pair> pairs;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (!is_layer(g, g.nodes[i])) continue;
    ir::ValueId v = g.nodes[i].outputs[0];
    int64_t spatial = 1;
    bool ok = true;
    for (int hops = 0; hops < 8 && ok; ++hops) {
      auto c = ir::consumers(g, v);
      bool is_output = false;
      for (auto o : g.outputs) is_output |= o == v;
      if (c.size() != 1 || is_output) {
        ok = false;
        break;
      }
      const ir::Node& n = g.nodes[size_t(c[0])];
      if (is_layer(g, n) && n.inputs[0] == v) {
        pairs.push_back({int(i), c[0], spatial});
        break;
      }
      if (n.op == OpKind::kRelu || n.op == OpKind::kMaxPool) {
        v = n.outputs[0];
      } else if (n.op == OpKind::kFlatten && n.attr<ir::FlattenAttrs>().axis == 1) {
        const auto& t = g.value(n.inputs[0]).type;
        if (!t.rank_known || t.shape.size() < 2) ok = false;
        for (size_t d = 2; ok && d < t.shape.size(); ++d) {
          if (t.shape[d] < 0) ok = false;
          else spatial *= t.shape[d];
        }
        v = n.outputs[0];
      } else {
        ok = false;
      }
    }
  }
  return pairs;
}

}  // namespace

Result<int> equalize_layers(ir::Graph& g, int iterations) {
  auto pairs = find_pairs(g);
  for (int it = 0; it < iterations; ++it) {
    for (const auto& p : pairs) {
      ir::Node& a = g.nodes[size_t(p.first)];
      ir::Node& b = g.nodes[size_t(p.second)];
      Tensor w1 = g.value(a.inputs[1]).constant.clone();
      Tensor w2 = g.value(b.inputs[1]).constant.clone();
      if (w1.dtype() != DType::kF32 || w2.dtype() != DType::kF32) continue;
      int64_t c = w1.dim(0), per1 = w1.numel() / c;
      // second layer: Conv [Cout, C, k..] (channel axis 1) or Gemm transB [N, C*spatial]
      int64_t rows = w2.dim(0), cols = w2.numel() / rows;
      int64_t per_channel_cols = b.op == OpKind::kConv ? cols / c : p.spatial;
      if (per_channel_cols * c != cols) continue;
      std::vector<double> r1(size_t(c), 0.0), r2(size_t(c), 0.0);
      for (int64_t i = 0; i < c; ++i)
        for (int64_t k = 0; k < per1; ++k) r1[size_t(i)] = std::max(r1[size_t(i)], double(std::fabs(w1.data<float>()[i * per1 + k])));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t col = 0; col < cols; ++col)
          r2[size_t(col / per_channel_cols)] = std::max(r2[size_t(col / per_channel_cols)], double(std::fabs(w2.data<float>()[r * cols + col])));
      std::vector<float> s(size_t(c), 1.0f);
      for (int64_t i = 0; i < c; ++i)
        if (r1[size_t(i)] > 0 && r2[size_t(i)] > 0) s[size_t(i)] = float(std::sqrt(r1[size_t(i)] / r2[size_t(i)]));
      for (int64_t i = 0; i < c; ++i)
        for (int64_t k = 0; k < per1; ++k) w1.data<float>()[i * per1 + k] /= s[size_t(i)];
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t col = 0; col < cols; ++col) w2.data<float>()[r * cols + col] *= s[size_t(col / per_channel_cols)];
      a.inputs[1] = g.add_constant(g.unique_name(g.value(a.inputs[1]).name + "_eq"), std::move(w1));
      b.inputs[1] = g.add_constant(g.unique_name(g.value(b.inputs[1]).name + "_eq"), std::move(w2));
      if (a.inputs.size() > 2 && a.inputs[2] != ir::kNoValue && g.value(a.inputs[2]).is_constant()) {
        Tensor b1 = g.value(a.inputs[2]).constant.clone();
        if (b1.dtype() == DType::kF32 && b1.numel() == c) {
          for (int64_t i = 0; i < c; ++i) b1.data<float>()[i] /= s[size_t(i)];
          a.inputs[2] = g.add_constant(g.unique_name(g.value(a.inputs[2]).name + "_eq"), std::move(b1));
        }
      }
    }
  }
  return int(pairs.size());
}

}  // namespace kiln::quant
