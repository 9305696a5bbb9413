// Shape-inference functions named in ir/op_table.cpp, defined per family in
// ir/ops/{elementwise,nn,reduce,shape_ops,quant}.cpp.
#pragma once
#include "ir/infer.h"

namespace kiln::ir {

Result<void> infer_arg_reduce(InferCtx&);
Result<void> infer_batchnorm(InferCtx&);
Result<void> infer_broadcast(InferCtx&);
Result<void> infer_cast(InferCtx&);
Result<void> infer_castlike(InferCtx&);
Result<void> infer_compare(InferCtx&);
Result<void> infer_compress(InferCtx&);
Result<void> infer_concat(InferCtx&);
Result<void> infer_constant_of_shape(InferCtx&);
Result<void> infer_conv(InferCtx&);
Result<void> infer_conv_integer(InferCtx&);
Result<void> infer_conv_transpose(InferCtx&);
Result<void> infer_depth_to_space(InferCtx&);
Result<void> infer_dequantize_linear(InferCtx&);
Result<void> infer_dropout(InferCtx&);
Result<void> infer_dynamic_quantize_linear(InferCtx&);
Result<void> infer_einsum(InferCtx&);
Result<void> infer_expand(InferCtx&);
Result<void> infer_eyelike(InferCtx&);
Result<void> infer_flatten(InferCtx&);
Result<void> infer_gather(InferCtx&);
Result<void> infer_gather_elements(InferCtx&);
Result<void> infer_gather_nd(InferCtx&);
Result<void> infer_gemm(InferCtx&);
Result<void> infer_global_pool(InferCtx&);
Result<void> infer_layernorm(InferCtx&);
Result<void> infer_logical(InferCtx&);
Result<void> infer_matmul(InferCtx&);
Result<void> infer_matmul_integer(InferCtx&);
Result<void> infer_nll_loss(InferCtx&);
Result<void> infer_nonzero(InferCtx&);
Result<void> infer_onehot(InferCtx&);
Result<void> infer_pad(InferCtx&);
Result<void> infer_pool(InferCtx&);
Result<void> infer_pow(InferCtx&);
Result<void> infer_qlinear_conv(InferCtx&);
Result<void> infer_qlinear_matmul(InferCtx&);
Result<void> infer_qconv(InferCtx&);  // kiln_quant.cpp
Result<void> infer_qgemm(InferCtx&);  // kiln_quant.cpp
Result<void> infer_qadd(InferCtx&);   // kiln_quant.cpp
Result<void> infer_fused_conv(InferCtx&);  // kiln_fused.cpp
Result<void> infer_fused_gemm(InferCtx&);  // kiln_fused.cpp
Result<void> infer_attention(InferCtx&);  // kiln_fused.cpp
Result<void> infer_elementwise_chain(InferCtx&);  // kiln_fused.cpp
Result<void> infer_quantize_linear(InferCtx&);
Result<void> infer_range(InferCtx&);
Result<void> infer_reduce(InferCtx&);
Result<void> infer_reshape(InferCtx&);
Result<void> infer_resize(InferCtx&);
Result<void> infer_sce_loss(InferCtx&);
Result<void> infer_shape(InferCtx&);
Result<void> infer_size(InferCtx&);
Result<void> infer_slice(InferCtx&);
Result<void> infer_space_to_depth(InferCtx&);
Result<void> infer_split(InferCtx&);
Result<void> infer_squeeze(InferCtx&);
Result<void> infer_tile(InferCtx&);
Result<void> infer_topk(InferCtx&);
Result<void> infer_transpose(InferCtx&);
Result<void> infer_unary(InferCtx&);
Result<void> infer_unary_bool(InferCtx&);
Result<void> infer_unsqueeze(InferCtx&);
Result<void> infer_where(InferCtx&);

}  // namespace kiln::ir
