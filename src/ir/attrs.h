// Attrs: the typed attribute struct of a node, one alternative per struct.
// Code reads them with std::get<ConvAttrs>(node.attrs); nothing downstream of
// the importer reads a string attribute.
#pragma once
#include <variant>

#include "ir/attr_fields.h"
#include "ir/ops/common.h"
#include "ir/ops/elementwise.h"
#include "ir/ops/kiln_fused.h"
#include "ir/ops/kiln_quant.h"
#include "ir/ops/nn.h"
#include "ir/ops/quant.h"
#include "ir/ops/reduce.h"
#include "ir/ops/shape_ops.h"

namespace kiln::ir {

using Attrs = std::variant<NoAttrs, LeakyReluAttrs, EluAttrs, ThresholdedReluAttrs, SeluAttrs, HardSigmoidAttrs,
                           GeluAttrs, ShrinkAttrs, CastAttrs, CastLikeAttrs, BitShiftAttrs, ModAttrs, IsInfAttrs,
                           DropoutAttrs, ConvAttrs, ConvTransposeAttrs, MaxPoolAttrs, AveragePoolAttrs, LpPoolAttrs,
                           LpNormAttrs, BatchNormAttrs, LayerNormAttrs, InstanceNormAttrs, LrnAttrs, MvnAttrs,
                           GemmAttrs, SoftmaxAttrs, EinsumAttrs, LossAttrs, DepthToSpaceAttrs, SpaceToDepthAttrs,
                           ReduceAttrs, ArgReduceAttrs, CumSumAttrs, TopKAttrs, ReshapeAttrs, AxisAttrs,
                           FlattenAttrs, ConcatAttrs, TransposeAttrs, SplitAttrs, GatherNDAttrs,
                           ScatterElementsAttrs, ScatterNDAttrs, PadAttrs, ConstantOfShapeAttrs, ShapeAttrs,
                           TriluAttrs, OneHotAttrs, CompressAttrs, EyeLikeAttrs, ReverseSequenceAttrs, ResizeAttrs,
                           QuantizeLinearAttrs, DequantizeLinearAttrs, QConvAttrs, QGemmAttrs, QAddAttrs,
                           FusedConvAttrs, FusedGemmAttrs, AttentionAttrs, ElementwiseChainAttrs>;

// AttrMap of a typed struct (only non-default fields), for export and printing.
AttrMap attrs_to_map(const Attrs& a);

}  // namespace kiln::ir
