#include "prune/magnitude.h"

#include <algorithm>
#include <cmath>

#include "ir/op_table.h"
#include "ir/ops/nn.h"

namespace kiln::prune {
namespace {

bool is_layer_op(ir::OpKind k) { return k == ir::OpKind::kConv || k == ir::OpKind::kGemm || k == ir::OpKind::kMatMul; }

int64_t count_zeros(const Tensor& w) {
  int64_t z = 0;
  for (int64_t i = 0; i < w.numel(); ++i) z += w.data<float>()[i] == 0.0f;
  return z;
}

// Zeroes the `k` smallest-magnitude weights of `w` (ties broken by index, so
// the result does not depend on the sort implementation).
void zero_smallest(Tensor& w, int64_t k) {
  if (k <= 0) return;
  float* p = w.data<float>();
  std::vector<int64_t> idx(size_t(w.numel()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = int64_t(i);
  auto less = [p](int64_t a, int64_t b) {
    float fa = std::fabs(p[a]), fb = std::fabs(p[b]);
    return fa < fb || (fa == fb && a < b);
  };
  k = std::min<int64_t>(k, w.numel());
  std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), less);
  for (int64_t i = 0; i < k; ++i) p[idx[size_t(i)]] = 0.0f;
}

// Tensor copies share bytes (core/tensor.h): give every layer its own weights
// before zeroing them, so a graph copied from another prunes alone.
void own_weights(ir::Graph& g, const std::vector<WeightLayer>& layers) {
  for (const auto& l : layers) g.value(l.weight).constant = g.value(l.weight).constant.clone();
}

Result<void> check_sparsity(double s, const std::string& what) {
  if (!(s >= 0.0 && s < 1.0)) return make_error(what + " sparsity " + std::to_string(s) + " is outside [0, 1)");
  return {};
}

}  // namespace

std::vector<WeightLayer> prunable_layers(const ir::Graph& g, const std::set<std::string>& exclude) {
  std::vector<WeightLayer> out;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    if (!is_layer_op(n.op) || n.inputs.size() < 2 || n.inputs[1] == ir::kNoValue) continue;
    if (exclude.count(n.name) || exclude.count(std::string(ir::op_name(n.op)))) continue;
    const ir::Value& w = g.value(n.inputs[1]);
    if (!w.is_constant() || w.constant.dtype() != DType::kF32 || w.constant.rank() < 2) continue;
    out.push_back({int(i), n.inputs[1], n.name});
  }
  return out;
}

std::vector<LayerSparsity> layer_sparsity(const ir::Graph& g, const std::set<std::string>& exclude) {
  std::vector<LayerSparsity> out;
  for (const auto& l : prunable_layers(g, exclude)) {
    const Tensor& w = g.value(l.weight).constant;
    out.push_back({l.name, w.numel(), count_zeros(w)});
  }
  return out;
}

Result<std::vector<LayerSparsity>> prune_magnitude(ir::Graph& g, const MagnitudeOptions& o) {
  KILN_TRY(check_sparsity(o.sparsity, "target"));
  auto layers = prunable_layers(g, o.exclude);
  if (layers.empty()) return make_error("the model has nothing to prune (no Conv/Gemm/MatMul with constant float32 weights)");
  for (const auto& [name, s] : o.layer_sparsity) {
    KILN_TRY(check_sparsity(s, "layer '" + name + "'"));
    bool found = std::any_of(layers.begin(), layers.end(), [&](const WeightLayer& l) { return l.name == name; });
    if (!found) return make_error("layer '" + name + "' is not a prunable layer of the model");
  }
  own_weights(g, layers);
  if (o.global && o.layer_sparsity.empty()) {
    // One threshold over every weight: collect magnitudes, find the k-th smallest.
    std::vector<float> mags;
    for (const auto& l : layers) {
      const Tensor& w = g.value(l.weight).constant;
      for (int64_t i = 0; i < w.numel(); ++i) mags.push_back(std::fabs(w.data<float>()[i]));
    }
    int64_t k = int64_t(std::llround(o.sparsity * double(mags.size())));
    if (k > 0) {
      std::nth_element(mags.begin(), mags.begin() + (k - 1), mags.end());
      float thr = mags[size_t(k - 1)];
      // Weights strictly below the threshold go, then ties at the threshold in
      // graph order until exactly k are zero.
      int64_t below = 0;
      for (float m : mags) below += m < thr;
      int64_t ties_left = k - below;
      for (const auto& l : layers) {
        float* p = g.value(l.weight).constant.data<float>();
        for (int64_t i = 0; i < g.value(l.weight).constant.numel(); ++i) {
          float m = std::fabs(p[i]);
          if (m < thr) p[i] = 0.0f;
          else if (m == thr && ties_left > 0) {
            p[i] = 0.0f;
            --ties_left;
          }
        }
      }
    }
  } else {
    for (const auto& l : layers) {
      auto it = o.layer_sparsity.find(l.name);
      double s = it != o.layer_sparsity.end() ? it->second : o.sparsity;
      Tensor& w = g.value(l.weight).constant;
      zero_smallest(w, int64_t(std::llround(s * double(w.numel()))));
    }
  }
  return layer_sparsity(g, o.exclude);
}

Result<std::vector<LayerSparsity>> prune_n_m(ir::Graph& g, int n, int m, const std::set<std::string>& exclude,
                                             std::vector<std::string>* skipped) {
  if (m < 2 || m > 64 || n < 1 || n >= m)
    return make_error("N:M pattern " + std::to_string(n) + ":" + std::to_string(m) + " is invalid (need 1 <= N < M <= 64)");
  auto layers = prunable_layers(g, exclude);
  if (layers.empty()) return make_error("the model has nothing to prune (no Conv/Gemm/MatMul with constant float32 weights)");
  own_weights(g, layers);
  for (const auto& l : layers) {
    const ir::Node& node = g.nodes[size_t(l.node)];
    Tensor& w = g.value(l.weight).constant;
    // Element (unit u, reduction index r) lives at u * su + r * sr (+ kernel position for Conv).
    int64_t units, red, su, sr, positions = 1;
    if (node.op == ir::OpKind::kConv) {
      units = w.dim(0);
      red = w.dim(1);
      positions = w.numel() / (units * red);
      su = red * positions;
      sr = positions;
    } else if (w.rank() == 2) {
      bool trans = node.op == ir::OpKind::kGemm && node.attr<ir::GemmAttrs>().transB;
      units = trans ? w.dim(0) : w.dim(1);
      red = trans ? w.dim(1) : w.dim(0);
      su = trans ? red : 1;
      sr = trans ? 1 : units;
    } else {
      if (skipped) skipped->push_back(l.name + " (weight of rank " + std::to_string(w.rank()) + ")");
      continue;
    }
    if (red % m != 0) {
      if (skipped) skipped->push_back(l.name + " (reduction length " + std::to_string(red) + " is not a multiple of " + std::to_string(m) + ")");
      continue;
    }
    float* p = w.data<float>();
    std::vector<int64_t> grp(static_cast<size_t>(m));
    for (int64_t u = 0; u < units; ++u)
      for (int64_t pos = 0; pos < positions; ++pos)
        for (int64_t r0 = 0; r0 < red; r0 += m) {
          for (int64_t j = 0; j < m; ++j) grp[size_t(j)] = u * su + (r0 + j) * sr + pos;
          // Largest N first (ties: lower index first), the rest become zero.
          std::stable_sort(grp.begin(), grp.end(), [p](int64_t a, int64_t b) { return std::fabs(p[a]) > std::fabs(p[b]); });
          for (int64_t j = n; j < m; ++j) p[grp[size_t(j)]] = 0.0f;
        }
  }
  return layer_sparsity(g, exclude);
}

}  // namespace kiln::prune
