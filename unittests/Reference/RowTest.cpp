//===- RowTest.cpp - Per-row scoring and selection --------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// blockScoreRow and thresholdRow, used by long-length GPU checks on sampled
// query blocks, must agree bit for bit with the whole-matrix ops.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

namespace fp::ref {
namespace {
using namespace test;

// Every row of blockScore and thresholdMask equals the per-row functions,
// for full and pooled queries and with a min_budget.
TEST(RowTest, RowsMatchTheWholeMatrix) {
  for (ScoreQuery query : {ScoreQuery::kFull, ScoreQuery::kPooled}) {
    Tensor q = randomTensor(DType::kBF16, 2, 300, 4, 32, 11);
    Tensor k = randomTensor(DType::kBF16, 2, 300, 2, 32, 12);
    Options options = plainOptions(64, 0.3f);
    options.scoreQuery = query;
    options.minBudget = 1;
    auto kbar = blockPool(k.view(), options);
    auto qbar = blockPool(q.view(), options);
    ASSERT_TRUE(kbar.isOk() && qbar.isOk());
    TensorView qbarView = qbar->view();
    auto scores = blockScore(q.view(), kbar->view(), options, &qbarView);
    ASSERT_TRUE(scores.isOk());
    auto mask = thresholdMask(*scores, options);
    ASSERT_TRUE(mask.isOk());
    const int64_t nb = scores->numBlocks;
    std::vector<float> row(nb);
    std::vector<int32_t> ids(nb);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < 4; ++h)
        for (int64_t i = 0; i < nb; ++i) {
          ASSERT_TRUE(blockScoreRow(q.view(), kbar->view(), options, b, h, i,
                                    row.data(), &qbarView)
                          .isOk());
          for (int64_t j = 0; j <= i; ++j)
            ASSERT_EQ(row[j], scores->row(b, h, i)[j]);
          int32_t count = thresholdRow(row.data(), i, nb, options, ids.data());
          ASSERT_EQ(count, mask->count(b, h, i));
          for (int32_t c = 0; c < count; ++c)
            ASSERT_EQ(ids[c], mask->rowIds(b, h, i)[c]);
        }
  }
}

// A row outside the problem is an error naming the indices.
TEST(RowTest, RowOutsideTheProblemIsRejected) {
  Tensor q = randomTensor(DType::kF16, 1, 100, 2, 16, 3);
  Tensor k = randomTensor(DType::kF16, 1, 100, 1, 16, 4);
  Options options = plainOptions(16, 0.1f);
  auto kbar = blockPool(k.view(), options);
  ASSERT_TRUE(kbar.isOk());
  std::vector<float> row(7);
  Status status = blockScoreRow(q.view(), kbar->view(), options, 0, 0, 7,
                                row.data());
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("(b, h, i): expected a row of [1, 2, 7]"),
            std::string::npos)
      << status.message();
}

} // namespace
} // namespace fp::ref
