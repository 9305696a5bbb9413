// IDX files (MNIST / Fashion-MNIST format, optionally gzip-compressed): images
// as u8 [N, rows, cols] and labels as u8 [N]. Magic numbers and sizes are checked.
// Tested in tests/unit/test_io.cpp and tests/errors.
#pragma once
#include <string>

#include "core/tensor.h"

namespace kiln::io {

Result<Tensor> load_idx(const std::string& path);

// The Fashion-MNIST files from Debian's dataset-fashion-mnist.
inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
struct LabeledImages {
  Tensor images;  // u8 [N, 28, 28]
  Tensor labels;  // u8 [N]
};
// split: "train" or "t10k".
Result<LabeledImages> load_fashion_mnist(const std::string& dir, const std::string& split);

}  // namespace kiln::io
