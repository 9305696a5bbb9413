// .npy round trip and rejection of malformed files.
#include <gtest/gtest.h>

#include "io/npy.h"

namespace kiln {

TEST(Npy, RoundTripAllShapes) {
  for (Shape s : {Shape{}, Shape{5}, Shape{2, 3}, Shape{1, 2, 3, 4}}) {
    Tensor t = Tensor::create(DType::kI16, s).value();
    for (int64_t i = 0; i < t.numel(); ++i) t.data<int16_t>()[i] = int16_t(i * 7 - 3);
    auto back = io::parse_npy(io::serialize_npy(t), "t");
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->shape(), s);
    EXPECT_EQ(back->dtype(), DType::kI16);
    for (int64_t i = 0; i < t.numel(); ++i) EXPECT_EQ(back->data<int16_t>()[i], t.data<int16_t>()[i]);
  }
}

TEST(Npy, RejectsTruncatedAndForeign) {
  Tensor t = Tensor::create(DType::kF32, {4, 4}).value();
  std::string b = io::serialize_npy(t);
  auto r = io::parse_npy(b.substr(0, b.size() - 1), "x.npy");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos);
  EXPECT_FALSE(io::parse_npy("hello world", "x.npy").ok());
  std::string fortran = b;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_FALSE(io::parse_npy(fortran, "x.npy").ok());
}

}  // namespace kiln
