//===- BadInputTest.cpp - The rows of docs/bad-inputs.md ApiTest lacks ----===//
//
// SPDX-License-Identifier: Apache-2.0
//
// unittests/API/ApiTest.cpp covers most of the bad-input table; these are
// the remaining rows: the size queries, fp_select's and fp_attend's own
// arguments, every spec and params field, the C++ fp::Plan face, the init
// functions on NULL, and "nothing written" for the mask, LSE and kept-block
// counter. Each case names the row it covers (docs/bad-inputs.md).
//
//===----------------------------------------------------------------------===//
#include "flashprefill/flashprefill.h"
#include "flashprefill/flashprefill.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

extern "C" const char *fpBadInputStatusName(int code);
extern "C" int fpBadInputDtype(int dtype, char *message, size_t size);

namespace {

constexpr int64_t kBatch = 1, kSeq = 100, kQHeads = 2, kKvHeads = 1, kDim = 32,
                  kBlock = 32, kBlocks = 4;

std::string lastError() { return fp_last_error(); }

/// A CPU plan, valid arguments filled with a pattern; each test breaks one.
class BadInputTest : public testing::Test {
protected:
  void SetUp() override {
    fp_plan_spec_init(&spec);
    spec.device = FP_DEVICE_CPU;
    spec.head_dim = kDim;
    spec.num_q_heads = kQHeads;
    spec.num_kv_heads = kKvHeads;
    spec.block_size = kBlock;
    spec.max_batch = kBatch;
    spec.max_seq_len = 128;
    ASSERT_EQ(fp_plan_create(&spec, &plan), FP_OK) << lastError();
    for (auto *buf : {&qData, &kData, &vData})
      buf->resize(kBatch * kSeq * (buf == &qData ? kQHeads : kKvHeads) * kDim);
    for (size_t i = 0; i < qData.size(); ++i)
      qData[i] = uint16_t(0x3c00 + i % 97); // bf16 ~ 0.008 .. 0.012
    for (size_t i = 0; i < kData.size(); ++i)
      kData[i] = vData[i] = uint16_t(0x3c00 + i % 89);
    outData.assign(qData.size(), 0x7777);
    q = view(qData, kQHeads);
    k = view(kData, kKvHeads);
    v = view(vData, kKvHeads);
    out = view(outData, kQHeads);
    fp_params_init(&params);
    lse.assign(kBatch * kQHeads * kSeq, -7.0f);
    params.lse = lse.data();
    params.kept_counter = &kept;
    workspace.assign(fp_plan_workspace_bytes(plan, kBatch, kSeq), 0);
    counts.assign(kBatch * kQHeads * kBlocks, -7);
    ids.assign(kBatch * kQHeads * kBlocks * kBlocks, -7);
    mask = {counts.data(), ids.data(), kBatch, kQHeads, kBlocks};
  }
  void TearDown() override { fp_plan_destroy(plan); }

  fp_tensor_t view(std::vector<uint16_t> &data, int64_t heads) {
    return {data.data(),
            {kBatch, kSeq, heads, kDim},
            {kSeq * heads * kDim, heads * kDim, kDim, 1}};
  }
  fp_status_t select() {
    return fp_select(plan, &q, &k, &params, &mask, workspace.data(),
                     workspace.size(), nullptr);
  }
  fp_status_t attend() {
    return fp_attend(plan, &q, &k, &v, &mask, &out, &params, nullptr);
  }
  fp_status_t prefill() {
    return fp_prefill(plan, &q, &k, &v, &out, &params, workspace.data(),
                      workspace.size(), nullptr);
  }
  /// `status` is `code`, the message contains `text`, and no output (out,
  /// lse, mask, kept counter) was written.
  void expectRejected(fp_status_t status, fp_status_t code,
                      const std::string &text) {
    EXPECT_EQ(status, code) << lastError();
    EXPECT_NE(lastError().find(text), std::string::npos)
        << "message: " << lastError() << "\nexpected: " << text;
    for (uint16_t x : outData)
      ASSERT_EQ(x, 0x7777) << "out written despite the error";
    for (float x : lse)
      ASSERT_EQ(x, -7.0f) << "lse written despite the error";
    for (int32_t x : counts)
      ASSERT_EQ(x, -7) << "mask.counts written despite the error";
    for (int32_t x : ids)
      ASSERT_EQ(x, -7) << "mask.ids written despite the error";
    EXPECT_EQ(kept, 12345u) << "kept_counter changed despite the error";
  }
  /// A valid mask from fp_select, with lse/counter state restored.
  void selectValidMask() {
    ASSERT_EQ(select(), FP_OK) << lastError();
    kept = 12345;
  }

  fp_plan_spec_t spec;
  fp_plan_t *plan = nullptr;
  std::vector<uint16_t> qData, kData, vData, outData;
  fp_tensor_t q, k, v, out;
  fp_params_t params;
  std::vector<float> lse;
  unsigned long long kept = 12345;
  std::vector<char> workspace;
  std::vector<int32_t> counts, ids;
  fp_mask_t mask;
};

//===----------------------------------------------------------------------===//
// Init, destroy, last error, status names
//===----------------------------------------------------------------------===//

// Rows: fp_plan_spec_init(NULL), fp_params_init(NULL), fp_plan_destroy(NULL):
// no effect, not even on the calling thread's fp_last_error (they report
// nothing), and the library works afterwards. The same init calls on real
// structs overwrite every field of a poison pattern with the documented
// defaults, so "no effect" is a property of NULL, not of the functions.
TEST(BadInputInitTest, NullIsANoOp) {
  fp_plan_t *plan = reinterpret_cast<fp_plan_t *>(uintptr_t(0x1));
  ASSERT_EQ(fp_plan_create(nullptr, &plan), FP_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(plan, nullptr) << "a failed create returns no plan";
  const std::string before = lastError();
  ASSERT_NE(before, "");
  fp_plan_spec_init(nullptr);
  fp_params_init(nullptr);
  fp_plan_destroy(nullptr);
  EXPECT_EQ(lastError(), before) << "a NULL no-op changed fp_last_error";

  fp_plan_spec_t spec;
  std::memset(&spec, 0xA5, sizeof(spec));
  fp_plan_spec_init(&spec);
  EXPECT_EQ(spec.struct_size, sizeof(fp_plan_spec_t));
  EXPECT_EQ(spec.dtype, FP_DTYPE_BF16);
  EXPECT_EQ(spec.head_dim, 128);
  EXPECT_EQ(spec.head_dim_v, 0);
  EXPECT_EQ(spec.num_q_heads, 32);
  EXPECT_EQ(spec.num_kv_heads, 8);
  EXPECT_EQ(spec.block_size, FP_DEFAULT_BLOCK_SIZE);
  EXPECT_EQ(spec.causal, 1);
  EXPECT_EQ(spec.pooled_queries, 0);
  EXPECT_EQ(spec.max_batch, 1);
  EXPECT_EQ(spec.max_seq_len, 0);
  EXPECT_EQ(spec.device, 0);
  EXPECT_EQ(spec.max_workspace_bytes, 0u);

  fp_params_t params;
  std::memset(&params, 0xA5, sizeof(params));
  fp_params_init(&params);
  EXPECT_EQ(params.struct_size, sizeof(fp_params_t));
  EXPECT_EQ(params.alpha, FP_DEFAULT_ALPHA);
  EXPECT_EQ(params.sink, FP_DEFAULT_SINK);
  EXPECT_EQ(params.window, FP_DEFAULT_WINDOW);
  EXPECT_EQ(params.last_n, FP_DEFAULT_LAST_N);
  EXPECT_EQ(params.min_budget, FP_DEFAULT_MIN_BUDGET);
  EXPECT_EQ(params.threshold_kind, 0);
  EXPECT_EQ(params.scale, 0.0f);
  EXPECT_EQ(params.lse, nullptr);
  EXPECT_EQ(params.kept_counter, nullptr);
  EXPECT_EQ(params.cu_seqlens_q, nullptr);
  EXPECT_EQ(params.cu_seqlens_k, nullptr);
  EXPECT_EQ(params.max_seqlen_q, 0);
  EXPECT_EQ(params.max_seqlen_k, 0);
  EXPECT_EQ(params.dense_below_tokens, FP_DENSE_BELOW_AUTO);
  EXPECT_TRUE(fp::validateParams(&params).isOk());

  spec.device = FP_DEVICE_CPU;
  spec.max_seq_len = 64;
  ASSERT_EQ(fp_plan_create(&spec, &plan), FP_OK) << lastError();
  EXPECT_EQ(lastError(), "");
  fp_plan_destroy(plan);
}

// Row: fp_last_error after success is "", never NULL; fp_status_name of an
// unknown code is "unknown" (called from C: any int is a valid C enum value).
TEST(BadInputInitTest, LastErrorAndStatusNames) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.max_seq_len = 64;
  fp_plan_t *plan = nullptr;
  ASSERT_NE(fp_plan_create(nullptr, &plan), FP_OK);
  ASSERT_NE(lastError(), "");
  ASSERT_EQ(fp_plan_create(&spec, &plan), FP_OK);
  EXPECT_NE(fp_last_error(), nullptr);
  EXPECT_EQ(lastError(), "") << "success must clear the previous error";
  fp_plan_destroy(plan);
  EXPECT_STREQ(fp_status_name(FP_ERROR_INVALID_ARGUMENT), "invalid argument");
  EXPECT_STREQ(fpBadInputStatusName(99), "unknown");
  EXPECT_STREQ(fpBadInputStatusName(-1), "unknown");
}

//===----------------------------------------------------------------------===//
// fp_plan_create: every spec field
//===----------------------------------------------------------------------===//

struct SpecCase {
  const char *name;
  std::function<void(fp_plan_spec_t &)> edit;
  fp_status_t code;
  const char *message;
};

TEST(BadInputSpecTest, EverySpecFieldIsNamed) {
  const SpecCase cases[] = {
      {"struct_size 0", [](fp_plan_spec_t &s) { s.struct_size = 0; },
       FP_ERROR_INVALID_ARGUMENT, "spec.struct_size: expected"},
      {"struct_size larger", [](fp_plan_spec_t &s) { s.struct_size += 8; },
       FP_ERROR_UNSUPPORTED, "spec.struct_size: "},
      {"head_dim 0", [](fp_plan_spec_t &s) { s.head_dim = 0; },
       FP_ERROR_INVALID_ARGUMENT, "spec.head_dim: expected a multiple of 16"},
      {"head_dim 512", [](fp_plan_spec_t &s) { s.head_dim = 512; },
       FP_ERROR_INVALID_ARGUMENT, "spec.head_dim"},
      {"num_q_heads 0", [](fp_plan_spec_t &s) { s.num_q_heads = 0; },
       FP_ERROR_INVALID_ARGUMENT, "spec.num_q_heads, spec.num_kv_heads"},
      {"num_kv_heads -1", [](fp_plan_spec_t &s) { s.num_kv_heads = -1; },
       FP_ERROR_INVALID_ARGUMENT, "spec.num_q_heads, spec.num_kv_heads"},
      {"block_size 512", [](fp_plan_spec_t &s) { s.block_size = 512; },
       FP_ERROR_INVALID_ARGUMENT, "spec.block_size"},
      {"block_size 8", [](fp_plan_spec_t &s) { s.block_size = 8; },
       FP_ERROR_INVALID_ARGUMENT, "spec.block_size"},
      {"causal 2", [](fp_plan_spec_t &s) { s.causal = 2; },
       FP_ERROR_UNSUPPORTED, "spec.causal"},
      {"max_batch 0", [](fp_plan_spec_t &s) { s.max_batch = 0; },
       FP_ERROR_INVALID_ARGUMENT, "spec.max_batch: expected > 0"},
      {"max_batch -5", [](fp_plan_spec_t &s) { s.max_batch = -5; },
       FP_ERROR_INVALID_ARGUMENT, "spec.max_batch"},
      {"max_seq_len -1", [](fp_plan_spec_t &s) { s.max_seq_len = -1; },
       FP_ERROR_INVALID_ARGUMENT, "spec.max_seq_len: expected > 0"},
      {"max_seq_len INT64_MAX",
       [](fp_plan_spec_t &s) { s.max_seq_len = INT64_MAX; },
       FP_ERROR_INVALID_ARGUMENT, "spec.max_seq_len"},
      {"max_seq_len 2^31", [](fp_plan_spec_t &s) { s.max_seq_len = 1LL << 31; },
       FP_ERROR_INVALID_ARGUMENT, "spec.max_seq_len"},
      {"max_batch INT64_MAX",
       [](fp_plan_spec_t &s) { s.max_batch = INT64_MAX; },
       FP_ERROR_INVALID_ARGUMENT, "spec.max_batch"},
      {"workspace overflows size_t",
       [](fp_plan_spec_t &s) {
         s.max_batch = 1 << 30;
         s.max_seq_len = 1 << 30;
         s.block_size = 16;
       },
       FP_ERROR_INVALID_ARGUMENT, "spec.max_seq_len"},
      {"device -2", [](fp_plan_spec_t &s) { s.device = -2; },
       FP_ERROR_INVALID_ARGUMENT, "spec.device: expected a CUDA ordinal"},
  };
  for (const SpecCase &c : cases) {
    fp_plan_spec_t spec;
    fp_plan_spec_init(&spec);
    spec.device = FP_DEVICE_CPU;
    spec.max_seq_len = 1024;
    c.edit(spec);
    fp_plan_t *plan = reinterpret_cast<fp_plan_t *>(uintptr_t(0x10));
    fp_status_t status = fp_plan_create(&spec, &plan);
    EXPECT_EQ(status, c.code) << c.name << ": " << lastError();
    EXPECT_NE(lastError().find(c.message), std::string::npos)
        << c.name << ": " << lastError();
    EXPECT_EQ(plan, nullptr) << c.name << ": *plan must be NULL on error";
    if (status == FP_OK)
      fp_plan_destroy(plan);
  }
}

// Row: spec.dtype outside the enum (a C caller can store any int).
TEST(BadInputSpecTest, DtypeOutsideTheEnumIsNamed) {
  char message[256];
  EXPECT_EQ(fpBadInputDtype(7, message, sizeof(message)),
            FP_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(message).find("spec.dtype: expected FP_DTYPE_BF16"),
            std::string::npos)
      << message;
  EXPECT_EQ(fpBadInputDtype(-1, message, sizeof(message)),
            FP_ERROR_INVALID_ARGUMENT);
}

// Row: fp_plan_create(spec, NULL).
TEST(BadInputSpecTest, NullPlanOutIsNamed) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.max_seq_len = 64;
  EXPECT_EQ(fp_plan_create(&spec, nullptr), FP_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(lastError().find("plan: expected a pointer to receive the plan"),
            std::string::npos)
      << lastError();
}

// Row: an old caller's spec (struct_size of version 1) is accepted.
TEST(BadInputSpecTest, VersionOneSpecIsAccepted) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.max_seq_len = 64;
  spec.struct_size = offsetof(fp_plan_spec_t, max_workspace_bytes) + 8;
  fp_plan_t *plan = nullptr;
  EXPECT_EQ(fp_plan_create(&spec, &plan), FP_OK) << lastError();
  fp_plan_destroy(plan);
}

//===----------------------------------------------------------------------===//
// Size queries
//===----------------------------------------------------------------------===//

// Rows: fp_plan_workspace_bytes / _select_workspace_bytes / _mask_bytes with
// a NULL plan, batch or seq_len outside the plan: 0 and a message; success
// clears the message.
TEST_F(BadInputTest, SizeQueriesRejectOutsideThePlan) {
  using Query = size_t (*)(const fp_plan_t *, int64_t, int64_t);
  for (Query query :
       {Query(fp_plan_workspace_bytes), Query(fp_plan_select_workspace_bytes),
        Query(fp_plan_mask_bytes)}) {
    EXPECT_EQ(query(nullptr, 1, 64), 0u);
    EXPECT_NE(lastError().find("plan: expected a plan"), std::string::npos);
    EXPECT_EQ(query(plan, 0, 64), 0u);
    EXPECT_NE(lastError().find("batch: expected 1..1"), std::string::npos)
        << lastError();
    EXPECT_EQ(query(plan, 2, 64), 0u);
    EXPECT_NE(lastError().find("got 2"), std::string::npos);
    EXPECT_EQ(query(plan, 1, 0), 0u);
    EXPECT_NE(lastError().find("seq_len: expected 1..128"), std::string::npos);
    EXPECT_EQ(query(plan, 1, -1), 0u);
    EXPECT_NE(lastError().find("seq_len"), std::string::npos);
    EXPECT_EQ(query(plan, 1, 129), 0u);
    EXPECT_EQ(query(plan, INT64_MAX, INT64_MAX), 0u);
    EXPECT_EQ(query(plan, INT64_MIN, 1), 0u);
    EXPECT_GT(query(plan, 1, 128), 0u);
    EXPECT_EQ(lastError(), "");
  }
  // The mask alone is what prefill needs beyond select.
  EXPECT_EQ(fp_plan_workspace_bytes(plan, 1, 100) -
                fp_plan_select_workspace_bytes(plan, 1, 100),
            fp_plan_mask_bytes(plan, 1, 100));
}

//===----------------------------------------------------------------------===//
// fp_select
//===----------------------------------------------------------------------===//

TEST_F(BadInputTest, SelectNullArgumentsAreNamed) {
  expectRejected(fp_select(nullptr, &q, &k, &params, &mask, workspace.data(),
                           workspace.size(), nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "plan: expected a plan");
  expectRejected(fp_select(plan, nullptr, &k, &params, &mask, workspace.data(),
                           workspace.size(), nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "q: expected a tensor, got NULL");
  expectRejected(fp_select(plan, &q, nullptr, &params, &mask, workspace.data(),
                           workspace.size(), nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "k: expected a tensor, got NULL");
  expectRejected(fp_select(plan, &q, &k, nullptr, &mask, workspace.data(),
                           workspace.size(), nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "params: expected a pointer");
  expectRejected(fp_select(plan, &q, &k, &params, nullptr, workspace.data(),
                           workspace.size(), nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "mask: expected a mask, got NULL");
  expectRejected(fp_select(plan, &q, &k, &params, &mask, nullptr,
                           workspace.size(), nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "workspace: expected a pointer");
  q.data = nullptr;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "q.data: expected a pointer, got NULL");
}

TEST_F(BadInputTest, SelectMaskAndWorkspaceAreChecked) {
  mask.counts = nullptr;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "mask.counts, mask.ids: expected pointers, got counts NULL");
  mask.counts = counts.data();
  mask.ids = nullptr;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT, "ids NULL");
  mask.ids = ids.data();
  mask.batch = 2;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "mask.batch: expected 1 (= q.shape[0]), got 2");
  mask.batch = kBatch;
  mask.num_blocks = kBlocks + 1;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "mask.num_blocks: expected 4 (ceil(100 / 32)), got 5");
  mask.num_blocks = kBlocks;
  size_t need = fp_plan_select_workspace_bytes(plan, kBatch, kSeq);
  expectRejected(fp_select(plan, &q, &k, &params, &mask, workspace.data(),
                           need - 1, nullptr),
                 FP_ERROR_INVALID_ARGUMENT,
                 "workspace_bytes: expected >= " + std::to_string(need));
  // Exactly the select size is enough (no mask in the workspace).
  EXPECT_EQ(
      fp_select(plan, &q, &k, &params, &mask, workspace.data(), need, nullptr),
      FP_OK)
      << lastError();
}

// Rows: tensors: negative strides, strides[3] != 1, each shape dim; s_k !=
// s_q; they apply to every entry point (fp_select here).
TEST_F(BadInputTest, SelectTensorViewsAreChecked) {
  k.strides[1] = -kDim;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "k.strides[1]: expected >= 0, got -32");
  k = view(kData, kKvHeads);
  q.strides[3] = 0;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "q.strides[3]: expected 1 (contiguous head dim), got 0");
  q = view(qData, kQHeads);
  k.shape[2] = 2;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "k.shape[2] (heads): expected 1, got 2");
  k = view(kData, kKvHeads);
  k.shape[1] = 64;
  expectRejected(select(), FP_ERROR_UNSUPPORTED,
                 "k.shape[1] (s_k): s_q != s_k is not supported yet");
  k = view(kData, kKvHeads);
  q.shape[1] = -3;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "seq_len: expected 1..128 (the plan's max_seq_len), got -3");
  q = view(qData, kQHeads);
  q.shape[0] = INT64_MIN;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT, "batch: expected 1..1");
}

// Rows: stride 0 (broadcast) and aliasing views are valid.
TEST_F(BadInputTest, BroadcastAndAliasedViewsAreValid) {
  k.strides[0] = 0; // one batch: any batch stride is fine
  v.strides[2] = 0; // every kv head reads head 0 (there is one)
  EXPECT_EQ(prefill(), FP_OK) << lastError();
  // out aliasing q: the reference computes before it writes.
  std::vector<uint16_t> expected = outData;
  std::vector<uint16_t> alias = qData;
  fp_tensor_t aliasView = view(alias, kQHeads);
  EXPECT_EQ(fp_prefill(plan, &aliasView, &k, &v, &aliasView, &params,
                       workspace.data(), workspace.size(), nullptr),
            FP_OK)
      << lastError();
  EXPECT_EQ(alias, expected);
}

//===----------------------------------------------------------------------===//
// fp_attend
//===----------------------------------------------------------------------===//

TEST_F(BadInputTest, AttendNullArgumentsAreNamed) {
  selectValidMask();
  std::vector<int32_t> goodCounts = counts, goodIds = ids;
  // expectRejected checks the mask is untouched: give it the pattern.
  auto restorePattern = [&] {
    std::fill(counts.begin(), counts.end(), -7);
    std::fill(ids.begin(), ids.end(), -7);
  };
  auto restoreMask = [&] {
    counts = goodCounts;
    ids = goodIds;
    mask = {counts.data(), ids.data(), kBatch, kQHeads, kBlocks};
  };
  auto rejected = [&](fp_status_t status, const std::string &text) {
    std::vector<int32_t> c = counts, i = ids;
    restorePattern();
    expectRejected(status, FP_ERROR_INVALID_ARGUMENT, text);
    counts = c;
    ids = i;
  };
  restoreMask();
  rejected(fp_attend(nullptr, &q, &k, &v, &mask, &out, &params, nullptr),
           "plan: expected a plan");
  rejected(fp_attend(plan, &q, &k, &v, nullptr, &out, &params, nullptr),
           "mask: expected a mask, got NULL");
  rejected(fp_attend(plan, &q, &k, nullptr, &mask, &out, &params, nullptr),
           "v: expected a tensor, got NULL");
  rejected(fp_attend(plan, &q, &k, &v, &mask, nullptr, &params, nullptr),
           "out: expected a tensor, got NULL");
  rejected(fp_attend(plan, &q, nullptr, &v, &mask, &out, &params, nullptr),
           "k: expected a tensor, got NULL");
  rejected(fp_attend(plan, &q, &k, &v, &mask, &out, nullptr, nullptr),
           "params: expected a pointer");
  out.data = nullptr;
  rejected(attend(), "out.data: expected a pointer, got NULL");
  out = view(outData, kQHeads);
  mask.heads = 1;
  rejected(attend(), "mask.heads: expected 2 (the plan's num_q_heads), got 1");
  restoreMask();
  // And the valid call works.
  EXPECT_EQ(attend(), FP_OK) << lastError();
}

// Row: mask contents (counts above I + 1, ids descending, ids past I,
// negative) are rejected before they are read (CPU plans; see the table for
// GPU plans).
TEST_F(BadInputTest, AttendMaskContentsAreChecked) {
  selectValidMask();
  std::vector<int32_t> goodCounts = counts, goodIds = ids;
  auto check = [&](const char *what, const std::function<void()> &corrupt,
                   const std::string &text) {
    counts = goodCounts;
    ids = goodIds;
    mask = {counts.data(), ids.data(), kBatch, kQHeads, kBlocks};
    corrupt();
    EXPECT_EQ(attend(), FP_ERROR_INVALID_ARGUMENT) << what;
    EXPECT_NE(lastError().find(text), std::string::npos)
        << what << ": " << lastError();
    for (uint16_t x : outData)
      ASSERT_EQ(x, 0x7777) << what << ": out written";
    for (float x : lse)
      ASSERT_EQ(x, -7.0f) << what << ": lse written";
    EXPECT_EQ(kept, 12345u);
  };
  check(
      "count above I + 1", [&] { counts[0] = 2; },
      "mask.counts[b=0, h=0, I=0]: expected a value in [0, 1], got 2");
  check(
      "negative count", [&] { counts[1] = -1; },
      "mask.counts[b=0, h=0, I=1]: expected a value in [0, 2], got -1");
  check(
      "count INT32_MAX", [&] { counts[3] = INT32_MAX; },
      "mask.counts[b=0, h=0, I=3]");
  check(
      "id past I", [&] { ids[0] = 1; },
      "mask.ids[b=0, h=0, I=0]: expected strictly ascending block ids in "
      "[0, 0], got 1 at position 0");
  check(
      "negative id", [&] { ids[0] = -1; }, "got -1 at position 0");
  check(
      "ids not ascending",
      [&] {
        // Row I = 3 keeps every block under the defaults (last_n 2): swap two.
        std::swap(ids[3 * kBlocks + 0], ids[3 * kBlocks + 1]);
      },
      "mask.ids[b=0, h=0, I=3]: expected strictly ascending");
}

//===----------------------------------------------------------------------===//
// params: every field
//===----------------------------------------------------------------------===//

struct ParamsCase {
  const char *name;
  std::function<void(fp_params_t &)> edit;
  fp_status_t code;
  const char *message;
};

TEST_F(BadInputTest, EveryParamsFieldIsNamed) {
  static int32_t cu[2] = {0, 100};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const ParamsCase cases[] = {
      {"struct_size 0", [](fp_params_t &p) { p.struct_size = 0; },
       FP_ERROR_INVALID_ARGUMENT, "params.struct_size: expected >= "},
      {"struct_size larger", [](fp_params_t &p) { p.struct_size += 8; },
       FP_ERROR_UNSUPPORTED, "params.struct_size: "},
      {"alpha -0.5", [](fp_params_t &p) { p.alpha = -0.5f; },
       FP_ERROR_INVALID_ARGUMENT, "params.alpha: expected a value in [0, 1]"},
      {"alpha NaN", [&](fp_params_t &p) { p.alpha = nan; },
       FP_ERROR_INVALID_ARGUMENT, "params.alpha"},
      {"last_n -1", [](fp_params_t &p) { p.last_n = -1; },
       FP_ERROR_INVALID_ARGUMENT, "params.last_n: expected >= 0"},
      {"min_budget -1", [](fp_params_t &p) { p.min_budget = -1; },
       FP_ERROR_INVALID_ARGUMENT, "params.min_budget: expected >= 0"},
      {"window INT32_MIN", [](fp_params_t &p) { p.window = INT32_MIN; },
       FP_ERROR_INVALID_ARGUMENT, "params.window: expected >= 1"},
      {"threshold_kind -1", [](fp_params_t &p) { p.threshold_kind = -1; },
       FP_ERROR_INVALID_ARGUMENT, "params.threshold_kind"},
      {"scale NaN", [&](fp_params_t &p) { p.scale = nan; },
       FP_ERROR_INVALID_ARGUMENT, "params.scale: expected a finite value"},
      {"scale inf", [&](fp_params_t &p) { p.scale = inf; },
       FP_ERROR_INVALID_ARGUMENT, "params.scale"},
      {"cu_seqlens_k", [](fp_params_t &p) { p.cu_seqlens_k = cu; },
       FP_ERROR_UNSUPPORTED, "variable-length batches are not supported"},
      {"max_seqlen_q", [](fp_params_t &p) { p.max_seqlen_q = 100; },
       FP_ERROR_UNSUPPORTED, "variable-length batches are not supported"},
      {"max_seqlen_k", [](fp_params_t &p) { p.max_seqlen_k = -1; },
       FP_ERROR_UNSUPPORTED, "variable-length batches are not supported"},
  };
  for (const ParamsCase &c : cases) {
    SCOPED_TRACE(c.name);
    for (int entry = 0; entry < 3; ++entry) {
      fp_params_init(&params);
      params.lse = lse.data();
      params.kept_counter = &kept;
      c.edit(params);
      if (entry == 0) {
        expectRejected(select(), c.code, c.message);
      } else if (entry == 1) {
        expectRejected(prefill(), c.code, c.message);
      } else {
        // attend validates params after the tensors, before the mask.
        expectRejected(attend(), c.code, c.message);
      }
    }
  }
}

// Row: extreme but valid params run (no overflow in the rule's arithmetic).
TEST_F(BadInputTest, ExtremeValidParamsRun) {
  const std::function<void(fp_params_t &)> edits[] = {
      [](fp_params_t &p) { p.sink = INT32_MAX; },
      [](fp_params_t &p) { p.window = INT32_MAX; },
      [](fp_params_t &p) { p.last_n = INT32_MAX; },
      [](fp_params_t &p) { p.min_budget = INT32_MAX; },
      [](fp_params_t &p) { p.alpha = 0.0f; },
      [](fp_params_t &p) {
        p.alpha = 1.0f;
        p.window = 1;
        p.last_n = 0;
        p.sink = 0;
      },
      [](fp_params_t &p) { p.scale = 3.0e38f; },
      [](fp_params_t &p) { p.scale = -1.0f; },
      [](fp_params_t &p) { p.scale = 1e-45f; },
      [](fp_params_t &p) {
        p.threshold_kind = 1;
        p.alpha = 0.5f;
      },
  };
  for (size_t i = 0; i < std::size(edits); ++i) {
    fp_params_init(&params);
    edits[i](params);
    EXPECT_EQ(prefill(), FP_OK) << "edit " << i << ": " << lastError();
  }
}

//===----------------------------------------------------------------------===//
// prefill: workspace
//===----------------------------------------------------------------------===//

// Rows: the select-sized workspace is too small for prefill (the mask lives
// in it); workspace_bytes SIZE_MAX with a valid pointer is fine (only the
// required bytes are touched).
TEST_F(BadInputTest, PrefillWorkspaceSizes) {
  size_t select = fp_plan_select_workspace_bytes(plan, kBatch, kSeq);
  expectRejected(fp_prefill(plan, &q, &k, &v, &out, &params, workspace.data(),
                            select, nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "workspace_bytes: expected >= ");
  expectRejected(
      fp_prefill(plan, &q, &k, &v, &out, &params, workspace.data(), 0, nullptr),
      FP_ERROR_INVALID_ARGUMENT, "workspace_bytes");
  EXPECT_EQ(fp_prefill(plan, &q, &k, &v, &out, &params, workspace.data(),
                       SIZE_MAX, nullptr),
            FP_OK)
      << lastError();
}

//===----------------------------------------------------------------------===//
// The C++ face: fp::Plan returns the same Status, never throws
//===----------------------------------------------------------------------===//

TEST_F(BadInputTest, CppPlanMethodsReportTheSameErrors) {
  fp_plan_spec_t bad = spec;
  bad.head_dim = 40;
  auto created = fp::Plan::create(bad);
  ASSERT_FALSE(created.isOk());
  EXPECT_EQ(created.status().code(), fp::StatusCode::kInvalidArgument);
  EXPECT_NE(created.status().message().find("spec.head_dim"),
            std::string::npos);

  auto made = fp::Plan::create(spec);
  ASSERT_TRUE(made.isOk()) << made.status().toString();
  const fp::Plan &cpp = **made;
  EXPECT_FALSE(cpp.workspaceBytes(0, 10).isOk());
  EXPECT_FALSE(cpp.selectWorkspaceBytes(1, 1000).isOk());
  EXPECT_FALSE(cpp.maskBytes(-1, 10).isOk());
  EXPECT_EQ(*cpp.workspaceBytes(kBatch, kSeq), workspace.size());

  fp::Status s = cpp.prefill(&q, &k, &v, &out, nullptr, workspace.data(),
                             workspace.size(), nullptr);
  EXPECT_EQ(s.code(), fp::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("params: expected a pointer"), std::string::npos);
  s = cpp.select(&q, &k, &params, nullptr, workspace.data(), workspace.size(),
                 nullptr);
  EXPECT_NE(s.message().find("mask: expected a mask"), std::string::npos);
  s = cpp.attend(&q, &k, &v, &mask, nullptr, &params, nullptr);
  EXPECT_NE(s.message().find("out: expected a tensor"), std::string::npos);
  for (uint16_t x : outData)
    ASSERT_EQ(x, 0x7777);
  EXPECT_TRUE(cpp.prefill(&q, &k, &v, &out, &params, workspace.data(),
                          workspace.size(), nullptr)
                  .isOk());
}

//===----------------------------------------------------------------------===//
// GPU-only rows (skip without a CUDA device)
//===----------------------------------------------------------------------===//

/// A GPU plan for a tiny spec, or nullptr (with the reason) without a GPU.
fp_plan_t *gpuPlanOrSkip(std::string *why) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.head_dim = 64;
  spec.num_q_heads = 2;
  spec.num_kv_heads = 1;
  spec.block_size = 64;
  spec.max_seq_len = 256;
  fp_plan_t *plan = nullptr;
  if (fp_plan_create(&spec, &plan) != FP_OK)
    *why = lastError();
  return plan;
}

// Row: spec.device at or past the device count names the count.
TEST(BadInputGpuTest, DeviceOrdinalPastTheCountIsNamed) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.max_seq_len = 256;
  spec.device = 4096;
  fp_plan_t *plan = nullptr;
  fp_status_t status = fp_plan_create(&spec, &plan);
  if (status == FP_ERROR_NO_DEVICE)
    GTEST_SKIP() << lastError();
  EXPECT_EQ(status, FP_ERROR_INVALID_ARGUMENT) << lastError();
  EXPECT_NE(lastError().find("spec.device: expected a CUDA ordinal below"),
            std::string::npos)
      << lastError();
  EXPECT_EQ(plan, nullptr);
}

// Row: a GPU workspace that is not 256-byte aligned is rejected before any
// launch (the tensors are never dereferenced by validation, so aligned
// placeholder addresses suffice).
TEST(BadInputGpuTest, MisalignedWorkspaceIsRejected) {
  std::string why;
  fp_plan_t *plan = gpuPlanOrSkip(&why);
  if (!plan)
    GTEST_SKIP() << why;
  const int64_t s = 128;
  auto fake = [](uintptr_t offset) {
    return reinterpret_cast<void *>(uintptr_t(1) << 40 | offset);
  };
  auto tensor = [&](void *data, int64_t heads) {
    return fp_tensor_t{
        data, {1, s, heads, 64}, {s * heads * 64, heads * 64, 64, 1}};
  };
  fp_tensor_t q = tensor(fake(0), 2), k = tensor(fake(1 << 20), 1),
              v = tensor(fake(2 << 20), 1), out = tensor(fake(3 << 20), 2);
  fp_params_t params;
  fp_params_init(&params);
  size_t bytes = fp_plan_workspace_bytes(plan, 1, s);
  ASSERT_GT(bytes, 0u);
  EXPECT_EQ(fp_prefill(plan, &q, &k, &v, &out, &params, fake((4 << 20) + 16),
                       bytes, nullptr),
            FP_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(lastError().find("workspace: expected a 256-byte aligned device "
                             "pointer"),
            std::string::npos)
      << lastError();
  fp_plan_destroy(plan);
}

} // namespace
