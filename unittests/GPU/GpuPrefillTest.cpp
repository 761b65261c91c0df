//===- GpuPrefillTest.cpp - The operator on the GPU vs the oracle -*- C++
//-*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The GPU checks through the public API (JIT + cache) on structured
// inputs: selection parity with the CPU reference (disagreements allowed
// only within 1e-4 * max of the threshold; counted and printed), output
// error against fp64 on the GPU's own mask bounded by 2x the error of a
// naive fp32-accumulating kernel with P rounded to the input dtype (plus an
// absolute floor), every output written (poisoned first), no NaN, LSE, the
// kept-block counter, planted needles, determinism. Long lengths check
// sampled query blocks. Tests skip without a GPU.
//
//===----------------------------------------------------------------------===//
#include "GpuTestUtil.h"

#include <cmath>
#include <cstdio>
#include <ostream>

namespace fp::gputest {
namespace {

struct Case {
  int headDim, blockSize;
  fp_dtype_t dtype;
  int qHeads, kvHeads;
  int64_t batch, seqLen;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << "d" << c.headDim << " B" << c.blockSize << " "
      << (c.dtype == FP_DTYPE_BF16 ? "bf16" : "f16") << " h_q " << c.qHeads
      << " h_kv " << c.kvHeads << " batch " << c.batch << " s " << c.seqLen;
}

std::string caseName(const ::testing::TestParamInfo<Case> &info) {
  const Case &c = info.param;
  return "d" + std::to_string(c.headDim) + "_b" + std::to_string(c.blockSize) +
         (c.dtype == FP_DTYPE_BF16 ? "_bf16" : "_f16") + "_g" +
         std::to_string(c.qHeads / c.kvHeads) + "_batch" +
         std::to_string(c.batch) + "_s" + std::to_string(c.seqLen);
}

ref::TensorView hostView(const std::vector<uint16_t> &data, DType dtype,
                         int64_t b, int64_t s, int64_t h, int64_t d) {
  return {data.data(), dtype, b, s, h, d, s * h * d, h * d, d};
}

/// Counts mask disagreements of one row (b, h, I) between the GPU and the
/// reference rule on `scores` (the reference row), split into those within
/// 1e-4 * max of the threshold and the others.
void compareRow(const float *scores, int64_t i, int64_t nb,
                const ref::Options &options, const int32_t *gpuIds,
                int32_t gpuCount, int64_t &near, int64_t &other) {
  std::vector<int32_t> refIds(size_t(i + 1));
  int32_t refCount = ref::thresholdRow(scores, i, nb, options, refIds.data());
  float maxScore = 0, minScore = INFINITY;
  for (int64_t j = 0; j <= i; ++j) {
    maxScore = std::max(maxScore, scores[j]);
    minScore = std::min(minScore, scores[j]);
  }
  float threshold =
      options.thresholdKind == ref::ThresholdKind::kMinMax
          ? options.alpha * maxScore + (1 - options.alpha) * minScore
          : options.alpha * maxScore;
  std::vector<char> want(size_t(i + 1), 0), got(size_t(i + 1), 0);
  for (int32_t c = 0; c < refCount; ++c)
    want[refIds[c]] = 1;
  for (int32_t c = 0; c < gpuCount; ++c)
    if (gpuIds[c] >= 0 && gpuIds[c] <= i)
      got[gpuIds[c]] = 1;
  for (int64_t j = 0; j <= i; ++j)
    if (want[j] != got[j])
      (std::fabs(scores[j] - threshold) <= 1e-4f * maxScore ? near : other)++;
}

/// Attention of one query row over the kept blocks of its mask row, in fp64
/// (`naive` false) or as a naive kernel does it (fp32 accumulation, P
/// rounded to the input dtype; `naive` true). Also returns the fp64 LSE.
std::vector<double> attendRow(const ref::TensorView &q,
                              const ref::TensorView &k,
                              const ref::TensorView &v, int64_t b, int64_t h,
                              int64_t row, const int32_t *ids, int32_t count,
                              int64_t blockSize, bool naive, double *lse) {
  const int64_t d = q.dim, hk = h / (q.heads / k.heads);
  const double scale = 1.0 / std::sqrt(double(d));
  std::vector<int64_t> keys;
  for (int32_t c = 0; c < count; ++c)
    for (int64_t t = ids[c] * blockSize;
         t < std::min((ids[c] + 1) * blockSize, q.seq); ++t)
      if (t <= row)
        keys.push_back(t);
  std::vector<double> logits(keys.size());
  double m = -INFINITY;
  for (size_t n = 0; n < keys.size(); ++n) {
    double dot = 0;
    float dotF = 0;
    for (int64_t c = 0; c < d; ++c) {
      dot += double(q.at(b, row, h, c)) * k.at(b, keys[n], hk, c);
      dotF += q.at(b, row, h, c) * k.at(b, keys[n], hk, c);
    }
    logits[n] = naive ? double(dotF * float(scale)) : dot * scale;
    m = std::max(m, logits[n]);
  }
  std::vector<double> out(size_t(d), 0.0);
  double l = 0;
  for (size_t n = 0; n < keys.size(); ++n) {
    double p = std::exp(logits[n] - m);
    double pv = naive ? double(roundToDType(q.dtype, float(p))) : p;
    l += naive ? double(float(p)) : p;
    for (int64_t c = 0; c < d; ++c)
      out[c] += pv * v.at(b, keys[n], hk, c);
  }
  for (int64_t c = 0; c < d; ++c) {
    out[c] = keys.empty() ? 0.0 : out[c] / l;
    if (naive) // a kernel stores O in the input dtype
      out[c] = roundToDType(q.dtype, float(out[c]));
  }
  if (lse)
    *lse = keys.empty() ? -INFINITY : m + std::log(l);
  return out;
}

/// Checks the output (and LSE) of the listed rows on the GPU's mask.
void checkRows(const GpuProblem &p, const ref::TensorView &qv,
               const ref::TensorView &kv, const ref::TensorView &vv,
               const std::vector<std::array<int64_t, 3>> &rows,
               int64_t blockSize) {
  std::vector<double> gpu, truth, naive;
  double maxLseError = 0;
  int64_t nonFinite = 0;
  for (auto [b, h, r] : rows) {
    int64_t maskRow = (b * p.qHeads + h) * p.numBlocks + r / blockSize;
    const int32_t *ids = &p.hostIds[maskRow * p.numBlocks];
    int32_t count = p.hostCounts[maskRow];
    double lse = 0;
    auto t = attendRow(qv, kv, vv, b, h, r, ids, count, blockSize, false, &lse);
    auto n =
        attendRow(qv, kv, vv, b, h, r, ids, count, blockSize, true, nullptr);
    truth.insert(truth.end(), t.begin(), t.end());
    naive.insert(naive.end(), n.begin(), n.end());
    for (int64_t c = 0; c < p.headDim; ++c) {
      double x = bitsToFloat(
          qv.dtype,
          p.hostOut[((b * p.seqLen + r) * p.qHeads + h) * p.headDim + c]);
      nonFinite += !std::isfinite(x);
      gpu.push_back(x);
    }
    double gpuLse = p.hostLse[(b * p.qHeads + h) * p.seqLen + r];
    if (std::isinf(lse))
      EXPECT_TRUE(std::isinf(gpuLse) && gpuLse < 0) << "row " << r;
    else
      maxLseError = std::max(maxLseError, std::fabs(gpuLse - lse));
  }
  EXPECT_EQ(nonFinite, 0) << "unwritten (NaN-poisoned) or non-finite outputs";
  double gpuError = testing::relativeL2(gpu, truth);
  double naiveError = testing::relativeL2(naive, truth);
  // Floor: half a unit in the last place of bf16 (2^-9) relative, below
  // which both errors are rounding of the output itself.
  double bound = std::max(2.0 * naiveError, 2e-3);
  std::printf("  %zu rows: rel L2 vs fp64: gpu %.3e, naive fp32/P-rounded "
              "%.3e, bound %.3e; max |LSE error| %.3e\n",
              rows.size(), gpuError, naiveError, bound, maxLseError);
  EXPECT_LE(gpuError, bound);
  EXPECT_LE(maxLseError, 1e-3);
}

//===----------------------------------------------------------------------===//
// The matrix: every row checked against the full reference
//===----------------------------------------------------------------------===//

class GpuPrefillTest : public ::testing::TestWithParam<Case> {};

// Mask parity, output error bound, LSE, counter, needles and determinism.
TEST_P(GpuPrefillTest, MatchesReference) {
  const Case c = GetParam();
  FP_REQUIRE_GPU(drv);
  auto plan = makePlan(c.dtype, c.headDim, c.qHeads, c.kvHeads, c.blockSize,
                       c.batch, c.seqLen);
  ASSERT_TRUE(plan);
  auto inputs = testing::makeStructuredInputs(
      structuredConfig(c.dtype, c.batch, c.seqLen, c.qHeads, c.kvHeads,
                       c.headDim, c.blockSize, 7 + c.seqLen));
  const int64_t b = c.batch, s = c.seqLen, d = c.headDim;
  GpuProblem p(drv, inputs, b, s, c.qHeads, c.kvHeads, d, c.blockSize,
               *plan->selectWorkspaceBytes(b, s));
  fp_params_t params;
  fp_params_init(&params);
  ASSERT_TRUE(p.run(*plan, params, nullptr).isOk());
  p.download();
  std::vector<uint16_t> firstOut = p.hostOut;
  std::vector<int32_t> firstCounts = p.hostCounts, firstIds = p.hostIds;
  ASSERT_TRUE(p.kept.fill(0).isOk());
  ASSERT_TRUE(p.run(*plan, params, nullptr).isOk());
  p.download();
  // Determinism: bit-identical outputs and masks.
  EXPECT_EQ(p.hostOut, firstOut);
  EXPECT_EQ(p.hostCounts, firstCounts);
  EXPECT_EQ(p.hostIds, firstIds);

  DType dt = c.dtype == FP_DTYPE_BF16 ? DType::kBF16 : DType::kF16;
  ref::TensorView qv = hostView(inputs.q, dt, b, s, c.qHeads, d),
                  kv = hostView(inputs.k, dt, b, s, c.kvHeads, d),
                  vv = hostView(inputs.v, dt, b, s, c.kvHeads, d);
  ref::Options options;
  options.blockSize = c.blockSize;
  auto reference = ref::prefill(qv, kv, vv, options);
  ASSERT_TRUE(reference.isOk()) << reference.status().toString();

  ref::BlockMask gpuMask = p.blockMask();
  ASSERT_TRUE(gpuMask.validate(b, c.qHeads, p.numBlocks).isOk());
  int64_t near = 0, other = 0;
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t h = 0; h < c.qHeads; ++h)
      for (int64_t i = 0; i < p.numBlocks; ++i) {
        int64_t row = (bi * c.qHeads + h) * p.numBlocks + i;
        compareRow(reference->scores.row(bi, h, i), i, p.numBlocks, options,
                   &p.hostIds[row * p.numBlocks], p.hostCounts[row], near,
                   other);
      }
  std::printf("  density %.4f (reference %.4f), near-threshold "
              "disagreements %lld, other disagreements %lld\n",
              gpuMask.density(), reference->mask.density(), (long long)near,
              (long long)other);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(int64_t(p.hostKept), gpuMask.keptBlocks());
  // Needles: the GPU keeps exactly what the reference rule keeps (parity
  // above); whether the rule finds every needle is a quality question,
  // reported here and measured by fp-bench.
  int64_t needlesKept = 0;
  for (const auto &n : inputs.needles)
    needlesKept += gpuMask.contains(n.batch, n.head, n.queryBlock, n.keyBlock);
  std::printf("  needles kept %lld/%zu\n", (long long)needlesKept,
              inputs.needles.size());

  // Output on the GPU's own mask, every row.
  auto truth = ref::naiveAttention(qv, kv, vv, options, &gpuMask);
  auto naive = ref::maskedAttention(qv, kv, vv, gpuMask, options);
  ASSERT_TRUE(truth.isOk() && naive.isOk());
  std::vector<double> gpuValues(p.hostOut.size()),
      naiveValues(p.hostOut.size());
  int64_t nonFinite = 0;
  for (size_t i = 0; i < p.hostOut.size(); ++i) {
    gpuValues[i] = bitsToFloat(dt, p.hostOut[i]);
    naiveValues[i] = bitsToFloat(dt, naive->out.storage()[i]);
    nonFinite += !std::isfinite(gpuValues[i]);
  }
  EXPECT_EQ(nonFinite, 0) << "unwritten (NaN-poisoned) or non-finite outputs";
  double gpuError = testing::relativeL2(gpuValues, truth->out);
  double naiveError = testing::relativeL2(naiveValues, truth->out);
  double bound = std::max(2.0 * naiveError, 2e-3);
  std::printf("  rel L2 vs fp64: gpu %.3e, naive fp32/P-rounded %.3e, bound "
              "%.3e\n",
              gpuError, naiveError, bound);
  EXPECT_LE(gpuError, bound);
  double maxLseError = 0;
  for (size_t i = 0; i < p.hostLse.size(); ++i) {
    if (std::isinf(truth->lse[i])) {
      EXPECT_TRUE(std::isinf(p.hostLse[i]) && p.hostLse[i] < 0) << "row " << i;
      continue;
    }
    maxLseError =
        std::max(maxLseError, std::fabs(p.hostLse[i] - truth->lse[i]));
  }
  std::printf("  max |LSE error| %.3e\n", maxLseError);
  EXPECT_LE(maxLseError, 1e-3);
}

// Pairwise-covering over head dim {64, 128, 256}, block {64, 128}, dtype
// {bf16, f16}, group {1, 4, 8}, batch {1, 4}, with lengths 1, B - 1, B + 1,
// non-multiples of B and up to 32K.
INSTANTIATE_TEST_SUITE_P(Matrix, GpuPrefillTest,
                         ::testing::Values(
                             // Issue 5's smoke configuration.
                             Case{128, 128, FP_DTYPE_BF16, 8, 2, 1, 4096},
                             Case{64, 64, FP_DTYPE_BF16, 4, 4, 1, 1},
                             Case{64, 128, FP_DTYPE_F16, 8, 2, 4, 127},
                             Case{64, 64, FP_DTYPE_F16, 8, 1, 4, 65},
                             Case{128, 64, FP_DTYPE_BF16, 8, 2, 1, 63},
                             Case{128, 128, FP_DTYPE_F16, 2, 2, 4, 129},
                             Case{128, 128, FP_DTYPE_BF16, 8, 1, 1, 32768},
                             Case{256, 64, FP_DTYPE_F16, 2, 2, 1, 4097},
                             Case{256, 128, FP_DTYPE_BF16, 8, 2, 4, 1000},
                             Case{256, 128, FP_DTYPE_F16, 8, 1, 1, 1},
                             Case{64, 128, FP_DTYPE_BF16, 8, 1, 1, 16384},
                             Case{128, 64, FP_DTYPE_F16, 4, 1, 4, 5000},
                             Case{256, 64, FP_DTYPE_BF16, 8, 1, 4, 300},
                             Case{64, 64, FP_DTYPE_F16, 4, 1, 1, 9999},
                             Case{256, 128, FP_DTYPE_F16, 4, 1, 1, 8191}),
                         caseName);

//===----------------------------------------------------------------------===//
// Long lengths: sampled query blocks
//===----------------------------------------------------------------------===//

class GpuLongTest : public ::testing::TestWithParam<int64_t> {};

// At 128K and 256K (d 128, h_q 32, h_kv 8) the mask of sampled query blocks
// matches the reference rule and their rows meet the error bound.
TEST_P(GpuLongTest, SampledBlocksMatchReference) {
  const int64_t s = GetParam(), b = 1, hq = 32, hkv = 8, d = 128, bs = 128;
  FP_REQUIRE_GPU(drv);
  GpuCase setup = makeCase(drv, FP_DTYPE_BF16, b, s, hq, hkv, d, bs, 3);
  ASSERT_TRUE(setup.plan);
  auto &plan = setup.plan;
  auto &inputs = setup.inputs;
  GpuProblem &p = *setup.problem;
  fp_params_t params;
  fp_params_init(&params);
  ASSERT_TRUE(p.run(*plan, params, nullptr).isOk());
  p.download();

  ref::TensorView qv = hostView(inputs.q, DType::kBF16, b, s, hq, d),
                  kv = hostView(inputs.k, DType::kBF16, b, s, hkv, d),
                  vv = hostView(inputs.v, DType::kBF16, b, s, hkv, d);
  ref::Options options;
  options.blockSize = bs;
  auto kbar = ref::blockPool(kv, options);
  ASSERT_TRUE(kbar.isOk());
  const int64_t nb = p.numBlocks;
  // Early, middle, late (sparse) and the last (dense) query blocks, for a
  // head of every kv group.
  std::vector<int64_t> blocks = {3, nb / 3, nb / 2 + 1, nb - 4, nb - 3, nb - 1};
  int64_t near = 0, other = 0;
  std::vector<float> scores(static_cast<size_t>(nb));
  std::vector<std::array<int64_t, 3>> rows;
  for (int64_t h = 0; h < hq; h += 5)
    for (int64_t i : blocks) {
      ASSERT_TRUE(
          ref::blockScoreRow(qv, kbar->view(), options, 0, h, i, scores.data())
              .isOk());
      int64_t row = h * nb + i;
      compareRow(scores.data(), i, nb, options, &p.hostIds[row * nb],
                 p.hostCounts[row], near, other);
      rows.push_back({0, h, i * bs});
      rows.push_back({0, h, std::min(s - 1, i * bs + bs - 1)});
    }
  std::printf("  %lld tokens: density %.4f, sampled rows: near-threshold "
              "disagreements %lld, other %lld\n",
              (long long)s, p.blockMask().density(), (long long)near,
              (long long)other);
  EXPECT_EQ(other, 0);
  checkRows(p, qv, kv, vv, rows, bs);
}

INSTANTIATE_TEST_SUITE_P(Long, GpuLongTest,
                         ::testing::Values(int64_t(131072), int64_t(262144)));

//===----------------------------------------------------------------------===//
// Modes and contracts
//===----------------------------------------------------------------------===//

// alpha = 0 keeps every causal block and equals dense causal attention.
TEST(GpuModeTest, AlphaZeroIsDenseAttention) {
  FP_REQUIRE_GPU(drv);
  const int64_t b = 2, s = 1500, hq = 8, hkv = 2, d = 128, bs = 128;
  GpuCase setup = makeCase(drv, FP_DTYPE_BF16, b, s, hq, hkv, d, bs, 5);
  ASSERT_TRUE(setup.plan);
  auto &plan = setup.plan;
  auto &inputs = setup.inputs;
  GpuProblem &p = *setup.problem;
  fp_params_t params;
  fp_params_init(&params);
  params.alpha = 0;
  ASSERT_TRUE(p.run(*plan, params, nullptr).isOk());
  p.download();
  EXPECT_DOUBLE_EQ(p.blockMask().density(), 1.0);
  ref::TensorView qv = hostView(inputs.q, DType::kBF16, b, s, hq, d),
                  kv = hostView(inputs.k, DType::kBF16, b, s, hkv, d),
                  vv = hostView(inputs.v, DType::kBF16, b, s, hkv, d);
  ref::Options options;
  options.blockSize = bs;
  auto dense = ref::naiveAttention(qv, kv, vv, options); // no mask: dense
  auto naive = ref::denseCausalAttention(qv, kv, vv, options);
  ASSERT_TRUE(dense.isOk() && naive.isOk());
  std::vector<double> gpu(p.hostOut.size()), naiveValues(p.hostOut.size());
  for (size_t i = 0; i < gpu.size(); ++i) {
    gpu[i] = bitsToFloat(DType::kBF16, p.hostOut[i]);
    naiveValues[i] = bitsToFloat(DType::kBF16, naive->out.storage()[i]);
  }
  double gpuError = testing::relativeL2(gpu, dense->out);
  double naiveError = testing::relativeL2(naiveValues, dense->out);
  std::printf("  dense: rel L2 vs fp64 gpu %.3e, naive %.3e\n", gpuError,
              naiveError);
  EXPECT_LE(gpuError, std::max(2.0 * naiveError, 2e-3));
  double maxLseError = 0;
  for (size_t i = 0; i < p.hostLse.size(); ++i)
    maxLseError =
        std::max(maxLseError, std::fabs(p.hostLse[i] - dense->lse[i]));
  EXPECT_LE(maxLseError, 1e-3);
}

// prefill() (not select + attend) below the plan's break-even length takes
// the dense fall-back; with dense_below_tokens = 0 it runs the rule. Both
// compared with the fp64 truth on the mask each should use, so a test that
// assumes the rule's mask at a short length fails here first.
TEST(GpuModeTest, PrefillShortPromptFallBackAndRule) {
  FP_REQUIRE_GPU(drv);
  const int64_t b = 1, s = 2000, hq = 8, hkv = 2, d = 128, bs = 128;
  GpuCase setup = makeCase(drv, FP_DTYPE_BF16, b, s, hq, hkv, d, bs, 11);
  ASSERT_TRUE(setup.plan);
  GpuProblem &p = *setup.problem;
  const int64_t denseBelow = setup.plan->info().denseBelowTokens;
  std::printf("  plan dense_below_tokens %lld\n", (long long)denseBelow);
  auto bytes = setup.plan->workspaceBytes(b, s);
  ASSERT_TRUE(bytes.isOk());
  DeviceBuffer workspace(drv, *bytes);
  ASSERT_TRUE(workspace.ok());

  ref::TensorView qv = hostView(setup.inputs.q, DType::kBF16, b, s, hq, d),
                  kv = hostView(setup.inputs.k, DType::kBF16, b, s, hkv, d),
                  vv = hostView(setup.inputs.v, DType::kBF16, b, s, hkv, d);
  ref::Options options;
  options.blockSize = bs;
  auto rule = ref::prefill(qv, kv, vv, options);
  ASSERT_TRUE(rule.isOk()) << rule.status().toString();
  ASSERT_LT(rule->mask.density(), 1.0)
      << "the structured input must prune something at this length";

  for (int64_t mode : {int64_t(FP_DENSE_BELOW_AUTO), int64_t(0)}) {
    fp_params_t params;
    fp_params_init(&params);
    params.dense_below_tokens = mode;
    params.lse = static_cast<float *>(p.lse.get());
    ASSERT_TRUE(p.out.fill(0xFF).isOk());
    ASSERT_TRUE(setup.plan
                    ->prefill(&p.qt, &p.kt, &p.vt, &p.ot, &params,
                              workspace.get(), workspace.size(), nullptr)
                    .isOk());
    p.download();
    const bool dense = mode == FP_DENSE_BELOW_AUTO && s < denseBelow;
    auto truth = dense ? ref::naiveAttention(qv, kv, vv, options)
                       : ref::naiveAttention(qv, kv, vv, options, &rule->mask);
    auto naive =
        dense ? ref::denseCausalAttention(qv, kv, vv, options)
              : ref::maskedAttention(qv, kv, vv, rule->mask, options);
    ASSERT_TRUE(truth.isOk() && naive.isOk());
    std::vector<double> gpu(p.hostOut.size()), naiveValues(p.hostOut.size());
    for (size_t i = 0; i < gpu.size(); ++i) {
      gpu[i] = bitsToFloat(DType::kBF16, p.hostOut[i]);
      naiveValues[i] = bitsToFloat(DType::kBF16, naive->out.storage()[i]);
    }
    double gpuError = testing::relativeL2(gpu, truth->out);
    double naiveError = testing::relativeL2(naiveValues, truth->out);
    double maxLseError = 0;
    for (size_t i = 0; i < p.hostLse.size(); ++i)
      maxLseError =
          std::max(maxLseError, std::fabs(p.hostLse[i] - truth->lse[i]));
    std::printf("  dense_below_tokens %lld (%s): rel L2 %.3e (naive %.3e), "
                "max |LSE error| %.3e\n",
                (long long)mode, dense ? "dense fall-back" : "rule",
                gpuError, naiveError, maxLseError);
    EXPECT_LE(gpuError, std::max(2.0 * naiveError, 2e-3));
    EXPECT_LE(maxLseError, 1e-3);
  }
}

// attend() on masks the rule never produces but a caller may pass: empty
// rows (O = 0, LSE = -inf, never NaN), the diagonal block only, and rows
// with the diagonal dropped (no token-level masking anywhere in the row).
TEST(GpuModeTest, AttendOnHandEditedMasks) {
  FP_REQUIRE_GPU(drv);
  const int64_t b = 2, s = 1100, hq = 4, hkv = 2, d = 64, bs = 64;
  GpuCase setup = makeCase(drv, FP_DTYPE_F16, b, s, hq, hkv, d, bs, 13);
  ASSERT_TRUE(setup.plan);
  GpuProblem &p = *setup.problem;
  fp_params_t params;
  fp_params_init(&params);
  params.alpha = 0; // every causal block, then edited below
  ASSERT_TRUE(p.run(*setup.plan, params, nullptr).isOk());
  p.download();
  ref::BlockMask edited = p.blockMask();
  const int64_t nb = p.numBlocks;
  int64_t emptyRows = 0;
  for (int64_t row = 0; row < b * hq * nb; ++row) {
    const int64_t i = row % nb;
    int32_t *ids = &edited.ids[row * nb];
    switch (row % 3) {
    case 0: // empty
      edited.counts[row] = 0;
      ++emptyRows;
      break;
    case 1: // diagonal only
      ids[0] = int32_t(i);
      edited.counts[row] = 1;
      break;
    default: // every causal block but the diagonal (empty for i = 0)
      for (int64_t j = 0; j < i; ++j)
        ids[j] = int32_t(j);
      edited.counts[row] = int32_t(i);
      emptyRows += i == 0;
      break;
    }
  }
  ASSERT_TRUE(edited.validate(b, hq, nb).isOk());
  ASSERT_TRUE(p.counts.upload(edited.counts.data()).isOk());
  ASSERT_TRUE(p.ids.upload(edited.ids.data()).isOk());
  ASSERT_TRUE(p.out.fill(0xFF).isOk()); // NaN poison
  fp_params_t attendParams = params;
  attendParams.lse = static_cast<float *>(p.lse.get());
  ASSERT_TRUE(setup.plan
                  ->attend(&p.qt, &p.kt, &p.vt, &p.mask, &p.ot, &attendParams,
                           nullptr)
                  .isOk());
  p.download();

  ref::TensorView qv = hostView(setup.inputs.q, DType::kF16, b, s, hq, d),
                  kv = hostView(setup.inputs.k, DType::kF16, b, s, hkv, d),
                  vv = hostView(setup.inputs.v, DType::kF16, b, s, hkv, d);
  ref::Options options;
  options.blockSize = bs;
  auto truth = ref::naiveAttention(qv, kv, vv, options, &edited);
  auto naive = ref::maskedAttention(qv, kv, vv, edited, options);
  ASSERT_TRUE(truth.isOk() && naive.isOk());
  std::vector<double> gpu(p.hostOut.size()), naiveValues(p.hostOut.size());
  int64_t nonFinite = 0;
  for (size_t i = 0; i < gpu.size(); ++i) {
    gpu[i] = bitsToFloat(DType::kF16, p.hostOut[i]);
    naiveValues[i] = bitsToFloat(DType::kF16, naive->out.storage()[i]);
    nonFinite += !std::isfinite(gpu[i]);
  }
  EXPECT_EQ(nonFinite, 0);
  int64_t emptyLseRows = 0;
  double maxLseError = 0;
  for (size_t i = 0; i < p.hostLse.size(); ++i) {
    if (std::isinf(truth->lse[i])) {
      ++emptyLseRows;
      EXPECT_TRUE(std::isinf(p.hostLse[i]) && p.hostLse[i] < 0) << "row " << i;
      continue;
    }
    maxLseError =
        std::max(maxLseError, std::fabs(p.hostLse[i] - truth->lse[i]));
  }
  double gpuError = testing::relativeL2(gpu, truth->out);
  double naiveError = testing::relativeL2(naiveValues, truth->out);
  std::printf("  edited masks: %lld empty block rows, %lld -inf LSE rows, "
              "rel L2 %.3e (naive %.3e), max |LSE error| %.3e\n",
              (long long)emptyRows, (long long)emptyLseRows, gpuError,
              naiveError, maxLseError);
  EXPECT_GT(emptyLseRows, 0);
  EXPECT_LE(gpuError, std::max(2.0 * naiveError, 2e-3));
  EXPECT_LE(maxLseError, 1e-3);
}

// select + attend captured into a CUDA graph (no allocation, no sync inside)
// replays to the same bits as the direct calls.
TEST(GpuModeTest, CudaGraphCaptureReplays) {
  FP_REQUIRE_GPU(drv);
  const auto &api = drv->api();
  const int64_t b = 1, s = 3000, hq = 8, hkv = 2, d = 64, bs = 64;
  GpuCase setup = makeCase(drv, FP_DTYPE_F16, b, s, hq, hkv, d, bs, 9);
  ASSERT_TRUE(setup.plan);
  auto &plan = setup.plan;
  auto &inputs = setup.inputs;
  GpuProblem &p = *setup.problem;
  fp_params_t params;
  fp_params_init(&params);
  ASSERT_TRUE(p.run(*plan, params, nullptr).isOk());
  p.download();
  std::vector<uint16_t> direct = p.hostOut;
  std::vector<int32_t> directIds = p.hostIds, directCounts = p.hostCounts;

  CUstream stream = nullptr;
  ASSERT_EQ(api.streamCreate(&stream, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  ASSERT_TRUE(p.out.fill(0xFF).isOk());
  ASSERT_TRUE(p.counts.fill(0xFF).isOk());
  ASSERT_TRUE(p.ids.fill(0xFF).isOk());
  ASSERT_EQ(api.ctxSynchronize(), CUDA_SUCCESS);
  ASSERT_EQ(api.streamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL),
            CUDA_SUCCESS);
  Status captured = p.run(*plan, params, stream);
  CUgraph graph = nullptr;
  ASSERT_EQ(api.streamEndCapture(stream, &graph), CUDA_SUCCESS);
  ASSERT_TRUE(captured.isOk()) << captured.toString();
  CUgraphExec exec = nullptr;
  ASSERT_EQ(api.graphInstantiate(&exec, graph, 0), CUDA_SUCCESS);
  for (int replay = 0; replay < 3; ++replay)
    ASSERT_EQ(api.graphLaunch(exec, stream), CUDA_SUCCESS);
  ASSERT_EQ(api.streamSynchronize(stream), CUDA_SUCCESS);
  p.download();
  EXPECT_EQ(p.hostOut, direct);
  EXPECT_EQ(p.hostCounts, directCounts);
  for (size_t row = 0; row < directCounts.size(); ++row)
    for (int32_t c = 0; c < directCounts[row];
         ++c) // past the count: unspecified
      ASSERT_EQ(p.hostIds[row * p.numBlocks + c],
                directIds[row * p.numBlocks + c]);
  api.graphExecDestroy(exec);
  api.graphDestroy(graph);
  api.streamDestroy(stream);
}

// Device tensors that break the 16-byte rules are rejected by name.
TEST(GpuModeTest, MisalignedDeviceTensorsAreRejected) {
  FP_REQUIRE_GPU(drv);
  const int64_t b = 1, s = 256, hq = 4, hkv = 4, d = 64, bs = 64;
  GpuCase setup = makeCase(drv, FP_DTYPE_BF16, b, s, hq, hkv, d, bs, 2);
  ASSERT_TRUE(setup.plan);
  auto &plan = setup.plan;
  auto &inputs = setup.inputs;
  GpuProblem &p = *setup.problem;
  fp_params_t params;
  fp_params_init(&params);
  p.qt.data = static_cast<char *>(p.qt.data) + 2;
  Status status = p.run(*plan, params, nullptr);
  EXPECT_NE(status.message().find("q.data: expected a 16-byte aligned"),
            std::string::npos)
      << status.toString();
  p.qt.data = p.q.get();
  p.kt.strides[1] = 4 * d + 4; // not a multiple of 8 elements
  status = p.run(*plan, params, nullptr);
  EXPECT_NE(status.message().find("k.strides[1]: expected a multiple of 8"),
            std::string::npos)
      << status.toString();
  p.kt.strides[1] = p.vt.strides[1];

  // A broadcast (stride 0 over more than one position) cannot be described
  // by a TMA tensor map: the sm_90a kernel names the argument instead.
  p.vt.strides[2] = 0;
  status = p.run(*plan, params, nullptr);
  if (plan->info().arch == "sm_90a")
    EXPECT_NE(status.message().find("v.strides[2]: expected > 0 for the sm_90a (TMA) "
                                    "attention kernel when the dimension has extent 4, got 0"),
              std::string::npos)
        << status.toString();
  else
    EXPECT_TRUE(status.isOk()) << status.toString();
}

} // namespace
} // namespace fp::gputest
