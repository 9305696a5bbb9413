// Whole-file reads and atomic writes (write to a temporary beside the target,
// then rename), so a failed run never leaves a half-written output file.
// .npy read/write lives in io/npy.h. Tested in tests/unit/test_io.cpp.
#pragma once
#include <string>

#include "core/result.h"

namespace kiln::io {

Result<std::string> read_file(const std::string& path);
Result<void> write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace kiln::io
