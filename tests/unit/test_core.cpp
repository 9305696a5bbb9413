#include <gtest/gtest.h>

#include <cmath>

#include "core/half.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace kiln {

TEST(DType, TableRoundTrip) {
  for (int i = 1; i < int(DType::kCount); ++i) {
    auto t = DType(i);
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
    EXPECT_EQ(dtype_from_onnx(dtype_info(t).onnx_code), t);
  }
  EXPECT_EQ(dtype_bytes(DType::kI4, 3), 2);
  EXPECT_EQ(dtype_bytes(DType::kF16, 3), 6);
}

TEST(Half, RoundTripAndRounding) {
  for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f})
    EXPECT_EQ(to_float(to_f16(f)), f) << f;
  EXPECT_TRUE(std::isinf(to_float(to_f16(70000.0f))));
  EXPECT_TRUE(std::isnan(to_float(to_f16(NAN))));
  // 1 + 2^-11 is a tie between 1 and 1+2^-10: rounds to even (1).
  EXPECT_EQ(to_float(to_f16(1.0f + 0.00048828125f)), 1.0f);
  EXPECT_EQ(to_float(to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(to_float(to_bf16(3.0f)), 3.0f);
}

TEST(Shape, BroadcastAndNumel) {
  EXPECT_EQ(*broadcast_shapes({2, 1, 3}, {4, 1}), (Shape{2, 4, 3}));
  EXPECT_FALSE(broadcast_shapes({2, 3}, {4, 3}).ok());
  EXPECT_FALSE(checked_numel({int64_t(1) << 40, int64_t(1) << 40}).ok());
  EXPECT_EQ(*checked_numel({}), 1);
  EXPECT_EQ(*normalize_axis(-1, 4), 3);
  EXPECT_FALSE(normalize_axis(4, 4).ok());
}

TEST(Tensor, CreateRejectsHugeShapes) {
  auto t = Tensor::create(DType::kF32, {int64_t(1) << 31, int64_t(1) << 20});
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find("more memory"), std::string::npos);
  auto u = Tensor::create(DType::kF32, {2, 3});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->numel(), 6);
  EXPECT_EQ(u->data<float>()[5], 0.0f);
}

}  // namespace kiln
