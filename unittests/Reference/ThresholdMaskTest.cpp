//===- ThresholdMaskTest.cpp - threshold_mask tests -------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Scores are written by hand, one row per query block (row I lists
// score[I, 0..I]); the expected kept blocks are written next to them.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace fp;
using namespace fp::ref;
using namespace fp::ref::test;

namespace {

using Ids = std::vector<int32_t>;

/// Kept ids of every row of a batch-1, head-1 mask.
std::vector<Ids> keptRows(const BlockMask &mask) {
  std::vector<Ids> rows;
  for (int64_t i = 0; i < mask.numBlocks; ++i)
    rows.push_back(mask.kept(0, 0, i));
  return rows;
}

std::vector<Ids> run(const std::vector<std::vector<float>> &rows,
                     const Options &options) {
  StatusOr<BlockMask> mask = thresholdMask(scoresFromRows(rows), options);
  EXPECT_TRUE(mask.isOk()) << mask.status().toString();
  return mask.isOk() ? keptRows(*mask) : std::vector<Ids>{};
}

const std::vector<std::vector<float>> kRows = {
    {1.0f},
    {0.2f, 0.8f},
    {0.45f, 0.1f, 0.45f},
    {0.1f, 0.5f, 0.3f, 0.1f},
    {0.05f, 0.05f, 0.5f, 0.3f, 0.1f},
    {0.3f, 0.0f, 0.0f, 0.0f, 0.0f, 0.7f},
};

} // namespace

// relative_max: keep score >= alpha * max of the row, nothing else forced.
TEST(ThresholdMask, RelativeMax) {
  std::vector<Ids> expected = {
      {0}, {1}, {0, 2}, {1, 2}, {2, 3}, {5}, // t = 0.5 * row max
  };
  EXPECT_EQ(run(kRows, plainOptions(4, 0.5f)), expected);
}

// The comparison is >=: a score equal to the threshold is kept.
TEST(ThresholdMask, ThresholdIsInclusive) {
  // alpha * max = 0.5 * 0.5 = 0.25 exactly.
  std::vector<std::vector<float>> rows = {
      {1.0f}, {0.0f, 1.0f}, {0.5f, 0.25f, 0.2499f}};
  EXPECT_EQ(run(rows, plainOptions(4, 0.5f))[2], (Ids{0, 1}));
}

// Sink blocks j < sink are always kept (also when sink > I).
TEST(ThresholdMask, SinkBlocks) {
  Options options = plainOptions(4, 1.0f);
  options.sink = 2;
  std::vector<Ids> expected = {
      {0}, {0, 1}, {0, 1, 2}, {0, 1}, {0, 1, 2}, {0, 1, 5},
  };
  EXPECT_EQ(run(kRows, options), expected);
}

// window w keeps I - j < w: the diagonal for w = 1, three blocks for w = 3;
// w = 0 may drop the diagonal (row 4: its diagonal score 0.1 < 0.5).
TEST(ThresholdMask, LocalWindow) {
  Options options = plainOptions(4, 1.0f);
  options.window = 1;
  std::vector<Ids> diag = {
      {0}, {1}, {0, 2}, {1, 3}, {2, 4}, {5},
  };
  EXPECT_EQ(run(kRows, options), diag);
  options.window = 3;
  std::vector<Ids> three = {
      {0}, {0, 1}, {0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 5},
  };
  EXPECT_EQ(run(kRows, options), three);
  options.window = 0;
  EXPECT_EQ(run(kRows, options)[4], (Ids{2}));
}

// Query blocks I >= nb - last_n are dense.
TEST(ThresholdMask, LastNRowsAreDense) {
  Options options = plainOptions(4, 1.0f);
  options.lastN = 2;
  std::vector<Ids> expected = {
      {0}, {1}, {0, 2}, {1}, {0, 1, 2, 3, 4}, {0, 1, 2, 3, 4, 5},
  };
  EXPECT_EQ(run(kRows, options), expected);
  options.lastN = 100; // more than nb: everything dense
  EXPECT_EQ(run(kRows, options)[3], (Ids{0, 1, 2, 3}));
}

// alpha = 0 keeps every causal block, zero scores included.
TEST(ThresholdMask, AlphaZeroIsDense) {
  std::vector<Ids> rows = run(kRows, plainOptions(4, 0.0f));
  for (size_t i = 0; i < rows.size(); ++i) {
    Ids all;
    for (int32_t j = 0; j <= static_cast<int32_t>(i); ++j)
      all.push_back(j);
    EXPECT_EQ(rows[i], all) << "row " << i;
  }
}

// alpha = 1 keeps the argmax (all tied maxima) plus the forced blocks.
TEST(ThresholdMask, AlphaOneKeepsArgmax) {
  std::vector<Ids> expected = {
      {0}, {1}, {0, 2}, {1}, {2}, {5}, // row 2 has a tie at 0.45
  };
  EXPECT_EQ(run(kRows, plainOptions(4, 1.0f)), expected);
  Options forced = plainOptions(4, 1.0f);
  forced.sink = 1;
  forced.window = 1;
  EXPECT_EQ(run(kRows, forced)[4], (Ids{0, 2, 4}));
}

// min_max: t = alpha * max + (1 - alpha) * min over the row.
TEST(ThresholdMask, MinMaxThreshold) {
  std::vector<std::vector<float>> rows = {
      {1.0f}, {0.5f, 0.5f}, {0.3f, 0.4f, 0.3f}, {0.2f, 0.5f, 1.0f, 0.4f}};
  Options options = plainOptions(4, 0.5f);
  options.thresholdKind = ThresholdKind::kMinMax;
  // Row 3: t = 0.5 * 1.0 + 0.5 * 0.2 = 0.6 -> {2}; relative_max would
  // use t = 0.5 and keep {1, 2}. Row 2: t = 0.35 -> {1}.
  std::vector<Ids> expected = {{0}, {0, 1}, {1}, {2}};
  EXPECT_EQ(run(rows, options), expected);
  options.thresholdKind = ThresholdKind::kRelativeMax;
  EXPECT_EQ(run(rows, options)[3], (Ids{1, 2}));
  // min_max with alpha = 0 is t = min: everything is kept.
  options.thresholdKind = ThresholdKind::kMinMax;
  options.alpha = 0.0f;
  EXPECT_EQ(run(rows, options)[3], (Ids{0, 1, 2, 3}));
}

// min_budget k: also keep scores >= the k-th largest score among the
// non-forced blocks; ties all kept; forced blocks do not count toward k.
TEST(ThresholdMask, MinBudget) {
  // Row 7; sink = 1 and window = 1 force blocks 0 and 7. Non-forced
  // blocks 1..6 score {0.3, 0.1, 0.3, 0.05, 0.2, 0.3}.
  std::vector<std::vector<float>> rows(8);
  for (int i = 0; i < 7; ++i)
    rows[i].assign(i + 1, 0.1f);
  rows[7] = {0.9f, 0.3f, 0.1f, 0.3f, 0.05f, 0.2f, 0.3f, 0.95f};
  Options options = plainOptions(4, 1.0f); // t = 0.95: nothing extra
  options.sink = 1;
  options.window = 1;
  EXPECT_EQ(run(rows, options)[7], (Ids{0, 7}));
  // k = 2: the 2nd largest non-forced score is 0.3, held by 1, 3 and 6 (a
  // tie: all three kept). Had the forced 0.95 and 0.9 counted, the 2nd
  // largest would be 0.9 and nothing would be added.
  options.minBudget = 2;
  EXPECT_EQ(run(rows, options)[7], (Ids{0, 1, 3, 6, 7}));
  // k = 4: 4th largest is 0.2 (after three 0.3s).
  options.minBudget = 4;
  EXPECT_EQ(run(rows, options)[7], (Ids{0, 1, 3, 5, 6, 7}));
  // k >= number of non-forced blocks: all of them.
  options.minBudget = 6;
  EXPECT_EQ(run(rows, options)[7], (Ids{0, 1, 2, 3, 4, 5, 6, 7}));
  options.minBudget = 50;
  EXPECT_EQ(run(rows, options)[7], (Ids{0, 1, 2, 3, 4, 5, 6, 7}));
}

// All-zero scores: t = 0 and every scored block passes.
TEST(ThresholdMask, AllZeroScoresKeepEverything) {
  std::vector<std::vector<float>> rows = {
      {0.0f}, {0.0f, 0.0f}, {0.0f, 0.0f, 0.0f}};
  for (ThresholdKind kind :
       {ThresholdKind::kRelativeMax, ThresholdKind::kMinMax}) {
    Options options = plainOptions(4, 0.7f);
    options.thresholdKind = kind;
    std::vector<Ids> expected = {{0}, {0, 1}, {0, 1, 2}};
    EXPECT_EQ(run(rows, options), expected);
  }
}

// NaN scores never pass the threshold (forced blocks still kept).
TEST(ThresholdMask, NaNScoresNeverPass) {
  std::vector<std::vector<float>> rows = {{NAN}, {NAN, 0.5f}};
  EXPECT_EQ(run(rows, plainOptions(4, 0.5f)), (std::vector<Ids>{{}, {1}}));
  Options options = plainOptions(4, 0.5f);
  options.minBudget = 2;
  EXPECT_EQ(run(rows, options), (std::vector<Ids>{{}, {1}}));
}

// alpha 0 keeps every causal block, NaN scores included (the kernels skip
// scoring at alpha 0; the dense fall-back of fp_prefill relies on it), for
// both threshold kinds; a row of NaN only used to keep nothing (0 * -inf).
TEST(ThresholdMask, AlphaZeroKeepsNaNScores) {
  std::vector<std::vector<float>> rows = {{NAN}, {NAN, 0.5f}, {NAN, NAN, NAN}};
  std::vector<Ids> every = {{0}, {0, 1}, {0, 1, 2}};
  for (ThresholdKind kind : {ThresholdKind::kRelativeMax, ThresholdKind::kMinMax}) {
    Options options = plainOptions(4, 0.0f);
    options.thresholdKind = kind;
    EXPECT_EQ(run(rows, options), every);
  }
}

// Mask format: counts [b, h, nb], ids [b, h, nb, nb] ascending, -1 after
// the count; batches and heads are independent rows.
TEST(ThresholdMask, PaddedRowsFormat) {
  BlockScores scores;
  scores.batch = 2;
  scores.heads = 3;
  scores.numBlocks = 3;
  scores.values.assign(2 * 3 * 3 * 3, 0.0f);
  // Row (b=1, h=2, I=2): block 1 wins.
  scores.row(1, 2, 2)[0] = 0.1f;
  scores.row(1, 2, 2)[1] = 0.8f;
  scores.row(1, 2, 2)[2] = 0.1f;
  StatusOr<BlockMask> mask = thresholdMask(scores, plainOptions(4, 0.5f));
  ASSERT_TRUE(mask.isOk());
  ASSERT_EQ(mask->counts.size(), 2u * 3 * 3);
  ASSERT_EQ(mask->ids.size(), 2u * 3 * 3 * 3);
  EXPECT_EQ(mask->count(1, 2, 2), 1);
  const int32_t *ids = mask->rowIds(1, 2, 2);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], -1);
  EXPECT_EQ(ids[2], -1);
  // Every other row is all-zero: dense.
  EXPECT_EQ(mask->kept(0, 1, 2), (Ids{0, 1, 2}));
  EXPECT_EQ(mask->rowIds(0, 1, 1)[2], -1);
  EXPECT_TRUE(mask->validate(2, 3, 3).isOk());
  EXPECT_EQ(mask->keptBlocks(), 2 * 3 * 6 - 2);
  EXPECT_DOUBLE_EQ(mask->density(), (2.0 * 3 * 6 - 2) / (2.0 * 3 * 6));
}
