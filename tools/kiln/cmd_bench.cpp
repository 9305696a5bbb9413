// kiln bench MODEL: warm-up, then timed runs; median/p90/p99 latency,
// throughput, peak activation memory and peak RSS; --json for machines.
// --profile then makes as many runs again with every step timed (kept apart
// from the latency runs, whose numbers the per-step clocks would disturb).
#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>

#include "commands.h"
#include "common.h"
#include "runtime/session.h"

namespace kiln::cli {
namespace {

struct BenchOptions {
  bool fake_quant = false;
  std::string model, backend = "reference";
  std::vector<std::string> dims;
  int64_t batch = 1, warmup = 5, iters = 0, threads = 1, seed = 0;
  double min_seconds = 2.0;
  bool json = false;
  bool print_plan = false;
  bool profile = false;
  std::string isa = "auto";
  std::string conv3x3 = "auto";
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  double idx = p / 100.0 * double(v.size() - 1);
  size_t lo = size_t(idx);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - double(lo));
}

void run_bench(const BenchOptions& o) {
  if (o.threads != 1 && o.backend == "reference")
    throw CliError{"the reference backend runs on one thread; --threads applies to the cpu backend", 2};
  ir::Graph g = load_graph(o.model);
  auto dims = parse_dims(o.dims);
  // --batch binds the leading symbolic dim of every input.
  for (auto id : g.inputs) {
    const auto& s = g.value(id).type.shape;
    if (!s.empty() && s[0] < 0) dims.emplace(g.symbols[size_t(-s[0] - 1)], o.batch);
  }
  auto inputs = random_inputs(g, uint64_t(o.seed), dims);
  int64_t model_bytes = int64_t(std::filesystem::file_size(o.model));
  runtime::SessionOptions so;
  so.backend = o.backend;
  so.lower_qdq = !o.fake_quant;
  so.threads = int(o.threads);
  so.isa = o.isa;
  so.conv3x3 = o.conv3x3;
  auto session = unwrap(runtime::Session::create(std::move(g), so));
  RunStats stats;
  Progress progress("warm-up", o.warmup);
  for (int64_t i = 0; i < o.warmup; ++i) {
    unwrap(session.run(inputs, &stats));
    progress.update(i + 1);
  }
  progress.finish();
  if (o.print_plan) std::cout << session.describe_plan();
  std::vector<double> ms;
  auto start = std::chrono::steady_clock::now();
  int64_t target = o.iters > 0 ? o.iters : 1000000;
  Progress timing("timing", o.iters);
  for (int64_t i = 0; i < target; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    unwrap(session.run(inputs, &stats));
    auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    if (o.iters > 0) timing.update(i + 1);
    double elapsed = std::chrono::duration<double>(t1 - start).count();
    if (o.iters == 0 && ms.size() >= 10 && elapsed >= o.min_seconds) break;
  }
  timing.finish();
  // Per-step wall time summed over the profiled runs.
  std::vector<StepTime> profile;
  int64_t profile_runs = 0;
  if (o.profile) {
    RunStats ps;
    ps.profile = true;
    profile_runs = int64_t(std::min<size_t>(ms.size(), 200));
    for (int64_t i = 0; i < profile_runs; ++i) {
      unwrap(session.run(inputs, &ps));
      if (profile.empty()) profile = ps.steps;
      else
        for (size_t s = 0; s < profile.size() && s < ps.steps.size(); ++s) profile[s].seconds += ps.steps[s].seconds;
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  double med = percentile(ms, 50), p90 = percentile(ms, 90), p99 = percentile(ms, 99);
  double mean = 0;
  for (double v : ms) mean += v;
  mean /= double(ms.size());
  double throughput = double(o.batch) * 1000.0 / med;
  nlohmann::json j = {{"model", o.model},
                      {"backend", o.backend},
                      {"threads", o.threads},
                      {"isa", o.isa},
                      {"batch", o.batch},
                      {"iterations", ms.size()},
                      {"latency_ms", {{"median", med}, {"p90", p90}, {"p99", p99}, {"mean", mean},
                                      {"min", *std::min_element(ms.begin(), ms.end())}}},
                      {"throughput_per_s", throughput},
                      {"peak_activation_bytes", stats.peak_activation_bytes},
                      {"peak_rss_bytes", int64_t(ru.ru_maxrss) * 1024},
                      {"model_file_bytes", model_bytes}};
  double profiled = 0;
  for (const StepTime& st : profile) profiled += st.seconds;
  if (o.profile) {
    nlohmann::json steps = nlohmann::json::array();
    for (const StepTime& st : profile)
      steps.push_back({{"node", st.node}, {"kernel", st.kernel}, {"ms_per_run", 1e3 * st.seconds / double(profile_runs)}});
    j["profile"] = {{"runs", profile_runs}, {"steps", steps}};
  }
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("model        %s\n", o.model.c_str());
  std::printf("backend      %s, %lld thread(s), batch %lld, %zu timed runs after %lld warm-up\n", o.backend.c_str(),
              (long long)o.threads, (long long)o.batch, ms.size(), (long long)o.warmup);
  std::printf("\n%-12s %10s\n", "latency", "ms");
  std::printf("%-12s %10.4f\n%-12s %10.4f\n%-12s %10.4f\n%-12s %10.4f\n%-12s %10.4f\n", "median", med, "p90", p90,
              "p99", p99, "mean", mean, "min", *std::min_element(ms.begin(), ms.end()));
  std::printf("\nthroughput   %.1f inferences/s\n", throughput);
  std::printf("activations  %.2f MiB peak\n", double(stats.peak_activation_bytes) / 1048576.0);
  std::printf("peak RSS     %.2f MiB\n", double(ru.ru_maxrss) / 1024.0);
  std::printf("model file   %.2f KiB\n", double(model_bytes) / 1024.0);
  if (!o.profile) return;
  if (profile.empty() || profiled <= 0) {
    std::printf("\nprofile: the %s backend does not time its steps\n", o.backend.c_str());
    return;
  }
  // By kernel (the kernel name up to its first '(' or space), then the steps.
  std::map<std::string, double> by_kernel;
  for (const StepTime& st : profile) by_kernel[st.kernel.substr(0, st.kernel.find_first_of(" ("))] += st.seconds;
  std::vector<std::pair<double, std::string>> kernels;
  for (const auto& [k, sec] : by_kernel) kernels.emplace_back(sec, k);
  std::sort(kernels.rbegin(), kernels.rend());
  const double runs = double(profile_runs);
  std::printf("\nprofile over %lld runs: %.4f ms per run in steps (mean)\n", (long long)profile_runs,
              1e3 * profiled / runs);
  std::printf("\n%10s %7s  %s\n", "ms/run", "share", "kernel");
  for (const auto& [sec, k] : kernels) std::printf("%10.4f %6.1f%%  %s\n", 1e3 * sec / runs, 100 * sec / profiled, k.c_str());
  std::vector<size_t> order(profile.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return profile[a].seconds > profile[b].seconds; });
  const size_t shown = std::min<size_t>(order.size(), 25);
  std::printf("\n%10s %7s  %s (the %zu slowest of %zu; --json lists all)\n", "ms/run", "share", "step", shown,
              order.size());
  for (size_t i = 0; i < shown; ++i) {
    const StepTime& st = profile[order[i]];
    std::printf("%10.4f %6.1f%%  %s  %s\n", 1e3 * st.seconds / runs, 100 * st.seconds / profiled, st.node.c_str(),
                st.kernel.c_str());
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Time a model: latency percentiles, throughput, memory");
  cmd->add_option("model", o->model, "Model file (.onnx or .kiln)")->required();
  cmd->add_option("--backend", o->backend, "Backend to run on")->capture_default_str();
  cmd->add_flag("--fake-quant", o->fake_quant, "Run a QDQ model as fake quantization (float ops between Quantize/DequantizeLinear), not lowered to integer ops");
  cmd->add_option("--batch", o->batch, "Batch size (binds the leading symbolic dim)")->check(CLI::Range(int64_t(1), int64_t(1) << 20))->capture_default_str();
  cmd->add_option("--dim", o->dims, "Bind another symbolic dimension, e.g. --dim seq=128");
  cmd->add_option("--threads", o->threads, "Threads")->check(CLI::Range(int64_t(1), int64_t(1024)))->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Untimed runs first")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--iters", o->iters, "Timed runs (0: until --min-seconds, at least 10)")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--min-seconds", o->min_seconds, "Timing budget when --iters is 0")->check(CLI::Range(0.0, 3600.0))->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the random inputs")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o->json, "Print the results as JSON");
  cmd->add_option("--isa", o->isa, "cpu backend kernel set: auto, portable, avx2, avx512, avx512-amx")->capture_default_str();
  cmd->add_option("--conv3x3", o->conv3x3, "cpu backend, 3x3 stride-1 convolutions: auto (time both at compile), direct, winograd")->check(CLI::IsMember({"auto", "direct", "winograd"}))->capture_default_str();
  cmd->add_flag("--print-plan", o->print_plan, "Print the compiled plan (kernel per node) after warm-up");
  cmd->add_flag("--profile", o->profile, "Then time every step over as many runs again: time per kernel and the slowest steps");
  cmd->callback([o] { run_bench(*o); });
}

}  // namespace kiln::cli
