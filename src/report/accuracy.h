// Top-1 accuracy of a classifier on Fashion-MNIST (x = pixel/255, float32,
// [N,1,28,28] or [N,784]); used by `kiln eval`, quantization and pruning to
// measure what an optimization costs. Tested in tests/models (LeNet).
#pragma once
#include <functional>
#include <string>

#include "io/idx.h"
#include "runtime/session.h"

namespace kiln::report {

struct Accuracy {
  int64_t correct = 0;
  int64_t total = 0;
  double top1() const { return total ? 100.0 * double(correct) / double(total) : 0.0; }
};

using ProgressFn = std::function<void(int64_t done, int64_t total)>;

// Checks the model's input is an image classifier input kiln can feed.
Result<void> check_image_classifier(const ir::Graph& g);
// Runs images [first, first+count) of `data` in batches; count 0 = all.
Result<Accuracy> evaluate(runtime::Session& s, const io::LabeledImages& data, int64_t first, int64_t count,
                          int64_t batch, const ProgressFn& progress = {});
// Fills a float batch from images [start, start+b) shaped like the model input.
Result<Tensor> image_batch(const io::LabeledImages& data, int64_t start, int64_t b, bool nchw);

}  // namespace kiln::report
