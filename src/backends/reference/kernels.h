// Declarations of every reference kernel, one line per op, grouped by the
// file that defines it. The table that maps OpKind -> kernel is kernel_table.cpp.
#pragma once
#include "backends/reference/kernel.h"

namespace kiln::ref {

// elementwise_unary.cpp, elementwise_activation.cpp, elementwise_binary.cpp,
// elementwise_compare.cpp, elementwise_cast.cpp (helpers: elementwise_loops.h)
Result<void> run_abs(KernelCtx&);
Result<void> run_neg(KernelCtx&);
Result<void> run_sign(KernelCtx&);
Result<void> run_relu(KernelCtx&);
Result<void> run_reciprocal(KernelCtx&);
Result<void> run_floor(KernelCtx&);
Result<void> run_ceil(KernelCtx&);
Result<void> run_round(KernelCtx&);
Result<void> run_sqrt(KernelCtx&);
Result<void> run_exp(KernelCtx&);
Result<void> run_log(KernelCtx&);
Result<void> run_erf(KernelCtx&);
Result<void> run_sin(KernelCtx&);
Result<void> run_cos(KernelCtx&);
Result<void> run_tan(KernelCtx&);
Result<void> run_asin(KernelCtx&);
Result<void> run_acos(KernelCtx&);
Result<void> run_atan(KernelCtx&);
Result<void> run_sinh(KernelCtx&);
Result<void> run_cosh(KernelCtx&);
Result<void> run_tanh(KernelCtx&);
Result<void> run_asinh(KernelCtx&);
Result<void> run_acosh(KernelCtx&);
Result<void> run_atanh(KernelCtx&);
Result<void> run_isnan(KernelCtx&);
Result<void> run_isinf(KernelCtx&);
Result<void> run_not(KernelCtx&);
Result<void> run_bitwise_not(KernelCtx&);
Result<void> run_identity(KernelCtx&);
Result<void> run_dropout(KernelCtx&);
Result<void> run_sigmoid(KernelCtx&);
Result<void> run_softsign(KernelCtx&);
Result<void> run_softplus(KernelCtx&);
Result<void> run_mish(KernelCtx&);
Result<void> run_gelu(KernelCtx&);
Result<void> run_elu(KernelCtx&);
Result<void> run_celu(KernelCtx&);
Result<void> run_selu(KernelCtx&);
Result<void> run_leaky_relu(KernelCtx&);
Result<void> run_thresholded_relu(KernelCtx&);
Result<void> run_hard_sigmoid(KernelCtx&);
Result<void> run_hard_swish(KernelCtx&);
Result<void> run_shrink(KernelCtx&);
Result<void> run_clip(KernelCtx&);
Result<void> run_add(KernelCtx&);
Result<void> run_sub(KernelCtx&);
Result<void> run_mul(KernelCtx&);
Result<void> run_div(KernelCtx&);
Result<void> run_mod(KernelCtx&);
Result<void> run_pow(KernelCtx&);
Result<void> run_bit_shift(KernelCtx&);
Result<void> run_bitwise_and(KernelCtx&);
Result<void> run_bitwise_or(KernelCtx&);
Result<void> run_bitwise_xor(KernelCtx&);
Result<void> run_prelu(KernelCtx&);
Result<void> run_max(KernelCtx&);
Result<void> run_min(KernelCtx&);
Result<void> run_sum(KernelCtx&);
Result<void> run_mean(KernelCtx&);
Result<void> run_equal(KernelCtx&);
Result<void> run_less(KernelCtx&);
Result<void> run_less_or_equal(KernelCtx&);
Result<void> run_greater(KernelCtx&);
Result<void> run_greater_or_equal(KernelCtx&);
Result<void> run_and(KernelCtx&);
Result<void> run_or(KernelCtx&);
Result<void> run_xor(KernelCtx&);
Result<void> run_where(KernelCtx&);
Result<void> run_cast(KernelCtx&);
Result<void> run_castlike(KernelCtx&);
// end elementwise

// conv.cpp, pool.cpp
Result<void> run_conv(KernelCtx&);
Result<void> run_conv_transpose(KernelCtx&);
Result<void> run_max_pool(KernelCtx&);
Result<void> run_average_pool(KernelCtx&);
Result<void> run_lp_pool(KernelCtx&);
Result<void> run_global_pool(KernelCtx&);  // GlobalAveragePool, GlobalMaxPool, GlobalLpPool
Result<void> run_depth_to_space(KernelCtx&);  // space_depth.cpp
Result<void> run_space_to_depth(KernelCtx&);  // space_depth.cpp
// end conv/pool

// linalg.cpp, norm.cpp, softmax.cpp, loss.cpp
Result<void> run_gemm(KernelCtx&);
Result<void> run_matmul(KernelCtx&);
Result<void> run_einsum(KernelCtx&);
Result<void> run_batchnorm(KernelCtx&);
Result<void> run_layernorm(KernelCtx&);
Result<void> run_instancenorm(KernelCtx&);
Result<void> run_lrn(KernelCtx&);
Result<void> run_mvn(KernelCtx&);
Result<void> run_lpnorm(KernelCtx&);
Result<void> run_softmax(KernelCtx&);
Result<void> run_logsoftmax(KernelCtx&);
Result<void> run_hardmax(KernelCtx&);
Result<void> run_sce_loss(KernelCtx&);
Result<void> run_nll_loss(KernelCtx&);
// end linalg/norm

// shape_ops.cpp, resize.cpp, gather_scatter.cpp (helpers: copy_util.h)
Result<void> run_shape(KernelCtx&);
Result<void> run_size(KernelCtx&);
Result<void> run_reshape(KernelCtx&);  // Reshape, Flatten, Squeeze, Unsqueeze
Result<void> run_transpose(KernelCtx&);
Result<void> run_concat(KernelCtx&);
Result<void> run_split(KernelCtx&);
Result<void> run_slice(KernelCtx&);
Result<void> run_expand(KernelCtx&);
Result<void> run_tile(KernelCtx&);
Result<void> run_pad(KernelCtx&);
Result<void> run_constant_of_shape(KernelCtx&);
Result<void> run_range(KernelCtx&);
Result<void> run_eyelike(KernelCtx&);
Result<void> run_trilu(KernelCtx&);
Result<void> run_reverse_sequence(KernelCtx&);
Result<void> run_gather(KernelCtx&);
Result<void> run_gather_elements(KernelCtx&);
Result<void> run_gather_nd(KernelCtx&);
Result<void> run_scatter_elements(KernelCtx&);
Result<void> run_scatter_nd(KernelCtx&);
Result<void> run_onehot(KernelCtx&);
Result<void> run_nonzero(KernelCtx&);
Result<void> run_compress(KernelCtx&);
Result<void> run_resize(KernelCtx&);
// end shape

// reduce.cpp, quant.cpp
Result<void> run_reduce(KernelCtx&);  // every Reduce* op
Result<void> run_arg_reduce(KernelCtx&);  // ArgMax, ArgMin
Result<void> run_cumsum(KernelCtx&);
Result<void> run_topk(KernelCtx&);
Result<void> run_quantize_linear(KernelCtx&);
Result<void> run_dequantize_linear(KernelCtx&);
Result<void> run_dynamic_quantize_linear(KernelCtx&);
// quant_linear.cpp
Result<void> run_matmul_integer(KernelCtx&);
Result<void> run_qlinear_matmul(KernelCtx&);
Result<void> run_conv_integer(KernelCtx&);
Result<void> run_qlinear_conv(KernelCtx&);
// end reduce/quant

// quant_kiln.cpp (domain "kiln"; integer sums shared with quant_linear.cpp in quant_int.h)
Result<void> run_qconv(KernelCtx&);
Result<void> run_qgemm(KernelCtx&);
Result<void> run_qadd(KernelCtx&);
// end quant_kiln

// fused.cpp (domain "kiln": Conv/Gemm + activation from passes/fuse_activation)
Result<void> run_fused_conv(KernelCtx&);
Result<void> run_fused_gemm(KernelCtx&);
// end fused
// attention.cpp (domain "kiln": from passes/fuse_attention)
Result<void> run_attention(KernelCtx&);
// elementwise_chain.cpp (domain "kiln": from passes/fuse_elementwise_chain)
Result<void> run_elementwise_chain(KernelCtx&);

}  // namespace kiln::ref
