//===- AttentionTest.cpp - masked_attention tests ---------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The rounding bound used against the fp64 truth: with u the unit roundoff
// of the dtype (2^-8 bf16, 2^-11 fp16), rounding P changes o / l by at most
// u * max|v| (sum_c u p_c |v_c| / l) and rounding O adds u * |O|; fp32
// arithmetic adds far less than the 1e-4 * max|v| slack.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

using namespace fp;
using namespace fp::ref;
using namespace fp::ref::test;

namespace {

double unitRoundoff(DType dtype) {
  return dtype == DType::kBF16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
}

double maxAbs(const Tensor &t) {
  double m = 0;
  for (uint16_t bits : t.storage())
    m = std::max(m,
                 std::fabs(static_cast<double>(bitsToFloat(t.dtype(), bits))));
  return m;
}

/// Every element of `got` within the rounding bound of `truth`, every LSE
/// within 1e-5 relative, -inf exactly where the truth is -inf.
void expectWithinBound(const AttentionOutput &got,
                       const NaiveAttentionOutput &truth, double maxV) {
  const Tensor &o = got.out;
  const double u = unitRoundoff(o.dtype());
  int64_t index = 0;
  for (int64_t b = 0; b < o.batch(); ++b)
    for (int64_t s = 0; s < o.seq(); ++s)
      for (int64_t h = 0; h < o.heads(); ++h)
        for (int64_t c = 0; c < o.dim(); ++c, ++index) {
          double t = truth.out[index];
          double bound = u * (std::fabs(t) + maxV) * 1.01 + 1e-4 * maxV;
          ASSERT_LE(std::fabs(o.at(b, s, h, c) - t), bound)
              << "b=" << b << " s=" << s << " h=" << h << " c=" << c;
        }
  ASSERT_EQ(got.lse.size(), truth.lse.size());
  for (size_t i = 0; i < got.lse.size(); ++i) {
    if (std::isinf(truth.lse[i])) {
      ASSERT_TRUE(std::isinf(got.lse[i]) && got.lse[i] < 0) << i;
      continue;
    }
    ASSERT_NEAR(got.lse[i], truth.lse[i],
                1e-5 * std::max(1.0, std::fabs(truth.lse[i])))
        << i;
  }
}

/// A seeded random mask; with `keepDiagonal` every row keeps j == I.
BlockMask randomMask(int64_t batch, int64_t heads, int64_t nb, uint32_t seed,
                     bool keepDiagonal) {
  std::mt19937 rng(seed);
  BlockMask mask = BlockMask::empty(batch, heads, nb);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < nb; ++i) {
        int32_t *ids = mask.ids.data() + ((b * heads + h) * nb + i) * nb;
        int32_t count = 0;
        for (int64_t j = 0; j <= i; ++j)
          if (rng() % 2 == 0 || (keepDiagonal && j == i))
            ids[count++] = static_cast<int32_t>(j);
        mask.counts[(b * heads + h) * nb + i] = count;
      }
  return mask;
}

/// The rows of head (b, h) of `mask` as a batch-1, head-1 mask.
BlockMask maskSlice(const BlockMask &mask, int64_t b, int64_t h) {
  BlockMask one = BlockMask::empty(1, 1, mask.numBlocks);
  for (int64_t i = 0; i < mask.numBlocks; ++i) {
    one.counts[i] = mask.count(b, h, i);
    for (int64_t e = 0; e < mask.numBlocks; ++e)
      one.ids[i * mask.numBlocks + e] = mask.rowIds(b, h, i)[e];
  }
  return one;
}

} // namespace

// Dense causal attention is within the bf16 / fp16 rounding bound of the
// fp64 truth (L = 37 is not a multiple of B = 8; GQA g = 2; batch 2).
TEST(Attention, DenseWithinRoundingBoundOfFp64) {
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    Tensor q = randomTensor(dtype, 2, 37, 4, 16, 1, 1.5f);
    Tensor k = randomTensor(dtype, 2, 37, 2, 16, 2, 1.5f);
    Tensor v = randomTensor(dtype, 2, 37, 2, 16, 3);
    Options options = plainOptions(8, 0.1f);
    StatusOr<AttentionOutput> got =
        denseCausalAttention(q.view(), k.view(), v.view(), options);
    StatusOr<NaiveAttentionOutput> truth =
        naiveAttention(q.view(), k.view(), v.view(), options);
    ASSERT_TRUE(got.isOk()) << got.status().toString();
    ASSERT_TRUE(truth.isOk()) << truth.status().toString();
    expectWithinBound(*got, *truth, maxAbs(v));
  }
}

// Masked attention (random masks, some rows without their diagonal, some
// empty) is within the same bound of the fp64 truth with the same mask;
// d_v (24) may differ from d (16).
TEST(Attention, MaskedWithinRoundingBoundOfFp64) {
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    Tensor q = randomTensor(dtype, 2, 45, 4, 16, 4, 1.5f);
    Tensor k = randomTensor(dtype, 2, 45, 1, 16, 5, 1.5f);
    Tensor v = randomTensor(dtype, 2, 45, 1, 24, 6);
    Options options = plainOptions(4, 0.1f);
    BlockMask mask = randomMask(2, 4, 12, 7, /*keepDiagonal=*/false);
    StatusOr<AttentionOutput> got =
        maskedAttention(q.view(), k.view(), v.view(), mask, options);
    StatusOr<NaiveAttentionOutput> truth =
        naiveAttention(q.view(), k.view(), v.view(), options, &mask);
    ASSERT_TRUE(got.isOk()) << got.status().toString();
    ASSERT_TRUE(truth.isOk());
    EXPECT_EQ(got->out.dim(), 24);
    expectWithinBound(*got, *truth, maxAbs(v));
  }
}

// LSE is the natural-log log-sum-exp of the scaled logits, by hand:
// d = 1, scale 1, q = [1, 2], k = [0.5, 1.5].
TEST(Attention, LseMatchesDirectComputation) {
  Tensor q = makeTensor(DType::kBF16, 1, 2, 1, 1,
                        [](int64_t, int64_t s, int64_t, int64_t) {
                          return s == 0 ? 1.0f : 2.0f;
                        });
  Tensor k = makeTensor(DType::kBF16, 1, 2, 1, 1,
                        [](int64_t, int64_t s, int64_t, int64_t) {
                          return s == 0 ? 0.5f : 1.5f;
                        });
  Tensor v = makeTensor(DType::kBF16, 1, 2, 1, 1,
                        [](int64_t, int64_t s, int64_t, int64_t) {
                          return s == 0 ? 1.0f : -1.0f;
                        });
  Options options = plainOptions(2, 0.1f);
  options.scale = 1.0f;
  StatusOr<AttentionOutput> got =
      denseCausalAttention(q.view(), k.view(), v.view(), options);
  ASSERT_TRUE(got.isOk());
  EXPECT_FLOAT_EQ(got->lse[0], 0.5f); // row 0 sees key 0 only
  EXPECT_NEAR(got->lse[1], std::log(std::exp(1.0) + std::exp(3.0)), 1e-6);
  // Row 1: (e^1 * 1 + e^3 * -1) / (e^1 + e^3), rounded to bf16.
  double o1 = (std::exp(1.0) - std::exp(3.0)) / (std::exp(1.0) + std::exp(3.0));
  EXPECT_NEAR(got->out.at(0, 1, 0, 0), o1, std::fabs(o1) * 0.01);
}

// Causal masking inside the diagonal block: with only j == I kept, the
// block's first row sees only itself, so O equals its own v bit for bit
// and LSE is its own scaled logit.
TEST(Attention, DiagonalBlockIsCausal) {
  Tensor q = randomTensor(DType::kBF16, 1, 12, 2, 8, 1);
  Tensor k = randomTensor(DType::kBF16, 1, 12, 2, 8, 2);
  Tensor v = randomTensor(DType::kBF16, 1, 12, 2, 8, 3);
  Options options = plainOptions(4, 0.1f);
  BlockMask mask = BlockMask::empty(1, 2, 3);
  for (int64_t row = 0; row < 2 * 3; ++row) {
    mask.counts[row] = 1;
    mask.ids[row * 3] = static_cast<int32_t>(row % 3);
  }
  StatusOr<AttentionOutput> got =
      maskedAttention(q.view(), k.view(), v.view(), mask, options);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t first : {0, 4, 8}) {
      for (int64_t c = 0; c < 8; ++c)
        EXPECT_EQ(got->out.at(0, first, h, c), v.at(0, first, h, c));
      float qk = 0;
      for (int64_t c = 0; c < 8; ++c)
        qk += q.at(0, first, h, c) * k.at(0, first, h, c);
      EXPECT_NEAR(got->lse[h * 12 + first], qk / std::sqrt(8.0f), 1e-5);
    }
  // Later rows of the block differ from the fp64 truth only by rounding.
  StatusOr<NaiveAttentionOutput> truth =
      naiveAttention(q.view(), k.view(), v.view(), options, &mask);
  ASSERT_TRUE(truth.isOk());
  expectWithinBound(*got, *truth, maxAbs(v));
}

// A row with no visible key (empty mask row) gives O = 0 and LSE = -inf,
// never NaN.
TEST(Attention, EmptyRowGivesZeroAndNegInf) {
  Tensor q = randomTensor(DType::kF16, 1, 10, 1, 8, 1);
  Tensor k = randomTensor(DType::kF16, 1, 10, 1, 8, 2);
  Tensor v = randomTensor(DType::kF16, 1, 10, 1, 8, 3);
  BlockMask mask = BlockMask::denseCausal(1, 1, 3);
  mask.counts[1] = 0; // rows 4..7 see nothing
  StatusOr<AttentionOutput> got = maskedAttention(q.view(), k.view(), v.view(),
                                                  mask, plainOptions(4, 0.1f));
  ASSERT_TRUE(got.isOk());
  EXPECT_FALSE(hasNaN(*got));
  for (int64_t r = 4; r < 8; ++r) {
    EXPECT_TRUE(std::isinf(got->lse[r]) && got->lse[r] < 0) << r;
    for (int64_t c = 0; c < 8; ++c)
      EXPECT_EQ(got->out.view().row(0, r, 0)[c], 0u) << r; // +0 bits
  }
  EXPECT_TRUE(std::isfinite(got->lse[3]));
  EXPECT_TRUE(std::isfinite(got->lse[8]));
}

// No NaN for any row, even with logits in the hundreds (exp would overflow
// without the max subtraction) and with empty rows.
TEST(Attention, NoNaNWithLargeLogits) {
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    Tensor q = randomTensor(dtype, 1, 33, 2, 16, 1, 8.0f);
    Tensor k = randomTensor(dtype, 1, 33, 2, 16, 2, 8.0f);
    Tensor v = randomTensor(dtype, 1, 33, 2, 16, 3);
    Options options = plainOptions(4, 0.1f);
    options.scale = 1.0f;
    BlockMask mask = randomMask(1, 2, 9, 5, /*keepDiagonal=*/false);
    StatusOr<AttentionOutput> got =
        maskedAttention(q.view(), k.view(), v.view(), mask, options);
    ASSERT_TRUE(got.isOk());
    EXPECT_FALSE(hasNaN(*got));
    StatusOr<NaiveAttentionOutput> truth =
        naiveAttention(q.view(), k.view(), v.view(), options, &mask);
    ASSERT_TRUE(truth.isOk());
    expectWithinBound(*got, *truth, maxAbs(v));
  }
}

// GQA: query head h reads kv head h / g (g = 1, 4, 8); batches are
// independent. Checked bit for bit against single-head, single-batch calls.
TEST(Attention, GqaAndBatchSlicing) {
  for (int64_t group : {1, 4, 8}) {
    const int64_t hkv = 2, hq = hkv * group;
    Tensor q = randomTensor(DType::kBF16, 2, 19, hq, 8, 30 + group);
    Tensor k = randomTensor(DType::kBF16, 2, 19, hkv, 8, 40 + group);
    Tensor v = randomTensor(DType::kBF16, 2, 19, hkv, 8, 50 + group);
    Options options = plainOptions(4, 0.1f);
    BlockMask mask = randomMask(2, hq, 5, 60 + group, true);
    StatusOr<AttentionOutput> all =
        maskedAttention(q.view(), k.view(), v.view(), mask, options);
    ASSERT_TRUE(all.isOk());
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t h = 0; h < hq; ++h) {
        BlockMask oneMask = maskSlice(mask, b, h);
        StatusOr<AttentionOutput> one = maskedAttention(
            headSlice(batchSlice(q.view(), b), h),
            headSlice(batchSlice(k.view(), b), h / group),
            headSlice(batchSlice(v.view(), b), h / group), oneMask, options);
        ASSERT_TRUE(one.isOk());
        for (int64_t s = 0; s < 19; ++s) {
          for (int64_t c = 0; c < 8; ++c)
            ASSERT_EQ(all->out.at(b, s, h, c), one->out.at(0, s, 0, c))
                << "g=" << group << " b=" << b << " h=" << h << " s=" << s;
          ASSERT_EQ(all->lse[(b * hq + h) * 19 + s], one->lse[s]);
        }
      }
  }
}

// Strided views of a packed QKV buffer [b, s, h_q + 2 h_kv, d] give the same
// result as contiguous copies.
TEST(Attention, PackedQkvViews) {
  const int64_t batch = 2, seq = 13, hq = 4, hkv = 2, d = 8;
  const int64_t width = hq + 2 * hkv;
  Tensor packed = randomTensor(DType::kBF16, batch, seq, width, d, 9);
  TensorView all = packed.view();
  auto heads = [&](int64_t first, int64_t count) {
    TensorView view = all;
    view.data = all.data + first * all.headStride;
    view.heads = count;
    return view;
  };
  TensorView q = heads(0, hq), k = heads(hq, hkv), v = heads(hq + hkv, hkv);
  Options options = plainOptions(4, 0.1f);
  StatusOr<AttentionOutput> strided = denseCausalAttention(q, k, v, options);
  Tensor qc = Tensor::copyOf(q), kc = Tensor::copyOf(k), vc = Tensor::copyOf(v);
  StatusOr<AttentionOutput> contiguous =
      denseCausalAttention(qc.view(), kc.view(), vc.view(), options);
  ASSERT_TRUE(strided.isOk() && contiguous.isOk());
  EXPECT_EQ(strided->out.storage(), contiguous->out.storage());
  EXPECT_EQ(strided->lse, contiguous->lse);
}

// Results do not depend on the number of threads.
TEST(Attention, ThreadCountDoesNotChangeResults) {
  Tensor q = randomTensor(DType::kBF16, 2, 50, 4, 16, 1);
  Tensor k = randomTensor(DType::kBF16, 2, 50, 2, 16, 2);
  Tensor v = randomTensor(DType::kBF16, 2, 50, 2, 16, 3);
  Options one = plainOptions(8, 0.1f), many = one;
  one.numThreads = 1;
  many.numThreads = 3;
  StatusOr<AttentionOutput> a =
      denseCausalAttention(q.view(), k.view(), v.view(), one);
  StatusOr<AttentionOutput> b =
      denseCausalAttention(q.view(), k.view(), v.view(), many);
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_EQ(a->out.storage(), b->out.storage());
  EXPECT_EQ(a->lse, b->lse);
}

// Masks that break the contract are rejected with a message naming the
// entry: a block above the diagonal, ids out of order, a count too large,
// wrong dimensions.
TEST(Attention, RejectsMalformedMasks) {
  Tensor q = randomTensor(DType::kBF16, 1, 8, 1, 4, 1);
  Tensor k = randomTensor(DType::kBF16, 1, 8, 1, 4, 2);
  Options options = plainOptions(4, 0.1f);
  auto attend = [&](const BlockMask &mask) {
    return maskedAttention(q.view(), k.view(), k.view(), mask, options)
        .status();
  };
  BlockMask above = BlockMask::denseCausal(1, 1, 2);
  above.ids[0 * 2 + 0] = 1; // row I = 0 keeps j = 1
  Status s = attend(above);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "mask.ids[b=0, h=0, I=0]: expected strictly "
                         "ascending block ids in [0, 0], got 1 at position 0");
  BlockMask unordered = BlockMask::denseCausal(1, 1, 2);
  unordered.ids[1 * 2 + 0] = 1;
  unordered.ids[1 * 2 + 1] = 0;
  EXPECT_EQ(attend(unordered).code(), StatusCode::kInvalidArgument);
  BlockMask tooMany = BlockMask::denseCausal(1, 1, 2);
  tooMany.counts[0] = 2;
  EXPECT_EQ(attend(tooMany).message(),
            "mask.counts[b=0, h=0, I=0]: expected a value in [0, 1], got 2");
  Status wrongBlocks = attend(BlockMask::denseCausal(1, 1, 3));
  EXPECT_EQ(wrongBlocks.message(),
            "mask.num_blocks: expected 2 (ceil(s_q / block_size)), got 3");
}

// dotF32 follows its documented order exactly: 8 lanes (c % 8), combined
// as ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)); lengths with tails too.
TEST(Attention, DotProductOrderIsAsDocumented) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t n : {1, 7, 8, 9, 16, 31, 64, 100, 128, 256}) {
    std::vector<float> a(n), b(n);
    for (int64_t c = 0; c < n; ++c) {
      a[c] = normal(rng) * 1000.0f; // large range: order matters
      b[c] = normal(rng);
    }
    float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t c = 0; c < n; ++c)
      lane[c % 8] += a[c] * b[c];
    float expected = ((lane[0] + lane[4]) + (lane[2] + lane[6])) +
                     ((lane[1] + lane[5]) + (lane[3] + lane[7]));
    EXPECT_EQ(dotF32(a.data(), b.data(), n), expected) << "n=" << n;
  }
}

// maskedAttention equals, bit for bit, a direct scalar transcription of
// its documented formula (reference.h): s = dotF32 * scale, m, p = exp(s-m),
// l = sum p ascending, o = sum round(p) v ascending, O = round(o / l).
TEST(Attention, MatchesDocumentedFormulaBitForBit) {
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    const int64_t seq = 29, hq = 2, d = 12, dv = 70, block = 4;
    Tensor q = randomTensor(dtype, 1, seq, hq, d, 1, 1.5f);
    Tensor k = randomTensor(dtype, 1, seq, 1, d, 2, 1.5f);
    Tensor v = randomTensor(dtype, 1, seq, 1, dv, 3);
    Options options = plainOptions(block, 0.1f);
    BlockMask mask = randomMask(1, hq, 8, 4, /*keepDiagonal=*/false);
    StatusOr<AttentionOutput> got =
        maskedAttention(q.view(), k.view(), v.view(), mask, options);
    ASSERT_TRUE(got.isOk());
    const float scale = 1.0f / std::sqrt(static_cast<float>(d));
    for (int64_t h = 0; h < hq; ++h)
      for (int64_t r = 0; r < seq; ++r) {
        std::vector<int64_t> keys; // visible keys, ascending
        for (int32_t j : mask.kept(0, h, r / block))
          for (int64_t c = j * block; c < std::min((j + 1) * block, seq); ++c)
            if (c <= r)
              keys.push_back(c);
        std::vector<float> qr(d), s;
        for (int64_t x = 0; x < d; ++x)
          qr[x] = q.at(0, r, h, x);
        float m = -std::numeric_limits<float>::infinity();
        for (int64_t c : keys) {
          std::vector<float> kc(d);
          for (int64_t x = 0; x < d; ++x)
            kc[x] = k.at(0, c, 0, x);
          s.push_back(dotF32(qr.data(), kc.data(), d) * scale);
          m = std::max(m, s.back());
        }
        float l = 0;
        std::vector<float> o(dv, 0.0f);
        for (size_t e = 0; e < keys.size(); ++e) {
          float p = std::exp(s[e] - m);
          l += p;
          float pr = roundToDType(dtype, p);
          for (int64_t x = 0; x < dv; ++x)
            o[x] += pr * v.at(0, keys[e], 0, x);
        }
        for (int64_t x = 0; x < dv; ++x) {
          float expected = keys.empty() ? 0.0f : roundToDType(dtype, o[x] / l);
          ASSERT_EQ(got->out.at(0, r, h, x), expected)
              << fp::dtypeName(dtype) << " h=" << h << " r=" << r;
        }
        float lse = keys.empty() ? -std::numeric_limits<float>::infinity()
                                 : m + std::log(l);
        ASSERT_EQ(got->lse[h * seq + r], lse);
      }
  }
}
