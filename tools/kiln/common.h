// Helpers shared by the kiln subcommands: loading models and inputs, random
// inputs, progress on a terminal, and the one-line error convention
// ("kiln: error: ..." on stderr, non-zero exit).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ir/graph.h"

namespace kiln::cli {

// Thrown by subcommands; main() prints it as one line and exits with `code`.
struct CliError {
  std::string message;
  int code = 1;
};

template <class T>
T unwrap(Result<T> r) {
  if (!r.ok()) throw CliError{r.error().message};
  return std::move(r).value();
}
inline void unwrap(Result<void> r) {
  if (!r.ok()) throw CliError{r.error().message};
}

ir::Graph load_graph(const std::string& path);
// Writes `g` to `path` atomically and returns a description of what was
// written: ONNX (opset 21), or, for a path ending in .kiln, the compact .kiln
// container (onnx/kiln_file.h) holding the graph after passes/lower_qdq, so a
// quantized model is stored as the integer ops it runs as.
std::string save_graph(const ir::Graph& g, const std::string& path);
bool is_kiln_path(const std::string& path);
// "NAME=SIZE" pairs into a map; bad syntax is a CliError.
std::map<std::string, int64_t> parse_dims(const std::vector<std::string>& specs);
// Inputs from "[NAME=]FILE" specs (.npy or ONNX TensorProto .pb), matched by
// name or else in graph-input order.
std::vector<Tensor> load_inputs(const ir::Graph& g, const std::vector<std::string>& specs);
// Random inputs for every graph input (symbolic dims from `dims`, else 1).
std::vector<Tensor> random_inputs(const ir::Graph& g, uint64_t seed, const std::map<std::string, int64_t>& dims);
// A filesystem-safe version of a tensor name.
std::string safe_file_name(const std::string& name);

// "\r label done/total" on stderr when it is a terminal; silent otherwise.
class Progress {
 public:
  Progress(std::string label, int64_t total);
  void update(int64_t done);
  void set_total(int64_t total) { total_ = total; }
  void finish();

 private:
  std::string label_;
  int64_t total_;
  bool tty_;
  int last_pct_ = -1;
};

}  // namespace kiln::cli
