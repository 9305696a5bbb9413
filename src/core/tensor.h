// Tensor: a dense row-major buffer with a DType and a static Shape, shared
// ownership (copies are cheap views of the same bytes; use clone() to copy).
// Allocation is checked: a shape too large for memory is an Error, not a crash.
// Tested in tests/unit/test_core.cpp.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

#include "core/dtype.h"
#include "core/shape.h"

namespace kiln {

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled tensor; errors on overflow or on sizes beyond physical memory.
  static Result<Tensor> create(DType dtype, Shape shape);
  // A tensor over memory kiln does not own (an arena slot): the caller keeps
  // `data` alive and sized for shape while the view is used.
  static Tensor view(DType dtype, Shape shape, void* data);
  // Same buffer, another shape with the same element count.
  Tensor reshaped(Shape shape) const;
  Tensor clone() const;

  bool defined() const { return dtype_ != DType::kUndefined; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return int64_t(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_[size_t(i)]; }
  int64_t numel() const { return numel_; }
  int64_t nbytes() const { return dtype_bytes(dtype_, numel_); }

  void* raw() { return buf_.get(); }
  const void* raw() const { return buf_.get(); }
  template <class T>
  T* data() {
    return reinterpret_cast<T*>(buf_.get());
  }
  template <class T>
  const T* data() const {
    return reinterpret_cast<const T*>(buf_.get());
  }
  // Element i converted to double / int64 (any dtype); for small metadata tensors.
  double as_double(int64_t i) const;
  int64_t as_int(int64_t i) const;

 private:
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<std::byte[]> buf_;
};

// Identity, not contents: equal when both view the same storage with the same
// shape and dtype. (Attribute structs compare fields against their defaults.)
inline bool operator==(const Tensor& a, const Tensor& b) {
  return a.raw() == b.raw() && a.shape() == b.shape() && a.dtype() == b.dtype();
}

// Largest single allocation kiln will attempt (physical memory of this machine).
int64_t max_tensor_bytes();

}  // namespace kiln
