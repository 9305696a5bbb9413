#include "ir/graph.h"

#include <set>

#include "ir/op_table.h"

namespace kiln::ir {

ValueId Graph::add_value(std::string n, ValueType type) {
  values.push_back(Value{std::move(n), std::move(type), {}});
  return ValueId(values.size() - 1);
}

ValueId Graph::add_constant(std::string n, Tensor t) {
  ValueType type{t.dtype(), t.shape(), true};
  values.push_back(Value{std::move(n), std::move(type), std::move(t)});
  return ValueId(values.size() - 1);
}

int64_t Graph::symbol(const std::string& n) {
  for (size_t i = 0; i < symbols.size(); ++i)
    if (symbols[i] == n) return -int64_t(i) - 1;
  symbols.push_back(n);
  return -int64_t(symbols.size());
}

int64_t Graph::fresh_symbol() {
  symbols.push_back("?" + std::to_string(symbols.size()));
  return -int64_t(symbols.size());
}

std::string Graph::unique_name(const std::string& base) const {
  std::set<std::string> used;
  for (const auto& v : values) used.insert(v.name);
  if (!used.count(base)) return base;
  for (int i = 1;; ++i) {
    std::string c = base + "_" + std::to_string(i);
    if (!used.count(c)) return c;
  }
}

std::string Graph::describe(const Node& n) const {
  return "node '" + n.name + "' (" + std::string(op_name(n.op)) + ")";
}

std::vector<int32_t> Graph::producers() const {
  std::vector<int32_t> p(values.size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (auto o : nodes[i].outputs)
      if (o != kNoValue) p[size_t(o)] = int32_t(i);
  return p;
}

std::vector<int32_t> Graph::use_counts() const {
  std::vector<int32_t> u(values.size(), 0);
  for (const auto& n : nodes)
    for (auto i : n.inputs)
      if (i != kNoValue) ++u[size_t(i)];
  for (auto o : outputs) ++u[size_t(o)];
  return u;
}

int64_t Graph::constant_bytes() const {
  // Only constants something reads: passes leave replaced ones behind unused.
  auto uses = use_counts();
  int64_t b = 0;
  for (size_t i = 0; i < values.size(); ++i)
    if (values[i].is_constant() && uses[i] > 0) b += values[i].constant.nbytes();
  return b;
}

}  // namespace kiln::ir
