// kiln prune MODEL -o OUT (.kiln stores the zeros as bitmasks; .onnx stays dense):
//   --sparsity S [--per-layer]   unstructured magnitude pruning (global threshold by default)
//   --nm N:M                     N:M pattern (2:4)
//   --channels R [--norm l1|l2]  structured: remove fraction R of each prunable layer's output channels
//   --recover                    least-squares re-fit of the layers after pruned channels (prune/recover.h)
//   --recalibrate-bn             recompute BatchNormalization statistics after channel pruning
//   --sensitivity                per-layer table: accuracy with only that layer pruned at 25/50/75/90%
//   --max-accuracy-drop X        per-layer sparsities for the sparsest model within X points
// and prints before/after: top-1 (or output SQNR), parameters, non-zeros, file size, FLOPs.
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "ir/bind.h"
#include "prune/channel.h"
#include "prune/magnitude.h"
#include "prune/recover.h"
#include "prune_steps.h"
#include "quant/mixed_precision.h"
#include "quant_measure.h"
#include "report/cost.h"

namespace kiln::cli {
namespace {

struct PruneCliOptions {
  std::string model, out, nm, norm = "l1";
  double sparsity = -1, channels = -1, max_drop = -1;
  bool per_layer = false, recover = false, recalibrate_bn = false, sensitivity = false;
  std::vector<std::string> calib = {"fashion-mnist"}, exclude;
  int64_t calib_samples = 0, eval_limit = 0;
};

struct Row {
  std::string label;
  Measured m;
  ModelCounts c;
};

void print_rows(const std::vector<Row>& rows, const std::string& metric) {
  std::printf("\n%-24s", "");
  for (const auto& r : rows) std::printf(" %16s", r.label.c_str());
  std::printf("\n%-24s", metric == "top1" ? "top-1 (%)" : "output SQNR (dB)");
  for (const auto& r : rows) std::printf(" %16.2f", r.m.has_accuracy ? r.m.top1 : r.m.sqnr_db);
  if (metric == "top1") {
    std::printf("\n%-24s", "drop (points)");
    for (const auto& r : rows) std::printf(" %+16.2f", rows[0].m.top1 - r.m.top1);
  }
  auto line = [&](const char* name, auto get) {
    std::printf("\n%-24s", name);
    for (const auto& r : rows) std::printf(" %16lld", (long long)get(r));
  };
  line("parameters", [](const Row& r) { return r.c.params; });
  line("non-zero parameters", [](const Row& r) { return r.c.nonzeros; });
  line("file bytes", [](const Row& r) { return r.m.file_bytes; });
  line("MACs (dense)", [](const Row& r) { return r.c.macs; });
  line("conv MACs", [](const Row& r) { return r.c.conv_macs; });
  std::printf("\n%-24s", "file vs original");
  for (const auto& r : rows) std::printf(" %15.1f%%", 100.0 * double(r.m.file_bytes) / double(rows[0].m.file_bytes));
  std::printf("\n");
}

void run_sensitivity(const PruneCliOptions& o, const ir::Graph& g, Measurer& m) {
  Measured base = m.measure_float();
  bool channels = o.channels >= 0;
  std::printf("\nsensitivity: %s, only one layer pruned at a time (%s)\n",
              channels ? "channel ratio" : "unstructured sparsity", m.metric_name().c_str());
  std::printf("%-28s %10s", "layer", "params");
  for (int p : {25, 50, 75, 90}) std::printf(" %8d%%", p);
  std::printf("\n");
  std::vector<std::string> names;
  if (channels)
    for (const auto& l : prune::find_prunable_channels(g, {o.exclude.begin(), o.exclude.end()}).layers) names.push_back(l.node);
  else
    for (const auto& l : prune::prunable_layers(g, {o.exclude.begin(), o.exclude.end()})) names.push_back(l.name);
  for (const auto& name : names) {
    int64_t params = 0;
    for (const auto& l : prune::prunable_layers(g))
      if (l.name == name) params = g.value(l.weight).constant.numel();
    std::printf("%-28s %10lld", name.c_str(), (long long)params);
    for (double s : {0.25, 0.5, 0.75, 0.9}) {
      ir::Graph p = g;
      if (channels) {
        prune::ChannelPruneOptions co;
        co.ratio = 0;
        co.layer_ratio[name] = s;
        co.norm = o.norm == "l2" ? 2 : 1;
        unwrap(prune::prune_channels(p, co));
      } else {
        prune::MagnitudeOptions mo;
        mo.global = false;
        mo.sparsity = 0;
        mo.layer_sparsity[name] = s;
        unwrap(prune::prune_magnitude(p, mo));
      }
      Measured r = m.measure(p, "");
      std::printf(" %+9.2f", r.has_accuracy ? base.top1 - r.top1 : r.sqnr_db);
    }
    std::printf("\n");
  }
  std::printf("(%s)\n", m.has_labels() ? "top-1 drop in points" : "output SQNR in dB");
}

// Per-layer unstructured sparsities within the bound, through the greedy
// search that mixed precision uses (a layer's "width" here is its density in
// percent: 100 = dense; smaller = sparser).
ir::Graph run_search(const PruneCliOptions& o, const ir::Graph& g, Measurer& m) {
  if (!m.has_labels()) throw CliError{"--max-accuracy-drop needs a labelled evaluation set (a Fashion-MNIST classifier with --calib fashion-mnist)"};
  Measured base = m.measure_float();
  std::vector<quant::LayerInfo> layers;
  for (const auto& l : prune::prunable_layers(g, {o.exclude.begin(), o.exclude.end()}))
    layers.push_back({l.name, g.value(l.weight).constant.numel()});
  auto apply = [&](const std::map<std::string, int>& density) -> Result<ir::Graph> {
    ir::Graph p = g;
    prune::MagnitudeOptions mo;
    mo.global = false;
    mo.sparsity = 0;
    for (const auto& [name, d] : density) mo.layer_sparsity[name] = 1.0 - d / 100.0;
    KILN_TRY(prune::prune_magnitude(p, mo));
    return p;
  };
  auto metric = [&](const std::map<std::string, int>& density) -> Result<double> {
    KILN_ASSIGN(ir::Graph p, apply(density));
    return m.measure(p, "").top1;
  };
  std::printf("searching per-layer sparsity in {90,80,70,60,50,40,30,20,10}%% within %.2f points\n", o.max_drop);
  auto plan = unwrap(quant::search_mixed_precision(layers, base.top1, o.max_drop, 100, {10, 20, 30, 40, 50, 60, 70, 80, 90},
                                                   metric, {}));
  std::printf("\n%-28s %10s %9s   %s\n", "layer", "params", "sparsity", "drop with only this layer at 50/70/90%");
  for (const auto& row : plan.rows)
    std::printf("%-28s %10lld %8d%%   %6.2f %6.2f %6.2f\n", row.node.c_str(), (long long)row.params, 100 - row.bits,
                row.sensitivity.at(50), row.sensitivity.at(30), row.sensitivity.at(10));
  std::printf("(%d evaluations)\n", plan.evaluations);
  return unwrap(apply(plan.bits));
}

void run_prune(const PruneCliOptions& o) {
  if (o.out.empty() && !o.sensitivity) throw CliError{"give the output file with -o OUT.kiln (or use --sensitivity)", 2};
  int modes = (o.sparsity >= 0) + (!o.nm.empty()) + (o.channels >= 0 && !o.sensitivity) + (o.max_drop >= 0);
  if (modes == 0 && !o.sensitivity) throw CliError{"choose --sparsity, --nm, --channels or --max-accuracy-drop", 2};
  if (o.recover && o.channels < 0) throw CliError{"--recover re-fits layers after channel pruning: use it with --channels", 2};
  if (o.recalibrate_bn && o.channels < 0) throw CliError{"--recalibrate-bn follows channel pruning: use it with --channels", 2};
  if (!o.nm.empty()) {
    int n = 0, m = 0;
    char extra = 0;
    if (std::sscanf(o.nm.c_str(), "%d:%d%c", &n, &m, &extra) != 2) throw CliError{"--nm must look like N:M (e.g. 2:4), got '" + o.nm + "'", 2};
    if (m < 2 || m > 64 || n < 1 || n >= m) throw CliError{"N:M pattern " + o.nm + " is invalid (need 1 <= N < M <= 64)", 2};
  }
  ir::Graph g = load_graph(o.model);
  quant::CalibSource calib = open_calibration(g, o.calib, o.calib_samples);
  Measurer m(g, o.model, calib, o.eval_limit);
  if (o.sensitivity) {
    run_sensitivity(o, g, m);
    if (o.out.empty()) return;
  }
  PruneSteps steps;
  steps.sparsity = o.sparsity;
  steps.per_layer = o.per_layer;
  steps.nm = o.nm;
  steps.channels = o.channels;
  steps.norm = o.norm == "l2" ? 2 : 1;
  steps.recover = o.recover;
  steps.recalibrate_bn = o.recalibrate_bn;
  steps.exclude = {o.exclude.begin(), o.exclude.end()};
  steps.recover_samples = calib.size();
  std::vector<Row> rows;
  rows.push_back({"original", m.measure_float(), count_model(g)});
  ir::Graph p = g;
  if (o.max_drop >= 0) p = run_search(o, g, m);
  ir::Graph unrecovered;
  apply_prune_steps(p, steps, calib, &unrecovered);
  if (o.recover || o.recalibrate_bn) rows.push_back({"pruned", m.measure(unrecovered, ""), count_model(unrecovered)});
  std::string written = save_graph(p, o.out);
  rows.push_back({o.recover || o.recalibrate_bn ? "pruned+recovered" : "pruned", m.measure(p, o.out), count_model(p)});
  print_rows(rows, m.metric_name());
  std::printf("\nwrote %s (%s)\n", o.out.c_str(), written.c_str());
}

}  // namespace

void add_prune_command(CLI::App& app) {
  auto o = std::make_shared<PruneCliOptions>();
  auto* cmd = app.add_subcommand("prune", "Prune a model (unstructured, N:M, channels) and measure it");
  cmd->add_option("model", o->model, "Model file (.onnx or .kiln)")->required();
  cmd->add_option("-o,--output", o->out, "Pruned model: .kiln stores zeros compactly (bitmasks); .onnx is dense for other runtimes");
  cmd->add_option("--sparsity", o->sparsity, "Unstructured magnitude pruning to this fraction of zero weights")->check(CLI::Range(0.0, 0.99));
  cmd->add_flag("--per-layer", o->per_layer, "Every layer to --sparsity (default: one global magnitude threshold)");
  cmd->add_option("--nm", o->nm, "N:M pattern pruning along the reduction axis, e.g. 2:4");
  cmd->add_option("--channels", o->channels, "Structured: remove this fraction of each prunable layer's output channels")->check(CLI::Range(0.0, 0.95));
  cmd->add_option("--norm", o->norm, "Channel ranking norm: l1 or l2")->check(CLI::IsMember({"l1", "l2"}))->capture_default_str();
  cmd->add_flag("--recover", o->recover, "After --channels: least-squares re-fit of the following layers on the calibration data");
  cmd->add_flag("--recalibrate-bn", o->recalibrate_bn, "After --channels: recompute BatchNormalization mean/variance on the calibration data");
  cmd->add_flag("--sensitivity", o->sensitivity, "Per-layer accuracy (or SQNR) with only that layer pruned at 25/50/75/90%");
  cmd->add_option("--max-accuracy-drop", o->max_drop, "Per-layer sparsities for the sparsest model within this top-1 drop (points)")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--exclude", o->exclude, "Layers kept dense (node names or op types)");
  add_calibration_options(cmd, &o->calib, &o->calib_samples, &o->eval_limit);
  cmd->callback([o] { run_prune(*o); });
}

}  // namespace kiln::cli
