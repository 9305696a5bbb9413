// Reference kernels for DepthToSpace (DCR and CRD modes) and SpaceToDepth:
// pure rearrangements of a rank-4 [N, C, H, W] tensor, so any dtype of whole
// bytes is moved as raw elements of its width.
#include <cstdint>

#include "backends/reference/kernel.h"
#include "backends/reference/kernels.h"

namespace kiln::ref {
namespace {

// Calls f(U{}) with an unsigned integer type as wide as one element of `t`.
template <class F>
Result<void> visit_width(KernelCtx& c, DType t, F&& f) {
  if (dtype_info(t).bits % 8 != 0) return c.unsupported_dtype(t);
  switch (dtype_info(t).bits / 8) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    case 8: return f(uint64_t{});
    default: return c.unsupported_dtype(t);
  }
}

// Sizes output 0 as `shape` unless the executor already did.
Result<void> ensure_output(KernelCtx& c, const Shape& shape) {
  DType dt = c.input(0).dtype();
  if (!c.out[0].defined() || c.out[0].shape() != shape || c.out[0].dtype() != dt) KILN_TRY(c.alloc(0, dt, shape));
  return {};
}

Result<void> check_rank4(KernelCtx& c, int64_t b) {
  if (c.input(0).rank() != 4)
    return c.fail("input has shape " + shape_str(c.input(0).shape()) + ", expected rank 4 (N, C, H, W)");
  if (b <= 0) return c.fail("blocksize " + std::to_string(b) + " must be positive");
  return {};
}

}  // namespace

Result<void> run_depth_to_space(KernelCtx& c) {
  const auto& a = c.attr<ir::DepthToSpaceAttrs>();
  int64_t b = a.blocksize;
  KILN_TRY(check_rank4(c, b));
  const Tensor& x = c.input(0);
  int64_t n = x.dim(0), cin = x.dim(1), h = x.dim(2), w = x.dim(3);
  if (cin % (b * b) != 0)
    return c.fail("channels " + std::to_string(cin) + " are not divisible by blocksize^2 = " + std::to_string(b * b));
  int64_t cout = cin / (b * b), oh = h * b, ow = w * b;
  KILN_TRY(ensure_output(c, {n, cout, oh, ow}));
  bool dcr = a.mode == ir::DepthToSpaceMode::kDCR;
  return visit_width(c, x.dtype(), [&](auto tag) -> Result<void> {
    using U = decltype(tag);
    const U* in = x.data<U>();
    U* out = c.out[0].data<U>();
    int64_t o = 0;
    for (int64_t ni = 0; ni < n; ++ni)
      for (int64_t co = 0; co < cout; ++co)
        for (int64_t y = 0; y < oh; ++y)
          for (int64_t xo = 0; xo < ow; ++xo) {
            int64_t i = y % b, j = xo % b;
            // DCR: depth is [b, b, C']; CRD: depth is [C', b, b].
            int64_t ci = dcr ? (i * b + j) * cout + co : (co * b + i) * b + j;
            out[o++] = in[((ni * cin + ci) * h + y / b) * w + xo / b];
          }
    return {};
  });
}

Result<void> run_space_to_depth(KernelCtx& c) {
  int64_t b = c.attr<ir::SpaceToDepthAttrs>().blocksize;
  KILN_TRY(check_rank4(c, b));
  const Tensor& x = c.input(0);
  int64_t n = x.dim(0), cin = x.dim(1), h = x.dim(2), w = x.dim(3);
  if (h % b != 0 || w % b != 0)
    return c.fail("input " + shape_str(x.shape()) + ": H and W must be divisible by blocksize " + std::to_string(b));
  int64_t cout = cin * b * b, oh = h / b, ow = w / b;
  KILN_TRY(ensure_output(c, {n, cout, oh, ow}));
  return visit_width(c, x.dtype(), [&](auto tag) -> Result<void> {
    using U = decltype(tag);
    const U* in = x.data<U>();
    U* out = c.out[0].data<U>();
    int64_t o = 0;
    for (int64_t ni = 0; ni < n; ++ni)
      for (int64_t co = 0; co < cout; ++co) {
        // Output depth is [b, b, C]: co = (i * b + j) * C + c.
        int64_t ci = co % cin, i = co / cin / b, j = co / cin % b;
        for (int64_t y = 0; y < oh; ++y)
          for (int64_t xo = 0; xo < ow; ++xo) out[o++] = in[((ni * cin + ci) * h + y * b + i) * w + xo * b + j];
      }
    return {};
  });
}

}  // namespace kiln::ref
