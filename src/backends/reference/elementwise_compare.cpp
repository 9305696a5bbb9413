// Reference kernels for comparisons (Equal Less LessOrEqual Greater
// GreaterOrEqual -> bool), logic on bools (And Or Xor) and Where, all with
// numpy broadcasting. f16/bf16 compare as float (exact); NaN compares unequal.
#include "backends/reference/elementwise_loops.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

// Y(bool) = f(a, b) for A and B of one dtype; Equal also takes bool.
template <class F>
Result<void> compare(KernelCtx& c, bool allow_bool, F f) {
  DType dt = c.input(0).dtype();
  if (dt == DType::kBool && !allow_bool) return c.unsupported_dtype(dt);
  return dispatch_all(c, dt, [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    map_binary<T, T, bool>(c.input(0), c.input(1), c.out[0], f);
    return {};
  });
}

template <class F>
Result<void> logical(KernelCtx& c, F f) {
  for (size_t i = 0; i < 2; ++i)
    if (c.input(i).dtype() != DType::kBool) return c.unsupported_dtype(c.input(i).dtype());
  map_binary<bool, bool, bool>(c.input(0), c.input(1), c.out[0], f);
  return {};
}

}  // namespace

Result<void> run_equal(KernelCtx& c) {
  return compare(c, true, [](auto a, auto b) { return a == b; });
}
Result<void> run_less(KernelCtx& c) {
  return compare(c, false, [](auto a, auto b) { return a < b; });
}
Result<void> run_less_or_equal(KernelCtx& c) {
  return compare(c, false, [](auto a, auto b) { return a <= b; });
}
Result<void> run_greater(KernelCtx& c) {
  return compare(c, false, [](auto a, auto b) { return a > b; });
}
Result<void> run_greater_or_equal(KernelCtx& c) {
  return compare(c, false, [](auto a, auto b) { return a >= b; });
}

Result<void> run_and(KernelCtx& c) {
  return logical(c, [](bool a, bool b) { return a && b; });
}
Result<void> run_or(KernelCtx& c) {
  return logical(c, [](bool a, bool b) { return a || b; });
}
Result<void> run_xor(KernelCtx& c) {
  return logical(c, [](bool a, bool b) { return a != b; });
}

// Where(cond, X, Y): X's element where cond is true, else Y's; three-way broadcast.
Result<void> run_where(KernelCtx& c) {
  if (c.input(0).dtype() != DType::kBool) return c.unsupported_dtype(c.input(0).dtype());
  DType dt = c.input(1).dtype();
  if (c.input(2).dtype() != dt)
    return c.fail("X and Y must have the same dtype, got " + std::string(dtype_name(dt)) + " and " +
                  std::string(dtype_name(c.input(2).dtype())));
  return dispatch_all(c, dt, [&](auto tag) -> Result<void> {
    using T = decltype(tag);
    Tensor& y = c.out[0];
    Operand<bool> cond(c.input(0), y.shape());
    Operand<T> a(c.input(1), y.shape()), b(c.input(2), y.shape());
    T* out = y.data<T>();
    for_each_row(y.shape(), [&](int64_t start, int64_t len) {
      const bool* rc = cond.row(start);
      const T* ra = a.row(start);
      const T* rb = b.row(start);
      for (int64_t j = 0; j < len; ++j)
        out[start + j] = rc[j * cond.step()] ? ra[j * a.step()] : rb[j * b.step()];
    });
    return {};
  });
}

}  // namespace kiln::ref
