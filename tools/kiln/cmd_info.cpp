// kiln info MODEL: inputs/outputs, op histogram, parameters, size, MACs/FLOPs
// per node and in total (symbolic dims bound to 1 unless --dim says otherwise).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <map>

#include "commands.h"
#include "common.h"
#include "ir/bind.h"
#include "ir/op_table.h"
#include "ir/print.h"
#include "report/cost.h"

namespace kiln::cli {
namespace {

struct InfoOptions {
  std::string model;
  std::vector<std::string> dims;
  bool json = false, nodes = false, ir = false;
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
  cmd->callback([o] { run_info(*o); });
}

}  // namespace kiln::cli
