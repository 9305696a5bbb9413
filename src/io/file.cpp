#include "io/file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace kiln::io {

Result<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return make_error(path + ": is a directory, expected a file");
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(path + ": cannot open (" + std::strerror(errno) + ")");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return make_error(path + ": read error");
  return s;
}

Result<void> write_file_atomic(const std::string& path, const std::string& bytes) {
  std::string tmp = path + ".tmp-kiln";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return make_error(path + ": cannot write (" + std::strerror(errno) + ")");
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) {
      f.close();
      std::remove(tmp.c_str());
      return make_error(path + ": write failed (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return make_error(path + ": cannot rename into place (" + ec.message() + ")");
  }
  return {};
}

}  // namespace kiln::io
