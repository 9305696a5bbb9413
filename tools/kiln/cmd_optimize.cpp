// kiln optimize MODEL -o OUT(.onnx|.kiln) [--passes a,b] [--dump-after PASS]
// [--list-passes]: runs the graph-pass pipeline (passes/pipeline.h) and prints
// a before/after table (nodes, op counts that changed, parameters, FLOPs) and
// the max relative output difference between the original and the optimized
// model on one random input (symbolic dims bound to 1 unless --dim). ONNX
// output runs only the passes whose result ONNX can express; .kiln runs all.
// With --prune S / --prune-channels R [--recover] / --quantize int8 it is the
// combined pipeline: ONNX-expressible graph passes -> prune -> recover ->
// quantize (static W8A8), and one before/after table of accuracy (or output
// SQNR), parameters, non-zeros, file size, MACs and peak activation memory.
// Errors: tests/errors/test_errors.cpp; the pipeline: tests/models/test_passes_models.cpp;
// the combined pipeline: tests/models/test_prune_models.cpp.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

#include "commands.h"
#include "common.h"
#include "ir/bind.h"
#include "ir/op_table.h"
#include "ir/print.h"
#include "map/memory_plan.h"
#include "passes/pipeline.h"
#include "prune_steps.h"
#include "quant/calibrate.h"
#include "quant/pipeline.h"
#include "quant_measure.h"
#include "report/cost.h"
#include "runtime/session.h"

namespace kiln::cli {
namespace {

// One struct for the options so that later steps (--prune, --quantize) can
// join the same command as fields and stages of run_optimize.
struct OptimizeOptions {
  std::string model, out, dump_after;
  std::vector<std::string> passes, dims;
  bool list_passes = false, verify = false;
  int64_t seed = 0;
  // Combined pipeline (prune -> recover -> quantize).
  double prune = -1, prune_channels = -1;
  bool recover = false;
  std::string quantize;
  std::vector<std::string> calib = {"fashion-mnist"};
  int64_t calib_samples = 0, eval_limit = 0;
  bool combined() const { return prune >= 0 || prune_channels >= 0 || !quantize.empty(); }
};

struct GraphSummary {
  size_t nodes = 0;
  int64_t params = 0, param_bytes = 0;
  report::Cost cost;
  std::map<std::string, int> ops;
};

GraphSummary summarize(const ir::Graph& g, const std::map<std::string, int64_t>& dims) {
  GraphSummary s;
  s.nodes = g.nodes.size();
  for (const auto& n : g.nodes) s.ops[std::string(ir::op_name(n.op))]++;
  for (const auto& v : g.values)
    if (v.is_constant()) s.params += v.constant.numel();
  s.param_bytes = g.constant_bytes();
  // With the symbols bound, folding the shape arithmetic (Shape -> Gather ->
  // Concat -> Reshape) makes every shape static, so that the cost is complete.
  ir::Graph bound = g;
  unwrap(ir::bind_symbols(bound, dims, 1));
  passes::PipelineOptions shapes_only;
  shapes_only.only = {"fold_shapes", "fold_constants"};
  unwrap(passes::run_pipeline(bound, shapes_only));
  s.cost = report::graph_cost(bound);
  return s;
}

// max over outputs of max|a - b| / max|a|.
double max_relative_diff(const std::vector<Tensor>& ref, const std::vector<Tensor>& got) {
  if (ref.size() != got.size()) throw CliError{"optimized model has a different number of outputs (a kiln bug)"};
  double worst = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    if (ref[k].shape() != got[k].shape())
      throw CliError{"optimized model output " + std::to_string(k) + " has shape " + shape_str(got[k].shape()) +
                     ", expected " + shape_str(ref[k].shape()) + " (a kiln bug)"};
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < ref[k].numel(); ++i) {
      double a = ref[k].as_double(i), b = got[k].as_double(i);
      diff = std::max(diff, std::fabs(a - b));
      scale = std::max(scale, std::fabs(a));
      if (std::isnan(a) != std::isnan(b)) diff = INFINITY;
    }
    worst = std::max(worst, scale > 0 ? diff / scale : diff);
  }
  return worst;
}

void list_passes() {
  for (const auto& p : passes::pass_list())
    std::printf("%-22s %-5s %s\n", std::string(p.name).c_str(), p.onnx_expressible ? "onnx" : "kiln",
                std::string(p.what).c_str());
}

// Peak activation bytes at batch 1 (symbolic dims 1): the memory plan's arena.
int64_t peak_memory(const ir::Graph& g) {
  ir::Graph b = g;
  unwrap(ir::bind_symbols(b, {}, 1));
  passes::PipelineOptions shapes_only;
  shapes_only.only = {"fold_shapes", "fold_constants", "cleanup"};
  unwrap(passes::run_pipeline(b, shapes_only));
  auto m = map::plan_memory(b);
  return m.ok() ? m->arena_bytes : -1;
}

void run_combined(const OptimizeOptions& o) {
  if (o.recover && o.prune_channels < 0) throw CliError{"--recover re-fits layers after channel pruning: use it with --prune-channels", 2};
  if (!o.quantize.empty() && o.quantize != "int8") throw CliError{"--quantize supports int8 (static W8A8); got '" + o.quantize + "'", 2};
  ir::Graph original = load_graph(o.model);
  quant::CalibSource calib = open_calibration(original, o.calib, o.calib_samples);
  Measurer m(original, o.model, calib, o.eval_limit);

  // 1. Graph passes whose result stays plain ONNX (BN folding, no-ops, shape
  //    folding): pruning and quantization work on Conv/Gemm, not fused ops.
  ir::Graph g = original;
  passes::PipelineOptions po;
  po.onnx_only = true;
  passes::PipelineResult res = unwrap(passes::run_pipeline(g, po));
  int rewrites = 0;
  for (const auto& p : res.passes) rewrites += p.rewrites;
  std::printf("graph passes  %d rewrite(s), %zu -> %zu nodes\n", rewrites, original.nodes.size(), g.nodes.size());
  // 2-3. Prune, recover.
  PruneSteps steps;
  steps.sparsity = o.prune;
  steps.channels = o.prune_channels;
  steps.recover = o.recover;
  steps.recover_samples = calib.size();
  if (steps.any()) apply_prune_steps(g, steps, calib);
  // 4. Quantize.
  if (!o.quantize.empty()) {
    ir::Graph prepared = unwrap(quant::prepare_for_quantization(g));
    quant::BuildOptions b;
    auto obs = unwrap(quant::calibrate(prepared, quant::activation_values(prepared, b.config), calib, 0));
    g = unwrap(quant::build_quantized(prepared, b, obs));
    std::printf("quantized     W8A8 static, %zu activation(s) calibrated on %s\n", obs.size(), calib.description().c_str());
  }
  std::string what = save_graph(g, o.out);
  // The written file is what is measured.
  ir::Graph written = load_graph(o.out);
  Measured a = m.measure_float(), b = m.measure(written, o.out);
  ModelCounts ca = count_model(original), cb = count_model(written);
  int64_t pa = peak_memory(original), pb = peak_memory(written);
  std::printf("\n%-24s %16s %16s %10s\n", "", "original", "optimized", "ratio");
  if (a.has_accuracy) {
    std::printf("%-24s %15.2f%% %15.2f%%\n", "top-1", a.top1, b.top1);
    std::printf("%-24s %16s %+16.2f\n", "drop (points)", "", a.top1 - b.top1);
  } else {
    std::printf("%-24s %16s %13.1f dB\n", "output SQNR", "", b.sqnr_db);
  }
  auto row = [](const char* name, int64_t x, int64_t y) {
    std::printf("%-24s %16lld %16lld %9.1f%%\n", name, (long long)x, (long long)y, x > 0 ? 100.0 * double(y) / double(x) : 0.0);
  };
  row("parameters", ca.params, cb.params);
  row("non-zero parameters", ca.nonzeros, cb.nonzeros);
  row("file bytes", a.file_bytes, b.file_bytes);
  row("MACs (batch 1)", ca.macs, cb.macs);
  row("peak activation bytes", pa, pb);
  std::printf("\nwrote %s (%s)\n", o.out.c_str(), what.c_str());
}

void run_optimize(const OptimizeOptions& o) {
  if (o.list_passes) return list_passes();
  if (o.combined()) {
    if (o.model.empty() || o.out.empty()) throw CliError{"give a MODEL and -o OUT (.onnx or .kiln)", 2};
    return run_combined(o);
  }
  if (o.model.empty() || o.out.empty()) throw CliError{"give a MODEL and -o OUT (.onnx or .kiln)", 2};
  if (auto r = passes::check_pass_names(o.passes); !r.ok()) throw CliError{r.error().message, 2};
  if (!o.dump_after.empty()) {
    if (auto r = passes::check_pass_names({o.dump_after}); !r.ok()) throw CliError{"--dump-after: " + r.error().message, 2};
  }
  auto dims = parse_dims(o.dims);
  ir::Graph original = load_graph(o.model);
  ir::Graph g = original;

  passes::PipelineOptions po;
  po.only = o.passes;
  po.onnx_only = !is_kiln_path(o.out);
  po.verify = o.verify;
  po.after_pass = [&](std::string_view pass, int round, int rewrites, const ir::Graph& graph) {
    if (pass != o.dump_after || (round > 0 && rewrites == 0)) return;
    std::printf("== IR after %s (round %d, %d rewrites) ==\n%s== end ==\n", std::string(pass).c_str(), round + 1,
                rewrites, ir::print_graph(graph).c_str());
  };
  passes::PipelineResult res = unwrap(passes::run_pipeline(g, po));

  std::printf("optimize %s -> %s\n", o.model.c_str(), o.out.c_str());
  if (!res.skipped.empty()) {
    std::string s;
    for (const auto& n : res.skipped) s += (s.empty() ? "" : ", ") + n;
    std::printf("ONNX output: skipped %s (kiln-only ops; write .kiln to run them)\n", s.c_str());
  }
  std::printf("\n%-22s %6s %9s\n", "pass", "runs", "rewrites");
  for (const auto& p : res.passes) std::printf("%-22s %6d %9d\n", p.name.c_str(), p.runs, p.rewrites);
  std::printf("(%d rounds)\n", res.rounds);

  GraphSummary a = summarize(original, dims), b = summarize(g, dims);
  std::string note = original.symbols.empty() ? "" : " (symbolic dims = 1 unless --dim)";
  std::printf("\n%-18s %16s %16s\n", "", "before", "after");
  std::printf("%-18s %16zu %16zu\n", "nodes", a.nodes, b.nodes);
  std::printf("%-18s %16lld %16lld\n", "parameters", (long long)a.params, (long long)b.params);
  std::printf("%-18s %16lld %16lld\n", "parameter bytes", (long long)a.param_bytes, (long long)b.param_bytes);
  std::printf("%-18s %16lld %16lld%s%s\n", "FLOPs", (long long)a.cost.flops, (long long)b.cost.flops, note.c_str(),
              a.cost.known && b.cost.known ? "" : " (partial: some shapes unknown)");
  std::string changed;
  std::map<std::string, int> all = a.ops;
  for (const auto& [op, n] : b.ops) all.emplace(op, 0);
  for (const auto& [op, n] : all) {
    int before = a.ops.count(op) ? a.ops.at(op) : 0, after = b.ops.count(op) ? b.ops.at(op) : 0;
    if (before != after) changed += " " + op + " " + std::to_string(before) + "->" + std::to_string(after);
  }
  std::printf("%-18s%s\n", "ops changed", changed.empty() ? " none" : changed.c_str());

  auto inputs = random_inputs(original, uint64_t(o.seed), dims);
  auto ref = unwrap(unwrap(runtime::Session::create(original)).run(inputs));
  auto got = unwrap(unwrap(runtime::Session::create(g)).run(inputs));
  std::printf("%-18s %.3g (max |diff| / max |original| over outputs; random input, seed %lld%s)\n",
              "output difference", max_relative_diff(ref, got), (long long)o.seed,
              original.symbols.empty() ? "" : ", symbolic dims = 1 unless --dim");

  std::string what = save_graph(g, o.out);
  std::printf("wrote %s (%s)\n", o.out.c_str(), what.c_str());
}

}  // namespace

void add_optimize_command(CLI::App& app) {
  auto o = std::make_shared<OptimizeOptions>();
  auto* cmd = app.add_subcommand("optimize", "Run the graph-pass pipeline (fold, fuse, eliminate) and compare before/after");
  cmd->add_option("model", o->model, "Model file (.onnx or .kiln)");
  cmd->add_option("-o,--output", o->out, "Output: .onnx (ONNX-expressible passes only) or .kiln (all passes)");
  cmd->add_option("--passes", o->passes, "Run only these passes (comma-separated; order is the pipeline's)")->delimiter(',');
  cmd->add_option("--dump-after", o->dump_after, "Print the IR after this pass (each round it changes something)");
  cmd->add_flag("--list-passes", o->list_passes, "List the passes in pipeline order and exit");
  cmd->add_flag("--verify", o->verify, "Check the graph (ir::verify) after every pass");
  cmd->add_option("--dim", o->dims, "Symbolic dim size for the comparison and FLOPs, NAME=SIZE (default 1)");
  cmd->add_option("--seed", o->seed, "Seed of the random comparison input");
  cmd->add_option("--prune", o->prune, "Combined pipeline: unstructured magnitude pruning (global) to this sparsity")->check(CLI::Range(0.0, 0.99));
  cmd->add_option("--prune-channels", o->prune_channels, "Combined pipeline: remove this fraction of each prunable layer's channels")->check(CLI::Range(0.0, 0.95));
  cmd->add_flag("--recover", o->recover, "Combined pipeline: least-squares re-fit after --prune-channels");
  cmd->add_option("--quantize", o->quantize, "Combined pipeline: int8 (static W8A8, calibrated on --calib)");
  add_calibration_options(cmd, &o->calib, &o->calib_samples, &o->eval_limit);
  cmd->callback([o] { run_optimize(*o); });
}

}  // namespace kiln::cli
