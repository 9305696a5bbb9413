#include "backends/cpu/cpu_backend.h"

#include <chrono>
#include <cstring>
#include <mutex>
#include <sstream>

#include "backends/cpu/step.h"
#include "backends/reference/reference.h"
#include "ir/infer.h"
#include "ir/op_table.h"
#include "ir/print.h"
#include "map/memory_plan.h"
#include "passes/pipeline.h"

namespace kiln::cpu {
namespace {

// A node the CPU kernels do not take, run on the reference kernel over views
// of the arena; its outputs are copied into their arena slots.
class FallbackStep final : public Step {
 public:
  const ir::Graph* g;
  const ir::Node* n;
  Result<void> run(RunCtx& c) override {
    std::vector<Tensor> views;
    views.reserve(n->inputs.size());
    std::vector<const Tensor*> in;
    for (ir::ValueId id : n->inputs) {
      if (id == ir::kNoValue) {
        in.push_back(nullptr);
        continue;
      }
      const ir::Value& v = g->value(id);
      if (v.is_constant()) {
        in.push_back(&v.constant);
        continue;
      }
      views.push_back(Tensor::view(v.type.dtype, v.type.shape, c.addr[size_t(id)]));
      in.push_back(&views.back());
    }
    KILN_ASSIGN(auto outs, ref::run_node(*n, in, g->describe(*n)));
    for (size_t o = 0; o < n->outputs.size(); ++o) {
      ir::ValueId id = n->outputs[o];
      if (id == ir::kNoValue) continue;
      const ir::Value& v = g->value(id);
      if (outs[o].nbytes() != dtype_bytes(v.type.dtype, [&] {
            int64_t p = 1;
            for (int64_t d : v.type.shape) p *= d;
            return p;
          }()))
        return make_error(g->describe(*n) + ": output " + std::to_string(o) + " has shape " +
                          shape_str(outs[o].shape()) + ", the plan expected " + shape_str(v.type.shape));
      std::memcpy(c.addr[size_t(id)], outs[o].raw(), size_t(outs[o].nbytes()));
    }
    return {};
  }
};

struct Program {
  std::vector<Shape> key;  // input shapes it was built for
  ir::Graph g;
  map::MemoryPlan mem;
  std::vector<std::unique_ptr<Step>> steps;
  std::vector<std::string> step_nodes;  // the node each step runs, described
  std::unique_ptr<std::byte, void (*)(std::byte*)> arena{nullptr, [](std::byte* p) {
                                                          ::operator delete(p, std::align_val_t(64));
                                                        }};
  std::vector<void*> addr;
  std::string text;
};

class CpuExecutable final : public Executable {
 public:
  CpuExecutable(const ir::Graph& g, const map::Plan& plan, Isa isa)
      : graph_(g), ks_(kernel_set(isa)), pool_(plan.threads), conv3x3_(plan.conv3x3) {}

  Result<std::vector<Tensor>> run(std::span<const Tensor> inputs, RunStats* stats) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Shape> key;
    for (const Tensor& t : inputs) key.push_back(t.shape());
    if (!prog_ || prog_->key != key) {
      prog_.reset();
      KILN_ASSIGN(prog_, specialize(key));
    }
    Program& p = *prog_;
    for (size_t i = 0; i < inputs.size(); ++i)
      p.addr[size_t(p.g.inputs[i])] = const_cast<void*>(inputs[i].raw());
    RunCtx ctx{p.addr, pool_.size() > 1 ? &pool_ : nullptr, ks_};
    if (stats && stats->profile) {
      if (stats->steps.size() != p.steps.size()) {  // names once, not per run
        stats->steps.assign(p.steps.size(), {});
        for (size_t i = 0; i < p.steps.size(); ++i) stats->steps[i] = {p.step_nodes[i], p.steps[i]->kernel, 0};
      }
      for (size_t i = 0; i < p.steps.size(); ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        KILN_TRY(p.steps[i]->run(ctx));
        stats->steps[i].seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    } else {
      for (auto& s : p.steps) KILN_TRY(s->run(ctx));
    }
    std::vector<Tensor> out;
    for (ir::ValueId id : p.g.outputs) {
      const ir::Value& v = p.g.value(id);
      KILN_ASSIGN(Tensor t, Tensor::create(v.type.dtype, v.type.shape));
      std::memcpy(t.raw(), p.addr[size_t(id)], size_t(t.nbytes()));
      out.push_back(std::move(t));
    }
    if (stats) stats->peak_activation_bytes = p.mem.arena_bytes;
    return out;
  }

  std::string describe() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return prog_ ? prog_->text : std::string("(not specialized yet: the plan is made on the first run)\n");
  }

 private:
  Result<std::unique_ptr<Program>> specialize(const std::vector<Shape>& key) {
    auto p = std::make_unique<Program>();
    p->key = key;
    p->g = graph_;
    for (size_t i = 0; i < key.size(); ++i) p->g.value(p->g.inputs[i]).type.shape = key[i];
    KILN_TRY(ir::infer_graph(p->g));
    passes::PipelineOptions po;
    KILN_TRY(passes::run_pipeline(p->g, po));
    // Fused convolution blocks, chosen before the memory plan: the values
    // between their stages get no bytes, and a block's input stays alive
    // while its last node's output is written.
    std::vector<int> block_nodes(p->g.nodes.size(), 0);
    map::MemoryPlanOptions mo;
    {
      const std::vector<int32_t> readers = count_readers(p->g);
      for (size_t i = 0; i < p->g.nodes.size(); ++i) {
        ConvBlockMatch m = match_conv_block(p->g, i, readers, ks_.mr, pool_.size());
        if (m.nodes < 2) continue;
        block_nodes[i] = m.nodes;
        mo.elide.insert(mo.elide.end(), m.elide.begin(), m.elide.end());
        mo.read_until.push_back({m.input, int32_t(i + size_t(m.nodes) - 1)});
        i += size_t(m.nodes) - 1;
      }
    }
    KILN_ASSIGN(p->mem, map::plan_memory(p->g, mo));
    p->arena.reset(static_cast<std::byte*>(
        ::operator new(size_t(std::max<int64_t>(p->mem.arena_bytes, 64)), std::align_val_t(64))));
    p->addr.assign(p->g.values.size(), nullptr);
    for (size_t i = 0; i < p->g.values.size(); ++i) {
      ir::Value& v = p->g.values[i];
      if (v.is_constant()) p->addr[i] = v.constant.raw();
    }
    for (const auto& vp : p->mem.values) p->addr[size_t(vp.value)] = p->arena.get() + vp.offset;
    // Builders may time candidate kernels: on a zeroed arena and zeroed
    // stand-ins for the graph inputs (zeros: no denormal slow paths).
    std::memset(p->arena.get(), 0, size_t(p->mem.arena_bytes));
    std::vector<std::vector<std::byte>> probe_inputs;
    for (size_t i = 0; i < p->g.inputs.size(); ++i) {
      const ir::ValueType& t = p->g.value(p->g.inputs[i]).type;
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      probe_inputs.emplace_back(size_t(std::max<int64_t>(dtype_bytes(t.dtype, n), 64)), std::byte{0});
      p->addr[size_t(p->g.inputs[i])] = probe_inputs.back().data();
    }
    RunCtx probe{p->addr, pool_.size() > 1 ? &pool_ : nullptr, ks_};
    std::ostringstream text;
    text << "cpu plan: " << describe_cpu() << "\n";
    text << "kernels " << isa_name(ks_.isa) << " (" << ks_.gemm_name << "), " << pool_.size() << " thread(s)\n";
    text << "arena " << p->mem.arena_bytes << " bytes for " << p->mem.values.size() << " activations ("
         << p->mem.inplace_count << " in place)\n";
    int fallbacks = 0;
    for (size_t ni = 0; ni < p->g.nodes.size(); ++ni) {
      const ir::Node& n = p->g.nodes[ni];
      std::unique_ptr<Step> step;
      std::string why;
      if (int count = block_nodes[ni]; count > 1) {
        BuildCtx bc{p->g, n, ks_, pool_.size(), &probe, conv3x3_};
        KILN_ASSIGN(step, build_conv_block(bc, count));
        const ir::Node& last = p->g.nodes[ni + size_t(count) - 1];
        std::string names = p->g.describe(n);
        for (int j = 1; j < count; ++j) names += " + " + p->g.describe(p->g.nodes[ni + size_t(j)]);
        text << "  " << names << " -> " << ir::type_str(p->g, p->g.value(last.outputs[0]).type) << "  "
             << step->kernel << "\n";
        p->steps.push_back(std::move(step));
        p->step_nodes.push_back(names);
        ni += size_t(count) - 1;
        continue;
      }
      if (StepBuilder b = find_builder(n.op)) {
        BuildCtx bc{p->g, n, ks_, pool_.size(), &probe, conv3x3_};
        KILN_ASSIGN(step, b(bc, &why));
      } else {
        why = "no CPU kernel for " + std::string(ir::op_name(n.op));
      }
      if (!step) {
        auto f = std::make_unique<FallbackStep>();
        f->g = &p->g;
        f->n = &n;
        f->kernel = "reference (" + why + ")";
        step = std::move(f);
        ++fallbacks;
      }
      std::string out_type = n.outputs.empty() || n.outputs[0] == ir::kNoValue
                                 ? ""
                                 : ir::type_str(p->g, p->g.value(n.outputs[0]).type);
      text << "  " << p->g.describe(n) << " -> " << out_type << "  " << step->kernel << "\n";
      p->steps.push_back(std::move(step));
      p->step_nodes.push_back(p->g.describe(n));
    }
    for (ir::ValueId id : p->g.inputs) p->addr[size_t(id)] = nullptr;
    text << p->steps.size() << " steps, " << fallbacks << " on the reference kernels\n";
    p->text = text.str();
    return p;
  }

  static std::string describe_cpu() { return cpu::describe(); }

  ir::Graph graph_;
  const KernelSet& ks_;
  ThreadPool pool_;
  std::string conv3x3_;
  mutable std::mutex mu_;
  std::unique_ptr<Program> prog_;
};

}  // namespace

double time_step(Step& s, RunCtx& c, int reps) {
  double best = 1e30;
  if (!s.run(c).ok()) return best;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    if (!s.run(c).ok()) return 1e30;
    best = std::min(best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

Support CpuBackend::supports(const ir::Graph&, const ir::Node& n) const {
  // Every op the reference backend runs is runnable here (the plan says which
  // run on CPU kernels and which fall back).
  if (ref::ReferenceBackend().supports(ir::Graph{}, n).ok) return {};
  return {false, "no CPU or reference kernel for " + std::string(ir::op_name(n.op))};
}

Result<std::unique_ptr<Executable>> CpuBackend::compile(const ir::Graph& g, const map::Plan& plan) const {
  for (const auto& n : g.nodes) {
    Support s = supports(g, n);
    if (!s.ok) return make_error(g.describe(n) + ": " + s.reason);
  }
  Isa isa;
  if (!parse_isa(plan.isa.empty() ? "auto" : plan.isa, &isa))
    return make_error("unknown instruction set '" + plan.isa + "' (known: auto, portable, avx2, avx512, avx512-amx)");
  if (!isa_available(isa))
    return make_error("instruction set '" + std::string(isa_name(isa)) + "' is not available on this CPU (" +
                      describe() + ")");
  if (plan.conv3x3 != "auto" && plan.conv3x3 != "direct" && plan.conv3x3 != "winograd")
    return make_error("unknown 3x3 convolution choice '" + plan.conv3x3 + "' (known: auto, direct, winograd)");
  if (plan.threads < 1) return make_error("threads must be >= 1, got " + std::to_string(plan.threads));
  return std::unique_ptr<Executable>(new CpuExecutable(g, plan, isa));
}

}  // namespace kiln::cpu
