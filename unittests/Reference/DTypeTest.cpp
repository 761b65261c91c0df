//===- DTypeTest.cpp - bf16 / fp16 conversion tests -------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The conversions are checked against an independent oracle that knows only
// the ordered list of representable values: the nearest one wins, ties go to
// the even bit pattern, and the step past the largest finite value is inf.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using fp::DType;

namespace {

bool isNaNBits(DType type, uint16_t bits) {
  return type == DType::kBF16 ? (bits & 0x7fff) > 0x7f80
                              : (bits & 0x7fff) > 0x7c00;
}

/// Largest finite positive pattern; the next pattern is +inf.
uint16_t maxFinite(DType type) {
  return type == DType::kBF16 ? 0x7f7f : 0x7bff;
}

/// Value of a non-negative pattern, with +inf standing for "one step past
/// the largest finite value" (2^128 for bf16, 2^16 for fp16).
double patternValue(DType type, uint16_t bits) {
  if (bits == maxFinite(type) + 1)
    return type == DType::kBF16 ? std::ldexp(1.0, 128) : 65536.0;
  return fp::bitsToFloat(type, bits);
}

/// Independent round-to-nearest-even by search over the patterns.
uint16_t oracleRound(DType type, float value) {
  uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  double x = std::fabs(static_cast<double>(value));
  uint16_t infBits = maxFinite(type) + 1;
  if (std::isinf(value))
    return sign | infBits;
  // Largest pattern p in [0, infBits] with value(p) <= x.
  uint32_t lo = 0, hi = infBits;
  if (x >= patternValue(type, infBits))
    return sign | infBits;
  while (hi - lo > 1) {
    uint32_t mid = (lo + hi) / 2;
    if (patternValue(type, mid) <= x)
      lo = mid;
    else
      hi = mid;
  }
  double below = patternValue(type, lo), above = patternValue(type, hi);
  uint16_t pick;
  if (x - below < above - x)
    pick = lo;
  else if (x - below > above - x)
    pick = hi;
  else
    pick = (lo % 2 == 0) ? lo : hi;
  return sign | pick;
}

float floatFromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

} // namespace

// Every non-NaN 16-bit pattern survives bits -> float -> bits; NaN stays NaN.
TEST(DType, EveryPatternRoundTrips) {
  for (DType type : {DType::kBF16, DType::kF16}) {
    for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
      uint16_t b = static_cast<uint16_t>(bits);
      float f = fp::bitsToFloat(type, b);
      if (isNaNBits(type, b)) {
        EXPECT_TRUE(std::isnan(f)) << fp::dtypeName(type) << " " << bits;
        EXPECT_TRUE(isNaNBits(type, fp::floatToBits(type, f)));
      } else {
        EXPECT_EQ(fp::floatToBits(type, f), b)
            << fp::dtypeName(type) << " " << bits;
      }
    }
  }
}

// float -> 16 bit agrees with the search oracle on random bit patterns
// spanning every exponent (subnormals, overflow and all).
TEST(DType, RoundingMatchesSearchOracle) {
  std::mt19937 rng(7);
  for (DType type : {DType::kBF16, DType::kF16}) {
    for (int n = 0; n < 200000; ++n) {
      float f = floatFromBits(rng());
      if (std::isnan(f))
        continue;
      ASSERT_EQ(fp::floatToBits(type, f), oracleRound(type, f))
          << fp::dtypeName(type) << " value " << f;
    }
    // Dense sampling of the exponents near and inside fp16's range.
    for (int n = 0; n < 200000; ++n) {
      uint32_t exponent = 100 + rng() % 45; // 2^-27 .. 2^17
      float f = floatFromBits((rng() & 0x807fffffu) | (exponent << 23));
      ASSERT_EQ(fp::floatToBits(type, f), oracleRound(type, f))
          << fp::dtypeName(type) << " value " << f;
    }
  }
}

// Values exactly halfway between neighbours round to the even pattern.
TEST(DType, TiesRoundToEven) {
  for (DType type : {DType::kBF16, DType::kF16}) {
    for (uint32_t bits = 0; bits < maxFinite(type); bits += 37) {
      double mid =
          (patternValue(type, bits) + patternValue(type, bits + 1)) / 2;
      float f = static_cast<float>(mid);
      ASSERT_EQ(static_cast<double>(f), mid); // the tie is a float
      uint16_t even = (bits % 2 == 0) ? bits : bits + 1;
      EXPECT_EQ(fp::floatToBits(type, f), even) << fp::dtypeName(type);
      EXPECT_EQ(fp::floatToBits(type, -f), even | 0x8000);
    }
  }
  // Spelled out: 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7.
  EXPECT_EQ(fp::floatToBF16Bits(1.00390625f), 0x3f80);
  EXPECT_EQ(fp::floatToBF16Bits(1.01171875f), 0x3f82); // 1 + 3 * 2^-8
}

// Infinities, signed zeros, NaN, overflow and fp16 subnormals.
TEST(DType, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(fp::floatToBF16Bits(inf), 0x7f80);
  EXPECT_EQ(fp::floatToBF16Bits(-inf), 0xff80);
  EXPECT_EQ(fp::floatToF16Bits(inf), 0x7c00);
  EXPECT_EQ(fp::floatToF16Bits(-inf), 0xfc00);
  EXPECT_EQ(fp::floatToBF16Bits(-0.0f), 0x8000);
  EXPECT_EQ(fp::floatToF16Bits(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(fp::bf16BitsToFloat(fp::floatToBF16Bits(NAN))));
  EXPECT_TRUE(std::isnan(fp::f16BitsToFloat(fp::floatToF16Bits(NAN))));
  // A signalling-NaN float must not become inf when its payload is cut.
  EXPECT_TRUE(
      isNaNBits(DType::kBF16, fp::floatToBF16Bits(floatFromBits(0x7f800001))));
  EXPECT_TRUE(
      isNaNBits(DType::kF16, fp::floatToF16Bits(floatFromBits(0x7f800001))));
  EXPECT_EQ(fp::floatToBF16Bits(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(fp::floatToF16Bits(65504.0f), 0x7bff);
  EXPECT_EQ(fp::floatToF16Bits(65519.0f), 0x7bff);
  EXPECT_EQ(fp::floatToF16Bits(65520.0f), 0x7c00); // tie goes to even (inf)
  EXPECT_EQ(fp::floatToF16Bits(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(fp::floatToF16Bits(std::ldexp(1.0f, -25)), 0x0000); // tie -> 0
  EXPECT_EQ(fp::floatToF16Bits(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(fp::floatToF16Bits(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(fp::f16BitsToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp::f16BitsToFloat(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(fp::roundToDType(DType::kBF16, 3.14159f), 3.140625f);
  EXPECT_STREQ(fp::dtypeName(DType::kBF16), "bf16");
  EXPECT_STREQ(fp::dtypeName(DType::kF16), "f16");
}

#ifdef __FLT16_MAX__
// fp16 rounding agrees with the compiler's _Float16 conversion.
TEST(DType, F16MatchesCompilerFloat16) {
  std::mt19937 rng(11);
  for (int n = 0; n < 200000; ++n) {
    float f = floatFromBits(rng());
    if (std::isnan(f))
      continue;
    _Float16 h = static_cast<_Float16>(f);
    uint16_t bits;
    std::memcpy(&bits, &h, 2);
    ASSERT_EQ(fp::floatToF16Bits(f), bits) << f;
    ASSERT_EQ(fp::f16BitsToFloat(bits), static_cast<float>(h));
  }
}
#endif
