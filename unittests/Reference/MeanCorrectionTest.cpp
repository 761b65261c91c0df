//===- MeanCorrectionTest.cpp - Mean correction (section 3) -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// docs/semantics.md section 3 on the reference: against the fp64 statement
// of its formulas (naiveAttention with the option), exact when a pruned
// block's keys and values equal their means, nothing added where no block
// is pruned or a pruned block is only partly visible, the LSE including the
// terms, and the error against dense attention cut on structured inputs.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "flashprefill/structured_inputs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>

using namespace fp;
using namespace fp::ref;
using namespace fp::ref::test;

namespace {

std::vector<double> asDoubles(const Tensor &t) {
  std::vector<double> out;
  out.reserve(t.storage().size());
  for (uint16_t bits : t.storage())
    out.push_back(bitsToFloat(t.dtype(), bits));
  return out;
}

Tensor fromBits(const std::vector<uint16_t> &bits, int64_t seq, int64_t heads,
                int64_t dim) {
  Tensor t = Tensor::zeros(DType::kBF16, 1, seq, heads, dim);
  t.storage() = bits;
  return t;
}

struct Structured {
  Tensor q, k, v;
  Structured(int64_t seq, int64_t hq, int64_t hkv, int64_t d, int block,
             uint64_t seed) {
    fp::testing::StructuredConfig c;
    c.seqLen = seq;
    c.numQHeads = hq;
    c.numKvHeads = hkv;
    c.headDim = d;
    c.blockSize = block;
    c.segmentTokens = 4 * block;
    c.seed = seed;
    fp::testing::StructuredInputs in = fp::testing::makeStructuredInputs(c);
    q = fromBits(in.q, seq, hq, d);
    k = fromBits(in.k, seq, hkv, d);
    v = fromBits(in.v, seq, hkv, d);
  }
};

Options ruleOptions(int block, bool mean) {
  Options o;
  o.blockSize = block;
  o.alpha = 0.3f;
  o.sink = 1;
  o.window = 1;
  o.lastN = 0;
  o.numThreads = 2;
  o.meanCorrection = mean;
  return o;
}

} // namespace

// Against the fp64 evaluation of the formulas: every output within a few
// bf16 roundings, every LSE within 1e-4, on a sparse structured mask.
TEST(MeanCorrection, MatchesTheFloat64Formulas) {
  Structured in(640, 4, 2, 32, 32, 3);
  Options options = ruleOptions(32, true);
  auto run = prefill(in.q.view(), in.k.view(), in.v.view(), options);
  ASSERT_TRUE(run.isOk()) << run.status().toString();
  ASSERT_LT(run->mask.density(), 0.8) << "the case must prune blocks";
  auto truth = naiveAttention(in.q.view(), in.k.view(), in.v.view(), options,
                              &run->mask);
  ASSERT_TRUE(truth.isOk()) << truth.status().toString();
  const double err =
      fp::testing::relativeL2(asDoubles(run->attention.out), truth->out);
  EXPECT_LT(err, 5e-3);
  for (size_t i = 0; i < truth->lse.size(); ++i)
    ASSERT_NEAR(run->attention.lse[i], truth->lse[i], 1e-4) << i;
  // And the fp64 oracle itself differs from the uncorrected one: it adds.
  Options off = options;
  off.meanCorrection = false;
  auto plain = naiveAttention(in.q.view(), in.k.view(), in.v.view(), off,
                              &run->mask);
  ASSERT_TRUE(plain.isOk());
  EXPECT_GT(fp::testing::relativeL2(plain->out, truth->out), 1e-3);
}

// Where every key (and value) of a block equals its mean, the correction is
// exact: the sparse result equals dense attention up to bf16 rounding,
// while the uncorrected one does not.
TEST(MeanCorrection, ExactWhenBlocksAreConstant) {
  const int block = 16;
  const int64_t seq = 256, hq = 2, hkv = 1, d = 32;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> keyOf(seq / block * d), valueOf(seq / block * d);
  for (float &x : keyOf)
    x = 0.6f * normal(rng);
  for (float &x : valueOf)
    x = normal(rng);
  Tensor q = randomTensor(DType::kBF16, 1, seq, hq, d, 7);
  Tensor k = makeTensor(DType::kBF16, 1, seq, hkv, d,
                        [&](int64_t, int64_t s, int64_t, int64_t c) {
                          return keyOf[(s / block) * d + c];
                        });
  Tensor v = makeTensor(DType::kBF16, 1, seq, hkv, d,
                        [&](int64_t, int64_t s, int64_t, int64_t c) {
                          return valueOf[(s / block) * d + c];
                        });
  Options options = ruleOptions(block, true);
  options.alpha = 0.9f;
  auto sparse = prefill(q.view(), k.view(), v.view(), options);
  ASSERT_TRUE(sparse.isOk()) << sparse.status().toString();
  ASSERT_LT(sparse->mask.density(), 0.6);
  Options off = options;
  off.meanCorrection = false;
  auto uncorrected = prefill(q.view(), k.view(), v.view(), off);
  auto dense = denseCausalAttention(q.view(), k.view(), v.view(), off);
  ASSERT_TRUE(uncorrected.isOk() && dense.isOk());
  const std::vector<double> truth = asDoubles(dense->out);
  const double corrected = fp::testing::relativeL2(asDoubles(sparse->attention.out), truth);
  const double plain = fp::testing::relativeL2(asDoubles(uncorrected->attention.out), truth);
  EXPECT_LT(corrected, 1e-2);
  EXPECT_GT(plain, 10 * corrected);
  for (size_t i = 0; i < dense->lse.size(); ++i)
    ASSERT_NEAR(sparse->attention.lse[i], dense->lse[i], 1e-3) << i;
}

// No pruned block, nothing to add: with every causal block kept the option
// changes no bit.
TEST(MeanCorrection, DenseMaskIsUnchanged) {
  Structured in(300, 2, 1, 32, 16, 4);
  Options on = ruleOptions(16, true), off = ruleOptions(16, false);
  BlockMask all = BlockMask::denseCausal(1, 2, numBlocks(300, 16));
  auto a = maskedAttention(in.q.view(), in.k.view(), in.v.view(), all, on);
  auto b = maskedAttention(in.q.view(), in.k.view(), in.v.view(), all, off);
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_EQ(a->out.storage(), b->out.storage());
  EXPECT_EQ(a->lse, b->lse);
}

// The LSE includes the added mass: never below the uncorrected LSE, above
// it for rows of query blocks that pruned something.
TEST(MeanCorrection, LseIncludesTheTerms) {
  Structured in(512, 2, 1, 32, 32, 6);
  Options on = ruleOptions(32, true), off = ruleOptions(32, false);
  auto a = prefill(in.q.view(), in.k.view(), in.v.view(), on);
  auto b = prefill(in.q.view(), in.k.view(), in.v.view(), off);
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_EQ(a->mask.counts, b->mask.counts); // selection is unaffected
  int64_t raised = 0;
  const int64_t seq = 512, nb = 16;
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t r = 0; r < seq; ++r) {
      const int64_t i = r / 32;
      const size_t at = size_t(h * seq + r);
      const bool pruned = b->mask.count(0, h, i) < i + 1;
      if (pruned) {
        EXPECT_GT(a->attention.lse[at], b->attention.lse[at]) << h << " " << r;
        ++raised;
      } else {
        EXPECT_EQ(a->attention.lse[at], b->attention.lse[at]);
      }
    }
  EXPECT_GT(raised, 0);
  (void)nb;
}

// Section 2 shapes: a chunk after a prefix that is not block-aligned, so
// pruned blocks can be partly visible to a row; the fp64 oracle states the
// "all keys visible" condition independently.
TEST(MeanCorrection, VarlenWithUnalignedPrefixMatchesTheFormulas) {
  Structured in(700, 4, 2, 32, 32, 8);
  VarlenProblem p;
  const int64_t keyLen = 700, qLen = 230; // prefix 470: not a multiple of 32
  TensorView q = in.q.view();
  q.data += (keyLen - qLen) * q.seqStride;
  q.seq = qLen;
  p.q = q;
  p.k = in.k.view();
  p.v = in.v.view();
  p.cuSeqlensQ = {0, int32_t(qLen)};
  p.cuSeqlensK = {0, int32_t(keyLen)};
  Options options = ruleOptions(32, true);
  auto mask = selectVarlen(p, options);
  ASSERT_TRUE(mask.isOk()) << mask.status().toString();
  auto got = attendVarlen(p, *mask, options);
  auto truth = naiveAttentionVarlen(p, options, &*mask);
  ASSERT_TRUE(got.isOk() && truth.isOk());
  EXPECT_LT(fp::testing::relativeL2(asDoubles(got->out), truth->out), 5e-3);
  for (size_t i = 0; i < truth->lse.size(); ++i)
    ASSERT_NEAR(got->lse[i], truth->lse[i], 1e-4) << i;
  // Prefix 0 equals the whole-prompt op bit for bit with the option too.
  VarlenProblem whole;
  whole.q = in.q.view();
  whole.k = in.k.view();
  whole.v = in.v.view();
  whole.cuSeqlensQ = whole.cuSeqlensK = {0, int32_t(keyLen)};
  auto varlen = prefillVarlen(whole, options);
  auto dense = prefill(in.q.view(), in.k.view(), in.v.view(), options);
  ASSERT_TRUE(varlen.isOk() && dense.isOk());
  EXPECT_EQ(varlen->out.storage(), dense->attention.out.storage());
}

// Quality on structured inputs (the generator of DESIGN section 4 at small
// size): the error against dense attention with the correction is below the
// error without it. Prints both (the GPU benchmark reports 32K-256K).
TEST(MeanCorrection, CutsTheErrorAgainstDense) {
  Structured in(2048, 4, 1, 64, 64, 9);
  Options on = ruleOptions(64, true), off = ruleOptions(64, false);
  on.alpha = off.alpha = 0.2f;
  auto a = prefill(in.q.view(), in.k.view(), in.v.view(), on);
  auto b = prefill(in.q.view(), in.k.view(), in.v.view(), off);
  auto dense = denseCausalAttention(in.q.view(), in.k.view(), in.v.view(), off);
  ASSERT_TRUE(a.isOk() && b.isOk() && dense.isOk());
  const std::vector<double> truth = asDoubles(dense->out);
  const double corrected = fp::testing::relativeL2(asDoubles(a->attention.out), truth);
  const double plain = fp::testing::relativeL2(asDoubles(b->attention.out), truth);
  std::printf("[mean correction] 2048 tokens, B 64, density %.3f: rel L2 vs "
              "dense %.4f without, %.4f with (%.2fx)\n",
              b->mask.density(), plain, corrected, plain / corrected);
  EXPECT_LT(corrected, plain);
}
