//===- PrefillTest.cpp - End-to-end reference operator tests ----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Hand-built problems with d = 2 and scale 1: every query row is [1, 0] or
// [0, 1]; one "hot" key block per direction holds keys [5, 0] or [0, 5],
// every other key is [0, 0]. A query block after the hot block H then puts
// almost all its mass on H (logit 5 against 0), so the kept blocks can be
// written down by hand.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>

using namespace fp;
using namespace fp::ref;
using namespace fp::ref::test;

namespace {

using Ids = std::vector<int32_t>;

/// The hand-built problem: q head h looks along x when `xHead(h)`, else y;
/// kv head hk of batch b has its x-hot block hotX[b][hk] and y-hot block
/// hotY[b][hk].
struct HotProblem {
  Tensor q, k, v;
};

HotProblem makeHotProblem(int64_t batch, int64_t seq, int64_t hq, int64_t hkv,
                          int blockSize,
                          const std::vector<std::vector<int>> &hotX,
                          const std::vector<std::vector<int>> &hotY) {
  HotProblem p;
  p.q = makeTensor(DType::kBF16, batch, seq, hq, 2,
                   [](int64_t, int64_t, int64_t h, int64_t c) {
                     return (h % 2 == 0) == (c == 0) ? 1.0f : 0.0f;
                   });
  p.k = makeTensor(DType::kBF16, batch, seq, hkv, 2,
                   [&](int64_t b, int64_t s, int64_t h, int64_t c) {
                     int64_t j = s / blockSize;
                     if (c == 0 && j == hotX[b][h])
                       return 5.0f;
                     if (c == 1 && j == hotY[b][h])
                       return 5.0f;
                     return 0.0f;
                   });
  p.v = randomTensor(DType::kBF16, batch, seq, hkv, 2, 77);
  return p;
}

Options hotOptions() {
  Options o = plainOptions(4, 0.5f);
  o.scale = 1.0f;
  o.sink = 1;
  o.window = 1;
  o.lastN = 1;
  return o;
}

BlockMask maskFromRows(const std::vector<std::vector<Ids>> &perHead,
                       int64_t batch, int64_t heads, int64_t nb) {
  BlockMask mask = BlockMask::empty(batch, heads, nb);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < nb; ++i) {
        const Ids &ids = perHead[b * heads + h][i];
        mask.counts[(b * heads + h) * nb + i] =
            static_cast<int32_t>(ids.size());
        for (size_t e = 0; e < ids.size(); ++e)
          mask.ids[((b * heads + h) * nb + i) * nb + e] = ids[e];
      }
  return mask;
}

} // namespace

// Sinks, window, last_n and the threshold together, written out by hand
// (L = 24, B = 4, nb = 6, hot block 2, sink 1, window 1, last_n 1).
TEST(Prefill, HandBuiltKeptBlocks) {
  HotProblem p = makeHotProblem(1, 24, 1, 1, 4, {{2}}, {{-1}});
  StatusOr<PrefillOutput> out =
      prefill(p.q.view(), p.k.view(), p.v.view(), hotOptions());
  ASSERT_TRUE(out.isOk()) << out.status().toString();
  std::vector<Ids> expected = {
      {0},                // I = 0: the sink is the diagonal
      {0, 1},             // sink + diagonal (uniform scores 0.8 / 0.2)
      {0, 2},             // the hot diagonal; block 1 scores ~3e-5
      {0, 2, 3},          // sink, hot block, diagonal
      {0, 2, 4},          //
      {0, 1, 2, 3, 4, 5}, // last_n = 1: dense
  };
  for (int64_t i = 0; i < 6; ++i)
    EXPECT_EQ(out->mask.kept(0, 0, i), expected[i]) << "I = " << i;
  // The attention used exactly that mask.
  BlockMask mask = maskFromRows({expected}, 1, 1, 6);
  StatusOr<AttentionOutput> direct =
      maskedAttention(p.q.view(), p.k.view(), p.v.view(), mask, hotOptions());
  ASSERT_TRUE(direct.isOk());
  EXPECT_EQ(out->attention.out.storage(), direct->out.storage());
  EXPECT_EQ(out->attention.lse, direct->lse);
  EXPECT_NEAR(out->mask.density(), 17.0 / 21.0, 1e-12);
}

// L = 22 (not a multiple of B), last_n = 0: the partial last block (rows 20
// and 21) keeps sink, hot block and diagonal, exactly like full blocks.
TEST(Prefill, PartialLastBlock) {
  HotProblem p = makeHotProblem(1, 22, 1, 1, 4, {{2}}, {{-1}});
  Options options = hotOptions();
  options.lastN = 0;
  StatusOr<PrefillOutput> out =
      prefill(p.q.view(), p.k.view(), p.v.view(), options);
  ASSERT_TRUE(out.isOk()) << out.status().toString();
  EXPECT_EQ(out->mask.kept(0, 0, 5), (Ids{0, 2, 5}));
  EXPECT_EQ(out->mask.kept(0, 0, 4), (Ids{0, 2, 4}));
}

// Batch 2 and GQA g = 2 (4 query heads, 2 kv heads), each (b, q head) with
// its own hot block, written out by hand (L = 20, nb = 5, last_n = 0).
TEST(Prefill, BatchAndGqaHandBuilt) {
  // Kept rows for hot block H (sink 1, window 1): before H all blocks tie
  // (dense); at H only sink + diagonal; after H sink, H and diagonal.
  const std::vector<Ids> hot1 = {{0}, {0, 1}, {0, 1, 2}, {0, 1, 3}, {0, 1, 4}};
  const std::vector<Ids> hot2 = {{0}, {0, 1}, {0, 2}, {0, 2, 3}, {0, 2, 4}};
  const std::vector<Ids> hot3 = {{0}, {0, 1}, {0, 1, 2}, {0, 3}, {0, 3, 4}};
  const std::vector<Ids> hot4 = {{0}, {0, 1}, {0, 1, 2}, {0, 1, 2, 3}, {0, 4}};
  // hotX[b][kv head], hotY[b][kv head]; q heads 0, 2 look along x, 1, 3
  // along y; q head h reads kv head h / 2.
  std::vector<std::vector<int>> hotX = {{2, 1}, {3, 2}};
  std::vector<std::vector<int>> hotY = {{3, 4}, {2, 1}};
  HotProblem p = makeHotProblem(2, 20, 4, 2, 4, hotX, hotY);
  Options options = hotOptions();
  options.lastN = 0;
  StatusOr<PrefillOutput> out =
      prefill(p.q.view(), p.k.view(), p.v.view(), options);
  ASSERT_TRUE(out.isOk()) << out.status().toString();
  const std::vector<std::vector<Ids>> expected = {
      hot2, hot3, hot1, hot4, // b = 0: heads 0..3
      hot3, hot2, hot2, hot1, // b = 1
  };
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t h = 0; h < 4; ++h)
      for (int64_t i = 0; i < 5; ++i)
        EXPECT_EQ(out->mask.kept(b, h, i), expected[b * 4 + h][i])
            << "b=" << b << " h=" << h << " I=" << i;
  // And the output is within rounding of the fp64 truth under that mask.
  StatusOr<NaiveAttentionOutput> truth =
      naiveAttention(p.q.view(), p.k.view(), p.v.view(), options, &out->mask);
  ASSERT_TRUE(truth.isOk());
  for (size_t e = 0; e < truth->out.size(); ++e) {
    float got = bitsToFloat(DType::kBF16, out->attention.out.storage()[e]);
    EXPECT_NEAR(got, truth->out[e], std::ldexp(1.0, -8) * 8 + 1e-4) << e;
  }
}

// alpha = 0 keeps every block, so prefill equals dense causal attention bit
// for bit (same numerics), for both dtypes and pooled queries.
TEST(Prefill, AlphaZeroEqualsDense) {
  for (DType dtype : {DType::kBF16, DType::kF16})
    for (ScoreQuery query : {ScoreQuery::kFull, ScoreQuery::kPooled}) {
      Tensor q = randomTensor(dtype, 2, 53, 8, 16, 1, 2.0f);
      Tensor k = randomTensor(dtype, 2, 53, 2, 16, 2, 2.0f);
      Tensor v = randomTensor(dtype, 2, 53, 2, 16, 3);
      Options options = plainOptions(8, 0.0f);
      options.scoreQuery = query;
      StatusOr<PrefillOutput> sparse =
          prefill(q.view(), k.view(), v.view(), options);
      StatusOr<AttentionOutput> dense =
          denseCausalAttention(q.view(), k.view(), v.view(), options);
      ASSERT_TRUE(sparse.isOk() && dense.isOk());
      EXPECT_EQ(sparse->mask.counts, BlockMask::denseCausal(2, 8, 7).counts);
      EXPECT_DOUBLE_EQ(sparse->mask.density(), 1.0);
      EXPECT_EQ(sparse->attention.out.storage(), dense->out.storage());
      EXPECT_EQ(sparse->attention.lse, dense->lse);
    }
}

// One block (L = B) and s < B: the only block is kept and the result is
// dense attention.
TEST(Prefill, SingleBlock) {
  for (int64_t seq : {8, 3}) {
    Tensor q = randomTensor(DType::kBF16, 1, seq, 2, 8, 1);
    Tensor k = randomTensor(DType::kBF16, 1, seq, 1, 8, 2);
    Tensor v = randomTensor(DType::kBF16, 1, seq, 1, 8, 3);
    Options options = plainOptions(8, 1.0f);
    StatusOr<PrefillOutput> out =
        prefill(q.view(), k.view(), v.view(), options);
    ASSERT_TRUE(out.isOk()) << out.status().toString();
    EXPECT_EQ(out->mask.kept(0, 1, 0), (Ids{0}));
    StatusOr<AttentionOutput> dense =
        denseCausalAttention(q.view(), k.view(), v.view(), options);
    ASSERT_TRUE(dense.isOk());
    EXPECT_EQ(out->attention.out.storage(), dense->out.storage());
  }
}

// Empty problems (L = 0) are valid and produce empty outputs.
TEST(Prefill, EmptySequence) {
  Tensor q = Tensor::zeros(DType::kBF16, 1, 0, 2, 8);
  Tensor k = Tensor::zeros(DType::kBF16, 1, 0, 1, 8);
  StatusOr<PrefillOutput> out =
      prefill(q.view(), k.view(), k.view(), plainOptions(4, 0.1f));
  ASSERT_TRUE(out.isOk()) << out.status().toString();
  EXPECT_EQ(out->mask.numBlocks, 0);
  EXPECT_EQ(out->attention.out.numElements(), 0);
}

// Timing of the whole operator at 16K x 32 query heads (8 kv heads), d = 128,
// bf16, default options, on structured inputs (block topics that recur, so
// density is typical rather than dense). Runs only with
// FP_REFERENCE_TIMING=1 (or =dense to also time dense attention).
TEST(Prefill, Timing16K) {
  const char *env = std::getenv("FP_REFERENCE_TIMING");
  if (!env || !*env)
    GTEST_SKIP() << "set FP_REFERENCE_TIMING=1 to run";
  const int64_t seq = 16384, hq = 32, hkv = 8, d = 128, topics = 8;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> topic(topics * d);
  for (float &x : topic)
    x = normal(rng);
  const int64_t nb = seq / FP_DEFAULT_BLOCK_SIZE;
  std::vector<int64_t> keyTopic(nb * hkv), queryTopic(nb * hq);
  for (int64_t &t : keyTopic)
    t = rng() % topics;
  for (int64_t &t : queryTopic)
    t = rng() % topics;
  auto fill = [&](int64_t heads, const std::vector<int64_t> &topicOf) {
    Tensor t = Tensor::zeros(DType::kBF16, 1, seq, heads, d);
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h) {
        const float *u =
            &topic[topicOf[(s / FP_DEFAULT_BLOCK_SIZE) * heads + h] * d];
        for (int64_t c = 0; c < d; ++c)
          t.set(0, s, h, c, 0.7f * u[c] + normal(rng));
      }
    return t;
  };
  Tensor q = fill(hq, queryTopic), k = fill(hkv, keyTopic);
  Tensor v = randomTensor(DType::kBF16, 1, seq, hkv, d, 3);
  Options options; // defaults, threads = hardware
  auto start = std::chrono::steady_clock::now();
  StatusOr<PrefillOutput> out = prefill(q.view(), k.view(), v.view(), options);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ASSERT_TRUE(out.isOk()) << out.status().toString();
  std::printf("[timing] prefill 16K x 32 heads (8 kv), d 128, bf16, "
              "defaults: %.2f s, density %.1f%%, %d threads\n",
              seconds, 100.0 * out->mask.density(),
              static_cast<int>(std::thread::hardware_concurrency()));
  EXPECT_FALSE(hasNaN(out->attention));
  if (std::strcmp(env, "dense") == 0) {
    start = std::chrono::steady_clock::now();
    StatusOr<AttentionOutput> dense =
        denseCausalAttention(q.view(), k.view(), v.view(), options);
    seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    ASSERT_TRUE(dense.isOk());
    std::printf("[timing] dense causal 16K x 32 heads: %.2f s\n", seconds);
  }
}
