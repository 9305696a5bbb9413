// NumPy .npy read/write (format 1.0-3.0, little-endian, C order) for kiln's
// CLI inputs and outputs. Tested in tests/unit/test_io.cpp and tests/errors.
#pragma once
#include <string>

#include "core/tensor.h"

namespace kiln::io {

Result<Tensor> load_npy(const std::string& path);
Result<Tensor> parse_npy(const std::string& bytes, const std::string& what);
std::string serialize_npy(const Tensor& t);
Result<void> save_npy(const Tensor& t, const std::string& path);

}  // namespace kiln::io
