#include "ir/op_table.h"

#include <array>

#include "ir/ops/infer_fns.h"

namespace kiln::ir {
namespace {

template <class S>
Result<Attrs> parse_as(const AttrMap& m) {
  KILN_ASSIGN(S s, parse_attrs<S>(m));
  return Attrs{std::move(s)};
}

// One row per op, in OpKind order: kind, ONNX name, min/max inputs, min/max
// outputs (-1: variadic), attribute struct, shape inference[, domain].
constexpr std::array<OpInfo, size_t(OpKind::kCount)> kOps = {{
    {OpKind::kAbs, "Abs", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kAcos, "Acos", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kAcosh, "Acosh", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kAdd, "Add", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kAnd, "And", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_logical},
    {OpKind::kArgMax, "ArgMax", 1, 1, 1, 1, &parse_as<ArgReduceAttrs>, &infer_arg_reduce},
    {OpKind::kArgMin, "ArgMin", 1, 1, 1, 1, &parse_as<ArgReduceAttrs>, &infer_arg_reduce},
    {OpKind::kAsin, "Asin", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kAsinh, "Asinh", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kAtan, "Atan", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kAtanh, "Atanh", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kAveragePool, "AveragePool", 1, 1, 1, 1, &parse_as<AveragePoolAttrs>, &infer_pool},
    {OpKind::kBatchNormalization, "BatchNormalization", 5, 5, 1, 5, &parse_as<BatchNormAttrs>, &infer_batchnorm},
    {OpKind::kBitShift, "BitShift", 2, 2, 1, 1, &parse_as<BitShiftAttrs>, &infer_broadcast},
    {OpKind::kBitwiseAnd, "BitwiseAnd", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kBitwiseNot, "BitwiseNot", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kBitwiseOr, "BitwiseOr", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kBitwiseXor, "BitwiseXor", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kCast, "Cast", 1, 1, 1, 1, &parse_as<CastAttrs>, &infer_cast},
    {OpKind::kCastLike, "CastLike", 2, 2, 1, 1, &parse_as<CastLikeAttrs>, &infer_castlike},
    {OpKind::kCeil, "Ceil", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kCelu, "Celu", 1, 1, 1, 1, &parse_as<EluAttrs>, &infer_unary},
    {OpKind::kClip, "Clip", 1, 3, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kCompress, "Compress", 2, 2, 1, 1, &parse_as<CompressAttrs>, &infer_compress},
    {OpKind::kConcat, "Concat", 1, -1, 1, 1, &parse_as<ConcatAttrs>, &infer_concat},
    {OpKind::kConstantOfShape, "ConstantOfShape", 1, 1, 1, 1, &parse_as<ConstantOfShapeAttrs>, &infer_constant_of_shape},
    {OpKind::kConv, "Conv", 2, 3, 1, 1, &parse_as<ConvAttrs>, &infer_conv},
    {OpKind::kConvInteger, "ConvInteger", 2, 4, 1, 1, &parse_as<ConvAttrs>, &infer_conv_integer},
    {OpKind::kConvTranspose, "ConvTranspose", 2, 3, 1, 1, &parse_as<ConvTransposeAttrs>, &infer_conv_transpose},
    {OpKind::kCos, "Cos", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kCosh, "Cosh", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kCumSum, "CumSum", 2, 2, 1, 1, &parse_as<CumSumAttrs>, &infer_unary},
    {OpKind::kDepthToSpace, "DepthToSpace", 1, 1, 1, 1, &parse_as<DepthToSpaceAttrs>, &infer_depth_to_space},
    {OpKind::kDequantizeLinear, "DequantizeLinear", 2, 3, 1, 1, &parse_as<DequantizeLinearAttrs>, &infer_dequantize_linear},
    {OpKind::kDiv, "Div", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kDropout, "Dropout", 1, 3, 1, 2, &parse_as<DropoutAttrs>, &infer_dropout},
    {OpKind::kDynamicQuantizeLinear, "DynamicQuantizeLinear", 1, 1, 3, 3, &parse_as<NoAttrs>, &infer_dynamic_quantize_linear},
    {OpKind::kEinsum, "Einsum", 1, -1, 1, 1, &parse_as<EinsumAttrs>, &infer_einsum},
    {OpKind::kElu, "Elu", 1, 1, 1, 1, &parse_as<EluAttrs>, &infer_unary},
    {OpKind::kEqual, "Equal", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_compare},
    {OpKind::kErf, "Erf", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kExp, "Exp", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kExpand, "Expand", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_expand},
    {OpKind::kEyeLike, "EyeLike", 1, 1, 1, 1, &parse_as<EyeLikeAttrs>, &infer_eyelike},
    {OpKind::kFlatten, "Flatten", 1, 1, 1, 1, &parse_as<FlattenAttrs>, &infer_flatten},
    {OpKind::kFloor, "Floor", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kGather, "Gather", 2, 2, 1, 1, &parse_as<AxisAttrs>, &infer_gather},
    {OpKind::kGatherElements, "GatherElements", 2, 2, 1, 1, &parse_as<AxisAttrs>, &infer_gather_elements},
    {OpKind::kGatherND, "GatherND", 2, 2, 1, 1, &parse_as<GatherNDAttrs>, &infer_gather_nd},
    {OpKind::kGelu, "Gelu", 1, 1, 1, 1, &parse_as<GeluAttrs>, &infer_unary},
    {OpKind::kGemm, "Gemm", 2, 3, 1, 1, &parse_as<GemmAttrs>, &infer_gemm},
    {OpKind::kGlobalAveragePool, "GlobalAveragePool", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_global_pool},
    {OpKind::kGlobalLpPool, "GlobalLpPool", 1, 1, 1, 1, &parse_as<LpNormAttrs>, &infer_global_pool},
    {OpKind::kGlobalMaxPool, "GlobalMaxPool", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_global_pool},
    {OpKind::kGreater, "Greater", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_compare},
    {OpKind::kGreaterOrEqual, "GreaterOrEqual", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_compare},
    {OpKind::kHardSigmoid, "HardSigmoid", 1, 1, 1, 1, &parse_as<HardSigmoidAttrs>, &infer_unary},
    {OpKind::kHardSwish, "HardSwish", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kHardmax, "Hardmax", 1, 1, 1, 1, &parse_as<SoftmaxAttrs>, &infer_unary},
    {OpKind::kIdentity, "Identity", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kInstanceNormalization, "InstanceNormalization", 3, 3, 1, 1, &parse_as<InstanceNormAttrs>, &infer_unary},
    {OpKind::kIsInf, "IsInf", 1, 1, 1, 1, &parse_as<IsInfAttrs>, &infer_unary_bool},
    {OpKind::kIsNaN, "IsNaN", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary_bool},
    {OpKind::kLRN, "LRN", 1, 1, 1, 1, &parse_as<LrnAttrs>, &infer_unary},
    {OpKind::kLayerNormalization, "LayerNormalization", 2, 3, 1, 3, &parse_as<LayerNormAttrs>, &infer_layernorm},
    {OpKind::kLeakyRelu, "LeakyRelu", 1, 1, 1, 1, &parse_as<LeakyReluAttrs>, &infer_unary},
    {OpKind::kLess, "Less", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_compare},
    {OpKind::kLessOrEqual, "LessOrEqual", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_compare},
    {OpKind::kLog, "Log", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kLogSoftmax, "LogSoftmax", 1, 1, 1, 1, &parse_as<SoftmaxAttrs>, &infer_unary},
    {OpKind::kLpNormalization, "LpNormalization", 1, 1, 1, 1, &parse_as<LpNormAttrs>, &infer_unary},
    {OpKind::kLpPool, "LpPool", 1, 1, 1, 1, &parse_as<LpPoolAttrs>, &infer_pool},
    {OpKind::kMatMul, "MatMul", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_matmul},
    {OpKind::kMatMulInteger, "MatMulInteger", 2, 4, 1, 1, &parse_as<NoAttrs>, &infer_matmul_integer},
    {OpKind::kMax, "Max", 1, -1, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kMaxPool, "MaxPool", 1, 1, 1, 2, &parse_as<MaxPoolAttrs>, &infer_pool},
    {OpKind::kMean, "Mean", 1, -1, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kMeanVarianceNormalization, "MeanVarianceNormalization", 1, 1, 1, 1, &parse_as<MvnAttrs>, &infer_unary},
    {OpKind::kMin, "Min", 1, -1, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kMish, "Mish", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kMod, "Mod", 2, 2, 1, 1, &parse_as<ModAttrs>, &infer_broadcast},
    {OpKind::kMul, "Mul", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kNeg, "Neg", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kNegativeLogLikelihoodLoss, "NegativeLogLikelihoodLoss", 2, 3, 1, 1, &parse_as<LossAttrs>, &infer_nll_loss},
    {OpKind::kNonZero, "NonZero", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_nonzero},
    {OpKind::kNot, "Not", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kOneHot, "OneHot", 3, 3, 1, 1, &parse_as<OneHotAttrs>, &infer_onehot},
    {OpKind::kOr, "Or", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_logical},
    {OpKind::kPRelu, "PRelu", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kPad, "Pad", 1, 4, 1, 1, &parse_as<PadAttrs>, &infer_pad},
    {OpKind::kPow, "Pow", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_pow},
    {OpKind::kQLinearConv, "QLinearConv", 8, 9, 1, 1, &parse_as<ConvAttrs>, &infer_qlinear_conv},
    {OpKind::kQLinearMatMul, "QLinearMatMul", 8, 8, 1, 1, &parse_as<NoAttrs>, &infer_qlinear_matmul},
    {OpKind::kQuantizeLinear, "QuantizeLinear", 2, 3, 1, 1, &parse_as<QuantizeLinearAttrs>, &infer_quantize_linear},
    {OpKind::kRange, "Range", 3, 3, 1, 1, &parse_as<NoAttrs>, &infer_range},
    {OpKind::kReciprocal, "Reciprocal", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kReduceL1, "ReduceL1", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kReduceL2, "ReduceL2", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kReduceLogSum, "ReduceLogSum", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kReduceLogSumExp, "ReduceLogSumExp", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kReduceMax, "ReduceMax", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kReduceMean, "ReduceMean", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kReduceMin, "ReduceMin", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kReduceProd, "ReduceProd", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kReduceSum, "ReduceSum", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kReduceSumSquare, "ReduceSumSquare", 1, 2, 1, 1, &parse_as<ReduceAttrs>, &infer_reduce},
    {OpKind::kRelu, "Relu", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kReshape, "Reshape", 2, 2, 1, 1, &parse_as<ReshapeAttrs>, &infer_reshape},
    {OpKind::kResize, "Resize", 1, 4, 1, 1, &parse_as<ResizeAttrs>, &infer_resize},
    {OpKind::kReverseSequence, "ReverseSequence", 2, 2, 1, 1, &parse_as<ReverseSequenceAttrs>, &infer_unary},
    {OpKind::kRound, "Round", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kScatterElements, "ScatterElements", 3, 3, 1, 1, &parse_as<ScatterElementsAttrs>, &infer_unary},
    {OpKind::kScatterND, "ScatterND", 3, 3, 1, 1, &parse_as<ScatterNDAttrs>, &infer_unary},
    {OpKind::kSelu, "Selu", 1, 1, 1, 1, &parse_as<SeluAttrs>, &infer_unary},
    {OpKind::kShape, "Shape", 1, 1, 1, 1, &parse_as<ShapeAttrs>, &infer_shape},
    {OpKind::kShrink, "Shrink", 1, 1, 1, 1, &parse_as<ShrinkAttrs>, &infer_unary},
    {OpKind::kSigmoid, "Sigmoid", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kSign, "Sign", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kSin, "Sin", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kSinh, "Sinh", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kSize, "Size", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_size},
    {OpKind::kSlice, "Slice", 3, 5, 1, 1, &parse_as<NoAttrs>, &infer_slice},
    {OpKind::kSoftmax, "Softmax", 1, 1, 1, 1, &parse_as<SoftmaxAttrs>, &infer_unary},
    {OpKind::kSoftmaxCrossEntropyLoss, "SoftmaxCrossEntropyLoss", 2, 3, 1, 2, &parse_as<LossAttrs>, &infer_sce_loss},
    {OpKind::kSoftplus, "Softplus", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kSoftsign, "Softsign", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kSpaceToDepth, "SpaceToDepth", 1, 1, 1, 1, &parse_as<SpaceToDepthAttrs>, &infer_space_to_depth},
    {OpKind::kSplit, "Split", 1, 2, 1, -1, &parse_as<SplitAttrs>, &infer_split},
    {OpKind::kSqrt, "Sqrt", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kSqueeze, "Squeeze", 1, 2, 1, 1, &parse_as<NoAttrs>, &infer_squeeze},
    {OpKind::kSub, "Sub", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kSum, "Sum", 1, -1, 1, 1, &parse_as<NoAttrs>, &infer_broadcast},
    {OpKind::kTan, "Tan", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kTanh, "Tanh", 1, 1, 1, 1, &parse_as<NoAttrs>, &infer_unary},
    {OpKind::kThresholdedRelu, "ThresholdedRelu", 1, 1, 1, 1, &parse_as<ThresholdedReluAttrs>, &infer_unary},
    {OpKind::kTile, "Tile", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_tile},
    {OpKind::kTopK, "TopK", 2, 2, 2, 2, &parse_as<TopKAttrs>, &infer_topk},
    {OpKind::kTranspose, "Transpose", 1, 1, 1, 1, &parse_as<TransposeAttrs>, &infer_transpose},
    {OpKind::kTrilu, "Trilu", 1, 2, 1, 1, &parse_as<TriluAttrs>, &infer_unary},
    {OpKind::kUnsqueeze, "Unsqueeze", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_unsqueeze},
    {OpKind::kWhere, "Where", 3, 3, 1, 1, &parse_as<NoAttrs>, &infer_where},
    {OpKind::kXor, "Xor", 2, 2, 1, 1, &parse_as<NoAttrs>, &infer_logical},
    // domain "kiln" (ir/ops/kiln_quant.h)
    {OpKind::kQConv, "QConv", 8, 9, 1, 1, &parse_as<QConvAttrs>, &infer_qconv, "kiln"},
    {OpKind::kQGemm, "QGemm", 8, 9, 1, 1, &parse_as<QGemmAttrs>, &infer_qgemm, "kiln"},
    {OpKind::kQAdd, "QAdd", 8, 8, 1, 1, &parse_as<QAddAttrs>, &infer_qadd, "kiln"},
    // domain "kiln" (ir/ops/kiln_fused.h)
    {OpKind::kFusedConv, "FusedConv", 2, 4, 1, 1, &parse_as<FusedConvAttrs>, &infer_fused_conv, "kiln"},
    {OpKind::kFusedGemm, "FusedGemm", 2, 3, 1, 1, &parse_as<FusedGemmAttrs>, &infer_fused_gemm, "kiln"},
    {OpKind::kAttention, "Attention", 3, 4, 1, 1, &parse_as<AttentionAttrs>, &infer_attention, "kiln"},
    {OpKind::kElementwiseChain, "ElementwiseChain", 1, 1, 1, 1, &parse_as<ElementwiseChainAttrs>, &infer_elementwise_chain, "kiln"},
}};

constexpr bool rows_in_order(const std::array<OpInfo, size_t(OpKind::kCount)>& t) {
  for (size_t i = 0; i < t.size(); ++i)
    if (size_t(t[i].kind) != i) return false;
  return true;
}
static_assert(rows_in_order(kOps), "op table rows out of step with enum OpKind");

}  // namespace

const OpInfo& op_info(OpKind k) { return kOps[size_t(k)]; }
std::string_view op_name(OpKind k) { return kOps[size_t(k)].name; }
std::string_view op_domain(OpKind k) { return kOps[size_t(k)].domain; }

std::optional<OpKind> op_from_name(std::string_view domain, std::string_view name) {
  if (domain == "ai.onnx") domain = {};
  for (const auto& row : kOps)
    if (row.domain == domain && row.name == name) return row.kind;
  return std::nullopt;
}

}  // namespace kiln::ir
