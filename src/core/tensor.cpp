#include "core/tensor.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <new>

#include "core/half.h"

namespace kiln {

int64_t max_tensor_bytes() {
  static const int64_t limit = [] {
    long pages = sysconf(_SC_PHYS_PAGES);
    long page = sysconf(_SC_PAGE_SIZE);
    return (pages > 0 && page > 0) ? int64_t(pages) * page : int64_t(1) << 40;
  }();
  return limit;
}

namespace {
// MemAvailable from /proc/meminfo (bytes), or -1 when it cannot be read.
int64_t available_memory() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  int64_t kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "MemAvailable: %ld kB", &kb) == 1) break;
  std::fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}
// Large allocations are checked against the memory available now, so that a
// model whose activations do not fit fails with an error instead of being
// killed by the kernel's OOM killer. Small ones skip the /proc read.
constexpr int64_t kCheckAvailableAbove = int64_t(64) << 20;
}  // namespace

Result<Tensor> Tensor::create(DType dtype, Shape shape) {
  if (dtype == DType::kUndefined) return make_error("cannot allocate a tensor of undefined dtype");
  KILN_ASSIGN(int64_t n, checked_numel(shape));
  if (n > max_tensor_bytes() / std::max(1, dtype_info(dtype).bits / 8))
    return make_error("tensor of shape " + shape_str(shape) + " (" + std::string(dtype_name(dtype)) +
                      ") needs more memory than this machine has");
  int64_t want = dtype_bytes(dtype, n);
  if (want > kCheckAvailableAbove) {
    int64_t avail = available_memory();
    if (avail >= 0 && want > avail)
      return make_error("tensor of shape " + shape_str(shape) + " (" + std::string(dtype_name(dtype)) + ", " +
                        std::to_string(want >> 20) + " MiB) needs more memory than is available (" +
                        std::to_string(avail >> 20) + " MiB)");
  }
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = n;
  size_t bytes = size_t(std::max<int64_t>(dtype_bytes(dtype, n), 1));
  // 64-byte alignment so SIMD kernels may use aligned loads on fresh buffers.
  bytes = (bytes + 63) / 64 * 64;
  void* p = ::operator new(bytes, std::align_val_t(64), std::nothrow);
  if (!p) return make_error("out of memory allocating " + std::to_string(bytes) + " bytes for shape " + shape_str(t.shape_));
  std::memset(p, 0, bytes);
  t.buf_ = std::shared_ptr<std::byte[]>(static_cast<std::byte*>(p),
                                        [](std::byte* q) { ::operator delete(q, std::align_val_t(64)); });
  return t;
}

Tensor Tensor::view(DType dtype, Shape shape, void* data) {
  Tensor t;
  t.dtype_ = dtype;
  t.numel_ = 1;
  for (int64_t d : shape) t.numel_ *= d;
  t.shape_ = std::move(shape);
  t.buf_ = std::shared_ptr<std::byte[]>(static_cast<std::byte*>(data), [](std::byte*) {});
  return t;
}

Tensor Tensor::reshaped(Shape shape) const {
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor t = Tensor::create(dtype_, shape_).value();
  std::memcpy(t.raw(), raw(), size_t(nbytes()));
  return t;
}

double Tensor::as_double(int64_t i) const {
  switch (dtype_) {
    case DType::kF32: return data<float>()[i];
    case DType::kF64: return data<double>()[i];
    case DType::kF16: return to_float(data<f16_t>()[i]);
    case DType::kBF16: return to_float(data<bf16_t>()[i]);
    default: return double(as_int(i));
  }
}

int64_t Tensor::as_int(int64_t i) const {
  switch (dtype_) {
    case DType::kI8: return data<int8_t>()[i];
    case DType::kU8: return data<uint8_t>()[i];
    case DType::kBool: return data<uint8_t>()[i] ? 1 : 0;
    case DType::kI16: return data<int16_t>()[i];
    case DType::kU16: return data<uint16_t>()[i];
    case DType::kI32: return data<int32_t>()[i];
    case DType::kU32: return data<uint32_t>()[i];
    case DType::kI64: return data<int64_t>()[i];
    case DType::kU64: return int64_t(data<uint64_t>()[i]);
    case DType::kI4: {
      int v = (data<uint8_t>()[i / 2] >> ((i & 1) * 4)) & 0xf;
      return v >= 8 ? v - 16 : v;
    }
    case DType::kU4: return (data<uint8_t>()[i / 2] >> ((i & 1) * 4)) & 0xf;
    default: return int64_t(as_double(i));
  }
}

}  // namespace kiln
