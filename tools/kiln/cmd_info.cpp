// kiln info MODEL: inputs/outputs, op histogram, parameters, size, MACs/FLOPs
// per node and in total (symbolic dims bound to 1 unless --dim says otherwise);
// --memory adds the activation memory plan (map/memory_plan.h).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include "commands.h"
#include "common.h"
#include "ir/bind.h"
#include "ir/op_table.h"
#include "ir/print.h"
#include "map/memory_plan.h"
#include "passes/pipeline.h"
#include "report/cost.h"

namespace kiln::cli {
namespace {

struct InfoOptions {
  std::string model;
  std::vector<std::string> dims;
  bool json = false, nodes = false, ir = false, memory = false, memory_detail = false;
};

std::string human(double v, const char* unit) {
  const char* prefix[] = {"", "K", "M", "G", "T"};
  int i = 0;
  while (v >= 1000 && i < 4) {
    v /= 1000;
    ++i;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s%s", v, prefix[i], unit);
  return buf;
}

std::string mib(int64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f MiB", double(bytes) / (1024.0 * 1024.0));
  return buf;
}

double reuse_ratio(const map::MemoryPlan& m) {
  return m.arena_bytes > 0 ? double(m.no_reuse_bytes) / double(m.arena_bytes) : 1.0;
}

nlohmann::json memory_json(const ir::Graph& g, const map::MemoryPlan& m, bool detail) {
  nlohmann::json j = {{"arena_bytes", m.arena_bytes},
                      {"no_reuse_bytes", m.no_reuse_bytes},
                      {"lower_bound_bytes", m.lower_bound_bytes},
                      {"no_reuse_over_arena", reuse_ratio(m)},
                      {"values", m.values.size()},
                      {"inplace_values", m.inplace_count},
                      {"alignment", m.alignment}};
  if (detail)
    for (const auto& v : m.values) {
      nlohmann::json row = {{"name", g.value(v.value).name}, {"bytes", v.bytes},  {"offset", v.offset},
                            {"first", v.first},              {"last", v.last}};
      if (v.inplace_of != ir::kNoValue) row["inplace_of"] = g.value(v.inplace_of).name;
      j["per_value"].push_back(row);
    }
  return j;
}

void print_memory(const ir::Graph& g, const map::MemoryPlan& m, bool detail) {
  std::printf("activations %zu values, no reuse %s (%lld B)\n", m.values.size(), mib(m.no_reuse_bytes).c_str(),
              (long long)m.no_reuse_bytes);
  std::printf("arena       %s (%lld B), %.2fx below no reuse; lower bound %s (%lld B)\n", mib(m.arena_bytes).c_str(),
              (long long)m.arena_bytes, reuse_ratio(m), mib(m.lower_bound_bytes).c_str(),
              (long long)m.lower_bound_bytes);
  std::printf("in place    %d values share their input's block\n", m.inplace_count);
  if (!detail) return;
  std::printf("\n%-40s %12s %12s %-13s %s\n", "value", "bytes", "offset", "lifetime", "in place of");
  for (const auto& v : m.values) {
    std::string life = "[" + std::to_string(v.first) + "," + std::to_string(v.last) + "]";
    std::printf("%-40s %12lld %12lld %-13s %s\n", g.value(v.value).name.c_str(), (long long)v.bytes,
                (long long)v.offset, life.c_str(),
                v.inplace_of == ir::kNoValue ? "" : g.value(v.inplace_of).name.c_str());
  }
}

void run_info(const InfoOptions& o) {
  ir::Graph g = load_graph(o.model);
  if (o.ir) {
    std::cout << ir::print_graph(g);
    return;
  }
  ir::Graph bound = g;
  auto dims = parse_dims(o.dims);
  unwrap(ir::bind_symbols(bound, dims, 1));
  std::map<std::string, int> hist;
  for (const auto& n : g.nodes) hist[std::string(ir::op_name(n.op))]++;
  int64_t params = 0;
  for (const auto& v : g.values)
    if (v.is_constant()) params += v.constant.numel();
  int64_t file_bytes = int64_t(std::filesystem::file_size(o.model));
  report::Cost total = report::graph_cost(bound);

  nlohmann::json j;
  j["model"] = o.model;
  j["file_bytes"] = file_bytes;
  j["parameters"] = params;
  j["parameter_bytes"] = g.constant_bytes();
  j["nodes"] = g.nodes.size();
  j["macs"] = total.macs;
  j["flops"] = total.flops;
  j["cost_complete"] = total.known;
  for (auto id : g.inputs)
    j["inputs"].push_back({{"name", g.value(id).name}, {"type", ir::type_str(g, g.value(id).type)}});
  for (auto id : g.outputs)
    j["outputs"].push_back({{"name", g.value(id).name}, {"type", ir::type_str(g, g.value(id).type)}});
  j["op_histogram"] = hist;
  for (const auto& n : bound.nodes) {
    report::Cost c = report::node_cost(bound, n);
    nlohmann::json row = {{"name", n.name}, {"op", std::string(ir::op_name(n.op))}, {"macs", c.macs}, {"flops", c.flops}};
    if (!n.outputs.empty() && n.outputs[0] != ir::kNoValue)
      row["output"] = ir::type_str(bound, bound.value(n.outputs[0]).type);
    j["per_node"].push_back(row);
  }
  std::optional<map::MemoryPlan> mem;
  ir::Graph planned;
  bool memory_detail = o.memory_detail || o.nodes;
  if (o.memory || o.memory_detail) {
    // Planned as a runtime would run the model: dims bound, shape arithmetic
    // (Shape -> Gather -> Concat -> Reshape) folded so every activation is static.
    planned = bound;
    passes::PipelineOptions shapes_only;
    shapes_only.only = {"fold_shapes", "fold_constants", "cleanup"};
    unwrap(passes::run_pipeline(planned, shapes_only));
    mem = unwrap(map::plan_memory(planned));
    j["memory"] = memory_json(planned, *mem, memory_detail);
  }
  if (o.json) {
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "model      " << o.model << " (" << human(double(file_bytes), "B") << ")\n";
  for (auto id : g.inputs) std::cout << "input      " << g.value(id).name << ": " << ir::type_str(g, g.value(id).type) << "\n";
  for (auto id : g.outputs) std::cout << "output     " << g.value(id).name << ": " << ir::type_str(g, g.value(id).type) << "\n";
  std::cout << "parameters " << params << " (" << human(double(g.constant_bytes()), "B") << ")\n";
  std::cout << "nodes      " << g.nodes.size() << "\n";
  std::string bound_note = g.symbols.empty() ? "" : " (symbolic dims = 1 unless --dim)";
  std::cout << "MACs       " << human(double(total.macs), "") << bound_note << (total.known ? "" : " (partial: some shapes unknown)") << "\n";
  std::cout << "FLOPs      " << human(double(total.flops), "") << "\n";
  std::cout << "ops       ";
  for (const auto& [op, count] : hist) std::cout << " " << op << " x" << count;
  std::cout << "\n";
  if (o.nodes) {
    std::printf("\n%-32s %-20s %-24s %14s %14s\n", "node", "op", "output", "MACs", "FLOPs");
    for (const auto& row : j["per_node"])
      std::printf("%-32s %-20s %-24s %14lld %14lld\n", row["name"].get<std::string>().c_str(),
                  row["op"].get<std::string>().c_str(), row.value("output", std::string("")).c_str(),
                  (long long)row["macs"].get<int64_t>(), (long long)row["flops"].get<int64_t>());
  }
  if (mem) {
    std::cout << "\nactivation memory plan" << bound_note << ", shape arithmetic folded, "
              << mem->alignment << "-byte aligned offsets\n";
    print_memory(planned, *mem, memory_detail);
  }
}

}  // namespace

void add_info_command(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  auto* cmd = app.add_subcommand("info", "Describe a model: inputs, outputs, ops, parameters, size, MACs/FLOPs");
  cmd->add_option("model", o->model, "ONNX model file")->required();
  cmd->add_option("--dim", o->dims, "Bind a symbolic dimension, e.g. --dim N=8 (default 1)");
  cmd->add_flag("--nodes", o->nodes, "Print MACs/FLOPs per node");
  cmd->add_flag("--ir", o->ir, "Print the imported IR as text");
  cmd->add_flag("--json", o->json, "Print everything as JSON");
  cmd->add_flag("--memory", o->memory,
                "Plan activation memory: arena, no-reuse total, lower bound, in-place values (--nodes: per value)");
  cmd->add_flag("--memory-detail", o->memory_detail, "--memory with a per-value table (size, offset, lifetime)");
  cmd->callback([o] { run_info(*o); });
}

}  // namespace kiln::cli
