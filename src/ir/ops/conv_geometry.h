// Sliding-window geometry shared by Conv, ConvTranspose, ConvInteger,
// QLinearConv and the pools: resolves strides/dilations/pads/auto_pad/ceil_mode
// into per-axis pads and output sizes. One source of truth for shape inference
// and for every backend's kernels. Tested in tests/unit/test_ref_conv_pool.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "core/result.h"
#include "core/shape.h"
#include "ir/ops/nn.h"

namespace kiln::ir {

// An output dim that cannot be computed statically (its input dim is symbolic).
inline constexpr int64_t kUnknownDim = std::numeric_limits<int64_t>::min();

// Per spatial axis, after pads are resolved. For ConvTranspose `in` is the
// input (smaller) side and `out` the output (larger) side as well.
struct WindowGeometry {
  std::vector<int64_t> in, kernel, strides, dilations, pads_begin, pads_end, out;
  size_t rank() const { return in.size(); }
  // Span of one window on the (padded) input: (k - 1) * d + 1.
  int64_t extent(size_t i) const { return (kernel[i] - 1) * dilations[i] + 1; }
  // Size of the zero-padded input that holds every window: in + both pads,
  // or more where the last window reaches past a pads_end cut by the stride.
  int64_t padded(size_t i) const {
    const int64_t all = in[i] + pads_begin[i] + pads_end[i], reach = (out[i] - 1) * strides[i] + extent(i);
    return all > reach ? all : reach;
  }
};

// Generic window resolution (Conv and pools). `in_spatial` dims may be
// symbolic (negative): their output is kUnknownDim, except that a window that
// provably keeps the size (SAME with stride 1, or extent-1 == pads with stride 1)
// passes the symbol through. Empty strides/dilations/pads mean the defaults.
// ceil_mode follows the pooling rule: round up, but drop a last window that
// would start in the end padding.
Result<WindowGeometry> window_geometry(const Shape& in_spatial, const std::vector<int64_t>& kernel, AutoPad auto_pad,
                                       const std::vector<int64_t>& strides, const std::vector<int64_t>& dilations,
                                       const std::vector<int64_t>& pads, bool ceil_mode);

// Conv / ConvInteger / QLinearConv: X [N, C, D1..Dn], W [M, C/group, k1..kn].
// Checks ranks, group and channel agreement, kernel_shape against W.
Result<WindowGeometry> conv_geometry(const ConvAttrs& a, const Shape& x, const Shape& w);
// Output shape [N, M, out...]; kUnknownDim entries are replaced by fresh()
// (or left as kUnknownDim when fresh is empty).
Result<Shape> conv_output_shape(const ConvAttrs& a, const Shape& x, const Shape& w,
                                const std::function<int64_t()>& fresh = {});

// ConvTranspose: X [N, C, D1..Dn], W [C, M/group, k1..kn]; resolves
// output_shape / output_padding / auto_pad into pads and output sizes.
Result<WindowGeometry> conv_transpose_geometry(const ConvTransposeAttrs& a, const Shape& x, const Shape& w);
Result<Shape> conv_transpose_output_shape(const ConvTransposeAttrs& a, const Shape& x, const Shape& w,
                                          const std::function<int64_t()>& fresh = {});

// MaxPool / AveragePool / LpPool: X [N, C, D1..Dn].
Result<WindowGeometry> pool_geometry(const PoolWindow& a, const Shape& x);

// Valid iteration range for a strided index map: the t in [0, count) with
// 0 <= t * stride + offset < limit, as [*lo, *hi) (empty when *lo >= *hi).
// Conv uses it to clip output positions to the input; ConvTranspose the reverse.
void strided_valid_range(int64_t count, int64_t stride, int64_t offset, int64_t limit, int64_t* lo, int64_t* hi);

}  // namespace kiln::ir
