// Reference kernels for Cast and CastLike: every pair among f32 f64 f16 bf16
// i8 u8 i16 u16 i32 u32 i64 u64 bool, element by element through cast_value()
// (elementwise_loops.h), which states the rounding, truncation and NaN rules.
#include <cstring>

#include "backends/reference/elementwise_loops.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

Result<void> cast_to(KernelCtx& c, DType to) {
  const Tensor& x = c.input(0);
  Tensor& y = c.out[0];
  if (y.dtype() != to) return c.fail("output was allocated as " + std::string(dtype_name(y.dtype())) + ", expected " +
                                     std::string(dtype_name(to)));
  if (x.dtype() == to) {
    if (x.nbytes() > 0) std::memcpy(y.raw(), x.raw(), size_t(x.nbytes()));
    return {};
  }
  return dispatch_all(c, x.dtype(), [&](auto from_tag) -> Result<void> {
    using From = decltype(from_tag);
    return dispatch_all(c, to, [&](auto to_tag) -> Result<void> {
      using To = decltype(to_tag);
      const From* in = x.data<From>();
      To* out = y.data<To>();
      for (int64_t i = 0; i < x.numel(); ++i) out[i] = cast_value<To>(in[i]);
      return {};
    });
  });
}

}  // namespace

Result<void> run_cast(KernelCtx& c) {
  auto to = dtype_from_onnx(int(c.attr<ir::CastAttrs>().to));
  if (!to) return c.fail("cast to unsupported data type " + std::to_string(c.attr<ir::CastAttrs>().to));
  return cast_to(c, *to);
}

Result<void> run_castlike(KernelCtx& c) { return cast_to(c, c.input(1).dtype()); }

}  // namespace kiln::ref
