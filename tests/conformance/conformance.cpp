// ONNX backend conformance: runs every case of the ONNX backend test data
// (Debian libonnx-testdata: node/, pytorch-converted/, pytorch-operator/,
// simple/) through import + the reference backend, compares with the stored
// outputs at the suite's tolerances (rtol 1e-3, atol 1e-7), prints pass / fail /
// unsupported counts and a per-op summary. Cases in the expected-failures file
// (one "suite/case  reason" per line) may fail; any other failure, and any
// listed case that now passes, makes the run fail.
#include <onnx/onnx_pb.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "io/file.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "onnx/tensor_proto.h"
#include "runtime/session.h"

namespace fs = std::filesystem;
using namespace kiln;

namespace {

enum class Status { kPass, kFail, kUnsupported };
const char* status_name(Status s) { return s == Status::kPass ? "pass" : s == Status::kFail ? "FAIL" : "unsupported"; }

struct CaseResult {
  std::string id;  // suite/case
  Status status;
  std::string message;
  std::set<std::string> ops;
};

bool is_unsupported_message(const std::string& m) {
  return m.find("unsupported") != std::string::npos || m.find("not supported") != std::string::npos ||
         m.find("has no kernel") != std::string::npos;
}

std::set<std::string> model_ops(const std::string& path) {
  std::set<std::string> ops;
  auto bytes = io::read_file(path);
  onnx::ModelProto m;
  if (bytes.ok() && m.ParseFromString(*bytes))
    for (const auto& n : m.graph().node()) ops.insert(n.op_type());
  return ops;
}

// Empty when equal within tolerance; otherwise says where they differ.
std::string compare(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.dtype() != want.dtype())
    return "dtype " + std::string(dtype_name(got.dtype())) + " != expected " + std::string(dtype_name(want.dtype()));
  if (got.shape() != want.shape()) return "shape " + shape_str(got.shape()) + " != expected " + shape_str(want.shape());
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (is_float(got.dtype())) {
      double a = got.as_double(i), b = want.as_double(i);
      if (std::isnan(a) && std::isnan(b)) continue;
      if (std::isinf(a) || std::isinf(b)) {
        if (a == b) continue;
      } else if (std::fabs(a - b) <= atol + rtol * std::fabs(b)) {
        continue;
      }
      std::ostringstream os;
      os << "element " << i << ": got " << a << ", expected " << b;
      return os.str();
    }
    if (got.as_int(i) != want.as_int(i))
      return "element " + std::to_string(i) + ": got " + std::to_string(got.as_int(i)) + ", expected " +
             std::to_string(want.as_int(i));
  }
  return "";
}

std::vector<std::string> sorted_files(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<int, std::string>> v;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0 && e.path().extension() == ".pb")
      v.emplace_back(std::stoi(n.substr(prefix.size())), e.path().string());
  }
  std::sort(v.begin(), v.end());
  std::vector<std::string> out;
  for (auto& [i, p] : v) out.push_back(p);
  return out;
}

// --roundtrip: the imported graph is exported and imported again before it
// runs, so every passing case also checks the exporter.
bool g_roundtrip = false;

Result<ir::Graph> load_for_test(const fs::path& model) {
  auto g = onnx_io::load_model(model.string());
  if (!g.ok() || !g_roundtrip) return g;
  onnx::ModelProto m;
  KILN_TRY(onnx_io::export_model(*g, &m));
  auto again = onnx_io::import_model(m, model.parent_path().string());
  if (!again.ok()) return make_error("re-import after export: " + again.error().message);
  return again;
}

CaseResult run_case(const fs::path& dir, const std::string& id) {
  CaseResult r{id, Status::kPass, "", model_ops((dir / "model.onnx").string())};
  auto fail = [&](Status s, std::string msg) {
    r.status = s;
    r.message = std::move(msg);
    return r;
  };
  auto g = load_for_test(dir / "model.onnx");
  if (!g.ok())
    return fail(is_unsupported_message(g.error().message) ? Status::kUnsupported : Status::kFail, g.error().message);
  auto s = runtime::Session::create(std::move(*g));
  if (!s.ok())
    return fail(is_unsupported_message(s.error().message) ? Status::kUnsupported : Status::kFail, s.error().message);
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  for (const auto& set : sets) {
    std::vector<Tensor> inputs, expected;
    for (const auto& f : sorted_files(set, "input_")) {
      auto t = onnx_io::load_tensor_pb(f);
      if (!t.ok()) return fail(Status::kUnsupported, t.error().message);
      inputs.push_back(std::move(*t));
    }
    for (const auto& f : sorted_files(set, "output_")) {
      auto t = onnx_io::load_tensor_pb(f);
      if (!t.ok()) return fail(Status::kUnsupported, t.error().message);
      expected.push_back(std::move(*t));
    }
    auto out = s->run(inputs);
    if (!out.ok())
      return fail(is_unsupported_message(out.error().message) ? Status::kUnsupported : Status::kFail,
                  out.error().message);
    if (out->size() != expected.size())
      return fail(Status::kFail, "produced " + std::to_string(out->size()) + " outputs, expected " +
                                     std::to_string(expected.size()));
    for (size_t i = 0; i < expected.size(); ++i) {
      std::string d = compare((*out)[i], expected[i], 1e-3, 1e-7);
      if (!d.empty())
        return fail(Status::kFail, set.filename().string() + " output " + std::to_string(i) + ": " + d);
    }
  }
  return r;
}

std::map<std::string, std::string> read_expected_failures(const std::string& path) {
  std::map<std::string, std::string> m;
  if (path.empty()) return m;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string id, reason;
    is >> id;
    std::getline(is, reason);
    m[id] = reason;
  }
  return m;
}

void usage() {
  std::cout << "usage: kiln_conformance [--data DIR] [--suites node,pytorch-converted,...] [--filter REGEX]\n"
               "                        [--expected-failures FILE] [--require-node-pass N] [--roundtrip] [-v]\n"
               "  --roundtrip  export each imported model to ONNX and import it again before running\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = "/usr/share/libonnx-testdata/data", filter, xfail_path;
  std::vector<std::string> suites = {"node", "pytorch-converted", "pytorch-operator", "simple"};
  int require_node_pass = 0;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "error: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--data") data = next();
    else if (a == "--filter") filter = next();
    else if (a == "--expected-failures") xfail_path = next();
    else if (a == "--require-node-pass") require_node_pass = std::stoi(next());
    else if (a == "--suites") {
      suites.clear();
      std::stringstream ss(next());
      for (std::string s; std::getline(ss, s, ',');) suites.push_back(s);
    } else if (a == "-v") verbose = true;
    else if (a == "--roundtrip") g_roundtrip = true;
    else {
      usage();
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (!fs::is_directory(data)) {
    std::cerr << "error: test data folder " << data << " not found (install libonnx-testdata)\n";
    return 2;
  }
  auto xfail = read_expected_failures(xfail_path);
  std::regex re(filter.empty() ? ".*" : filter);
  std::vector<CaseResult> results;
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& suite : suites) {
    fs::path sdir = fs::path(data) / suite;
    if (!fs::is_directory(sdir)) continue;
    std::vector<fs::path> cases;
    for (const auto& e : fs::directory_iterator(sdir))
      if (e.is_directory() && fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
    std::sort(cases.begin(), cases.end());
    for (const auto& c : cases) {
      std::string id = suite + "/" + c.filename().string();
      if (!std::regex_search(id, re)) continue;
      results.push_back(run_case(c, id));
      const auto& r = results.back();
      if (verbose || (r.status != Status::kPass && !xfail.count(id)))
        std::cout << status_name(r.status) << "  " << id << (r.message.empty() ? "" : "  -- " + r.message) << "\n";
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Per-suite and per-op summary.
  std::map<std::string, std::array<int, 3>> by_suite, by_op;
  int unexpected = 0, xpass = 0;
  for (const auto& r : results) {
    std::string suite = r.id.substr(0, r.id.find('/'));
    by_suite[suite][int(r.status)]++;
    for (const auto& op : r.ops) by_op[op][int(r.status)]++;
    bool listed = xfail.count(r.id) > 0;
    if (r.status != Status::kPass && !listed) ++unexpected;
    if (r.status == Status::kPass && listed) {
      ++xpass;
      std::cout << "XPASS  " << r.id << " is listed as an expected failure but passes: remove it from the list\n";
    }
  }
  std::cout << "\nper op (cases using the op: pass / fail / unsupported)\n";
  for (const auto& [op, c] : by_op)
    if (c[1] || c[2] || verbose)
      std::cout << "  " << op << ": " << c[0] << " / " << c[1] << " / " << c[2] << "\n";
  std::cout << "\nsuite               pass   fail  unsupported  total\n";
  int total_pass = 0, total_fail = 0;
  for (const auto& [suite, c] : by_suite) {
    std::printf("%-18s %5d  %5d  %11d  %5d\n", suite.c_str(), c[0], c[1], c[2], c[0] + c[1] + c[2]);
    total_pass += c[0];
    total_fail += c[1] + c[2];
  }
  std::printf("(%.1f s)\n", secs);
  int node_pass = by_suite.count("node") ? by_suite["node"][0] : 0;
  bool ok = unexpected == 0 && xpass == 0;
  if (require_node_pass > 0) {
    bool bar = node_pass >= require_node_pass;
    std::cout << "node/ cases passing: " << node_pass << " (required: " << require_node_pass << ") "
              << (bar ? "OK" : "NOT MET") << "\n";
    ok = ok && bar;
  }
  if (unexpected) std::cout << unexpected << " case(s) failed that are not in the expected-failures list\n";
  std::cout << total_pass << " passed, " << total_fail << " failed\n";
  return ok ? 0 : 1;
}
