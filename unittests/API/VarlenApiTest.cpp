//===- VarlenApiTest.cpp - Engine shapes through the C API ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// fp_select_varlen / fp_attend_varlen / fp_prefill_varlen and the workspace
// queries on a CPU plan: results equal the reference (ref::*Varlen) bit for
// bit, packed and paged K/V agree, and every bad input is a named error that
// writes nothing (outputs, LSE and mask keep their poison).
//
//===----------------------------------------------------------------------===//
#include "flashprefill/flashprefill.h"
#include "flashprefill/flashprefill.hpp"
#include "flashprefill/reference.h"
#include "flashprefill/structured_inputs.h"

#include "GuardedPage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <numeric>
#include <random>

namespace {

constexpr int64_t kQHeads = 4, kKvHeads = 2, kDim = 64, kBlock = 64;
constexpr int64_t kMaxBatch = 4, kMaxSeqLen = 512;
constexpr uint16_t kPoison = 0x7777;
constexpr float kLsePoison = 1234.5f;
constexpr int32_t kMaskPoison = -7;

/// A whole prompt [1, len, h, d] of structured inputs.
struct Prompt {
  int64_t len;
  fp::testing::StructuredInputs in;
  Prompt(int64_t length, uint64_t seed) : len(length) {
    fp::testing::StructuredConfig c;
    c.seqLen = length;
    c.numQHeads = kQHeads;
    c.numKvHeads = kKvHeads;
    c.headDim = kDim;
    c.blockSize = kBlock;
    c.seed = seed;
    in = fp::testing::makeStructuredInputs(c);
  }
};

/// Sequence: the keys [0, keyEnd) of a prompt, whose last qLen are queries.
struct Piece {
  const Prompt *prompt;
  int64_t keyEnd, qLen;
};

fp_tensor_t packedTensor(std::vector<uint16_t> &data, int64_t rows,
                         int64_t heads) {
  return {data.data(),
          {1, rows, heads, kDim},
          {rows * heads * kDim, heads * kDim, kDim, 1}};
}

void appendRows(std::vector<uint16_t> &dst, const std::vector<uint16_t> &src,
                int64_t first, int64_t count, int64_t heads) {
  dst.insert(dst.end(), src.begin() + first * heads * kDim,
             src.begin() + (first + count) * heads * kDim);
}

/// A CPU plan and one valid call over three sequences (prefixes 300, 0 and
/// 125, so aligned and not) plus 11 query rows of no sequence; K/V packed
/// or paged (page size 16, pages shuffled). Each test breaks one thing.
class VarlenApiTest : public testing::Test {
protected:
  void SetUp() override {
    fp_plan_spec_init(&spec);
    spec.device = FP_DEVICE_CPU;
    spec.head_dim = kDim;
    spec.num_q_heads = kQHeads;
    spec.num_kv_heads = kKvHeads;
    spec.block_size = kBlock;
    spec.max_batch = kMaxBatch;
    spec.max_seq_len = kMaxSeqLen;
    ASSERT_EQ(fp_plan_create(&spec, &plan), FP_OK) << fp_last_error();
    pieces = {{&a, 500, 200}, {&b, 300, 300}, {&a, 130, 5}};

    cuQ = {0};
    for (const Piece &p : pieces) {
      appendRows(qData, p.prompt->in.q, p.keyEnd - p.qLen, p.qLen, kQHeads);
      cuQ.push_back(cuQ.back() + int32_t(p.qLen));
    }
    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    for (int64_t e = 0; e < kUncovered * kQHeads * kDim; ++e)
      qData.push_back(fp::floatToBits(fp::DType::kBF16, normal(rng)));
    totalQ = cuQ.back() + kUncovered;

    cuK = {0};
    for (const Piece &p : pieces) {
      appendRows(kData, p.prompt->in.k, 0, p.keyEnd, kKvHeads);
      appendRows(vData, p.prompt->in.v, 0, p.keyEnd, kKvHeads);
      cuK.push_back(cuK.back() + int32_t(p.keyEnd));
    }
    buildPaged(16);

    q = packedTensor(qData, totalQ, kQHeads);
    k = packedTensor(kData, cuK.back(), kKvHeads);
    v = packedTensor(vData, cuK.back(), kKvHeads);
    outData.assign(qData.size(), kPoison);
    out = packedTensor(outData, totalQ, kQHeads);
    lse.assign(size_t(kQHeads * totalQ), kLsePoison);

    varlen = fp_varlen_t{};
    varlen.struct_size = sizeof(fp_varlen_t);
    varlen.batch = int64_t(pieces.size());
    varlen.max_seqlen_q = 300;
    varlen.max_seqlen_k = kMaxSeqLen; // a fixed maximum, as for CUDA graphs
    varlen.cu_seqlens_q = cuQ.data();
    varlen.cu_seqlens_k = cuK.data();

    fp_params_init(&params);
    params.alpha = 0.3f;
    params.window = 2;
    params.sink = 1;
    params.lse = lse.data();
    workspaceBytes = fp_plan_varlen_workspace_bytes(
        plan, varlen.batch, totalQ, varlen.max_seqlen_q, varlen.max_seqlen_k);
    ASSERT_GT(workspaceBytes, 0u) << fp_last_error();
    workspace.assign(workspaceBytes, 0);
    numRows = totalQ / kBlock + varlen.batch;
    maxKeyBlocks = kMaxSeqLen / kBlock;
    counts.assign(size_t(numRows * kQHeads), kMaskPoison);
    ids.assign(size_t(numRows * kQHeads * maxKeyBlocks), kMaskPoison);
    mask = {counts.data(), ids.data(), numRows, kQHeads, maxKeyBlocks};
  }
  void TearDown() override { fp_plan_destroy(plan); }

  /// Paged copies of the sequences' K/V, pages in shuffled order, spare
  /// pages of noise, table entries past a sequence's pages out of range.
  void buildPaged(int64_t pageSize) {
    int64_t needed = 0;
    for (const Piece &p : pieces)
      needed += (p.keyEnd + pageSize - 1) / pageSize;
    maxPages = kMaxSeqLen / pageSize;
    numPages = needed + 2;
    std::vector<int32_t> order(static_cast<size_t>(numPages));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 rng(9);
    std::shuffle(order.begin(), order.end(), rng);
    const int64_t slot = kKvHeads * kDim;
    pagedK.assign(size_t(numPages * pageSize * slot), 0x3f80);
    pagedV.assign(pagedK.size(), 0xbf80);
    pageTable.assign(pieces.size() * size_t(maxPages), int32_t(numPages + 5));
    kLens.clear();
    size_t next = 0;
    for (size_t i = 0; i < pieces.size(); ++i) {
      const Piece &p = pieces[i];
      kLens.push_back(int32_t(p.keyEnd));
      for (int64_t t = 0; t < p.keyEnd; ++t) {
        int32_t &page = pageTable[i * size_t(maxPages) + size_t(t / pageSize)];
        if (t % pageSize == 0)
          page = order[next++];
        const int64_t dst = (page * pageSize + t % pageSize) * slot;
        std::copy_n(p.prompt->in.k.begin() + t * slot, slot,
                    pagedK.begin() + dst);
        std::copy_n(p.prompt->in.v.begin() + t * slot, slot,
                    pagedV.begin() + dst);
      }
    }
    pagedKTensor = {pagedK.data(),
                    {numPages, pageSize, kKvHeads, kDim},
                    {pageSize * slot, slot, kDim, 1}};
    pagedVTensor = pagedKTensor;
    pagedVTensor.data = pagedV.data();
  }
  /// Switches the call to the paged K/V.
  void usePaged() {
    varlen.cu_seqlens_k = nullptr;
    varlen.page_table = pageTable.data();
    varlen.max_pages = maxPages;
    varlen.k_lens = kLens.data();
    k = pagedKTensor;
    v = pagedVTensor;
  }

  /// The reference's view of this call (packed K/V).
  fp::ref::VarlenProblem referenceProblem() const {
    auto view = [](const std::vector<uint16_t> &x, int64_t rows,
                   int64_t heads) {
      return fp::ref::TensorView{x.data(),     fp::DType::kBF16,
                                 1,            rows,
                                 heads,        kDim,
                                 rows * heads * kDim, heads * kDim,
                                 kDim};
    };
    fp::ref::VarlenProblem p;
    p.q = view(qData, totalQ, kQHeads);
    p.k = view(kData, cuK.back(), kKvHeads);
    p.v = view(vData, cuK.back(), kKvHeads);
    p.cuSeqlensQ = cuQ;
    p.cuSeqlensK = cuK;
    if (varlen.apply_last_n)
      p.applyLastN.assign(varlen.apply_last_n,
                          varlen.apply_last_n + varlen.batch);
    p.maxSeqlenQ = varlen.max_seqlen_q;
    p.maxSeqlenK = varlen.max_seqlen_k;
    return p;
  }
  fp::ref::Options referenceOptions() const {
    fp::ref::Options o;
    o.blockSize = kBlock;
    o.alpha = params.alpha;
    o.sink = params.sink;
    o.window = params.window;
    o.lastN = params.last_n;
    return o;
  }

  fp_status_t prefill() {
    return fp_prefill_varlen(plan, &q, &k, &v, &varlen, &out, &params,
                             workspace.data(), workspaceBytes, nullptr);
  }
  fp_status_t select() {
    return fp_select_varlen(plan, &q, &k, &varlen, &params, &mask,
                            workspace.data(), workspaceBytes, nullptr);
  }
  fp_status_t attend() {
    return fp_attend_varlen(plan, &q, &k, &v, &varlen, &mask, &out, &params,
                            nullptr);
  }

  /// Output rows of sequences equal the reference's; rows of no sequence
  /// and their LSE keep the poison.
  void expectEqualsReference(const fp::ref::VarlenOutput &expected) {
    const int64_t covered = cuQ.back();
    for (int64_t t = 0; t < totalQ; ++t)
      for (int64_t h = 0; h < kQHeads; ++h) {
        const float got = lse[size_t(h * totalQ + t)];
        if (t < covered)
          ASSERT_EQ(got, expected.lse[size_t(h * totalQ + t)]) << t;
        else
          ASSERT_EQ(got, kLsePoison) << "LSE of a row of no sequence";
        for (int64_t x = 0; x < kDim; ++x) {
          const size_t e = size_t((t * kQHeads + h) * kDim + x);
          ASSERT_EQ(outData[e],
                    t < covered ? expected.out.storage()[e] : kPoison)
              << "row " << t << " h " << h;
        }
      }
  }
  /// Expects `status` with `message` in fp_last_error() and nothing
  /// written: output, LSE and mask keep their poison.
  void expectRejected(fp_status_t status, fp_status_t code,
                      const std::string &message) {
    EXPECT_EQ(status, code) << fp_last_error();
    EXPECT_NE(std::string(fp_last_error()).find(message), std::string::npos)
        << "expected '" << message << "' in: " << fp_last_error();
    for (uint16_t x : outData)
      ASSERT_EQ(x, kPoison) << "output written despite the error";
    for (float x : lse)
      ASSERT_EQ(x, kLsePoison) << "LSE written despite the error";
    for (int32_t x : counts)
      ASSERT_EQ(x, kMaskPoison) << "mask written despite the error";
  }
  /// All three entry points reject the current call with `message`.
  void expectAllRejected(fp_status_t code, const std::string &message) {
    expectRejected(prefill(), code, message);
    expectRejected(select(), code, message);
    expectRejected(attend(), code, message);
  }

  static constexpr int64_t kUncovered = 11;
  Prompt a{500, 1}, b{300, 2};
  std::vector<Piece> pieces;
  fp_plan_spec_t spec;
  fp_plan_t *plan = nullptr;
  std::vector<uint16_t> qData, kData, vData, outData, pagedK, pagedV;
  std::vector<int32_t> cuQ, cuK, pageTable, kLens, counts, ids;
  std::vector<float> lse;
  int64_t totalQ = 0, numRows = 0, maxKeyBlocks = 0, maxPages = 0,
          numPages = 0;
  fp_tensor_t q, k, v, out, pagedKTensor, pagedVTensor;
  fp_varlen_t varlen;
  fp_params_t params;
  size_t workspaceBytes = 0;
  std::vector<char> workspace;
  fp_varlen_mask_t mask;
};

// fp_prefill_varlen equals ref::prefillVarlen bit for bit (output rows, the
// [h_q, total_q] LSE); select + attend equals prefill and its mask is the
// reference's; kept_counter counts the kept blocks; apply_last_n is read.
TEST_F(VarlenApiTest, PrefillMatchesReference) {
  unsigned long long kept = 5;
  params.kept_counter = &kept;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  auto expected = fp::ref::prefillVarlen(referenceProblem(), referenceOptions());
  ASSERT_TRUE(expected.isOk()) << expected.status().toString();
  expectEqualsReference(*expected);
  EXPECT_EQ(kept, 5 + (unsigned long long)expected->mask.keptBlocks());
  // The rule pruned something (the comparison is about a sparse mask).
  int64_t candidates = 0;
  for (int64_t i = 0; i < varlen.batch; ++i) {
    fp::ref::CausalGeometry g = referenceProblem().geometry(i, kBlock);
    for (int64_t qb = 0; qb < g.numQueryBlocks(); ++qb)
      candidates += kQHeads * (g.lastKeyBlock(qb) + 1);
  }
  EXPECT_LT(expected->mask.keptBlocks(), candidates);

  ASSERT_EQ(select(), FP_OK) << fp_last_error();
  for (int64_t i = 0; i < varlen.batch; ++i)
    for (int64_t h = 0; h < kQHeads; ++h)
      for (int64_t qb = 0; qb * kBlock < cuQ[i + 1] - cuQ[i]; ++qb) {
        const int64_t row = fp::ref::VarlenMask::rowOf(cuQ, i, qb, kBlock);
        const int32_t n = counts[size_t(row * kQHeads + h)];
        ASSERT_EQ(std::vector<int32_t>(
                      ids.begin() + (row * kQHeads + h) * maxKeyBlocks,
                      ids.begin() + (row * kQHeads + h) * maxKeyBlocks + n),
                  expected->mask.kept(cuQ, i, h, qb));
      }
  std::fill(outData.begin(), outData.end(), kPoison);
  std::fill(lse.begin(), lse.end(), kLsePoison);
  ASSERT_EQ(attend(), FP_OK) << fp_last_error();
  expectEqualsReference(*expected);

  // Per-sequence last_n: the reference with the same flags, which differ
  // from last_n everywhere.
  const int32_t flags[3] = {0, 1, 0};
  varlen.apply_last_n = flags;
  std::fill(outData.begin(), outData.end(), kPoison);
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  auto flagged = fp::ref::prefillVarlen(referenceProblem(), referenceOptions());
  ASSERT_TRUE(flagged.isOk());
  expectEqualsReference(*flagged);
  EXPECT_NE(flagged->mask.ids, expected->mask.ids);
}

// Paged K/V (page size 16, shuffled pages, bad ids past each sequence's
// pages) gives the packed result bit for bit.
TEST_F(VarlenApiTest, PagedMatchesPacked) {
  auto expected = fp::ref::prefillVarlen(referenceProblem(), referenceOptions());
  ASSERT_TRUE(expected.isOk());
  usePaged();
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  expectEqualsReference(*expected);
  for (int64_t pageSize : {1, 256}) {
    buildPaged(pageSize);
    usePaged();
    std::fill(outData.begin(), outData.end(), kPoison);
    ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
    expectEqualsReference(*expected);
  }
}

// Only the page-table entries a sequence needs are read (flashprefill.h),
// so max_pages may be wider than the caller's table. The CPU backend copied
// all batch * max_pages entries (fp-fuzz-capi: a heap-buffer-overflow read,
// corpus/capi/regression-varlen-wide-max-pages); here the table ends at a
// guard page right after the last needed entry.
TEST_F(VarlenApiTest, WideMaxPagesReadsOnlyTheNeededEntries) {
  auto expected = fp::ref::prefillVarlen(referenceProblem(), referenceOptions());
  ASSERT_TRUE(expected.isOk());
  usePaged();
  const int64_t pageSize = k.shape[1], batch = varlen.batch;
  const int64_t wide = 300; // > maxPages; 3 rows of it fit in a 4 KiB page
  ASSERT_GT(wide, maxPages);
  auto pagesOf = [&](int64_t i) {
    return (int64_t(kLens[size_t(i)]) + pageSize - 1) / pageSize;
  };
  std::vector<int32_t> table(size_t((batch - 1) * wide + pagesOf(batch - 1)),
                             -1);
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t t = 0; t < pagesOf(i); ++t)
      table[size_t(i * wide + t)] = pageTable[size_t(i * maxPages + t)];
  GuardedPage page;
  ASSERT_TRUE(page.ok());
  ASSERT_LE(table.size() * sizeof(int32_t), size_t(sysconf(_SC_PAGESIZE)));
  varlen.page_table =
      page.placeAtEnd(table[0], table.size() * sizeof(int32_t));
  varlen.max_pages = wide;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  expectEqualsReference(*expected);
}

// The C++ methods are the same entry points.
TEST_F(VarlenApiTest, CppApiMatchesC) {
  auto created = fp::Plan::create(spec);
  ASSERT_TRUE(created.isOk());
  const fp::Plan &cpp = **created;
  auto bytes = cpp.varlenWorkspaceBytes(varlen.batch, totalQ, 300, kMaxSeqLen);
  ASSERT_TRUE(bytes.isOk());
  EXPECT_EQ(*bytes, workspaceBytes);
  ASSERT_TRUE(cpp.prefillVarlen(&q, &k, &v, &varlen, &out, &params,
                                workspace.data(), *bytes, nullptr)
                  .isOk());
  auto expected = fp::ref::prefillVarlen(referenceProblem(), referenceOptions());
  ASSERT_TRUE(expected.isOk());
  expectEqualsReference(*expected);
}

// Workspace queries: the mask is counts [num_rows, h_q] + ids [num_rows,
// h_q, max_key_blocks]; select needs less than prefill; sizes outside the
// plan are named and give 0.
TEST_F(VarlenApiTest, WorkspaceQueries) {
  const size_t maskBytes =
      fp_plan_varlen_mask_bytes(plan, varlen.batch, totalQ, kMaxSeqLen);
  const size_t rows = size_t(numRows * kQHeads);
  auto align = [](size_t x) { return (x + 255) & ~size_t(255); };
  EXPECT_EQ(maskBytes, align(rows * 4) + align(rows * maxKeyBlocks * 4));
  const size_t selectBytes = fp_plan_varlen_select_workspace_bytes(
      plan, varlen.batch, totalQ, 300, kMaxSeqLen);
  EXPECT_EQ(selectBytes + maskBytes, workspaceBytes);
  EXPECT_GE(selectBytes, size_t(varlen.batch * kKvHeads * maxKeyBlocks *
                                kDim * 2));
  struct Bad {
    int64_t batch, totalQ, maxQ, maxK;
    const char *message;
  } bad[] = {
      {0, 100, 64, 64, "batch: expected 1..4 (the plan's max_batch), got 0"},
      {5, 100, 64, 64, "batch: expected 1..4 (the plan's max_batch), got 5"},
      {1, 0, 64, 64, "total_q: expected 1..2048"},
      {1, 2049, 64, 64,
       "total_q: expected 1..2048 (the plan's max_batch * max_seq_len), got "
       "2049"},
      {1, 100, 64, 513,
       "max_seqlen_k: expected 1..512 (the plan's max_seq_len), got 513"},
      {1, 100, 65, 64, "max_seqlen_q: expected 1..64 (max_seqlen_k: a "
                       "sequence has at least as many keys as queries), got "
                       "65"},
      {1, 100, 0, 64, "max_seqlen_q: expected 1..64"},
  };
  for (const Bad &x : bad) {
    EXPECT_EQ(fp_plan_varlen_workspace_bytes(plan, x.batch, x.totalQ, x.maxQ,
                                             x.maxK),
              0u);
    EXPECT_NE(std::string(fp_last_error()).find(x.message), std::string::npos)
        << fp_last_error();
    EXPECT_EQ(fp_plan_varlen_select_workspace_bytes(plan, x.batch, x.totalQ,
                                                    x.maxQ, x.maxK),
              0u);
    EXPECT_NE(std::string(fp_last_error()).find(x.message), std::string::npos)
        << fp_last_error();
  }
  EXPECT_EQ(fp_plan_varlen_mask_bytes(nullptr, 1, 1, 1), 0u);
  EXPECT_NE(std::string(fp_last_error()).find("plan: expected a plan"),
            std::string::npos);
}

// The struct is read only up to its struct_size: one ending at an unmapped
// page works; sizes below version 1 or above this library's are named.
TEST_F(VarlenApiTest, StructSizeIsHonoured) {
  GuardedPage page;
  ASSERT_TRUE(page.ok());
  const fp_varlen_t *guarded = page.placeAtEnd(varlen, sizeof(fp_varlen_t));
  ASSERT_EQ(fp_prefill_varlen(plan, &q, &k, &v, guarded, &out, &params,
                              workspace.data(), workspaceBytes, nullptr),
            FP_OK)
      << fp_last_error();
  std::fill(outData.begin(), outData.end(), kPoison);
  std::fill(lse.begin(), lse.end(), kLsePoison);
  EXPECT_TRUE(fp::validateVarlenFields(guarded, spec).isOk());

  // A version-1 caller's struct ends before pooled_k: the field is not read
  // (the guard page follows apply_last_n) and the keys are pooled.
  const size_t v1Size = offsetof(fp_varlen_t, pooled_k);
  fp_varlen_t v1 = varlen;
  v1.struct_size = v1Size;
  const fp_varlen_t *guardedV1 = page.placeAtEnd(v1, v1Size);
  ASSERT_EQ(fp_prefill_varlen(plan, &q, &k, &v, guardedV1, &out, &params,
                              workspace.data(), workspaceBytes, nullptr),
            FP_OK)
      << fp_last_error();
  std::fill(outData.begin(), outData.end(), kPoison);
  std::fill(lse.begin(), lse.end(), kLsePoison);

  varlen.struct_size = v1Size - 8;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "varlen.struct_size: expected >= " +
                        std::to_string(v1Size) +
                        " (version 1 of fp_varlen_t), got " +
                        std::to_string(v1Size - 8));
  varlen.struct_size = sizeof(fp_varlen_t) + 8;
  expectAllRejected(FP_ERROR_UNSUPPORTED,
                    "is larger than this library's fp_varlen_t");
}

// fp_pool_keys_varlen writes the reference's pooled keys of each sequence's
// blocks and nothing past them (packed and paged agree); selection against
// them (fp_varlen_t.pooled_k) gives the mask and the output of pooling K,
// and it really reads them: other pooled keys give another mask.
TEST_F(VarlenApiTest, PooledKeysReplacePooling) {
  ASSERT_EQ(select(), FP_OK) << fp_last_error();
  const std::vector<int32_t> expectedCounts = counts, expectedIds = ids;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  const std::vector<uint16_t> expectedOut = outData;
  const std::vector<float> expectedLse = lse;

  const size_t bytes = fp_plan_varlen_pooled_keys_bytes(plan, varlen.batch,
                                                        varlen.max_seqlen_k);
  ASSERT_EQ(bytes, size_t(varlen.batch * kKvHeads * maxKeyBlocks * kDim * 2))
      << fp_last_error();
  std::vector<uint16_t> pooled(bytes / 2, kPoison);
  ASSERT_EQ(fp_pool_keys_varlen(plan, &q, &k, &varlen, pooled.data(), nullptr),
            FP_OK)
      << fp_last_error();
  auto reference =
      fp::ref::poolKeysVarlen(referenceProblem(), referenceOptions());
  ASSERT_TRUE(reference.isOk()) << reference.status().toString();
  for (int64_t i = 0; i < varlen.batch; ++i) {
    const int64_t used = (cuK[size_t(i) + 1] - cuK[size_t(i)] + kBlock - 1) /
                         kBlock;
    for (int64_t h = 0; h < kKvHeads; ++h)
      for (int64_t j = 0; j < maxKeyBlocks; ++j)
        for (int64_t x = 0; x < kDim; ++x) {
          const size_t e =
              size_t(((i * kKvHeads + h) * maxKeyBlocks + j) * kDim + x);
          ASSERT_EQ(pooled[e], j < used ? reference->storage()[e] : kPoison)
              << "sequence " << i << " head " << h << " block " << j;
        }
  }
  // Paged K/V pool to the same bits.
  std::vector<uint16_t> pooledPaged(bytes / 2, kPoison);
  fp_varlen_t packedCall = varlen;
  fp_tensor_t packedK = k;
  usePaged();
  ASSERT_EQ(fp_pool_keys_varlen(plan, &q, &k, &varlen, pooledPaged.data(),
                                nullptr),
            FP_OK)
      << fp_last_error();
  EXPECT_EQ(pooledPaged, pooled);
  varlen = packedCall;
  k = packedK;
  v = packedTensor(vData, cuK.back(), kKvHeads);

  varlen.pooled_k = pooled.data();
  std::fill(counts.begin(), counts.end(), kMaskPoison);
  std::fill(ids.begin(), ids.end(), kMaskPoison);
  ASSERT_EQ(select(), FP_OK) << fp_last_error();
  EXPECT_EQ(counts, expectedCounts);
  EXPECT_EQ(ids, expectedIds);
  std::fill(outData.begin(), outData.end(), kPoison);
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
  EXPECT_EQ(outData, expectedOut);
  EXPECT_EQ(lse, expectedLse);

  // Zero pooled keys: every logit 0, every score equal, nothing pruned.
  std::vector<uint16_t> zeros(bytes / 2, 0);
  varlen.pooled_k = zeros.data();
  ASSERT_EQ(select(), FP_OK) << fp_last_error();
  EXPECT_NE(counts, expectedCounts) << "pooled_k was not read";
}

// The pooled keys of a B-aligned prefix do not change when later keys
// arrive: pooled once over the whole prompt, they serve a chunk call that
// ends at a block boundary (the engine's cache of pooled prefix keys).
TEST_F(VarlenApiTest, PooledKeysOfAPrefixServeLaterChunks) {
  // The whole prompt a (500 keys) as one sequence, queries = keys.
  std::vector<int32_t> wholeCu = {0, 500};
  fp_tensor_t wholeQ = packedTensor(const_cast<std::vector<uint16_t> &>(a.in.q),
                                    500, kQHeads);
  fp_tensor_t wholeK = packedTensor(const_cast<std::vector<uint16_t> &>(a.in.k),
                                    500, kKvHeads);
  fp_varlen_t whole{};
  whole.struct_size = sizeof(fp_varlen_t);
  whole.batch = 1;
  whole.max_seqlen_q = whole.max_seqlen_k = 500;
  whole.cu_seqlens_q = wholeCu.data();
  whole.cu_seqlens_k = wholeCu.data();
  const int64_t wholeBlocks = (500 + kBlock - 1) / kBlock;
  std::vector<uint16_t> pooled(size_t(kKvHeads * wholeBlocks * kDim));
  ASSERT_EQ(fp_pool_keys_varlen(plan, &wholeQ, &wholeK, &whole, pooled.data(),
                                nullptr),
            FP_OK)
      << fp_last_error();

  // A chunk: keys [0, 384) of a, its last 128 as queries. Its pooled keys
  // are the first 6 blocks of the whole prompt's, laid out for max_seqlen_k
  // 384 ([1, h_kv, 6, d]).
  const int64_t keyEnd = 384, qLen = 128, blocks = keyEnd / kBlock;
  std::vector<int32_t> cuQChunk = {0, int32_t(qLen)},
                       cuKChunk = {0, int32_t(keyEnd)};
  std::vector<uint16_t> chunkQ;
  appendRows(chunkQ, a.in.q, keyEnd - qLen, qLen, kQHeads);
  fp_tensor_t cq = packedTensor(chunkQ, qLen, kQHeads);
  fp_tensor_t ck = packedTensor(const_cast<std::vector<uint16_t> &>(a.in.k),
                                keyEnd, kKvHeads);
  fp_varlen_t chunk{};
  chunk.struct_size = sizeof(fp_varlen_t);
  chunk.batch = 1;
  chunk.max_seqlen_q = qLen;
  chunk.max_seqlen_k = keyEnd;
  chunk.cu_seqlens_q = cuQChunk.data();
  chunk.cu_seqlens_k = cuKChunk.data();
  std::vector<uint16_t> prefix(size_t(kKvHeads * blocks * kDim));
  for (int64_t h = 0; h < kKvHeads; ++h)
    std::copy_n(pooled.begin() + h * wholeBlocks * kDim, blocks * kDim,
                prefix.begin() + h * blocks * kDim);

  const int64_t rows = qLen / kBlock + 1;
  auto selectChunk = [&](std::vector<int32_t> &c, std::vector<int32_t> &i) {
    c.assign(size_t(rows * kQHeads), kMaskPoison);
    i.assign(size_t(rows * kQHeads * blocks), kMaskPoison);
    fp_varlen_mask_t m{c.data(), i.data(), rows, kQHeads, blocks};
    return fp_select_varlen(plan, &cq, &ck, &chunk, &params, &m,
                            workspace.data(), workspaceBytes, nullptr);
  };
  std::vector<int32_t> pooledCounts, pooledIds, ownCounts, ownIds;
  ASSERT_EQ(selectChunk(ownCounts, ownIds), FP_OK) << fp_last_error();
  chunk.pooled_k = prefix.data();
  ASSERT_EQ(selectChunk(pooledCounts, pooledIds), FP_OK) << fp_last_error();
  EXPECT_EQ(pooledCounts, ownCounts);
  EXPECT_EQ(pooledIds, ownIds);
}

// spec.max_workspace_bytes bounds the varlen maximum too: its compact mask
// has max_batch more rows than the whole-prompt mask, so a limit equal to the
// whole-prompt workspace at the maximum is refused, naming the varlen call.
TEST(VarlenPlanTest, MaxWorkspaceBytesCoversTheVarlenMaximum) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.head_dim = kDim;
  spec.num_q_heads = kQHeads;
  spec.num_kv_heads = kKvHeads;
  spec.block_size = kBlock;
  spec.max_batch = kMaxBatch;
  spec.max_seq_len = kMaxSeqLen;
  fp_plan_t *plan = nullptr;
  ASSERT_EQ(fp_plan_create(&spec, &plan), FP_OK) << fp_last_error();
  const size_t dense = fp_plan_workspace_bytes(plan, kMaxBatch, kMaxSeqLen);
  const size_t varlen = fp_plan_varlen_workspace_bytes(
      plan, kMaxBatch, kMaxBatch * kMaxSeqLen, kMaxSeqLen, kMaxSeqLen);
  fp_plan_destroy(plan);
  ASSERT_GT(varlen, dense);
  spec.max_workspace_bytes = dense;
  EXPECT_EQ(fp_plan_create(&spec, &plan), FP_ERROR_INVALID_ARGUMENT);
  const std::string message = fp_last_error();
  EXPECT_NE(message.find("spec.max_workspace_bytes: the workspace of a varlen call at batch 4, "
                         "total_q 2048 and max_seqlen_k 512 is " +
                         std::to_string(varlen) + " bytes"),
            std::string::npos)
      << message;
  spec.max_workspace_bytes = varlen;
  ASSERT_EQ(fp_plan_create(&spec, &plan), FP_OK) << fp_last_error();
  fp_plan_destroy(plan);
}

// Pooling's own arguments, named; the byte query checks its sizes.
TEST_F(VarlenApiTest, BadPoolKeysArgumentsAreNamed) {
  std::vector<uint16_t> pooled(size_t(varlen.batch * kKvHeads * maxKeyBlocks *
                                      kDim),
                               kPoison);
  auto expectPoolRejected = [&](fp_status_t status, const std::string &what) {
    EXPECT_EQ(status, FP_ERROR_INVALID_ARGUMENT) << fp_last_error();
    EXPECT_NE(std::string(fp_last_error()).find(what), std::string::npos)
        << "expected '" << what << "' in: " << fp_last_error();
    for (uint16_t x : pooled)
      ASSERT_EQ(x, kPoison) << "pooled keys written despite the error";
  };
  expectPoolRejected(
      fp_pool_keys_varlen(plan, &q, &k, &varlen, nullptr, nullptr),
      "pooled_k: expected a buffer of fp_plan_varlen_pooled_keys_bytes = " +
          std::to_string(pooled.size() * 2) + " bytes, got NULL");
  fp_varlen_t withPooled = varlen;
  withPooled.pooled_k = pooled.data();
  expectPoolRejected(fp_pool_keys_varlen(plan, &q, &k, &withPooled,
                                         pooled.data(), nullptr),
                     "varlen.pooled_k: expected NULL for fp_pool_keys_varlen");
  std::vector<int32_t> broken = cuK;
  broken[2] = broken[1] - 1;
  varlen.cu_seqlens_k = broken.data();
  expectPoolRejected(
      fp_pool_keys_varlen(plan, &q, &k, &varlen, pooled.data(), nullptr),
      "cu_seqlens_k[2]: expected non-decreasing offsets");
  EXPECT_EQ(fp_pool_keys_varlen(nullptr, &q, &k, &varlen, pooled.data(),
                                nullptr),
            FP_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(fp_plan_varlen_pooled_keys_bytes(plan, kMaxBatch + 1, 64), 0u);
  EXPECT_NE(std::string(fp_last_error()).find("batch: expected 1.."),
            std::string::npos)
      << fp_last_error();
  EXPECT_EQ(fp_plan_varlen_pooled_keys_bytes(plan, 1, kMaxSeqLen + 1), 0u);
  EXPECT_NE(std::string(fp_last_error()).find("max_seqlen_k: expected 1.."),
            std::string::npos)
      << fp_last_error();
}

// Host-visible arguments: every one named, nothing written.
TEST_F(VarlenApiTest, BadHostArgumentsAreNamed) {
  expectRejected(fp_prefill_varlen(plan, &q, &k, &v, nullptr, &out, &params,
                                   workspace.data(), workspaceBytes, nullptr),
                 FP_ERROR_INVALID_ARGUMENT,
                 "varlen: expected a pointer to an fp_varlen_t, got NULL");
  expectRejected(fp_prefill_varlen(nullptr, &q, &k, &v, &varlen, &out,
                                   &params, workspace.data(), workspaceBytes,
                                   nullptr),
                 FP_ERROR_INVALID_ARGUMENT, "plan: expected a plan");
  const fp_varlen_t good = varlen;
  auto reset = [&] { varlen = good; };

  varlen.batch = 5;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "varlen.batch: expected 1..4 (the plan's max_batch), got "
                    "5");
  reset();
  varlen.max_seqlen_k = 513;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "varlen.max_seqlen_k: expected 1..512 (the plan's "
                    "max_seq_len), got 513");
  reset();
  varlen.max_seqlen_q = 0;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "varlen.max_seqlen_q: expected 1..512");
  reset();
  varlen.cu_seqlens_q = nullptr;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "varlen.cu_seqlens_q: expected a pointer to batch + 1 "
                    "offsets, got NULL");
  reset();
  varlen.page_table = pageTable.data();
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "varlen.cu_seqlens_k, varlen.page_table: expected packed "
                    "K/V (cu_seqlens_k) or paged K/V (page_table and k_lens), "
                    "not both");
  reset();
  varlen.cu_seqlens_k = nullptr;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "expected cu_seqlens_k (packed K/V) or page_table and "
                    "k_lens (paged K/V), got none of them");
  reset();
  usePaged();
  varlen.max_pages = 0;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "varlen.max_pages: expected 1..2147483647");
  reset();
  usePaged();
  k.shape[1] = v.shape[1] = 48;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "k.shape[1] (page_size): expected a power of two in [1, "
                    "256], got 48");
  reset();
  k = packedTensor(kData, cuK.back(), kKvHeads);
  v = packedTensor(vData, cuK.back(), kKvHeads);
  k.shape[0] = 2;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "k.shape[0]: expected 1 (packed K/V is [1, total_k, h_kv, "
                    "d]), got 2");
  k.shape[0] = 1;
  q.shape[1] = 2049;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "q.shape[1] (total_q): expected 1..2048 (the plan's "
                    "max_batch * max_seq_len), got 2049");
  q.shape[1] = totalQ;
  q.shape[2] = 3;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT,
                    "q.shape[2] (heads): expected 4, got 3");
  q.shape[2] = kQHeads;
  out.shape[1] = totalQ - 1;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "out.shape[1] (seq): expected " + std::to_string(totalQ));
  out.shape[1] = totalQ;
  v.shape[2] = 1;
  expectRejected(attend(), FP_ERROR_INVALID_ARGUMENT,
                 "v.shape[2] (heads): expected 2, got 1");
  v.shape[2] = kKvHeads;

  int32_t reserved[2] = {0, 1};
  params.cu_seqlens_q = reserved;
  expectAllRejected(FP_ERROR_UNSUPPORTED,
                    "variable-length batches are not supported through "
                    "fp_params_t");
  params.cu_seqlens_q = nullptr;
  params.window = 0;
  expectAllRejected(FP_ERROR_INVALID_ARGUMENT, "params.window: expected >= 1");
  params.window = 2;

  expectRejected(fp_prefill_varlen(plan, &q, &k, &v, &varlen, &out, &params,
                                   workspace.data(), workspaceBytes - 1,
                                   nullptr),
                 FP_ERROR_INVALID_ARGUMENT,
                 "workspace_bytes: expected >= " +
                     std::to_string(workspaceBytes) + " for batch 3, total_q " +
                     std::to_string(totalQ) + " and max_seqlen_k 512, got " +
                     std::to_string(workspaceBytes - 1));
  const size_t selectBytes = fp_plan_varlen_select_workspace_bytes(
      plan, varlen.batch, totalQ, 300, kMaxSeqLen);
  expectRejected(fp_select_varlen(plan, &q, &k, &varlen, &params, &mask,
                                  workspace.data(), selectBytes - 1, nullptr),
                 FP_ERROR_INVALID_ARGUMENT,
                 "workspace_bytes: expected >= " + std::to_string(selectBytes));

  mask.num_rows = numRows - 1;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "mask.num_rows: expected " + std::to_string(numRows) +
                     " (floor(total_q / block_size) + batch = floor(" +
                     std::to_string(totalQ) + " / 64) + 3), got " +
                     std::to_string(numRows - 1));
  expectRejected(attend(), FP_ERROR_INVALID_ARGUMENT, "mask.num_rows");
  mask.num_rows = numRows;
  mask.max_key_blocks = 7;
  expectRejected(attend(), FP_ERROR_INVALID_ARGUMENT,
                 "mask.max_key_blocks: expected 8 (ceil(max_seqlen_k / "
                 "block_size) = ceil(512 / 64)), got 7");
  mask.max_key_blocks = maxKeyBlocks;
  mask.heads = 8;
  expectRejected(select(), FP_ERROR_INVALID_ARGUMENT,
                 "mask.heads: expected 4 (the plan's num_q_heads), got 8");
  mask.heads = kQHeads;
  mask.ids = nullptr;
  expectRejected(attend(), FP_ERROR_INVALID_ARGUMENT,
                 "mask.counts, mask.ids: expected pointers");
}

// Lengths live in host memory on a CPU plan, so they are checked in full:
// named errors, nothing written.
TEST_F(VarlenApiTest, BadLengthsAreNamedOnTheCpu) {
  auto check = [&](const std::string &message) {
    expectAllRejected(FP_ERROR_INVALID_ARGUMENT, message);
  };
  const std::vector<int32_t> goodQ = cuQ, goodK = cuK;
  cuQ[2] = 100; // below cu_seqlens_q[1] = 200
  check("cu_seqlens_q[2]: expected non-decreasing offsets (>= "
        "cu_seqlens_q[1] = 200), got 100");
  cuQ = goodQ;
  cuQ[3] = int32_t(totalQ + 1);
  check("cu_seqlens_q[3]: expected <= total_q (q.seq) = " +
        std::to_string(totalQ) + ", got " + std::to_string(totalQ + 1));
  cuQ = goodQ;
  cuQ[0] = 1;
  check("cu_seqlens_q[0]: expected 0, got 1");
  cuQ = goodQ;
  cuK[1] = 150; // sequence 0: 150 keys for 200 queries
  check("cu_seqlens_k[1] - cu_seqlens_k[0] (k_len of sequence 0): expected "
        ">= q_len = 200");
  cuK = goodK;
  varlen.max_seqlen_q = 250; // sequence 1 has 300 queries
  check("max_seqlen_q: expected >= every q_len, got 250 < the q_len 300 of "
        "sequence 1");
  varlen.max_seqlen_q = 300;

  usePaged();
  const std::vector<int32_t> goodTable = pageTable, goodLens = kLens;
  pageTable[size_t(maxPages + 2)] = int32_t(numPages);
  check("page_table[1][2]: expected a page id in [0, " +
        std::to_string(numPages) + ") (k.shape[0]), got " +
        std::to_string(numPages));
  pageTable = goodTable;
  varlen.max_pages = 20; // 500 keys need 32 pages of 16
  check("k_lens[0]: 500 keys need ceil(500 / 16) = 32 pages; expected at "
        "most max_pages = 20 (the page table is too narrow)");
  varlen.max_pages = maxPages;
  kLens[2] = 4;
  check("k_lens[2] (k_len of sequence 2): expected >= q_len = 5");
  kLens = goodLens;
  // (A smaller max_seqlen_k changes the mask's shape, which select and
  // attend report first: prefill alone.)
  varlen.max_seqlen_k = 400;
  expectRejected(prefill(), FP_ERROR_INVALID_ARGUMENT,
                 "max_seqlen_k: expected >= every k_len, got 400 < the k_len "
                 "500 of sequence 0");
  varlen.max_seqlen_k = kMaxSeqLen;
  ASSERT_EQ(prefill(), FP_OK) << fp_last_error();
}

// A mask row with an id past J(I) is rejected before attention reads it.
TEST_F(VarlenApiTest, CorruptMaskContentIsRejected) {
  ASSERT_EQ(select(), FP_OK) << fp_last_error();
  const std::vector<int32_t> selectedCounts = counts;
  // Sequence 1 (no prefix), I = 0: row floor(200 / 64) + 1 = 4, J = 0.
  ids[size_t(4 * kQHeads * maxKeyBlocks)] = 1;
  counts.assign(counts.size(), kMaskPoison); // only for the poison check
  std::vector<int32_t> realCounts = selectedCounts;
  mask.counts = realCounts.data();
  expectRejected(attend(), FP_ERROR_INVALID_ARGUMENT,
                 "mask.ids[row=4, h=0] (sequence 1, I=0): expected strictly "
                 "ascending block ids in [0, 0], got 1 at position 0");
}

} // namespace
