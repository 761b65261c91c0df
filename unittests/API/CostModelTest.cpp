//===- CostModelTest.cpp - The short-prompt dense fall-back model ---------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "CostModel.h"

#include <gtest/gtest.h>

#include <cmath>

namespace {

// The densities fp-tune measured on the H100 (bench/tuning/h100-sm_90a.json,
// d 128, B 128).
const fp::DensityPoints kH100 = {{4096, 0.48}, {16384, 0.212}, {65536, 0.112}};

TEST(CostModelTest, DensityIsExactAtPointsAndLogLinearBetween) {
  EXPECT_DOUBLE_EQ(fp::expectedDensity(kH100, 4096), 0.48);
  EXPECT_DOUBLE_EQ(fp::expectedDensity(kH100, 16384), 0.212);
  // 8192 is halfway between 4096 and 16384 in log(L): the geometric mean.
  EXPECT_NEAR(fp::expectedDensity(kH100, 8192), std::sqrt(0.48 * 0.212), 1e-12);
  // Extrapolation uses the nearest segment's slope and clamps to 1.
  EXPECT_GT(fp::expectedDensity(kH100, 2048), 0.48);
  EXPECT_LT(fp::expectedDensity(kH100, 262144), 0.112);
  EXPECT_DOUBLE_EQ(fp::expectedDensity(kH100, 16), 1.0);
}

TEST(CostModelTest, InvalidPointsAreIgnored) {
  EXPECT_DOUBLE_EQ(fp::expectedDensity({}, 4096), 1.0);
  EXPECT_DOUBLE_EQ(fp::expectedDensity({{4096, -1}, {0, 0.5}, {8192, 1.5}}, 4096), 1.0);
  EXPECT_DOUBLE_EQ(fp::expectedDensity({{4096, 0.3}}, 100000), 0.3);
}

TEST(CostModelTest, RatioMatchesTheH100Calibration) {
  // Measured pool + discovery over dense attention: 0.227, 0.095, 0.038, 0.018.
  EXPECT_NEAR(fp::discoveryToDenseRatio(2048), 0.227, 0.02);
  EXPECT_NEAR(fp::discoveryToDenseRatio(4096), 0.095, 0.025);
  EXPECT_NEAR(fp::discoveryToDenseRatio(16384), 0.038, 0.01);
  EXPECT_NEAR(fp::discoveryToDenseRatio(65536), 0.018, 0.01);
}

// Predicted sparse time over dense time (the model's decision variable).
double sparseOverDense(const fp::DensityPoints &points, int64_t length) {
  return fp::expectedDensity(points, length) / fp::kSparseAttentionEfficiency +
         fp::discoveryToDenseRatio(length);
}

TEST(CostModelTest, BreakEvenWithTheShippedDensities) {
  const int64_t breakEven = fp::denseBreakEvenTokens(kH100, 128, 1 << 20);
  // Measured on the H100: dense faster at 2K, sparse faster at 4K.
  EXPECT_GT(breakEven, 2048);
  EXPECT_LE(breakEven, 4096);
  EXPECT_EQ(breakEven % 128, 0);
  EXPECT_GE(sparseOverDense(kH100, breakEven - 128), 1.0);
  EXPECT_LT(sparseOverDense(kH100, breakEven), 1.0);
}

TEST(CostModelTest, EdgeCases) {
  EXPECT_EQ(fp::denseBreakEvenTokens({}, 128, 1 << 20), 0); // no basis
  EXPECT_EQ(fp::denseBreakEvenTokens({{1024, 1.0}, {65536, 1.0}}, 128, 8192),
            8193); // dense everywhere up to the plan's maximum
  // Density 1%: sparse wins once 0.01 / 0.75 + 0.017 + 400 / L < 1, i.e.
  // from L = 512 (the fixed discovery cost dominates the shortest prompts).
  EXPECT_EQ(fp::denseBreakEvenTokens({{1024, 0.01}, {65536, 0.01}}, 128, 8192),
            512);
  EXPECT_EQ(fp::denseBreakEvenTokens({{1024, 0.01}, {65536, 0.01}}, 1024, 8192),
            0); // sparse wins from the first block
  EXPECT_EQ(fp::denseBreakEvenTokens(kH100, 0, 8192), 0);
}

} // namespace
