#include "backends/reference/reference.h"

#include <chrono>

#include "backends/reference/kernel.h"
#include "ir/op_table.h"

namespace kiln::ref {

BroadcastIndex::BroadcastIndex(const Shape& in_shape, const Shape& out_shape) {
  identity_ = in_shape == out_shape;
  size_t r = out_shape.size();
  out_dims_ = out_shape;
  in_strides_.assign(r, 0);
  auto st = strides_of(in_shape);
  size_t off = r - in_shape.size();
  for (size_t i = 0; i < in_shape.size(); ++i) in_strides_[off + i] = in_shape[i] == 1 ? 0 : st[i];
}

int64_t BroadcastIndex::operator()(int64_t flat) const {
  if (identity_) return flat;
  int64_t idx = 0;
  for (size_t i = out_dims_.size(); i-- > 0;) {
    int64_t d = out_dims_[i];
    int64_t c = flat % d;
    flat /= d;
    idx += c * in_strides_[i];
  }
  return idx;
}

namespace {

class ReferenceExecutable final : public Executable {
 public:
  explicit ReferenceExecutable(const ir::Graph& g) : g_(g) {
    last_use_.assign(g.values.size(), -1);
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (auto id : g.nodes[i].inputs)
        if (id != ir::kNoValue) last_use_[size_t(id)] = int(i);
    for (auto id : g.outputs) last_use_[size_t(id)] = int(g.nodes.size());
  }

  Result<std::vector<Tensor>> run(std::span<const Tensor> inputs, RunStats* stats) override {
    std::vector<Tensor> env(g_.values.size());
    int64_t live = 0, peak = 0;
    for (size_t i = 0; i < g_.inputs.size(); ++i) env[size_t(g_.inputs[i])] = inputs[i];
    for (size_t ni = 0; ni < g_.nodes.size(); ++ni) {
      const ir::Node& n = g_.nodes[ni];
      std::vector<Tensor> outs(n.outputs.size());
      const auto t0 = std::chrono::steady_clock::now();
      KILN_TRY(run_node(n, env, outs));
      if (stats && stats->profile) {
        if (stats->steps.size() != g_.nodes.size()) {  // names once, not per run
          stats->steps.assign(g_.nodes.size(), {});
          for (size_t k = 0; k < g_.nodes.size(); ++k) stats->steps[k] = {g_.describe(g_.nodes[k]), "reference", 0};
        }
        stats->steps[ni].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      for (size_t o = 0; o < n.outputs.size(); ++o) {
        if (n.outputs[o] == ir::kNoValue) continue;
        live += outs[o].nbytes();
        env[size_t(n.outputs[o])] = std::move(outs[o]);
      }
      peak = std::max(peak, live);
      // Free values whose last reader was this node.
      for (auto id : n.inputs)
        if (id != ir::kNoValue && last_use_[size_t(id)] == int(ni) && !g_.value(id).is_constant() &&
            env[size_t(id)].defined()) {
          bool is_input = false;
          for (auto gi : g_.inputs) is_input |= gi == id;
          if (!is_input) live -= env[size_t(id)].nbytes();
          env[size_t(id)] = Tensor();
        }
    }
    if (stats) stats->peak_activation_bytes = peak;
    std::vector<Tensor> result;
    for (auto id : g_.outputs) {
      const Tensor& t = g_.value(id).is_constant() ? g_.value(id).constant : env[size_t(id)];
      result.push_back(t);
    }
    return result;
  }

 private:
  const Tensor* lookup(ir::ValueId id, const std::vector<Tensor>& env) const {
    if (id == ir::kNoValue) return nullptr;
    if (g_.value(id).is_constant()) return &g_.value(id).constant;
    return &env[size_t(id)];
  }

  Result<void> run_node(const ir::Node& n, const std::vector<Tensor>& env, std::vector<Tensor>& outs) {
    std::vector<const Tensor*> in;
    for (auto id : n.inputs) {
      const Tensor* t = lookup(id, env);
      if (t && !t->defined()) return make_error(g_.describe(n) + ": input '" + g_.value(id).name + "' was not computed");
      in.push_back(t);
    }
    KILN_ASSIGN(outs, ref::run_node(n, in, g_.describe(n)));
    return {};
  }

  const ir::Graph& g_;
  std::vector<int> last_use_;
};

}  // namespace

Result<std::vector<Tensor>> run_node(const ir::Node& n, const std::vector<const Tensor*>& inputs, const std::string& where) {
  KernelFn fn = find_kernel(n.op);
  if (!fn) return make_error(where + ": the reference backend has no kernel for this op");
  std::vector<Tensor> outs(n.outputs.size());
  ir::InferCtx ictx{n, {}, {}, {}, [] { return int64_t(-1); }, where};
  KernelCtx kctx{n, inputs, outs, where};
  for (const Tensor* t : inputs) {
    ictx.in_value.push_back(t);
    ictx.in.push_back(t ? ir::ValueType{t->dtype(), t->shape(), true} : ir::ValueType{});
  }
  ictx.out.resize(n.outputs.size());
  KILN_TRY(ir::op_info(n.op).infer(ictx));
  for (size_t o = 0; o < outs.size(); ++o)
    if (ictx.out[o].rank_known && is_static(ictx.out[o].shape) && ictx.out[o].dtype != DType::kUndefined) {
      KILN_ASSIGN(outs[o], Tensor::create(ictx.out[o].dtype, ictx.out[o].shape));
    }
  KILN_TRY(fn(kctx));
  for (size_t o = 0; o < outs.size(); ++o)
    if (n.outputs[o] != ir::kNoValue && !outs[o].defined())
      return make_error(where + ": kernel produced no output " + std::to_string(o));
  return outs;
}

Support ReferenceBackend::supports(const ir::Graph&, const ir::Node& n) const {
  if (find_kernel(n.op)) return {};
  return {false, "no reference kernel for " + std::string(ir::op_name(n.op))};
}

Result<std::unique_ptr<Executable>> ReferenceBackend::compile(const ir::Graph& g, const map::Plan&) const {
  for (const auto& n : g.nodes) {
    Support s = supports(g, n);
    if (!s.ok) return make_error(g.describe(n) + ": " + s.reason);
  }
  return std::unique_ptr<Executable>(new ReferenceExecutable(g));
}

}  // namespace kiln::ref
