// DEVELOPMENT SCAFFOLD: infer functions not yet written. Each family moves its
// functions out of here into ir/ops/<family>.cpp; this file is deleted when empty.
#include "ir/ops/infer_fns.h"

namespace kiln::ir {

Result<void> infer_arg_reduce(InferCtx& c) { return c.fail("shape inference pending (infer_arg_reduce)"); }
Result<void> infer_batchnorm(InferCtx& c) { return c.fail("shape inference pending (infer_batchnorm)"); }
Result<void> infer_compress(InferCtx& c) { return c.fail("shape inference pending (infer_compress)"); }
Result<void> infer_concat(InferCtx& c) { return c.fail("shape inference pending (infer_concat)"); }
Result<void> infer_constant_of_shape(InferCtx& c) { return c.fail("shape inference pending (infer_constant_of_shape)"); }
Result<void> infer_conv(InferCtx& c) { return c.fail("shape inference pending (infer_conv)"); }
Result<void> infer_conv_integer(InferCtx& c) { return c.fail("shape inference pending (infer_conv_integer)"); }
Result<void> infer_conv_transpose(InferCtx& c) { return c.fail("shape inference pending (infer_conv_transpose)"); }
Result<void> infer_depth_to_space(InferCtx& c) { return c.fail("shape inference pending (infer_depth_to_space)"); }
Result<void> infer_dequantize_linear(InferCtx& c) { return c.fail("shape inference pending (infer_dequantize_linear)"); }
Result<void> infer_dynamic_quantize_linear(InferCtx& c) { return c.fail("shape inference pending (infer_dynamic_quantize_linear)"); }
Result<void> infer_einsum(InferCtx& c) { return c.fail("shape inference pending (infer_einsum)"); }
Result<void> infer_expand(InferCtx& c) { return c.fail("shape inference pending (infer_expand)"); }
Result<void> infer_eyelike(InferCtx& c) { return c.fail("shape inference pending (infer_eyelike)"); }
Result<void> infer_flatten(InferCtx& c) { return c.fail("shape inference pending (infer_flatten)"); }
Result<void> infer_gather(InferCtx& c) { return c.fail("shape inference pending (infer_gather)"); }
Result<void> infer_gather_elements(InferCtx& c) { return c.fail("shape inference pending (infer_gather_elements)"); }
Result<void> infer_gather_nd(InferCtx& c) { return c.fail("shape inference pending (infer_gather_nd)"); }
Result<void> infer_gemm(InferCtx& c) { return c.fail("shape inference pending (infer_gemm)"); }
Result<void> infer_global_pool(InferCtx& c) { return c.fail("shape inference pending (infer_global_pool)"); }
Result<void> infer_layernorm(InferCtx& c) { return c.fail("shape inference pending (infer_layernorm)"); }
Result<void> infer_matmul(InferCtx& c) { return c.fail("shape inference pending (infer_matmul)"); }
Result<void> infer_matmul_integer(InferCtx& c) { return c.fail("shape inference pending (infer_matmul_integer)"); }
Result<void> infer_nll_loss(InferCtx& c) { return c.fail("shape inference pending (infer_nll_loss)"); }
Result<void> infer_nonzero(InferCtx& c) { return c.fail("shape inference pending (infer_nonzero)"); }
Result<void> infer_onehot(InferCtx& c) { return c.fail("shape inference pending (infer_onehot)"); }
Result<void> infer_pad(InferCtx& c) { return c.fail("shape inference pending (infer_pad)"); }
Result<void> infer_pool(InferCtx& c) { return c.fail("shape inference pending (infer_pool)"); }
Result<void> infer_qlinear_conv(InferCtx& c) { return c.fail("shape inference pending (infer_qlinear_conv)"); }
Result<void> infer_qlinear_matmul(InferCtx& c) { return c.fail("shape inference pending (infer_qlinear_matmul)"); }
Result<void> infer_quantize_linear(InferCtx& c) { return c.fail("shape inference pending (infer_quantize_linear)"); }
Result<void> infer_range(InferCtx& c) { return c.fail("shape inference pending (infer_range)"); }
Result<void> infer_reduce(InferCtx& c) { return c.fail("shape inference pending (infer_reduce)"); }
Result<void> infer_reshape(InferCtx& c) { return c.fail("shape inference pending (infer_reshape)"); }
Result<void> infer_resize(InferCtx& c) { return c.fail("shape inference pending (infer_resize)"); }
Result<void> infer_sce_loss(InferCtx& c) { return c.fail("shape inference pending (infer_sce_loss)"); }
Result<void> infer_shape(InferCtx& c) { return c.fail("shape inference pending (infer_shape)"); }
Result<void> infer_size(InferCtx& c) { return c.fail("shape inference pending (infer_size)"); }
Result<void> infer_slice(InferCtx& c) { return c.fail("shape inference pending (infer_slice)"); }
Result<void> infer_space_to_depth(InferCtx& c) { return c.fail("shape inference pending (infer_space_to_depth)"); }
Result<void> infer_split(InferCtx& c) { return c.fail("shape inference pending (infer_split)"); }
Result<void> infer_squeeze(InferCtx& c) { return c.fail("shape inference pending (infer_squeeze)"); }
Result<void> infer_tile(InferCtx& c) { return c.fail("shape inference pending (infer_tile)"); }
Result<void> infer_topk(InferCtx& c) { return c.fail("shape inference pending (infer_topk)"); }
Result<void> infer_transpose(InferCtx& c) { return c.fail("shape inference pending (infer_transpose)"); }
Result<void> infer_unsqueeze(InferCtx& c) { return c.fail("shape inference pending (infer_unsqueeze)"); }

}  // namespace kiln::ir
