#include "common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>

#include "core/half.h"
#include "io/npy.h"
#include "ir/bind.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "onnx/kiln_file.h"
#include "passes/lower_qdq.h"
#include "onnx/tensor_proto.h"

namespace kiln::cli {

ir::Graph load_graph(const std::string& path) {
  if (!std::filesystem::exists(path)) throw CliError{path + ": model file not found"};
  return unwrap(onnx_io::load_model(path));
}

bool is_kiln_path(const std::string& path) { return path.size() >= 5 && path.compare(path.size() - 5, 5, ".kiln") == 0; }

std::string save_graph(const ir::Graph& g, const std::string& path) {
  if (!is_kiln_path(path)) {
    unwrap(onnx_io::save_model(g, path));
    return "ONNX, opset " + std::to_string(onnx_io::kExportOpset) + ", " + std::to_string(g.nodes.size()) + " nodes";
  }
  ir::Graph lowered = g;
  unwrap(passes::lower_qdq(lowered));
  onnx_io::KilnFileStats st;
  unwrap(onnx_io::save_kiln(lowered, path, &st));
  char buf[200];
  std::snprintf(buf, sizeof buf, ".kiln, %zu nodes, %lld bytes: graph %lld, tensors %lld (%d of %d stored sparse)",
                lowered.nodes.size(), (long long)st.file_bytes, (long long)st.graph_bytes, (long long)st.tensor_bytes,
                st.sparse_tensors, st.tensors);
  return buf;
}

std::map<std::string, int64_t> parse_dims(const std::vector<std::string>& specs) {
  std::map<std::string, int64_t> dims;
  for (const auto& s : specs) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw CliError{"--dim expects NAME=SIZE, got '" + s + "'", 2};
    try {
      size_t used = 0;
      int64_t v = std::stoll(s.substr(eq + 1), &used);
      if (used != s.size() - eq - 1 || v <= 0) throw std::invalid_argument("");
      dims[s.substr(0, eq)] = v;
    } catch (const std::exception&) {
      throw CliError{"--dim " + s + ": size must be a positive integer", 2};
    }
  }
  return dims;
}

namespace {
Tensor load_tensor_file(const std::string& path) {
  if (!std::filesystem::exists(path)) throw CliError{path + ": input file not found"};
  if (path.size() >= 4 && path.substr(path.size() - 4) == ".npy") return unwrap(io::load_npy(path));
  if (path.size() >= 3 && path.substr(path.size() - 3) == ".pb") return unwrap(onnx_io::load_tensor_pb(path));
  throw CliError{path + ": unknown input file type (expected .npy or .pb)", 2};
}
}  // namespace

std::vector<Tensor> load_inputs(const ir::Graph& g, const std::vector<std::string>& specs) {
  std::vector<Tensor> inputs(g.inputs.size());
  std::vector<std::string> positional;
  for (const auto& s : specs) {
    auto eq = s.find('=');
    if (eq == std::string::npos) {
      positional.push_back(s);
      continue;
    }
    std::string name = s.substr(0, eq);
    size_t idx = g.inputs.size();
    for (size_t i = 0; i < g.inputs.size(); ++i)
      if (g.value(g.inputs[i]).name == name) idx = i;
    if (idx == g.inputs.size()) {
      // "a=b.npy" where the whole thing is a file path is positional
      if (std::filesystem::exists(s)) {
        positional.push_back(s);
        continue;
      }
      throw CliError{"the model has no input named '" + name + "'", 2};
    }
    if (inputs[idx].defined()) throw CliError{"input '" + name + "' given twice", 2};
    inputs[idx] = load_tensor_file(s.substr(eq + 1));
  }
  size_t next = 0;
  for (const auto& p : positional) {
    while (next < inputs.size() && inputs[next].defined()) ++next;
    if (next == inputs.size())
      throw CliError{"too many input files: the model has " + std::to_string(g.inputs.size()) + " input(s)", 2};
    inputs[next] = load_tensor_file(p);
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined())
      throw CliError{"no file given for input '" + g.value(g.inputs[i]).name + "' (use --input or --random)", 2};
  return inputs;
}

std::vector<Tensor> random_inputs(const ir::Graph& graph, uint64_t seed, const std::map<std::string, int64_t>& dims) {
  ir::Graph g = graph;
  unwrap(ir::bind_symbols(g, dims, 1));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<Tensor> out;
  for (auto id : g.inputs) {
    const ir::Value& v = g.value(id);
    if (!v.type.rank_known) throw CliError{"input '" + v.name + "' has unknown rank; give it with --input", 2};
    Tensor t = unwrap(Tensor::create(v.type.dtype, v.type.shape));
    for (int64_t i = 0; i < t.numel(); ++i) {
      switch (t.dtype()) {
        case DType::kF32: t.data<float>()[i] = normal(rng); break;
        case DType::kF64: t.data<double>()[i] = normal(rng); break;
        case DType::kF16: t.data<f16_t>()[i] = to_f16(normal(rng)); break;
        case DType::kBF16: t.data<bf16_t>()[i] = to_bf16(normal(rng)); break;
        case DType::kI64: t.data<int64_t>()[i] = int64_t(rng() % 10); break;
        case DType::kI32: t.data<int32_t>()[i] = int32_t(rng() % 10); break;
        case DType::kI8: t.data<int8_t>()[i] = int8_t(int(rng() % 256) - 128); break;
        case DType::kU8: t.data<uint8_t>()[i] = uint8_t(rng() % 256); break;
        case DType::kBool: t.data<uint8_t>()[i] = uint8_t(rng() % 2); break;
        default: throw CliError{"input '" + v.name + "': random values of dtype " + std::string(dtype_name(t.dtype())) + " are not supported; give it with --input", 2};
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::string safe_file_name(const std::string& name) {
  std::string s = name.empty() ? "output" : name;
  for (auto& ch : s)
    if (!(isalnum(uint8_t(ch)) || ch == '.' || ch == '_' || ch == '-')) ch = '_';
  if (s[0] == '.') s[0] = '_';
  return s;
}

Progress::Progress(std::string label, int64_t total) : label_(std::move(label)), total_(total), tty_(isatty(2)) {}

void Progress::update(int64_t done) {
  if (!tty_ || total_ <= 0) return;
  int pct = int(done * 100 / total_);
  if (pct == last_pct_) return;
  last_pct_ = pct;
  std::fprintf(stderr, "\r%s %lld/%lld (%d%%)", label_.c_str(), (long long)done, (long long)total_, pct);
  std::fflush(stderr);
}

void Progress::finish() {
  if (tty_ && last_pct_ >= 0) std::fprintf(stderr, "\r\033[K");
}

}  // namespace kiln::cli
