// What a reference kernel sees: the node (typed attrs), its input tensors and
// its output slots. The executor pre-allocates outputs whose shapes inference
// could fix from the concrete inputs; data-dependent ops (NonZero, ...) allocate
// their own with alloc(). Kernel rows: backends/reference/kernel_table.cpp.
#pragma once
#include <string>
#include <vector>

#include "core/half.h"
#include "core/tensor.h"
#include "ir/graph.h"

namespace kiln::ref {

struct KernelCtx {
  const ir::Node& node;
  std::vector<const Tensor*> in;  // nullptr: omitted optional input
  std::vector<Tensor>& out;       // one per node output; defined when pre-allocated
  std::string where;              // "node 'x' (Op)"

  size_t num_inputs() const { return in.size(); }
  bool has(size_t i) const { return i < in.size() && in[i] != nullptr; }
  const Tensor& input(size_t i) const { return *in[i]; }
  template <class A>
  const A& attr() const {
    return node.attr<A>();
  }
  Error fail(const std::string& msg) const { return make_error(where + ": " + msg); }
  Error unsupported_dtype(DType t) const {
    return fail("dtype " + std::string(dtype_name(t)) + " is not supported by the reference kernel");
  }
  // (Re)allocate output i.
  Result<Tensor*> alloc(size_t i, DType dt, Shape shape) {
    KILN_ASSIGN(out[i], Tensor::create(dt, std::move(shape)));
    return &out[i];
  }
};

using KernelFn = Result<void> (*)(KernelCtx&);

// The reference kernel for an op, or nullptr when it has none.
KernelFn find_kernel(ir::OpKind op);

// ---- dtype dispatch -------------------------------------------------------
// Calls f(T{}) with the C++ storage type of `t`. f16/bf16 are f16_t/bf16_t;
// use load()/store() to compute in float.
template <class F>
Result<void> visit_float(DType t, F&& f) {
  switch (t) {
    case DType::kF32: return f(float{});
    case DType::kF64: return f(double{});
    case DType::kF16: return f(f16_t{});
    case DType::kBF16: return f(bf16_t{});
    default: return make_error("expected a floating-point dtype, got " + std::string(dtype_name(t)));
  }
}
template <class F>
Result<void> visit_int(DType t, F&& f) {
  switch (t) {
    case DType::kI8: return f(int8_t{});
    case DType::kU8: return f(uint8_t{});
    case DType::kI16: return f(int16_t{});
    case DType::kU16: return f(uint16_t{});
    case DType::kI32: return f(int32_t{});
    case DType::kU32: return f(uint32_t{});
    case DType::kI64: return f(int64_t{});
    case DType::kU64: return f(uint64_t{});
    default: return make_error("expected an integer dtype, got " + std::string(dtype_name(t)));
  }
}
// Numeric (float or integer; not bool).
template <class F>
Result<void> visit_numeric(DType t, F&& f) {
  if (is_float(t)) return visit_float(t, f);
  return visit_int(t, f);
}
// Any storable dtype; bool is passed as bool (1 byte).
template <class F>
Result<void> visit_all(DType t, F&& f) {
  if (t == DType::kBool) return f(bool{});
  return visit_numeric(t, f);
}

// Compute type: float for the 16-bit floats, the type itself otherwise.
template <class T>
struct ComputeOf {
  using type = T;
};
template <>
struct ComputeOf<f16_t> {
  using type = float;
};
template <>
struct ComputeOf<bf16_t> {
  using type = float;
};
template <class T>
using compute_t = typename ComputeOf<T>::type;

template <class T>
inline compute_t<T> load(T v) {
  if constexpr (std::is_same_v<T, f16_t> || std::is_same_v<T, bf16_t>)
    return to_float(v);
  else
    return v;
}
template <class T, class C>
inline T store(C v) {
  if constexpr (std::is_same_v<T, f16_t>)
    return to_f16(float(v));
  else if constexpr (std::is_same_v<T, bf16_t>)
    return to_bf16(float(v));
  else
    return T(v);
}

// Index of the input element that output element `flat` (of out_shape) reads
// under numpy broadcasting. Build once per input, then call per element.
class BroadcastIndex {
 public:
  BroadcastIndex(const Shape& in_shape, const Shape& out_shape);
  int64_t operator()(int64_t flat) const;

 private:
  std::vector<int64_t> out_dims_, in_strides_;  // aligned to out rank; stride 0 where broadcast
  bool identity_ = false;
};

}  // namespace kiln::ref
