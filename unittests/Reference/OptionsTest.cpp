//===- OptionsTest.cpp - Option and shape validation tests ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Every rejection names the argument and the expected value.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace fp;
using namespace fp::ref;
using namespace fp::ref::test;

// Defaults come from flashprefill/defaults.h and validate.
TEST(Options, DefaultsMatchSharedHeader) {
  Options o;
  EXPECT_EQ(o.blockSize, FP_DEFAULT_BLOCK_SIZE);
  EXPECT_EQ(o.blockSize, 128);
  EXPECT_EQ(o.alpha, FP_DEFAULT_ALPHA);
  EXPECT_EQ(o.sink, FP_DEFAULT_SINK);
  EXPECT_EQ(o.window, FP_DEFAULT_WINDOW);
  EXPECT_EQ(o.lastN, FP_DEFAULT_LAST_N);
  EXPECT_EQ(o.minBudget, FP_DEFAULT_MIN_BUDGET);
  EXPECT_EQ(o.thresholdKind, ThresholdKind::kRelativeMax);
  EXPECT_EQ(o.scoreQuery, ScoreQuery::kFull);
  EXPECT_TRUE(o.causal);
  EXPECT_TRUE(validateOptions(o).isOk());
  EXPECT_FLOAT_EQ(resolveScale(o, 128), 1.0f / std::sqrt(128.0f));
  EXPECT_EQ(numBlocks(16384, 128), 128);
  EXPECT_EQ(numBlocks(16385, 128), 129);
  EXPECT_EQ(numBlocks(0, 128), 0);
}

// Each out-of-range field is rejected with its own exact message.
TEST(Options, RejectionMessagesNameTheArgument) {
  struct Case {
    void (*mutate)(Options &);
    StatusCode code;
    const char *message;
  };
  const Case cases[] = {
      {[](Options &o) { o.alpha = 1.5f; }, StatusCode::kInvalidArgument,
       "alpha: expected a value in [0, 1], got 1.5"},
      {[](Options &o) { o.alpha = -0.1f; }, StatusCode::kInvalidArgument,
       "alpha: expected a value in [0, 1], got -0.1"},
      {[](Options &o) { o.alpha = NAN; }, StatusCode::kInvalidArgument,
       "alpha: expected a value in [0, 1], got nan"},
      {[](Options &o) { o.blockSize = 96; }, StatusCode::kInvalidArgument,
       "block_size: expected a power of two >= 1 (the kernels use 128), got "
       "96"},
      {[](Options &o) { o.blockSize = 0; }, StatusCode::kInvalidArgument,
       "block_size: expected a power of two >= 1 (the kernels use 128), got "
       "0"},
      {[](Options &o) { o.sink = -1; }, StatusCode::kInvalidArgument,
       "sink: expected a value >= 0, got -1"},
      {[](Options &o) { o.window = -2; }, StatusCode::kInvalidArgument,
       "window: expected a value >= 0, got -2"},
      {[](Options &o) { o.lastN = -3; }, StatusCode::kInvalidArgument,
       "last_n: expected a value >= 0, got -3"},
      {[](Options &o) { o.minBudget = -4; }, StatusCode::kInvalidArgument,
       "min_budget: expected a value >= 0, got -4"},
      {[](Options &o) { o.thresholdKind = static_cast<ThresholdKind>(7); },
       StatusCode::kInvalidArgument,
       "threshold_kind: expected relative_max (0) or min_max (1), got 7"},
      {[](Options &o) { o.scoreQuery = static_cast<ScoreQuery>(5); },
       StatusCode::kInvalidArgument,
       "score_query: expected full (0) or pooled (1), got 5"},
      {[](Options &o) { o.scale = std::numeric_limits<float>::infinity(); },
       StatusCode::kInvalidArgument,
       "scale: expected a finite value > 0 (or <= 0 / NaN for the default "
       "1/sqrt(d)), got inf"},
      {[](Options &o) { o.numThreads = -1; }, StatusCode::kInvalidArgument,
       "num_threads: expected a value >= 0 (0 = one per hardware thread), "
       "got -1"},
      {[](Options &o) { o.causal = false; }, StatusCode::kUnsupported,
       "causal: expected true (non-causal attention is not implemented yet), "
       "got false"},
  };
  for (const Case &c : cases) {
    Options o;
    c.mutate(o);
    Status s = validateOptions(o);
    EXPECT_EQ(s.code(), c.code) << c.message;
    EXPECT_EQ(s.message(), c.message);
  }
  // Any power of two is accepted by the reference.
  for (int b : {1, 2, 4, 16, 64, 256}) {
    Options o;
    o.blockSize = b;
    EXPECT_TRUE(validateOptions(o).isOk()) << b;
  }
}

// Inconsistent shapes and dtypes are rejected by every op, naming the
// tensor; s_k != s_q is kUnsupported.
TEST(Options, ProblemValidation) {
  Options o = plainOptions(4, 0.1f);
  Tensor q = randomTensor(DType::kBF16, 1, 8, 4, 8, 1);
  Tensor k = randomTensor(DType::kBF16, 1, 8, 2, 8, 2);
  EXPECT_TRUE(validateProblem(q.view(), k.view(), k.view(), o).isOk());

  Tensor k16 = randomTensor(DType::kF16, 1, 8, 2, 8, 2);
  Status s = validateProblem(q.view(), k16.view(), k16.view(), o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "k.dtype: expected bf16 (the dtype of q), got f16");

  Tensor k3 = randomTensor(DType::kBF16, 1, 8, 3, 8, 2);
  s = validateProblem(q.view(), k3.view(), k3.view(), o);
  EXPECT_EQ(s.message(), "q.heads: expected a multiple of k.heads (3), got 4");

  Tensor kd = randomTensor(DType::kBF16, 1, 8, 2, 16, 2);
  s = validateProblem(q.view(), kd.view(), kd.view(), o);
  EXPECT_EQ(s.message(), "k.dim: expected 8 (q.dim), got 16");

  Tensor kb = randomTensor(DType::kBF16, 2, 8, 2, 8, 2);
  s = validateProblem(q.view(), kb.view(), kb.view(), o);
  EXPECT_EQ(s.message(), "k.batch: expected 1 (q.batch), got 2");

  Tensor ks = randomTensor(DType::kBF16, 1, 12, 2, 8, 2);
  s = validateProblem(q.view(), ks.view(), ks.view(), o);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_EQ(s.message(), "s_k: expected s_k == s_q (a whole prompt; a chunk "
                         "after a cached prefix, s_k > s_q, goes through "
                         "prefillVarlen), got s_q = 8, s_k = 12");
  // Every op reports the same error.
  EXPECT_EQ(prefill(q.view(), ks.view(), ks.view(), o).status().code(),
            StatusCode::kUnsupported);
  EXPECT_EQ(
      denseCausalAttention(q.view(), ks.view(), ks.view(), o).status().code(),
      StatusCode::kUnsupported);
  EXPECT_EQ(naiveAttention(q.view(), ks.view(), ks.view(), o).status().code(),
            StatusCode::kUnsupported);

  Options nonCausal = o;
  nonCausal.causal = false;
  EXPECT_EQ(prefill(q.view(), k.view(), k.view(), nonCausal).status().code(),
            StatusCode::kUnsupported);

  TensorView nullQ = q.view();
  nullQ.data = nullptr;
  s = validateProblem(nullQ, k.view(), k.view(), o);
  EXPECT_EQ(s.message(),
            "q.data: expected a non-null pointer for a non-empty tensor");

  // blockScore checks kbar against q.
  StatusOr<Tensor> kbar = blockPool(k.view(), plainOptions(2, 0.1f));
  ASSERT_TRUE(kbar.isOk());
  s = blockScore(q.view(), kbar->view(), o).status(); // nb 4 vs 2
  EXPECT_EQ(s.message(), "kbar: expected logical shape [1, 2, h_kv, 8] "
                         "([b, nb, h, d]), got [1, 4, 2, 8]");
}
