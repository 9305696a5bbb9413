// The ordered pass list. Order matters: noops and shape arithmetic go first so
// that constant folding sees the chains they free; the transformer patterns
// look for the plain-ONNX forms before anything fuses Gemm/Conv; BatchNorm and
// elementwise folding change weights before activations fuse onto Conv/Gemm
// (a fused node no longer matches those patterns); attention is fused once
// LayerNorm/Gelu and the folds have settled the graph around it; elementwise
// chains form last, so that an activation after Conv/Gemm fuses onto it
// first; cleanup runs once at the end.
#include "passes/pipeline.h"

#include <algorithm>

#include "ir/infer.h"
#include "ir/verify.h"
#include "passes/cleanup.h"
#include "passes/eliminate_noops.h"
#include "passes/fold_batchnorm.h"
#include "passes/fold_constants.h"
#include "passes/fold_shapes.h"
#include "passes/fuse_activation.h"
#include "passes/fuse_attention.h"
#include "passes/fuse_conv_add.h"
#include "passes/fuse_elementwise.h"
#include "passes/fuse_elementwise_chain.h"
#include "passes/fuse_gelu.h"
#include "passes/fuse_layernorm.h"
#include "passes/fuse_matmul_bias.h"

namespace kiln::passes {
namespace {

constexpr PassInfo kPasses[] = {
    {"eliminate_noops", &eliminate_noops, true, "remove Identity, inference Dropout, same-shape Reshape, identity Transpose, ..."},
    {"fold_shapes", &fold_shapes, true, "Shape/Size/Gather(Shape) of static dims -> constants"},
    {"fold_constants", &fold_constants, true, "evaluate nodes whose inputs are all constants (results up to 16 MiB)"},
    {"fuse_layernorm", &fuse_layernorm, true, "ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div[/Mul/Add] -> LayerNormalization"},
    {"fuse_gelu", &fuse_gelu, true, "x * 0.5 * (1 + Erf(x / sqrt 2)) -> Gelu"},
    {"fold_batchnorm", &fold_batchnorm, true, "BatchNormalization after Conv/Gemm/MatMul -> folded into weights and bias"},
    {"fuse_elementwise", &fuse_elementwise, true, "Mul/Div/Add/Sub by per-channel constants after Conv/Gemm -> weights and bias"},
    {"fuse_attention", &fuse_attention, false, "Softmax(MatMul(Q, K^T) * s [+ mask]) . V -> kiln Attention"},
    {"fuse_matmul_bias", &fuse_matmul_bias, true, "MatMul(X, W) + B with constant W [K, N] and B -> Gemm (X viewed as rows)"},
    {"fuse_conv_add", &fuse_conv_add, false, "Conv + Add(residual) -> kiln FusedConv with input Z, the add in the epilogue"},
    {"fuse_activation", &fuse_activation, false, "Conv/Gemm + Relu/Clip/HardSwish/Sigmoid/Gelu/LeakyRelu -> kiln FusedConv/FusedGemm"},
    {"fuse_elementwise_chain", &fuse_elementwise_chain, false, "2+ single-input elementwise ops in a row -> kiln ElementwiseChain"},
    {"cleanup", &cleanup, true, "remove dead nodes and unused constants (runs once, last)"},
};

bool selected(const PipelineOptions& o, std::string_view name) {
  return o.only.empty() || std::find(o.only.begin(), o.only.end(), name) != o.only.end();
}

}  // namespace

std::span<const PassInfo> pass_list() { return kPasses; }

const PassInfo* find_pass(std::string_view name) {
  for (const auto& p : kPasses)
    if (p.name == name) return &p;
  return nullptr;
}

Result<void> check_pass_names(const std::vector<std::string>& names) {
  for (const auto& n : names) {
    if (find_pass(n)) continue;
    std::string known;
    for (const auto& p : kPasses) known += (known.empty() ? "" : ", ") + std::string(p.name);
    return make_error("unknown pass '" + n + "' (known: " + known + ")");
  }
  return {};
}

Result<PipelineResult> run_pipeline(ir::Graph& g, const PipelineOptions& opts) {
  KILN_TRY(check_pass_names(opts.only));
  PipelineResult res;
  std::vector<const PassInfo*> loop;
  const PassInfo* last = nullptr;
  for (const auto& p : kPasses) {
    if (!selected(opts, p.name)) continue;
    if (opts.onnx_only && !p.onnx_expressible) {
      res.skipped.emplace_back(p.name);
      continue;
    }
    res.passes.push_back({std::string(p.name), 0, 0});
    if (p.run == &cleanup) last = &p;
    else loop.push_back(&p);
  }
  KILN_TRY(ir::infer_graph(g));
  auto run_one = [&](const PassInfo& p, size_t slot, int round) -> Result<int> {
    auto r = p.run(g);
    if (!r.ok()) return make_error(std::string(p.name) + ": " + r.error().message);
    KILN_TRY(ir::infer_graph(g));
    if (opts.verify) {
      auto v = ir::verify(g);
      if (!v.ok()) return make_error("after pass " + std::string(p.name) + ": " + v.error().message);
    }
    res.passes[slot].rewrites += *r;
    ++res.passes[slot].runs;
    if (opts.after_pass) opts.after_pass(p.name, round, *r, g);
    return *r;
  };
  auto slot_of = [&](const PassInfo* p) {
    for (size_t k = 0; k < res.passes.size(); ++k)
      if (res.passes[k].name == p->name) return k;
    return size_t(0);
  };
  for (int round = 0; round < std::max(opts.max_rounds, 1); ++round) {
    int changed = 0;
    for (const PassInfo* p : loop) {
      KILN_ASSIGN(int n, run_one(*p, slot_of(p), round));
      changed += n;
    }
    res.rounds = round + 1;
    if (changed == 0) break;
  }
  if (last) KILN_TRY(run_one(*last, slot_of(last), res.rounds - 1 < 0 ? 0 : res.rounds - 1));
  return res;
}

}  // namespace kiln::passes
