// Calibration inputs: a CalibSource holds N samples for every input of a model
// (Fashion-MNIST train images, .npy / .pb tensor files or folders of them, or
// IDX files), checked against the model's input types once, and hands them out
// in batches shaped like the model's inputs. Tested in tests/unit/test_quant_calib.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/idx.h"
#include "ir/graph.h"

namespace kiln::quant {

using ProgressFn = std::function<void(int64_t done, int64_t total)>;

struct CalibSpec {
  // Either {"fashion-mnist"} (the TRAIN split, x = pixel / 255 as float32,
  // shaped [N,1,28,28] or [N,784] like the model input, labels kept), or
  // "[NAME=]PATH" items: a .npy or .pb (ONNX TensorProto) file holding one
  // sample (the input's shape without its first dim) or a batch (the input's
  // rank, first dim = samples); a folder of such files (taken in file-name
  // order; other files ignored); or an IDX file (uint8 [N, ...], fed as
  // pixel / 255 to a float32 input, raw to a uint8 one, reshaped to the
  // input's sample shape when the element counts agree). NAME is required when
  // the model has several inputs; an item naming no input is a path.
  std::vector<std::string> items;
  int64_t count = 0;   // samples to take from the start; 0: all; more than exist: error
  int64_t batch = 32;  // samples per run; a static first dim of the model input overrides it
  std::string data_dir = io::kFashionMnistDir;  // where fashion-mnist's IDX files are
};

class CalibSource {
 public:
  int64_t size() const { return size_; }              // samples
  int64_t batch_size() const { return batch_; }       // samples per batch()
  size_t num_inputs() const { return inputs_.size(); }
  const std::string& description() const { return what_; }  // "fashion-mnist train: 256 images"
  // u8 [size()] class labels (fashion-mnist); undefined for other sources.
  const Tensor& labels() const { return labels_; }

  // Samples [first, first + n) of every input, in graph-input order, with the
  // model's dtypes and shapes (first dim n).
  Result<std::vector<Tensor>> batch(int64_t first, int64_t n) const;
  // fn(inputs, first, n) on consecutive batches of batch_size() covering
  // samples [0, limit) (limit 0: all); progress(done, limit) after each.
  using BatchFn = std::function<Result<void>(std::span<const Tensor> inputs, int64_t first, int64_t n)>;
  Result<void> for_each_batch(int64_t limit, const BatchFn& fn, const ProgressFn& progress = {}) const;

 private:
  friend Result<CalibSource> open_calib_source(const ir::Graph& g, const CalibSpec& spec);
  // Rows [first, first + data.dim(0)) of one input, stored as loaded; u8
  // pixels for a float input are scaled by 1/255 when batched.
  struct Chunk {
    Tensor data;
    int64_t first = 0;
    bool unit_scale = false;
  };
  struct Input {
    std::string name;
    DType dtype = DType::kUndefined;
    Shape sample;  // shape of one sample (input shape without the first dim)
    std::vector<Chunk> chunks;
  };
  std::vector<Input> inputs_;
  int64_t size_ = 0, batch_ = 1;
  bool fixed_batch_ = false;  // the model's first input dim is static
  std::string what_;
  Tensor labels_;
};

// Loads and checks everything up front (up to spec.count samples). Errors, each
// one line naming the file: wrong dtype or shape for the model input (expected
// and actual), an empty set, unreadable or corrupt files, more samples asked
// for than exist, a model input with unknown rank, a sample count that a
// static batch dim does not divide.
Result<CalibSource> open_calib_source(const ir::Graph& g, const CalibSpec& spec);

}  // namespace kiln::quant
