// Small helpers shared by the shape-family inference functions
// (ir/ops/shape_ops.cpp, ir/ops/index_ops.cpp): reading metadata inputs
// (shape, axes, pads ...) and combining possibly symbolic dims.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "ir/infer.h"

namespace kiln::ir::shape_infer {

// Input i must hold integers (shape, axes, pads, repeats ...); floats are a model error.
Result<void> require_int(const InferCtx& c, size_t i, const char* what);
// Integer contents of a small metadata tensor.
std::vector<int64_t> ints_of(const Tensor& t);
// Values of input i when known (and 0-D or 1-D), else nullopt. A tensor of rank
// > 1 is an error.
Result<std::optional<std::vector<int64_t>>> known_ints(const InferCtx& c, size_t i, const char* what);
// Element count of 1-D input i when its shape is static, else -1.
int64_t static_len(const InferCtx& c, size_t i);
// True when input i is omitted or known to have zero elements (ONNX's "empty" optional form).
bool is_empty_input(const InferCtx& c, size_t i);
// True when input i is present and known to have elements.
bool is_nonempty_input(const InferCtx& c, size_t i);
// Product of dims [b, e): static when all are; the one symbolic dim when the
// rest multiply to 1; 0 when any is 0; otherwise a fresh symbol.
int64_t dim_product(InferCtx& c, const Shape& s, size_t b, size_t e);
// Normalize each axis against rank and reject duplicates; `what` names the list in errors.
Result<std::vector<int64_t>> normalize_axes(const InferCtx& c, const std::vector<int64_t>& axes, int64_t rank,
                                            const char* what);
std::string ints_str(const std::vector<int64_t>& v);

}  // namespace kiln::ir::shape_infer
