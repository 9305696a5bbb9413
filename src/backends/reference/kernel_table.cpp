// The reference backend's kernel table: one row per op it can run. A missing
// row makes supports() say no, with the op's name; never a crash.
// Kernels live in one file per op family beside this one.
#include <array>

#include "backends/reference/kernels.h"

namespace kiln::ref {

namespace {
struct KernelRow {
  ir::OpKind op;
  KernelFn fn;
};

using ir::OpKind;
const KernelRow kRows[] = {
    // elementwise_*.cpp
    {OpKind::kAbs, run_abs},
    {OpKind::kAcos, run_acos},
    {OpKind::kAcosh, run_acosh},
    {OpKind::kAdd, run_add},
    {OpKind::kAnd, run_and},
    {OpKind::kAsin, run_asin},
    {OpKind::kAsinh, run_asinh},
    {OpKind::kAtan, run_atan},
    {OpKind::kAtanh, run_atanh},
    {OpKind::kBitShift, run_bit_shift},
    {OpKind::kBitwiseAnd, run_bitwise_and},
    {OpKind::kBitwiseNot, run_bitwise_not},
    {OpKind::kBitwiseOr, run_bitwise_or},
    {OpKind::kBitwiseXor, run_bitwise_xor},
    {OpKind::kCast, run_cast},
    {OpKind::kCastLike, run_castlike},
    {OpKind::kCeil, run_ceil},
    {OpKind::kCelu, run_celu},
    {OpKind::kClip, run_clip},
    {OpKind::kCos, run_cos},
    {OpKind::kCosh, run_cosh},
    {OpKind::kDiv, run_div},
    {OpKind::kDropout, run_dropout},
    {OpKind::kElu, run_elu},
    {OpKind::kEqual, run_equal},
    {OpKind::kErf, run_erf},
    {OpKind::kExp, run_exp},
    {OpKind::kFloor, run_floor},
    {OpKind::kGelu, run_gelu},
    {OpKind::kGreater, run_greater},
    {OpKind::kGreaterOrEqual, run_greater_or_equal},
    {OpKind::kHardSigmoid, run_hard_sigmoid},
    {OpKind::kHardSwish, run_hard_swish},
    {OpKind::kIdentity, run_identity},
    {OpKind::kIsInf, run_isinf},
    {OpKind::kIsNaN, run_isnan},
    {OpKind::kLeakyRelu, run_leaky_relu},
    {OpKind::kLess, run_less},
    {OpKind::kLessOrEqual, run_less_or_equal},
    {OpKind::kLog, run_log},
    {OpKind::kMax, run_max},
    {OpKind::kMean, run_mean},
    {OpKind::kMin, run_min},
    {OpKind::kMish, run_mish},
    {OpKind::kMod, run_mod},
    {OpKind::kMul, run_mul},
    {OpKind::kNeg, run_neg},
    {OpKind::kNot, run_not},
    {OpKind::kOr, run_or},
    {OpKind::kPRelu, run_prelu},
    {OpKind::kPow, run_pow},
    {OpKind::kReciprocal, run_reciprocal},
    {OpKind::kRelu, run_relu},
    {OpKind::kRound, run_round},
    {OpKind::kSelu, run_selu},
    {OpKind::kShrink, run_shrink},
    {OpKind::kSigmoid, run_sigmoid},
    {OpKind::kSign, run_sign},
    {OpKind::kSin, run_sin},
    {OpKind::kSinh, run_sinh},
    {OpKind::kSoftplus, run_softplus},
    {OpKind::kSoftsign, run_softsign},
    {OpKind::kSqrt, run_sqrt},
    {OpKind::kSub, run_sub},
    {OpKind::kSum, run_sum},
    {OpKind::kTan, run_tan},
    {OpKind::kTanh, run_tanh},
    {OpKind::kThresholdedRelu, run_thresholded_relu},
    {OpKind::kWhere, run_where},
    {OpKind::kXor, run_xor},
    // end elementwise
    // conv.cpp, pool.cpp
    {OpKind::kConv, run_conv},
    {OpKind::kConvTranspose, run_conv_transpose},
    {OpKind::kMaxPool, run_max_pool},
    {OpKind::kAveragePool, run_average_pool},
    {OpKind::kLpPool, run_lp_pool},
    {OpKind::kGlobalAveragePool, run_global_pool},
    {OpKind::kGlobalMaxPool, run_global_pool},
    {OpKind::kGlobalLpPool, run_global_pool},
    {OpKind::kDepthToSpace, run_depth_to_space},
    {OpKind::kSpaceToDepth, run_space_to_depth},
    // end conv/pool
    // linalg.cpp, norm.cpp, softmax.cpp, loss.cpp
    {OpKind::kGemm, run_gemm},
    {OpKind::kMatMul, run_matmul},
    {OpKind::kEinsum, run_einsum},
    {OpKind::kBatchNormalization, run_batchnorm},
    {OpKind::kLayerNormalization, run_layernorm},
    {OpKind::kInstanceNormalization, run_instancenorm},
    {OpKind::kLRN, run_lrn},
    {OpKind::kMeanVarianceNormalization, run_mvn},
    {OpKind::kLpNormalization, run_lpnorm},
    {OpKind::kSoftmax, run_softmax},
    {OpKind::kLogSoftmax, run_logsoftmax},
    {OpKind::kHardmax, run_hardmax},
    {OpKind::kSoftmaxCrossEntropyLoss, run_sce_loss},
    {OpKind::kNegativeLogLikelihoodLoss, run_nll_loss},
    // end linalg/norm
    // shape_ops.cpp, resize.cpp
    {OpKind::kShape, run_shape},
    {OpKind::kSize, run_size},
    {OpKind::kReshape, run_reshape},
    {OpKind::kFlatten, run_reshape},
    {OpKind::kSqueeze, run_reshape},
    {OpKind::kUnsqueeze, run_reshape},
    {OpKind::kTranspose, run_transpose},
    {OpKind::kConcat, run_concat},
    {OpKind::kSplit, run_split},
    {OpKind::kSlice, run_slice},
    {OpKind::kExpand, run_expand},
    {OpKind::kTile, run_tile},
    {OpKind::kPad, run_pad},
    {OpKind::kConstantOfShape, run_constant_of_shape},
    {OpKind::kRange, run_range},
    {OpKind::kEyeLike, run_eyelike},
    {OpKind::kTrilu, run_trilu},
    {OpKind::kReverseSequence, run_reverse_sequence},
    {OpKind::kGather, run_gather},
    {OpKind::kGatherElements, run_gather_elements},
    {OpKind::kGatherND, run_gather_nd},
    {OpKind::kScatterElements, run_scatter_elements},
    {OpKind::kScatterND, run_scatter_nd},
    {OpKind::kOneHot, run_onehot},
    {OpKind::kNonZero, run_nonzero},
    {OpKind::kCompress, run_compress},
    {OpKind::kResize, run_resize},
    // end shape
    // reduce.cpp, quant.cpp
    {OpKind::kArgMax, run_arg_reduce},
    {OpKind::kArgMin, run_arg_reduce},
    {OpKind::kConvInteger, run_conv_integer},
    {OpKind::kCumSum, run_cumsum},
    {OpKind::kDequantizeLinear, run_dequantize_linear},
    {OpKind::kDynamicQuantizeLinear, run_dynamic_quantize_linear},
    {OpKind::kMatMulInteger, run_matmul_integer},
    {OpKind::kQLinearConv, run_qlinear_conv},
    {OpKind::kQLinearMatMul, run_qlinear_matmul},
    {OpKind::kQuantizeLinear, run_quantize_linear},
    {OpKind::kReduceL1, run_reduce},
    {OpKind::kReduceL2, run_reduce},
    {OpKind::kReduceLogSum, run_reduce},
    {OpKind::kReduceLogSumExp, run_reduce},
    {OpKind::kReduceMax, run_reduce},
    {OpKind::kReduceMean, run_reduce},
    {OpKind::kReduceMin, run_reduce},
    {OpKind::kReduceProd, run_reduce},
    {OpKind::kReduceSum, run_reduce},
    {OpKind::kReduceSumSquare, run_reduce},
    {OpKind::kTopK, run_topk},
    // end reduce/quant
    // quant_kiln.cpp
    {OpKind::kQConv, run_qconv},
    {OpKind::kQGemm, run_qgemm},
    {OpKind::kQAdd, run_qadd},
    // end quant_kiln
    // fused.cpp
    {OpKind::kFusedConv, run_fused_conv},
    {OpKind::kFusedGemm, run_fused_gemm},
    // end fused
    {OpKind::kAttention, run_attention},
    {OpKind::kElementwiseChain, run_elementwise_chain},
};
}  // namespace

KernelFn find_kernel(ir::OpKind op) {
  static const auto table = [] {
    std::array<KernelFn, size_t(ir::OpKind::kCount)> t{};
    for (const auto& r : kRows) t[size_t(r.op)] = r.fn;
    return t;
  }();
  return table[size_t(op)];
}

}  // namespace kiln::ref
