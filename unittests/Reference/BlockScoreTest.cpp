//===- BlockScoreTest.cpp - block_score tests -------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Hand-built cases use d = 1 and scale = 1, so every logit is a product of
// two numbers written in the test and every expected score is a short
// formula.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace fp;
using namespace fp::ref;
using namespace fp::ref::test;

namespace {

/// d = 1 problem: q[s] = qValues[s], k[s] = kValues[s].
Tensor column(const std::vector<float> &values, DType dtype = DType::kBF16) {
  return makeTensor(
      dtype, 1, static_cast<int64_t>(values.size()), 1, 1,
      [&](int64_t, int64_t s, int64_t, int64_t) { return values[s]; });
}

StatusOr<BlockScores> scoreOf(const Tensor &q, const Tensor &k,
                              const Options &options) {
  StatusOr<Tensor> kbar = blockPool(k.view(), options);
  if (!kbar.isOk())
    return kbar.status();
  return blockScore(q.view(), kbar->view(), options);
}

} // namespace

// Row r sees block j only once j's last token is visible (r >= last_j), so
// the diagonal block is scored from the block's last row alone.
TEST(BlockScore, LastTokenVisibility) {
  Options options = plainOptions(4, 0.1f);
  options.scale = 1.0f;
  Tensor q = column({0.25f, 0.25f, 0.25f, 0.25f, 0.5f, 1.0f, 1.5f, 2.0f});
  Tensor k = column({1, 1, 1, 1, 2, 2, 2, 2}); // kbar = [1, 2]
  StatusOr<BlockScores> scores = scoreOf(q, k, options);
  ASSERT_TRUE(scores.isOk()) << scores.status().toString();
  // I = 0: only row 3 sees block 0: a single energy, score 1.
  EXPECT_FLOAT_EQ(scores->at(0, 0, 0, 0), 1.0f);
  // I = 1: rows 4..7 see block 0 (logits 0.5, 1, 1.5, 2); only row 7 sees
  // block 1 (logit 2 * 2 = 4 = M).
  double e0 = std::exp(0.5 - 4) + std::exp(1.0 - 4) + std::exp(1.5 - 4) +
              std::exp(2.0 - 4);
  double e1 = 1.0;
  EXPECT_NEAR(scores->at(0, 0, 1, 0), e0 / (e0 + e1), 1e-6);
  EXPECT_NEAR(scores->at(0, 0, 1, 1), e1 / (e0 + e1), 1e-6);
  // Had every row of block 1 been scored against the diagonal, its energy
  // would be e^(1-4) + e^(2-4) + e^(3-4) + 1: the test tells them apart.
  double allRows = std::exp(-3.0) + std::exp(-2.0) + std::exp(-1.0) + 1.0;
  EXPECT_GT(std::fabs(allRows / (e0 + allRows) - e1 / (e0 + e1)), 0.05);
}

// Padded rows of the partial last block never count (algorithm.md section
// 8, V1 pitfall 1). L = 5, B = 4: block 1 holds row 4 only. Counting the
// three padded rows as zero queries would flip block 1 into the mask.
TEST(BlockScore, PaddedRowsNeverCount) {
  Options options = plainOptions(4, 0.1f);
  options.scale = 1.0f;
  Tensor q = column({1, 1, 1, 1, 1});
  Tensor k = column({2, 2, 2, 2, -2}); // kbar = [2, -2] (mean of 1 valid key)
  StatusOr<BlockScores> scores = scoreOf(q, k, options);
  ASSERT_TRUE(scores.isOk()) << scores.status().toString();
  // Row 4: logits 2 (block 0) and -2 (block 1, its own last token).
  double e0 = 1.0, e1 = std::exp(-4.0);
  EXPECT_NEAR(scores->at(0, 0, 1, 0), e0 / (e0 + e1), 1e-6); // 0.982
  EXPECT_NEAR(scores->at(0, 0, 1, 1), e1 / (e0 + e1), 1e-6); // 0.018
  StatusOr<BlockMask> mask = thresholdMask(*scores, options);
  ASSERT_TRUE(mask.isOk());
  EXPECT_EQ(mask->kept(0, 0, 1), (std::vector<int32_t>{0}));
  // The V1 bug, computed by hand: 3 padded rows with logit 0 see both
  // blocks and add e^(0-2) each, giving scores [0.768, 0.232]: block 1
  // would pass alpha * max. So this case discriminates.
  double p0 = 1.0 + 3 * std::exp(-2.0),
         p1 = std::exp(-4.0) + 3 * std::exp(-2.0);
  EXPECT_GE(p1 / (p0 + p1), 0.1 * p0 / (p0 + p1));
}

// Pooled queries: one probe qbar_I per block, which sees every j <= I.
TEST(BlockScore, PooledQueries) {
  Options options = plainOptions(4, 0.1f);
  options.scale = 1.0f;
  options.scoreQuery = ScoreQuery::kPooled;
  Tensor q = column({1, 1, 1, 1, 0.5f, 1.0f, 1.5f, 2.0f}); // qbar = [1, 1.25]
  Tensor k = column({1, 1, 1, 1, 2, 2, 2, 2});             // kbar = [1, 2]
  StatusOr<BlockScores> scores = scoreOf(q, k, options);
  ASSERT_TRUE(scores.isOk()) << scores.status().toString();
  EXPECT_FLOAT_EQ(scores->at(0, 0, 0, 0), 1.0f);
  // I = 1: logits 1.25 * 1 and 1.25 * 2 = 2.5.
  double e0 = std::exp(1.25 - 2.5), e1 = 1.0;
  EXPECT_NEAR(scores->at(0, 0, 1, 0), e0 / (e0 + e1), 1e-6);
  EXPECT_NEAR(scores->at(0, 0, 1, 1), e1 / (e0 + e1), 1e-6);

  // A caller-given qbar is used as is: qbar_1 = 3 gives logits 3 and 6.
  Tensor qbar = Tensor::zeros(DType::kBF16, 1, 2, 1, 1, Layout::kBHSD);
  qbar.set(0, 0, 0, 0, 1.0f);
  qbar.set(0, 1, 0, 0, 3.0f);
  StatusOr<Tensor> kbar = blockPool(k.view(), options);
  ASSERT_TRUE(kbar.isOk());
  TensorView qbarView = qbar.view();
  StatusOr<BlockScores> given =
      blockScore(q.view(), kbar->view(), options, &qbarView);
  ASSERT_TRUE(given.isOk()) << given.status().toString();
  e0 = std::exp(3.0 - 6.0);
  EXPECT_NEAR(given->at(0, 0, 1, 0), e0 / (e0 + 1.0), 1e-6);
}

// If every logit is -inf, M = -inf and every energy is 0: scores are 0 (not
// NaN) and the threshold (0) lets every scored block pass.
TEST(BlockScore, AllEnergiesZero) {
  Options options = plainOptions(4, 0.5f);
  const float inf = std::numeric_limits<float>::infinity();
  Tensor q = column(std::vector<float>(10, 1.0f));
  Tensor k = column(std::vector<float>(10, -inf));
  StatusOr<BlockScores> scores = scoreOf(q, k, options);
  ASSERT_TRUE(scores.isOk());
  for (float s : scores->values)
    EXPECT_EQ(s, 0.0f);
  StatusOr<BlockMask> mask = thresholdMask(*scores, options);
  ASSERT_TRUE(mask.isOk());
  EXPECT_EQ(mask->kept(0, 0, 0), (std::vector<int32_t>{0}));
  EXPECT_EQ(mask->kept(0, 0, 1), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(mask->kept(0, 0, 2), (std::vector<int32_t>{0, 1, 2}));
}

// s < B: one partial block scores itself 1 (E / (E + 1e-9) rounds to 1).
TEST(BlockScore, SequenceShorterThanBlock) {
  Options options = plainOptions(16, 0.1f);
  Tensor q = randomTensor(DType::kF16, 1, 3, 2, 8, 1);
  Tensor k = randomTensor(DType::kF16, 1, 3, 2, 8, 2);
  StatusOr<BlockScores> scores = scoreOf(q, k, options);
  ASSERT_TRUE(scores.isOk());
  ASSERT_EQ(scores->numBlocks, 1);
  EXPECT_EQ(scores->at(0, 0, 0, 0), 1.0f);
  EXPECT_EQ(scores->at(0, 1, 0, 0), 1.0f);
}

// Each row is a distribution over j <= I: in [0, 1], summing to 1, and the
// entries above the diagonal stay 0.
TEST(BlockScore, RowsAreDistributions) {
  Options options = plainOptions(8, 0.1f);
  Tensor q = randomTensor(DType::kBF16, 2, 61, 4, 16, 5, 2.0f);
  Tensor k = randomTensor(DType::kBF16, 2, 61, 2, 16, 6, 2.0f);
  StatusOr<BlockScores> scores = scoreOf(q, k, options);
  ASSERT_TRUE(scores.isOk());
  const int64_t nb = scores->numBlocks;
  ASSERT_EQ(nb, 8);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t i = 0; i < nb; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < nb; ++j) {
          float s = scores->at(b, h, i, j);
          if (j > i) {
            EXPECT_EQ(s, 0.0f);
            continue;
          }
          EXPECT_GE(s, 0.0f);
          EXPECT_LE(s, 1.0f);
          sum += s;
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
      }
}

// GQA: query head h is scored against kv head h / g, for g = 1, 4 and 8;
// batches are independent. Checked against single-head, single-batch calls.
TEST(BlockScore, GqaAndBatchSlicing) {
  for (int64_t group : {1, 4, 8}) {
    const int64_t hkv = 2, hq = hkv * group;
    Options options = plainOptions(4, 0.1f);
    Tensor q = randomTensor(DType::kBF16, 2, 22, hq, 8, 10 + group, 1.5f);
    Tensor k = randomTensor(DType::kBF16, 2, 22, hkv, 8, 20 + group, 1.5f);
    StatusOr<Tensor> kbar = blockPool(k.view(), options);
    ASSERT_TRUE(kbar.isOk());
    StatusOr<BlockScores> all = blockScore(q.view(), kbar->view(), options);
    ASSERT_TRUE(all.isOk());
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < hq; ++h) {
        TensorView qs = headSlice(batchSlice(q.view(), b), h);
        TensorView ks = headSlice(batchSlice(kbar->view(), b), h / group);
        StatusOr<BlockScores> one = blockScore(qs, ks, options);
        ASSERT_TRUE(one.isOk());
        for (int64_t i = 0; i < all->numBlocks; ++i)
          for (int64_t j = 0; j <= i; ++j)
            ASSERT_EQ(all->at(b, h, i, j), one->at(0, 0, i, j))
                << "g=" << group << " b=" << b << " h=" << h;
      }
  }
}

// The default scale is 1/sqrt(d); a NaN or non-positive scale means default.
TEST(BlockScore, DefaultScale) {
  Tensor q = randomTensor(DType::kBF16, 1, 20, 1, 16, 1);
  Tensor k = randomTensor(DType::kBF16, 1, 20, 1, 16, 2);
  Options explicitScale = plainOptions(4, 0.1f);
  explicitScale.scale = 0.25f; // 1 / sqrt(16)
  for (float scale : {0.0f, -1.0f, std::numeric_limits<float>::quiet_NaN()}) {
    Options defaulted = explicitScale;
    defaulted.scale = scale;
    StatusOr<BlockScores> a = scoreOf(q, k, explicitScale);
    StatusOr<BlockScores> b = scoreOf(q, k, defaulted);
    ASSERT_TRUE(a.isOk() && b.isOk());
    EXPECT_EQ(a->values, b->values);
  }
  Options other = explicitScale;
  other.scale = 1.0f;
  EXPECT_NE(scoreOf(q, k, other)->values, scoreOf(q, k, explicitScale)->values);
}

// blockScore equals, bit for bit, a direct scalar transcription of its
// documented formula (reference.h) on random data with a partial block.
TEST(BlockScore, MatchesDocumentedFormulaBitForBit) {
  const int64_t seq = 27, hq = 4, hkv = 2, d = 20, block = 4;
  Tensor q = randomTensor(DType::kBF16, 1, seq, hq, d, 8, 2.0f);
  Tensor k = randomTensor(DType::kBF16, 1, seq, hkv, d, 9, 2.0f);
  Options options = plainOptions(block, 0.1f);
  StatusOr<Tensor> kbar = blockPool(k.view(), options);
  ASSERT_TRUE(kbar.isOk());
  StatusOr<BlockScores> got = blockScore(q.view(), kbar->view(), options);
  ASSERT_TRUE(got.isOk());
  const int64_t nb = 7;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t h = 0; h < hq; ++h)
    for (int64_t i = 0; i < nb; ++i) {
      // s[r][j] for visible (r, j): r < L, r >= min((j+1)B, L) - 1.
      std::vector<std::vector<float>> s(block, std::vector<float>(i + 1));
      std::vector<std::vector<bool>> vis(block, std::vector<bool>(i + 1));
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t r = i * block; r < std::min((i + 1) * block, seq); ++r)
        for (int64_t j = 0; j <= i; ++j) {
          if (r < std::min((j + 1) * block, seq) - 1)
            continue;
          std::vector<float> qr(d), kj(d);
          for (int64_t x = 0; x < d; ++x) {
            qr[x] = q.at(0, r, h, x);
            kj[x] = kbar->at(0, j, h / 2, x);
          }
          s[r - i * block][j] = dotF32(qr.data(), kj.data(), d) * scale;
          vis[r - i * block][j] = true;
          m = std::max(m, s[r - i * block][j]);
        }
      std::vector<float> e(i + 1, 0.0f);
      for (int64_t j = 0; j <= i; ++j)
        for (int64_t r = 0; r < block; ++r)
          if (vis[r][j])
            e[j] += std::exp(s[r][j] - m);
      float total = 0;
      for (int64_t j = 0; j <= i; ++j)
        total += e[j];
      for (int64_t j = 0; j <= i; ++j)
        ASSERT_EQ(got->at(0, h, i, j), e[j] / (total + FP_SCORE_EPSILON))
            << "h=" << h << " I=" << i << " j=" << j;
    }
}
