//===- ApiTest.cpp - The public API with the CPU backend --------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Round trips through the C API against the reference, and the bad-input
// table: every invalid argument gives a code and a message naming the
// argument and the expected value, and leaves the outputs untouched.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/flashprefill.h"
#include "flashprefill/flashprefill.hpp"
#include "flashprefill/reference.h"
#include "flashprefill/structured_inputs.h"

#include "GuardedPage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <sys/mman.h>
#include <thread>
#include <unistd.h>

namespace {

constexpr int64_t kBatch = 2, kSeq = 300, kQHeads = 4, kKvHeads = 2, kDim = 64,
                  kBlock = 64, kBlocks = 5;

fp_tensor_t tensorOf(std::vector<uint16_t> &data, int64_t heads) {
  return {data.data(),
          {kBatch, kSeq, heads, kDim},
          {kSeq * heads * kDim, heads * kDim, kDim, 1}};
}

double bf16ToDouble(uint16_t bits) {
  uint32_t word = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &word, sizeof(value));
  return value;
}

/// Causal attention in float64 from the bf16 inputs alone (no library
/// code): row r of (b, query head h) sees the keys c <= r of kv head
/// h / (h_q / h_kv) whose block is kept(b, h, r's block, c's block).
struct Float64Attention {
  std::vector<double> out; ///< [b, s, h_q, d]
  std::vector<double> lse; ///< [b, h_q, s]
};
using KeptFn = std::function<bool(int64_t b, int64_t h, int64_t i, int64_t j)>;
Float64Attention attentionInFloat64(const fp::testing::StructuredInputs &in,
                                    double scale, const KeptFn &kept) {
  Float64Attention result;
  result.out.assign(kBatch * kSeq * kQHeads * kDim, 0.0);
  result.lse.assign(kBatch * kQHeads * kSeq, 0.0);
  const int64_t group = kQHeads / kKvHeads;
  std::vector<double> logits(kSeq);
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t h = 0; h < kQHeads; ++h)
      for (int64_t r = 0; r < kSeq; ++r) {
        const uint16_t *qRow = &in.q[((b * kSeq + r) * kQHeads + h) * kDim];
        double maxLogit = -INFINITY;
        for (int64_t c = 0; c <= r; ++c) {
          logits[c] = -INFINITY;
          if (!kept(b, h, r / kBlock, c / kBlock))
            continue;
          const uint16_t *kRow =
              &in.k[((b * kSeq + c) * kKvHeads + h / group) * kDim];
          double dot = 0;
          for (int64_t x = 0; x < kDim; ++x)
            dot += bf16ToDouble(qRow[x]) * bf16ToDouble(kRow[x]);
          logits[c] = dot * scale;
          maxLogit = std::max(maxLogit, logits[c]);
        }
        double sum = 0;
        double *o = &result.out[((b * kSeq + r) * kQHeads + h) * kDim];
        for (int64_t c = 0; c <= r; ++c) {
          if (logits[c] == -INFINITY)
            continue;
          double p = std::exp(logits[c] - maxLogit);
          sum += p;
          const uint16_t *vRow =
              &in.v[((b * kSeq + c) * kKvHeads + h / group) * kDim];
          for (int64_t x = 0; x < kDim; ++x)
            o[x] += p * bf16ToDouble(vRow[x]);
        }
        for (int64_t x = 0; x < kDim; ++x)
          o[x] /= sum;
        result.lse[(b * kQHeads + h) * kSeq + r] = maxLogit + std::log(sum);
      }
  return result;
}

/// The API's bf16 output and fp32 LSE agree with the float64 attention.
/// bf16 rounds P and O (2^-9 relative each; measured: at most 0.4 of the
/// bound below), so outputs may differ by 1% of max(1, |value|) and LSE by
/// 1e-4 (fp32 sums); a wrong head, scale, stride or row is off by O(1).
void expectCloseToFloat64(const std::vector<uint16_t> &out,
                          const std::vector<float> &lse,
                          const Float64Attention &want, const char *what) {
  double outError = 0, lseError = 0;
  size_t worstOut = 0, worstLse = 0;
  for (size_t i = 0; i < out.size(); ++i)
    if (double e = std::abs(bf16ToDouble(out[i]) - want.out[i]) /
                   std::max(1.0, std::abs(want.out[i]));
        e > outError)
      outError = e, worstOut = i;
  for (size_t i = 0; i < lse.size(); ++i)
    if (double e = std::abs(double(lse[i]) - want.lse[i]); e > lseError)
      lseError = e, worstLse = i;
  EXPECT_LE(outError, 1e-2) << what << ": out[" << worstOut << "] is "
                            << bf16ToDouble(out[worstOut]) << ", float64 "
                            << want.out[worstOut];
  EXPECT_LE(lseError, 1e-4) << what << ": lse[" << worstLse << "] is "
                            << lse[worstLse] << ", float64 "
                            << want.lse[worstLse];
}

/// A CPU plan and valid arguments; each test breaks one thing.
class ApiTest : public testing::Test {
protected:
  void SetUp() override {
    fp_plan_spec_init(&spec);
    spec.device = FP_DEVICE_CPU;
    spec.head_dim = kDim;
    spec.num_q_heads = kQHeads;
    spec.num_kv_heads = kKvHeads;
    spec.block_size = kBlock;
    spec.max_batch = kBatch;
    spec.max_seq_len = 512;
    ASSERT_EQ(fp_plan_create(&spec, &plan), FP_OK) << fp_last_error();

    fp::testing::StructuredConfig config;
    config.batch = kBatch;
    config.seqLen = kSeq;
    config.numQHeads = kQHeads;
    config.numKvHeads = kKvHeads;
    config.headDim = kDim;
    config.blockSize = kBlock;
    inputs = fp::testing::makeStructuredInputs(config);
    outData.assign(inputs.q.size(), 0x7777);
    q = tensorOf(inputs.q, kQHeads);
    k = tensorOf(inputs.k, kKvHeads);
    v = tensorOf(inputs.v, kKvHeads);
    out = tensorOf(outData, kQHeads);
    fp_params_init(&params);
    workspaceBytes = fp_plan_workspace_bytes(plan, kBatch, kSeq);
    workspace.assign(workspaceBytes, 0);
    counts.assign(kBatch * kQHeads * kBlocks, -7);
    ids.assign(kBatch * kQHeads * kBlocks * kBlocks, -7);
    mask = {counts.data(), ids.data(), kBatch, kQHeads, kBlocks};
  }
  void TearDown() override { fp_plan_destroy(plan); }

  /// The CPU oracle on this fixture's inputs.
  fp::StatusOr<fp::ref::PrefillOutput> referencePrefill(const fp::ref::Options &options) const {
    fp::ref::TensorView qv{inputs.q.data(), fp::DType::kBF16, kBatch, kSeq, kQHeads, kDim,
                           q.strides[0],    q.strides[1],     kDim};
    fp::ref::TensorView kv{inputs.k.data(), fp::DType::kBF16, kBatch, kSeq, kKvHeads, kDim,
                           k.strides[0],    k.strides[1],     kDim};
    fp::ref::TensorView vv{inputs.v.data(), fp::DType::kBF16, kBatch, kSeq, kKvHeads, kDim,
                           v.strides[0],    v.strides[1],     kDim};
    return fp::ref::prefill(qv, kv, vv, options);
  }

  fp_status_t prefill() {
    return fp_prefill(plan, &q, &k, &v, &out, &params, workspace.data(),
                      workspaceBytes, nullptr);
  }
  /// Expects `status` to be `code` with `message` in fp_last_error(), and
  /// the output still holding its fill pattern.
  void expectRejected(fp_status_t status, fp_status_t code,
                      const std::string &message) {
    EXPECT_EQ(status, code) << fp_last_error();
    EXPECT_NE(std::string(fp_last_error()).find(message), std::string::npos)
        << "message: " << fp_last_error();
    for (uint16_t x : outData)
      ASSERT_EQ(x, 0x7777) << "output written despite the error";
  }

  fp_plan_spec_t spec;
  fp_plan_t *plan = nullptr;
  fp::testing::StructuredInputs inputs;
  std::vector<uint16_t> outData;
  fp_tensor_t q, k, v, out;
  fp_params_t params;
  size_t workspaceBytes = 0;
  std::vector<char> workspace;
  std::vector<int32_t> counts, ids;
  fp_mask_t mask;
};

// fp_prefill on the CPU backend: the mask fp_select returns obeys the rule's
// invariants, the output and LSE equal float64 attention computed here over
// that mask (so the API's wiring of strides, heads, scale and LSE layout is
// checked by code independent of the library), select + attend equals
// prefill, and the reference (the oracle for which blocks the rule keeps)
// agrees bit for bit.
TEST_F(ApiTest, PrefillMatchesReference) {
  // A strict rule, so the mask is really sparse on these 5-block rows.
  params.alpha = 0.9f;
  params.sink = 1;
  params.window = 1;
  params.last_n = 1;
  std::vector<float> lse(kBatch * kQHeads * kSeq, NAN);
  params.lse = lse.data();
  unsigned long long kept = 0;
  params.kept_counter = &kept;
  size_t selectBytes = fp_plan_select_workspace_bytes(plan, kBatch, kSeq);
  ASSERT_EQ(fp_select(plan, &q, &k, &params, &mask, workspace.data(),
                      selectBytes, nullptr),
            FP_OK)
      << fp_last_error();

  // The rule's invariants on the returned mask.
  int64_t total = 0;
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t h = 0; h < kQHeads; ++h)
      for (int64_t i = 0; i < kBlocks; ++i) {
        const int64_t row = (b * kQHeads + h) * kBlocks + i;
        const int32_t count = counts[row];
        const int32_t *rowIds = &ids[row * kBlocks];
        ASSERT_GE(count, 1) << "row " << row;
        ASSERT_LE(count, i + 1) << "row " << row;
        for (int32_t n = 0; n < count; ++n) {
          ASSERT_GE(rowIds[n], 0) << "row " << row;
          ASSERT_LE(rowIds[n], i) << "row " << row;
          if (n > 0)
            ASSERT_LT(rowIds[n - 1], rowIds[n]) << "ids ascending, row " << row;
        }
        auto has = [&](int64_t j) {
          return std::find(rowIds, rowIds + count, j) != rowIds + count;
        };
        EXPECT_TRUE(has(i)) << "the diagonal block (window), row " << row;
        EXPECT_TRUE(has(0)) << "the sink block, row " << row;
        if (i >= kBlocks - params.last_n)
          EXPECT_EQ(count, i + 1) << "last_n rows are dense, row " << row;
        total += count;
      }
  EXPECT_EQ(int64_t(kept), total) << "kept_counter";
  const int64_t causalBlocks = kBatch * kQHeads * kBlocks * (kBlocks + 1) / 2;
  EXPECT_LT(total, causalBlocks) << "alpha 0.9 must drop some block here";

  const std::vector<int32_t> selectedCounts = counts, selectedIds = ids;
  auto keptBySelect = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
    const int64_t row = (b * kQHeads + h) * kBlocks + i;
    const int32_t *rowIds = &selectedIds[row * kBlocks];
    return std::find(rowIds, rowIds + selectedCounts[row], j) !=
           rowIds + selectedCounts[row];
  };
  const double defaultScale = 1.0 / std::sqrt(double(kDim));
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  expectCloseToFloat64(outData, lse,
                       attentionInFloat64(inputs, defaultScale, keptBySelect),
                       "prefill, alpha 0.9");
  EXPECT_EQ(counts, selectedCounts) << "fp_select wrote the caller's mask "
                                       "only; prefill keeps its own";

  // select + attend = prefill, and an explicit scale is honoured.
  std::vector<uint16_t> separate(outData.size(), 0);
  fp_tensor_t out2 = tensorOf(separate, kQHeads);
  ASSERT_EQ(fp_attend(plan, &q, &k, &v, &mask, &out2, &params, nullptr), FP_OK)
      << fp_last_error();
  EXPECT_EQ(separate, outData);
  params.scale = 0.3f;
  ASSERT_EQ(fp_attend(plan, &q, &k, &v, &mask, &out2, &params, nullptr), FP_OK)
      << fp_last_error();
  expectCloseToFloat64(separate, lse,
                       attentionInFloat64(inputs, double(0.3f), keptBySelect),
                       "attend, scale 0.3");
  params.scale = 0.0f;

  // alpha = 0 keeps every causal block: dense causal attention.
  params.alpha = 0.0f;
  kept = 0;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  EXPECT_EQ(int64_t(kept), causalBlocks);
  expectCloseToFloat64(
      outData, lse,
      attentionInFloat64(inputs, defaultScale,
                         [](int64_t, int64_t, int64_t, int64_t) { return true; }),
      "prefill, alpha 0 (dense causal)");

  // The oracle of the rule: the reference keeps the same blocks and
  // computes the same bits.
  params.alpha = 0.9f;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  fp::ref::Options options;
  options.blockSize = kBlock;
  options.alpha = params.alpha;
  options.sink = params.sink;
  options.window = params.window;
  options.lastN = params.last_n;
  auto reference = referencePrefill(options);
  ASSERT_TRUE(reference.isOk());
  EXPECT_EQ(selectedCounts, reference->mask.counts);
  EXPECT_EQ(outData, reference->attention.out.storage());
  EXPECT_EQ(lse, reference->attention.lse);
}

// The short-prompt fall-back: dense_below_tokens above the length makes
// prefill() keep every causal block (the reference with alpha = 0), 0 keeps
// the rule's mask, and the CPU plan's cost model never falls back.
TEST_F(ApiTest, DenseBelowTokensSwitchesPrefillToDense) {
  EXPECT_EQ(fp_plan_dense_below_tokens(plan), 0);
  // A strict rule on these 5-block rows, so the mask is really sparse.
  params.alpha = 0.9f;
  params.sink = 0;
  params.window = 1;
  params.last_n = 0;
  fp::ref::Options sparse;
  sparse.blockSize = kBlock;
  sparse.alpha = params.alpha;
  sparse.sink = params.sink;
  sparse.window = params.window;
  sparse.lastN = params.last_n;
  fp::ref::Options dense = sparse;
  dense.alpha = 0.0f;
  auto sparseRef = referencePrefill(sparse);
  auto denseRef = referencePrefill(dense);
  ASSERT_TRUE(sparseRef.isOk() && denseRef.isOk());
  // The inputs must make the two differ, or the test proves nothing.
  ASSERT_LT(sparseRef->mask.keptBlocks(), denseRef->mask.keptBlocks());

  params.dense_below_tokens = kSeq + 1;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  EXPECT_EQ(outData, denseRef->attention.out.storage());
  params.dense_below_tokens = kSeq; // not below: the rule's mask
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  EXPECT_EQ(outData, sparseRef->attention.out.storage());
  params.dense_below_tokens = FP_DENSE_BELOW_AUTO; // CPU plan: never
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  EXPECT_EQ(outData, sparseRef->attention.out.storage());

  // fp_select ignores it: the mask API always follows the rule.
  params.dense_below_tokens = kSeq + 1;
  size_t selectBytes = fp_plan_select_workspace_bytes(plan, kBatch, kSeq);
  ASSERT_EQ(fp_select(plan, &q, &k, &params, &mask, workspace.data(),
                      selectBytes, nullptr),
            FP_OK)
      << fp_last_error();
  EXPECT_EQ(counts, sparseRef->mask.counts);

  params.dense_below_tokens = -2;
  std::fill(outData.begin(), outData.end(), uint16_t(0x7777)); // the fill expectRejected checks
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.dense_below_tokens: expected -1 (FP_DENSE_BELOW_AUTO)");
  EXPECT_EQ(fp_plan_dense_below_tokens(nullptr), -1);
}

// A version-1 caller (struct_size without dense_below_tokens) gets AUTO.
TEST_F(ApiTest, VersionOneParamsGetTheCostModel) {
  params.struct_size = offsetof(fp_params_t, dense_below_tokens);
  params.dense_below_tokens = 1 << 30; // past struct_size: never read
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  fp::ref::Options options;
  options.blockSize = kBlock;
  auto reference = referencePrefill(options);
  ASSERT_TRUE(reference.isOk());
  EXPECT_EQ(outData, reference->attention.out.storage());
}

// A version-1 params struct (88 bytes) ending at a page boundary: every
// entry point reads it only up to its struct_size (it used to copy the
// whole current struct, 8 bytes past the caller's: SIGSEGV here) and
// dense_below_tokens takes its default.
TEST_F(ApiTest, VersionOneParamsAreReadOnlyToTheirSize) {
  constexpr size_t kVersionOneSize = offsetof(fp_params_t, dense_below_tokens);
  static_assert(kVersionOneSize == 88);
  static_assert(kVersionOneSize % alignof(fp_params_t) == 0);
  GuardedPage page;
  ASSERT_TRUE(page.ok());
  params.struct_size = kVersionOneSize;
  const fp_params_t *v1 = page.placeAtEnd(params, kVersionOneSize);

  ASSERT_EQ(fp_prefill(plan, &q, &k, &v, &out, v1, workspace.data(),
                       workspaceBytes, nullptr),
            FP_OK)
      << fp_last_error();
  fp::ref::Options options;
  options.blockSize = kBlock;
  auto reference = referencePrefill(options);
  ASSERT_TRUE(reference.isOk());
  EXPECT_EQ(outData, reference->attention.out.storage());

  size_t selectBytes = fp_plan_select_workspace_bytes(plan, kBatch, kSeq);
  ASSERT_EQ(fp_select(plan, &q, &k, v1, &mask, workspace.data(), selectBytes,
                      nullptr),
            FP_OK)
      << fp_last_error();
  EXPECT_EQ(counts, reference->mask.counts);
  std::vector<uint16_t> attended(outData.size(), 0);
  fp_tensor_t attendedOut = tensorOf(attended, kQHeads);
  ASSERT_EQ(fp_attend(plan, &q, &k, &v, &mask, &attendedOut, v1, nullptr),
            FP_OK)
      << fp_last_error();
  EXPECT_EQ(attended, outData);
  EXPECT_TRUE(fp::validateParams(v1).isOk());

  // The same for a spec whose struct ends at the page boundary.
  GuardedPage specPage;
  ASSERT_TRUE(specPage.ok());
  const fp_plan_spec_t *guardedSpec =
      specPage.placeAtEnd(spec, spec.struct_size);
  fp_plan_t *another = nullptr;
  ASSERT_EQ(fp_plan_create(guardedSpec, &another), FP_OK) << fp_last_error();
  fp_plan_destroy(another);
}

// params.mean_correction (version 3): the CPU plan's prefill equals the
// reference with the option (and differs from it off); values other than
// 0 and 1 are named; a version-2 struct ending at a guard page is read
// without the field (off).
TEST_F(ApiTest, MeanCorrectionParams) {
  fp::ref::Options options;
  options.blockSize = kBlock;
  options.alpha = 0.9f;
  options.sink = 0;
  options.window = 1;
  options.lastN = 0;
  options.meanCorrection = true;
  auto corrected = referencePrefill(options);
  options.meanCorrection = false;
  auto plain = referencePrefill(options);
  ASSERT_TRUE(corrected.isOk() && plain.isOk());
  ASSERT_NE(corrected->attention.out.storage(), plain->attention.out.storage())
      << "the case must prune blocks";

  params.alpha = 0.9f;
  params.sink = 0;
  params.window = 1;
  params.last_n = 0;
  params.mean_correction = 1;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  EXPECT_EQ(outData, corrected->attention.out.storage());

  params.mean_correction = 2;
  std::fill(outData.begin(), outData.end(), uint16_t(0x7777));
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.mean_correction: expected 0 (off) or 1 (on), got 2");

  params.mean_correction = 1;
  const size_t v2Size = offsetof(fp_params_t, mean_correction);
  params.struct_size = v2Size;
  GuardedPage page;
  ASSERT_TRUE(page.ok());
  const fp_params_t *v2 = page.placeAtEnd(params, v2Size);
  ASSERT_EQ(fp_prefill(plan, &q, &k, &v, &out, v2, workspace.data(),
                       workspaceBytes, nullptr),
            FP_OK)
      << fp_last_error();
  EXPECT_EQ(outData, plain->attention.out.storage());
}

// alpha 0 (and the dense fall-back of fp_prefill, which runs with alpha 0)
// keeps every causal block even when scores are NaN, as the kernels do
// (they skip scoring then): a NaN key in block 1 used to make the CPU
// backend drop that block, so the "dense" fall-back pruned it and mean
// correction changed its result (found by fp-fuzz-capi,
// corpus/capi/regression-dense-fallback-nan-scores).
TEST_F(ApiTest, AlphaZeroKeepsBlocksWithNaNScores) {
  inputs.k[((0 * kSeq + kBlock + 3) * kKvHeads + 0) * kDim + 5] = 0x7fc0; // NaN
  params.sink = 0;
  params.window = 1;
  params.last_n = 0;
  params.alpha = 0.0f;
  const size_t selectBytes = fp_plan_select_workspace_bytes(plan, kBatch, kSeq);
  ASSERT_EQ(fp_select(plan, &q, &k, &params, &mask, workspace.data(),
                      selectBytes, nullptr),
            FP_OK)
      << fp_last_error();
  for (int64_t r = 0; r < kBatch * kQHeads * kBlocks; ++r)
    ASSERT_EQ(counts[r], r % kBlocks + 1) << "row " << r;

  // The fall-back: with and without mean correction, bit for bit.
  params.alpha = 0.9f;
  params.dense_below_tokens = kSeq + 1;
  std::vector<float> lse(kBatch * kQHeads * kSeq), lsePlain(lse.size());
  params.lse = lse.data();
  params.mean_correction = 1;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  const std::vector<uint16_t> corrected = outData;
  params.lse = lsePlain.data();
  params.mean_correction = 0;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  EXPECT_EQ(outData, corrected);
  EXPECT_EQ(std::memcmp(lse.data(), lsePlain.data(), lse.size() * sizeof(float)),
            0);
}

// fp_params_init_sized writes the caller's size only (guard bytes after it
// keep their value); the fp_params_init macro passes this header's sizeof;
// the exported fp_params_init function, which binaries built against
// earlier headers call, writes version 2's 96 bytes. fp_plan_spec_init_sized
// likewise.
TEST(ApiParamsInitTest, WritesTheCallersSizeOnly) {
  constexpr size_t kV1 = offsetof(fp_params_t, dense_below_tokens);
  constexpr size_t kV2 = offsetof(fp_params_t, mean_correction);
  struct Padded {
    fp_params_t params;
    unsigned char guard[64];
  };
  for (size_t size : {kV1, kV2, sizeof(fp_params_t)}) {
    Padded p;
    std::memset(&p, 0xAB, sizeof(p));
    fp_params_init_sized(&p.params, size);
    EXPECT_EQ(p.params.struct_size, size);
    EXPECT_EQ(p.params.alpha, FP_DEFAULT_ALPHA);
    const auto *bytes = reinterpret_cast<const unsigned char *>(&p);
    for (size_t i = size; i < sizeof(p); ++i)
      ASSERT_EQ(bytes[i], 0xAB) << "byte " << i << " written for size " << size;
  }
  Padded small;
  std::memset(&small, 0xAB, sizeof(small));
  fp_params_init_sized(&small.params, kV1 - 8); // below version 1: nothing
  EXPECT_EQ(reinterpret_cast<const unsigned char *>(&small)[0], 0xAB);

  Padded old;
  std::memset(&old, 0xAB, sizeof(old));
  (fp_params_init)(&old.params); // the exported function, not the macro
  EXPECT_EQ(old.params.struct_size, kV2);
  EXPECT_EQ(old.params.dense_below_tokens, FP_DENSE_BELOW_AUTO);
  for (size_t i = kV2; i < sizeof(old); ++i)
    ASSERT_EQ(reinterpret_cast<const unsigned char *>(&old)[i], 0xAB) << i;

  fp_params_t current;
  fp_params_init(&current);
  EXPECT_EQ(current.struct_size, sizeof(fp_params_t));
  EXPECT_EQ(current.mean_correction, 0);

  // The plan spec the same way (one version so far).
  struct PaddedSpec {
    fp_plan_spec_t spec;
    unsigned char guard[64];
  } padded;
  std::memset(&padded, 0xAB, sizeof(padded));
  (fp_plan_spec_init)(&padded.spec);
  EXPECT_EQ(padded.spec.struct_size, sizeof(fp_plan_spec_t));
  EXPECT_EQ(padded.spec.head_dim, 128);
  for (size_t i = sizeof(fp_plan_spec_t); i < sizeof(padded); ++i)
    ASSERT_EQ(reinterpret_cast<const unsigned char *>(&padded)[i], 0xAB) << i;
  std::memset(&padded, 0xAB, sizeof(padded));
  fp_plan_spec_init_sized(&padded.spec, 8); // below version 1: nothing
  EXPECT_EQ(reinterpret_cast<const unsigned char *>(&padded)[0], 0xAB);
}

// Sizes and floats in messages are shown as they are: a struct_size of
// SIZE_MAX is not "-1", alpha 1.0000001 is not "1.000000".
TEST_F(ApiTest, MessagesShowSizesAndFloatsExactly) {
  params.struct_size = SIZE_MAX;
  expectRejected(prefill(), FP_ERROR_UNSUPPORTED,
                 "params.struct_size: 18446744073709551615 is larger than "
                 "this library's fp_params_t (" +
                     std::to_string(sizeof(fp_params_t)) + ")");
  fp_params_init(&params);
  params.alpha = 1.0000001f;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.alpha: expected a value in [0, 1], got 1.0000001");
  params.alpha = 1.5f;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.alpha: expected a value in [0, 1], got 1.5");
  fp_params_init(&params);
  params.scale = std::numeric_limits<float>::infinity();
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.scale: expected a finite value (<= 0 for "
                 "1/sqrt(head_dim)), got inf");

  fp_plan_spec_t bad = spec;
  bad.struct_size = SIZE_MAX;
  fp_plan_t *none = nullptr;
  EXPECT_EQ(fp_plan_create(&bad, &none), FP_ERROR_UNSUPPORTED);
  EXPECT_NE(std::string(fp_last_error())
                .find("spec.struct_size: 18446744073709551615 is larger"),
            std::string::npos)
      << fp_last_error();
}

// Strided views into one packed QKV buffer work like separate tensors.
TEST_F(ApiTest, PackedQkvLayoutWorks) {
  ASSERT_EQ(prefill(), FP_OK);
  const int64_t heads = kQHeads + 2 * kKvHeads, row = heads * kDim;
  std::vector<uint16_t> packed(kBatch * kSeq * row);
  for (int64_t b = 0; b < kBatch; ++b)
    for (int64_t s = 0; s < kSeq; ++s) {
      uint16_t *dst = &packed[(b * kSeq + s) * row];
      std::memcpy(dst, &inputs.q[((b * kSeq + s) * kQHeads) * kDim],
                  kQHeads * kDim * 2);
      std::memcpy(dst + kQHeads * kDim,
                  &inputs.k[((b * kSeq + s) * kKvHeads) * kDim],
                  kKvHeads * kDim * 2);
      std::memcpy(dst + (kQHeads + kKvHeads) * kDim,
                  &inputs.v[((b * kSeq + s) * kKvHeads) * kDim],
                  kKvHeads * kDim * 2);
    }
  int64_t strides[4] = {kSeq * row, row, kDim, 1};
  fp_tensor_t pq{packed.data(), {kBatch, kSeq, kQHeads, kDim}, {}};
  fp_tensor_t pk{
      packed.data() + kQHeads * kDim, {kBatch, kSeq, kKvHeads, kDim}, {}};
  fp_tensor_t pv{packed.data() + (kQHeads + kKvHeads) * kDim,
                 {kBatch, kSeq, kKvHeads, kDim},
                 {}};
  for (fp_tensor_t *t : {&pq, &pk, &pv})
    std::memcpy(t->strides, strides, sizeof(strides));
  std::vector<uint16_t> packedOut(outData.size(), 0);
  fp_tensor_t po = tensorOf(packedOut, kQHeads);
  ASSERT_EQ(fp_prefill(plan, &pq, &pk, &pv, &po, &params, workspace.data(),
                       workspaceBytes, nullptr),
            FP_OK)
      << fp_last_error();
  EXPECT_EQ(packedOut, outData);
}

//===----------------------------------------------------------------------===//
// The bad-input table (README)
//===----------------------------------------------------------------------===//

// Null plan, tensors, params and workspace are named.
TEST_F(ApiTest, NullArgumentsAreNamed) {
  expectRejected(fp_prefill(nullptr, &q, &k, &v, &out, &params,
                            workspace.data(), workspaceBytes, nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "plan: expected a plan");
  expectRejected(fp_prefill(plan, nullptr, &k, &v, &out, &params,
                            workspace.data(), workspaceBytes, nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "q: expected a tensor, got NULL");
  expectRejected(fp_prefill(plan, &q, &k, &v, nullptr, &params,
                            workspace.data(), workspaceBytes, nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "out: expected a tensor");
  expectRejected(fp_prefill(plan, &q, &k, &v, &out, nullptr, workspace.data(),
                            workspaceBytes, nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "params: expected a pointer");
  expectRejected(fp_prefill(plan, &q, &k, &v, &out, &params, nullptr,
                            workspaceBytes, nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "workspace: expected a pointer");
  k.data = nullptr;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "k.data: expected a pointer, got NULL");
}

// Shapes that disagree with the plan or with each other are named.
TEST_F(ApiTest, ShapeMismatchesAreNamed) {
  q.shape[2] = 8;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "q.shape[2] (heads): expected 4, got 8");
  q.shape[2] = kQHeads;
  v.shape[3] = 32;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "v.shape[3] (head_dim): expected 64, got 32");
  v.shape[3] = kDim;
  out.shape[0] = 1;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "out.shape[0] (batch): expected 2, got 1");
  out.shape[0] = kBatch;
  k.strides[3] = 2;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "k.strides[3]: expected 1");
}

// Zero lengths, lengths above the plan and batches above it are rejected.
TEST_F(ApiTest, LengthsOutsideThePlanAreRejected) {
  for (fp_tensor_t *t : {&q, &k, &v, &out})
    t->shape[1] = 0;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "seq_len: expected 1..512 (the plan's max_seq_len), got 0");
  for (fp_tensor_t *t : {&q, &k, &v, &out})
    t->shape[1] = 600;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT, "got 600");
  for (fp_tensor_t *t : {&q, &k, &v, &out})
    t->shape[1] = kSeq, t->shape[0] = 3;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "batch: expected 1..2 (the plan's max_batch), got 3");
}

// s_q != s_k is a valid request the library does not implement yet.
TEST_F(ApiTest, DifferentQueryAndKeyLengthsAreUnsupported) {
  k.shape[1] = v.shape[1] = 250;
  expectRejected(prefill(), FP_ERROR_UNSUPPORTED,
                 "k.shape[1] (s_k): s_q != s_k is not supported yet; "
                 "expected 300");
}

// Runtime parameters outside their ranges are named.
TEST_F(ApiTest, BadParamsAreNamed) {
  params.alpha = 1.5f;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.alpha: expected a value in [0, 1]");
  fp_params_init(&params);
  params.window = 0;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.window: expected >= 1");
  fp_params_init(&params);
  params.sink = -1;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.sink: expected >= 0");
  fp_params_init(&params);
  params.threshold_kind = 5;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.threshold_kind: expected 0 (relative_max) or 1");
  fp_params_init(&params);
  params.struct_size = 0;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "params.struct_size: expected >= ");
  fp_params_init(&params);
  int32_t cu[3] = {0, 100, 300};
  params.cu_seqlens_q = cu;
  expectRejected(prefill(), FP_ERROR_UNSUPPORTED,
                 "variable-length batches are not supported through "
                 "fp_params_t");
}

// A workspace smaller than fp_plan_workspace_bytes is rejected.
TEST_F(ApiTest, SmallWorkspaceIsRejected) {
  expectRejected(fp_prefill(plan, &q, &k, &v, &out, &params, workspace.data(),
                            workspaceBytes - 1, nullptr),
                 FP_ERROR_INVALID_ARGUMENT,
                 "workspace_bytes: expected >= " +
                     std::to_string(workspaceBytes));
}

// A mask whose shape does not match the problem is named.
TEST_F(ApiTest, MismatchedMaskIsNamed) {
  mask.num_blocks = 4;
  expectRejected(fp_attend(plan, &q, &k, &v, &mask, &out, &params, nullptr),
                 FP_ERROR_INVALID_ARGUMENT,
                 "mask.num_blocks: expected 5 (ceil(300 / 64)), got 4");
  mask.num_blocks = kBlocks;
  mask.heads = 2;
  expectRejected(fp_attend(plan, &q, &k, &v, &mask, &out, &params, nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "mask.heads: expected 4");
}

// A mask with out-of-range ids is rejected before it is read.
TEST_F(ApiTest, CorruptMaskContentIsRejected) {
  size_t selectBytes = fp_plan_select_workspace_bytes(plan, kBatch, kSeq);
  ASSERT_EQ(fp_select(plan, &q, &k, &params, &mask, workspace.data(),
                      selectBytes, nullptr),
            FP_OK);
  ids[0] = 99;
  EXPECT_NE(fp_attend(plan, &q, &k, &v, &mask, &out, &params, nullptr), FP_OK);
  for (uint16_t x : outData)
    ASSERT_EQ(x, 0x7777);
}

// Bad plan specs are named; valid requests codegen lacks are "unsupported".
TEST(ApiSpecTest, BadSpecsAreNamed) {
  auto create = [](auto edit) {
    fp_plan_spec_t spec;
    fp_plan_spec_init(&spec);
    spec.device = FP_DEVICE_CPU;
    spec.max_seq_len = 1024;
    edit(spec);
    fp_plan_t *plan = nullptr;
    fp_status_t status = fp_plan_create(&spec, &plan);
    // On error no plan is returned.
    EXPECT_EQ(status == FP_OK, plan != nullptr);
    fp_plan_destroy(plan);
    return std::make_pair(status, std::string(fp_last_error()));
  };
  auto [s1, m1] = create([](fp_plan_spec_t &s) { s.head_dim = 72; });
  EXPECT_EQ(s1, FP_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(m1.find("spec.head_dim: expected a multiple of 16"),
            std::string::npos);
  auto [s2, m2] = create([](fp_plan_spec_t &s) { s.num_q_heads = 6; });
  EXPECT_NE(m2.find("spec.num_q_heads: expected a multiple of "
                    "num_kv_heads (8), got 6"),
            std::string::npos);
  auto [s3, m3] = create([](fp_plan_spec_t &s) { s.causal = 0; });
  EXPECT_EQ(s3, FP_ERROR_UNSUPPORTED);
  EXPECT_NE(m3.find("spec.causal"), std::string::npos);
  auto [s4, m4] = create([](fp_plan_spec_t &s) { s.head_dim_v = 64; });
  EXPECT_EQ(s4, FP_ERROR_UNSUPPORTED);
  auto [s5, m5] = create([](fp_plan_spec_t &s) { s.max_seq_len = 0; });
  EXPECT_NE(m5.find("spec.max_seq_len: expected > 0"), std::string::npos);
  auto [s6, m6] = create([](fp_plan_spec_t &s) { s.block_size = 100; });
  EXPECT_NE(m6.find("spec.block_size: expected a power of two"),
            std::string::npos);
  auto [s7, m7] = create([](fp_plan_spec_t &s) {
    s.max_seq_len = 262144;
    s.max_workspace_bytes = 1 << 20;
  });
  EXPECT_EQ(s7, FP_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(m7.find("spec.max_workspace_bytes"), std::string::npos) << m7;
  auto [s8, m8] = create([](fp_plan_spec_t &) {});
  EXPECT_EQ(s8, FP_OK) << m8;
}

// The mask at 256K tokens, 32 query heads, B = 128 is 512 MiB
// (docs/semantics.md section 1, "Mask format").
TEST(ApiSpecTest, MaskSizeAt256K) {
  fp::Status status;
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.max_seq_len = 262144;
  auto plan = fp::Plan::create(spec);
  ASSERT_TRUE(plan.isOk());
  auto bytes = (*plan)->maskBytes(1, 262144);
  ASSERT_TRUE(bytes.isOk());
  EXPECT_EQ(*bytes, size_t(32) * 2048 * 4 + size_t(32) * 2048 * 2048 * 4);
  EXPECT_GE(*bytes, size_t(512) << 20);
}

// A GPU plan on a machine without a GPU says so.
TEST(ApiSpecTest, GpuPlanWithoutDeviceSaysNoDevice) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.max_seq_len = 1024;
  fp_plan_t *plan = nullptr;
  fp_status_t status = fp_plan_create(&spec, &plan);
  if (status == FP_OK) {
    fp_plan_destroy(plan);
    GTEST_SKIP() << "a CUDA device is present";
  }
  EXPECT_EQ(status, FP_ERROR_NO_DEVICE) << fp_last_error();
  EXPECT_NE(std::string(fp_last_error()).find("no CUDA device"),
            std::string::npos);
}

// fp_last_error is per thread: another thread's error does not leak.
TEST(ApiSpecTest, LastErrorIsPerThread) {
  fp_plan_t *plan = nullptr;
  EXPECT_EQ(fp_plan_create(nullptr, &plan), FP_ERROR_INVALID_ARGUMENT);
  std::string other;
  std::thread([&] { other = fp_last_error(); }).join();
  EXPECT_EQ(other, "");
  EXPECT_NE(std::string(fp_last_error()).find("spec: expected a pointer"),
            std::string::npos);
}

} // namespace
