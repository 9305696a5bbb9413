// quant/quant_params.h, the one definition of kiln's quantization arithmetic:
// round half to even at ties of both signs, Q(x) saturation and NaN, the
// fixed-point requantization (exact ties, saturation, negative zero points,
// multipliers near 2^-31 and near 1) checked against an independent exact
// computation in long double, and make_requant's errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "quant/quant_params.h"

namespace kiln::quant {
namespace {

// round_half_even(v / 2^shift) computed independently: |v| < 2^63 and a
// power-of-two division are exact in x87 long double (64-bit mantissa), and
// nearbyintl rounds ties to even in the default rounding mode.
int64_t exact_rshift(int64_t v, int shift) { return int64_t(std::nearbyintl(std::ldexp((long double)v, -shift))); }

// y as requantize() defines it, via long double: acc * m < 2^62 is exact there.
int64_t exact_requant(int32_t acc, const Requant& r, int32_t zp, int64_t lo, int64_t hi) {
  long double v = std::nearbyintl(std::ldexp((long double)acc * r.multiplier, -r.shift)) + zp;
  return int64_t(std::min<long double>(std::max<long double>(v, lo), hi));
}

TEST(QuantParams, RoundHalfEvenTiesBothSigns) {
  EXPECT_EQ(round_half_even(0.5), 0);
  EXPECT_EQ(round_half_even(1.5), 2);
  EXPECT_EQ(round_half_even(2.5), 2);
  EXPECT_EQ(round_half_even(3.5), 4);
  EXPECT_EQ(round_half_even(-0.5), 0);
  EXPECT_EQ(round_half_even(-1.5), -2);
  EXPECT_EQ(round_half_even(-2.5), -2);
  EXPECT_EQ(round_half_even(-3.5), -4);
  // Just off the tie rounds to nearest.
  EXPECT_EQ(round_half_even(std::nextafter(2.5, 3.0)), 3);
  EXPECT_EQ(round_half_even(std::nextafter(2.5, 2.0)), 2);
  EXPECT_EQ(round_half_even(std::nextafter(-2.5, -3.0)), -3);
  EXPECT_EQ(round_half_even(std::nextafter(-2.5, -2.0)), -2);
  EXPECT_EQ(round_half_even(-0.3), 0);
  EXPECT_EQ(round_half_even(0.0), 0);
  // Large values with a representable .5 (below 2^52).
  EXPECT_EQ(round_half_even(1e15 + 0.5), int64_t(1e15));
  EXPECT_EQ(round_half_even(1e15 + 1.5), int64_t(1e15) + 2);
  EXPECT_EQ(round_half_even(-1e15 - 1.5), -int64_t(1e15) - 2);
}

TEST(QuantParams, QuantizeTiesSaturationAndNaN) {
  // int8, scale 0.5, zero point -3: 1.25 / 0.5 = 2.5 -> 2 (even) -> -1.
  EXPECT_EQ(quantize_value(1.25f, 0.5f, -3, -128, 127), -1);
  EXPECT_EQ(quantize_value(1.75f, 0.5f, -3, -128, 127), 1);    // 3.5 -> 4
  EXPECT_EQ(quantize_value(-1.25f, 0.5f, -3, -128, 127), -5);  // -2.5 -> -2
  EXPECT_EQ(quantize_value(-1.75f, 0.5f, -3, -128, 127), -7);  // -3.5 -> -4
  // Saturation at both ends, with the zero point shifting the range.
  EXPECT_EQ(quantize_value(65.0f, 0.5f, -3, -128, 127), 127);
  EXPECT_EQ(quantize_value(-64.0f, 0.5f, -3, -128, 127), -128);
  EXPECT_EQ(quantize_value(-62.5f, 0.5f, -3, -128, 127), -128);  // -125 - 3
  EXPECT_EQ(quantize_value(-62.0f, 0.5f, -3, -128, 127), -127);
  EXPECT_EQ(quantize_value(1e30f, 1e-3f, 0, -128, 127), 127);
  EXPECT_EQ(quantize_value(std::numeric_limits<float>::infinity(), 1.0f, 0, 0, 255), 255);
  EXPECT_EQ(quantize_value(-std::numeric_limits<float>::infinity(), 1.0f, 10, 0, 255), 0);
  EXPECT_EQ(quantize_value(std::nanf(""), 1.0f, 10, 0, 255), 0);  // NaN -> qmin
  // uint8 with a zero point: a tie next to the upper bound.
  EXPECT_EQ(quantize_value(126.5f, 1.0f, 128, 0, 255), 254);  // 126 + 128
  EXPECT_EQ(quantize_value(127.5f, 1.0f, 128, 0, 255), 255);  // 128 + 128 saturates
  // Round trip of every int8 value.
  for (int q = -128; q <= 127; ++q) EXPECT_EQ(quantize_value(dequantize_value(q, 0.0173f, -7), 0.0173f, -7, -128, 127), q);
}

TEST(QuantParams, QParamsRanges) {
  QuantParams p;
  EXPECT_EQ(p.qmin(), -128);
  EXPECT_EQ(p.qmax(), 127);
  p.is_signed = false;
  p.bits = 4;
  EXPECT_EQ(p.qmin(), 0);
  EXPECT_EQ(p.qmax(), 15);
  EXPECT_EQ(p.storage_dtype(), DType::kU4);
  EXPECT_EQ(p.storage_dtype(false), DType::kU8);
  EXPECT_FALSE(check_bits(1).ok());
  EXPECT_FALSE(check_bits(9).ok());
  EXPECT_TRUE(check_bits(16).ok());
}

TEST(QuantParams, RshiftTies) {
  EXPECT_EQ(rshift_round_half_even(1, 1), 0);    // 0.5
  EXPECT_EQ(rshift_round_half_even(3, 1), 2);    // 1.5
  EXPECT_EQ(rshift_round_half_even(5, 1), 2);    // 2.5
  EXPECT_EQ(rshift_round_half_even(7, 1), 4);    // 3.5
  EXPECT_EQ(rshift_round_half_even(-1, 1), 0);   // -0.5
  EXPECT_EQ(rshift_round_half_even(-3, 1), -2);  // -1.5
  EXPECT_EQ(rshift_round_half_even(-5, 1), -2);  // -2.5
  EXPECT_EQ(rshift_round_half_even(-7, 1), -4);  // -3.5
  EXPECT_EQ(rshift_round_half_even(5, 2), 1);    // 1.25
  EXPECT_EQ(rshift_round_half_even(-5, 2), -1);  // -1.25
  EXPECT_EQ(rshift_round_half_even(6, 2), 2);    // 1.5
  EXPECT_EQ(rshift_round_half_even(-6, 2), -2);  // -1.5
  EXPECT_EQ(rshift_round_half_even(-7, 2), -2);  // -1.75
  // The widest shift.
  int64_t p61 = int64_t(1) << 61;
  EXPECT_EQ(rshift_round_half_even(p61, 62), 0);       // 0.5
  EXPECT_EQ(rshift_round_half_even(3 * p61, 62), 2);   // 1.5
  EXPECT_EQ(rshift_round_half_even(-p61, 62), 0);      // -0.5
  EXPECT_EQ(rshift_round_half_even(-3 * p61, 62), -2); // -1.5
  EXPECT_EQ(rshift_round_half_even(p61 + 1, 62), 1);
  EXPECT_EQ(rshift_round_half_even(-p61 - 1, 62), -1);
}

TEST(QuantParams, RshiftMatchesExactDivision) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    int shift = 1 + int(rng() % 62);
    int64_t v = int64_t(rng() >> (1 + rng() % 63)) * ((rng() & 1) ? 1 : -1);  // |v| < 2^63
    if (i % 4 == 0) v = (v >> shift << shift) | (int64_t(1) << (shift - 1));  // force a tie
    ASSERT_EQ(rshift_round_half_even(v, shift), exact_rshift(v, shift)) << "v=" << v << " shift=" << shift;
  }
}

TEST(QuantParams, MakeRequantRepresentation) {
  // 0.5 = 2^30 * 2^-31
  auto r = make_requant(0.5);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->multiplier, 1 << 30);
  EXPECT_EQ(r->shift, 31);
  // 1.0 is representable (m = 2^30, shift 30) and requantizes exactly.
  r = make_requant(1.0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->multiplier, 1 << 30);
  EXPECT_EQ(r->shift, 30);
  // Just below 1: the mantissa rounds up to 2^31 and is renormalized.
  r = make_requant(1.0 - std::ldexp(1.0, -40));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->multiplier, 1 << 30);
  EXPECT_EQ(r->shift, 30);
  for (int32_t acc : {-2147483647 - 1, -1000, -1, 0, 1, 77, 2147483647})
    EXPECT_EQ(requantize(acc, *r, 0, INT32_MIN, INT32_MAX), acc);
  // Near 1 but distinct: m just under 2^31.
  r = make_requant(0.9999999);
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->multiplier, 1 << 30);
  EXPECT_LT(int64_t(r->multiplier), int64_t(1) << 31);
  // Relative error of the fixed-point form is within 2^-31.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 10000; ++i) {
    double real = std::ldexp(1.0 + double(rng() % 1000000) / 1e6, -int(rng() % 30) - 1);
    auto q = make_requant(real);
    ASSERT_TRUE(q.ok());
    EXPECT_GE(q->multiplier, 1 << 30);
    double approx = std::ldexp(double(q->multiplier), -q->shift);
    EXPECT_LE(std::fabs(approx - real), real * std::ldexp(1.0, -31)) << real;
  }
}

TEST(QuantParams, MakeRequantNearTwoToMinus31) {
  for (double real : {std::ldexp(1.0, -31), std::ldexp(1.5, -31), std::ldexp(1.0, -30) * 0.999}) {
    auto r = make_requant(real);
    ASSERT_TRUE(r.ok()) << real;
    EXPECT_GE(r->shift, 60);
    EXPECT_LE(r->shift, 62);
    // A 2^-31 multiplier maps the largest accumulators to +-1 (ties go to even 0 for 2^30).
    EXPECT_EQ(requantize(INT32_MAX, *r, 0, -128, 127), exact_requant(INT32_MAX, *r, 0, -128, 127));
    EXPECT_EQ(requantize(INT32_MIN, *r, 0, -128, 127), exact_requant(INT32_MIN, *r, 0, -128, 127));
  }
  auto r = make_requant(std::ldexp(1.0, -31));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(requantize(INT32_MIN, *r, 0, -128, 127), -1);         // -2^31 * 2^-31
  EXPECT_EQ(requantize(1 << 30, *r, 0, -128, 127), 0);             // 0.5 -> 0
  EXPECT_EQ(requantize(3 << 29, *r, 0, -128, 127), 1);             // 0.75 -> 1
  EXPECT_EQ(requantize(-(1 << 30), *r, 5, -128, 127), 5);          // -0.5 -> 0, + 5
  EXPECT_FALSE(make_requant(1e-12).ok());
}

TEST(QuantParams, MakeRequantErrors) {
  for (double bad : {-1.0, -1e-9, std::nan(""), std::numeric_limits<double>::infinity(), std::ldexp(1.0, 30), 1e12}) {
    auto r = make_requant(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("requantization multiplier"), std::string::npos) << r.error().message;
  }
  auto small = make_requant(1e-15);
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.error().message.find("too small"), std::string::npos);
  auto large = make_requant(2e9);
  ASSERT_FALSE(large.ok());
  EXPECT_NE(large.error().message.find("too large"), std::string::npos);
  // Zero is a valid multiplier: every output is the zero point.
  auto zero = make_requant(0.0);
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(requantize(123456, *zero, -9, -128, 127), -9);
  EXPECT_TRUE(make_requant(std::ldexp(1.0, 30) * 0.99).ok());
}

TEST(QuantParams, RequantizeTiesAndNegativeZeroPoint) {
  auto r = make_requant(0.5);
  ASSERT_TRUE(r.ok());
  // acc * 0.5 at .5 ties, both signs, then + zp = -5.
  EXPECT_EQ(requantize(1, *r, -5, -128, 127), -5);   // 0.5 -> 0
  EXPECT_EQ(requantize(3, *r, -5, -128, 127), -3);   // 1.5 -> 2
  EXPECT_EQ(requantize(5, *r, -5, -128, 127), -3);   // 2.5 -> 2
  EXPECT_EQ(requantize(-1, *r, -5, -128, 127), -5);  // -0.5 -> 0
  EXPECT_EQ(requantize(-3, *r, -5, -128, 127), -7);  // -1.5 -> -2
  EXPECT_EQ(requantize(-5, *r, -5, -128, 127), -7);  // -2.5 -> -2
  // The zero point is added after rounding (an odd zero point does not move ties).
  EXPECT_EQ(requantize(1, *r, 3, -128, 127), 3);
  EXPECT_EQ(requantize(-1, *r, 3, -128, 127), 3);
  // Saturation at both ends, int8 and uint8, after the zero point.
  EXPECT_EQ(requantize(2 * 130, *r, -5, -128, 127), 125);
  EXPECT_EQ(requantize(2 * 133, *r, -5, -128, 127), 127);
  EXPECT_EQ(requantize(2 * -123, *r, -5, -128, 127), -128);
  EXPECT_EQ(requantize(2 * -124, *r, -5, -128, 127), -128);
  EXPECT_EQ(requantize(INT32_MAX, *r, -128, -128, 127), 127);
  EXPECT_EQ(requantize(INT32_MIN, *r, 127, -128, 127), -128);
  EXPECT_EQ(requantize(-20, *r, 9, 0, 255), 0);
  EXPECT_EQ(requantize(600, *r, 9, 0, 255), 255);
  // A raised lower bound (fused Relu: lo = zero point).
  EXPECT_EQ(requantize(-20, *r, -100, -100, 127), -100);
  EXPECT_EQ(requantize(20, *r, -100, -100, 127), -90);
}

TEST(QuantParams, RequantizeMatchesExactArithmetic) {
  std::mt19937_64 rng(11);
  for (int i = 0; i < 100000; ++i) {
    double real = std::ldexp(double(50000 + rng() % 50001) / 100000.0, -int(rng() % 31));  // [2^-31, 1]
    auto r = make_requant(real);
    ASSERT_TRUE(r.ok());
    int32_t acc = int32_t(uint32_t(rng()));
    if (i % 3 == 0) acc >>= int(rng() % 31);
    int32_t zp = int32_t(rng() % 256) - 128;
    bool u8 = rng() & 1;
    int64_t lo = u8 ? 0 : -128, hi = u8 ? 255 : 127;
    if (u8) zp += 128;
    ASSERT_EQ(requantize(acc, *r, zp, lo, hi), exact_requant(acc, *r, zp, lo, hi))
        << "acc=" << acc << " m=" << r->multiplier << " s=" << r->shift << " zp=" << zp;
  }
}

}  // namespace
}  // namespace kiln::quant
