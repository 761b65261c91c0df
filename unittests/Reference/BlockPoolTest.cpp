//===- BlockPoolTest.cpp - block_pool tests ---------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

using namespace fp;
using namespace fp::ref;
using namespace fp::ref::test;

// The mean of a partial last block divides by its valid rows only (L = 6,
// B = 4: block 1 holds rows 4 and 5).
TEST(BlockPool, MeanOverValidRowsOnly) {
  Tensor k = makeTensor(DType::kBF16, 1, 6, 1, 2,
                        [](int64_t, int64_t s, int64_t, int64_t c) {
                          return static_cast<float>(s + 10 * c);
                        });
  StatusOr<Tensor> kbar = blockPool(k.view(), plainOptions(4, 0.1f));
  ASSERT_TRUE(kbar.isOk()) << kbar.status().toString();
  ASSERT_EQ(kbar->seq(), 2);
  EXPECT_EQ(kbar->at(0, 0, 0, 0), 1.5f);  // (0+1+2+3)/4
  EXPECT_EQ(kbar->at(0, 0, 0, 1), 11.5f); // (10+11+12+13)/4
  EXPECT_EQ(kbar->at(0, 1, 0, 0), 4.5f);  // (4+5)/2, not (4+5)/4
  EXPECT_EQ(kbar->at(0, 1, 0, 1), 14.5f);
}

// The stored mean is rounded to the input dtype (ties to even), not kept in
// fp32: mean(1, 1 + 2^-7) = 1 + 2^-8 is a bf16 tie and becomes 1.
TEST(BlockPool, RoundedToInputDType) {
  Tensor k = makeTensor(DType::kBF16, 1, 2, 1, 1,
                        [](int64_t, int64_t s, int64_t, int64_t) {
                          return s == 0 ? 1.0f : 1.0078125f;
                        });
  StatusOr<Tensor> kbar = blockPool(k.view(), plainOptions(2, 0.1f));
  ASSERT_TRUE(kbar.isOk());
  EXPECT_EQ(kbar->storage()[0], 0x3f80); // bf16(1.0)
  // fp16 holds 1 + 2^-8 exactly.
  Tensor k16 = makeTensor(DType::kF16, 1, 2, 1, 1,
                          [](int64_t, int64_t s, int64_t, int64_t) {
                            return s == 0 ? 1.0f : 1.0078125f;
                          });
  StatusOr<Tensor> kbar16 = blockPool(k16.view(), plainOptions(2, 0.1f));
  ASSERT_TRUE(kbar16.isOk());
  EXPECT_EQ(kbar16->at(0, 0, 0, 0), 1.00390625f);
}

// Accumulation is fp32: summing 256 + fifteen 1s in bf16 would stall at 256
// (257 is not a bf16), giving a mean of 16 instead of 271 / 16.
TEST(BlockPool, AccumulatesInFp32) {
  Tensor k = makeTensor(DType::kBF16, 1, 16, 1, 1,
                        [](int64_t, int64_t s, int64_t, int64_t) {
                          return s == 0 ? 256.0f : 1.0f;
                        });
  StatusOr<Tensor> kbar = blockPool(k.view(), plainOptions(16, 0.1f));
  ASSERT_TRUE(kbar.isOk());
  EXPECT_EQ(kbar->at(0, 0, 0, 0), roundToDType(DType::kBF16, 271.0f / 16));
  EXPECT_NE(kbar->at(0, 0, 0, 0), 16.0f);
}

// Output storage is [b, h, nb, d] (params.h), each (b, h, j) its own mean.
TEST(BlockPool, LayoutIsBatchHeadBlockDim) {
  const int64_t batch = 2, seq = 5, heads = 3, dim = 2, block = 2;
  Tensor x = makeTensor(DType::kF16, batch, seq, heads, dim,
                        [](int64_t b, int64_t s, int64_t h, int64_t c) {
                          return static_cast<float>(100 * b + 10 * h + c + s);
                        });
  StatusOr<Tensor> pooled = blockPool(x.view(), plainOptions(block, 0.1f));
  ASSERT_TRUE(pooled.isOk());
  EXPECT_EQ(pooled->layout(), Layout::kBHSD);
  EXPECT_EQ(pooled->storageShape(), (std::vector<int64_t>{2, 3, 3, 2}));
  const std::vector<uint16_t> &data = pooled->storage();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t j = 0; j < 3; ++j)
        for (int64_t c = 0; c < dim; ++c) {
          // Rows 2j, 2j+1 (only row 4 in the last block): mean of s is 2j+0.5
          // except the last block (4).
          float meanS = j < 2 ? 2.0f * j + 0.5f : 4.0f;
          float expected = roundToDType(
              DType::kF16, static_cast<float>(100 * b + 10 * h + c) + meanS);
          uint16_t bits = data[((b * heads + h) * 3 + j) * dim + c];
          EXPECT_EQ(bitsToFloat(DType::kF16, bits), expected)
              << b << " " << h << " " << j << " " << c;
        }
}

// Results do not depend on the number of threads.
TEST(BlockPool, ThreadCountDoesNotChangeResults) {
  Tensor x = randomTensor(DType::kBF16, 2, 45, 4, 8, 3);
  Options one = plainOptions(8, 0.1f), many = one;
  one.numThreads = 1;
  many.numThreads = 3;
  StatusOr<Tensor> a = blockPool(x.view(), one), b = blockPool(x.view(), many);
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_EQ(a->storage(), b->storage());
}
