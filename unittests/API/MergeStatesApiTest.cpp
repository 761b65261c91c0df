//===- MergeStatesApiTest.cpp - fp_merge_states on a CPU plan ---*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// fp_merge_states through the C API (and fp::Plan::mergeStates): the keys
// of one prefill split in two passes and merged equal the unsplit call, for
// a packed varlen batch after cached prefixes (LSE [h_q, total_q]) and for a
// whole-prompt batch (LSE [b, h_q, s]); the result is ref::mergeStates bit
// for bit; in place works; every bad argument is a named error that writes
// nothing.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/flashprefill.h"
#include "flashprefill/flashprefill.hpp"
#include "flashprefill/reference.h"
#include "flashprefill/structured_inputs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

namespace {

constexpr int64_t kQHeads = 4, kKvHeads = 2, kDim = 64, kBlock = 64;

fp_plan_t *cpuPlan(int64_t maxBatch, int64_t maxSeqLen) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.head_dim = kDim;
  spec.num_q_heads = kQHeads;
  spec.num_kv_heads = kKvHeads;
  spec.block_size = kBlock;
  spec.max_batch = maxBatch;
  spec.max_seq_len = maxSeqLen;
  fp_plan_t *plan = nullptr;
  EXPECT_EQ(fp_plan_create(&spec, &plan), FP_OK) << fp_last_error();
  return plan;
}

fp::testing::StructuredInputs prompt(int64_t len, uint64_t seed) {
  fp::testing::StructuredConfig c;
  c.seqLen = len;
  c.numQHeads = kQHeads;
  c.numKvHeads = kKvHeads;
  c.headDim = kDim;
  c.blockSize = kBlock;
  c.seed = seed;
  return fp::testing::makeStructuredInputs(c);
}

fp_tensor_t rows(std::vector<uint16_t> &data, int64_t n, int64_t heads) {
  return {data.data(), {1, n, heads, kDim}, {n * heads * kDim, heads * kDim,
                                             kDim, 1}};
}

/// A bf16 state over `o` [1, n, h_q, d] with the varlen LSE [h_q, n].
fp_attn_state_t varlenState(std::vector<uint16_t> &o, std::vector<float> &lse,
                            int64_t n) {
  fp_attn_state_t s{};
  s.o = rows(o, n, kQHeads);
  s.dtype = FP_DTYPE_BF16;
  s.lse = lse.data();
  s.lse_strides[0] = 0;
  s.lse_strides[1] = n;
  s.lse_strides[2] = 1;
  return s;
}

/// The bound of a merged split against the unsplit call, per element: both
/// round P to bf16 before PV (2^-9 max|v| each), the two partial outputs are
/// rounded to bf16 (2^-9 max|v|), and both results once more (2^-9 |O|
/// each): 5 * 2^-9 * max|v|, plus room for the fp32 sums.
float splitTolerance(const std::vector<uint16_t> &v) {
  float maxV = 0;
  for (uint16_t x : v)
    maxV = std::max(maxV, std::fabs(fp::bf16BitsToFloat(x)));
  return 6.0f * std::ldexp(1.0f, -9) * maxV;
}

uint32_t bitsOf(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

// A packed batch of two sequences after cached prefixes (300 keys, not
// block-aligned, then 200 new queries; and a prompt without prefix). The
// kept blocks of the unsplit call (fp_select_varlen) are split into the
// cached prefix's (key blocks below 4) and the rest; attending over each
// half with fp_attend_varlen and merging equals fp_prefill_varlen. The
// second sequence has no prefix blocks: its rows are the second pass
// exactly, hence the unsplit call bit for bit.
TEST(MergeStatesApiTest, SplitVarlenCallMergedEqualsOneCall) {
  fp_plan_t *plan = cpuPlan(2, 512);
  ASSERT_NE(plan, nullptr);
  auto p0 = prompt(500, 1), p1 = prompt(130, 2);
  const int64_t prefix0 = 300, q0 = 200, q1 = 130, totalQ = q0 + q1;
  const int64_t rowElems = kQHeads * kDim, kvElems = kKvHeads * kDim;
  std::vector<uint16_t> q(p0.q.begin() + prefix0 * rowElems, p0.q.end());
  q.insert(q.end(), p1.q.begin(), p1.q.end());
  std::vector<uint16_t> k = p0.k, v = p0.v;
  k.insert(k.end(), p1.k.begin(), p1.k.end());
  v.insert(v.end(), p1.v.begin(), p1.v.end());
  const int64_t totalK = int64_t(k.size()) / kvElems;
  std::vector<int32_t> cuQ = {0, int32_t(q0), int32_t(totalQ)};
  std::vector<int32_t> cuK = {0, 500, int32_t(totalK)};
  fp_tensor_t qt = rows(q, totalQ, kQHeads), kt = rows(k, totalK, kKvHeads),
              vt = rows(v, totalK, kKvHeads);
  fp_varlen_t vl{};
  vl.struct_size = sizeof(vl);
  vl.batch = 2;
  vl.max_seqlen_q = q0;
  vl.max_seqlen_k = 500;
  vl.cu_seqlens_q = cuQ.data();
  vl.cu_seqlens_k = cuK.data();
  fp_params_t params;
  fp_params_init(&params);
  params.alpha = 0.2f;

  // The unsplit call.
  std::vector<uint16_t> whole(q.size());
  std::vector<float> wholeLse(size_t(kQHeads * totalQ));
  fp_tensor_t wt = rows(whole, totalQ, kQHeads);
  params.lse = wholeLse.data();
  const size_t bytes =
      fp_plan_varlen_workspace_bytes(plan, 2, totalQ, q0, 500);
  std::vector<unsigned char> ws(bytes);
  ASSERT_EQ(fp_prefill_varlen(plan, &qt, &kt, &vt, &vl, &wt, &params,
                              ws.data(), bytes, nullptr),
            FP_OK)
      << fp_last_error();

  // Its mask, split by key block.
  const int64_t numRows = totalQ / kBlock + 2,
                maxKeyBlocks = (500 + kBlock - 1) / kBlock;
  std::vector<int32_t> counts(size_t(numRows * kQHeads)),
      ids(size_t(numRows * kQHeads * maxKeyBlocks));
  fp_varlen_mask_t mask{counts.data(), ids.data(), numRows, kQHeads,
                        maxKeyBlocks};
  ASSERT_EQ(fp_select_varlen(plan, &qt, &kt, &vl, &params, &mask, ws.data(),
                             bytes, nullptr),
            FP_OK)
      << fp_last_error();
  std::vector<int32_t> countsA(counts.size(), 0), countsB(counts.size(), 0),
      idsA(ids.size(), -1), idsB(ids.size(), -1);
  const int64_t prefixBlocks = prefix0 / kBlock; // keys [0, 256)
  const int64_t seq0Rows = (q0 + kBlock - 1) / kBlock; // mask rows 0..3
  int64_t keptA = 0, keptB = 0;
  for (int64_t r = 0; r < numRows * kQHeads; ++r)
    for (int32_t n = 0; n < counts[size_t(r)]; ++n) {
      const int32_t j = ids[size_t(r * maxKeyBlocks + n)];
      const bool inPrefix = r / kQHeads < seq0Rows && j < prefixBlocks;
      auto &c = inPrefix ? countsA : countsB;
      (inPrefix ? idsA : idsB)[size_t(r * maxKeyBlocks + c[size_t(r)]++)] = j;
      ++(inPrefix ? keptA : keptB);
    }
  ASSERT_GT(keptA, 0);
  ASSERT_GT(keptB, 0);

  std::vector<uint16_t> oA(q.size()), oB(q.size()), merged(q.size());
  std::vector<float> lA(wholeLse.size()), lB(wholeLse.size()),
      lM(wholeLse.size());
  fp_tensor_t at = rows(oA, totalQ, kQHeads), bt = rows(oB, totalQ, kQHeads);
  fp_varlen_mask_t maskA{countsA.data(), idsA.data(), numRows, kQHeads,
                         maxKeyBlocks},
      maskB{countsB.data(), idsB.data(), numRows, kQHeads, maxKeyBlocks};
  params.lse = lA.data();
  ASSERT_EQ(fp_attend_varlen(plan, &qt, &kt, &vt, &vl, &maskA, &at, &params,
                             nullptr),
            FP_OK)
      << fp_last_error();
  params.lse = lB.data();
  ASSERT_EQ(fp_attend_varlen(plan, &qt, &kt, &vt, &vl, &maskB, &bt, &params,
                             nullptr),
            FP_OK)
      << fp_last_error();

  fp_attn_state_t a = varlenState(oA, lA, totalQ),
                  b = varlenState(oB, lB, totalQ),
                  out = varlenState(merged, lM, totalQ);
  ASSERT_EQ(fp_merge_states(plan, &a, &b, &out, nullptr), FP_OK)
      << fp_last_error();

  const float tol = splitTolerance(v);
  float worst = 0;
  for (int64_t t = 0; t < totalQ; ++t)
    for (int64_t h = 0; h < kQHeads; ++h) {
      const size_t li = size_t(h * totalQ + t);
      if (t >= q0) { // sequence 1: no prefix, so pass A is empty
        ASSERT_EQ(lA[li], -std::numeric_limits<float>::infinity());
        ASSERT_EQ(bitsOf(lM[li]), bitsOf(wholeLse[li])) << t;
        for (int64_t x = 0; x < kDim; ++x)
          ASSERT_EQ(merged[size_t((t * kQHeads + h) * kDim + x)],
                    whole[size_t((t * kQHeads + h) * kDim + x)]);
        continue;
      }
      EXPECT_NEAR(lM[li], wholeLse[li],
                  1e-5f * std::max(1.0f, std::fabs(wholeLse[li])));
      for (int64_t x = 0; x < kDim; ++x) {
        const size_t e = size_t((t * kQHeads + h) * kDim + x);
        ASSERT_NEAR(fp::bf16BitsToFloat(merged[e]),
                    fp::bf16BitsToFloat(whole[e]), tol)
            << "row " << t << " head " << h;
        worst = std::max(worst, std::fabs(fp::bf16BitsToFloat(merged[e]) -
                                          fp::bf16BitsToFloat(whole[e])));
      }
    }
  std::printf("[          ] max |merged - unsplit| = %g (bound %g)\n", worst,
              tol);

  // The C API's merge is the reference's, bit for bit.
  auto refState = [&](std::vector<uint16_t> &o, std::vector<float> &lse) {
    fp::ref::AttentionState s;
    s.o = o.data();
    s.type = fp::ref::StateType::kBF16;
    const int64_t shape[4] = {1, totalQ, kQHeads, kDim};
    const int64_t strides[4] = {totalQ * rowElems, rowElems, kDim, 1};
    std::copy(shape, shape + 4, s.shape);
    std::copy(strides, strides + 4, s.strides);
    s.lse = lse.data();
    s.lseStrides[1] = totalQ;
    s.lseStrides[2] = 1;
    return s;
  };
  std::vector<uint16_t> refO(q.size());
  std::vector<float> refL(wholeLse.size());
  ASSERT_TRUE(fp::ref::mergeStates(refState(oA, lA), refState(oB, lB),
                                   refState(refO, refL))
                  .isOk());
  EXPECT_EQ(merged, refO);
  EXPECT_EQ(std::memcmp(lM.data(), refL.data(), lM.size() * 4), 0);
  fp_plan_destroy(plan);
}

// A whole-prompt batch (b = 2, LSE [b, h_q, s]): the blocks strictly below
// the diagonal in one pass, the diagonal in the other, through fp_attend
// with hand-made padded masks; merged equals fp_attend over both, and fp32
// and in-place outputs agree with it.
TEST(MergeStatesApiTest, SplitWholePromptCallMergedEqualsOneCall) {
  const int64_t batch = 2, seq = 320, nb = seq / kBlock;
  fp_plan_t *plan = cpuPlan(batch, seq);
  ASSERT_NE(plan, nullptr);
  auto in0 = prompt(seq, 3), in1 = prompt(seq, 4);
  std::vector<uint16_t> q = in0.q, k = in0.k, v = in0.v;
  q.insert(q.end(), in1.q.begin(), in1.q.end());
  k.insert(k.end(), in1.k.begin(), in1.k.end());
  v.insert(v.end(), in1.v.begin(), in1.v.end());
  auto bshd = [&](std::vector<uint16_t> &x, int64_t heads) {
    return fp_tensor_t{x.data(),
                       {batch, seq, heads, kDim},
                       {seq * heads * kDim, heads * kDim, kDim, 1}};
  };
  fp_tensor_t qt = bshd(q, kQHeads), kt = bshd(k, kKvHeads),
              vt = bshd(v, kKvHeads);
  auto makeMask = [&](std::vector<int32_t> &counts, std::vector<int32_t> &ids,
                      int which) { // 0 below the diagonal, 1 diagonal, 2 both
    counts.assign(size_t(batch * kQHeads * nb), 0);
    ids.assign(size_t(batch * kQHeads * nb * nb), -1);
    for (int64_t r = 0; r < batch * kQHeads * nb; ++r) {
      const int64_t i = r % nb;
      for (int64_t j = 0; j <= i; ++j)
        if (which == 2 || (which == 1) == (j == i))
          ids[size_t(r * nb + counts[size_t(r)]++)] = int32_t(j);
    }
    return fp_mask_t{counts.data(), ids.data(), batch, kQHeads, nb};
  };
  std::vector<int32_t> c[3], id[3];
  std::vector<uint16_t> o[3];
  std::vector<float> l[3];
  fp_params_t params;
  fp_params_init(&params);
  for (int which = 0; which < 3; ++which) {
    fp_mask_t m = makeMask(c[which], id[which], which);
    o[which].assign(q.size(), 0);
    l[which].assign(size_t(batch * kQHeads * seq), 0.0f);
    fp_tensor_t ot = bshd(o[which], kQHeads);
    params.lse = l[which].data();
    ASSERT_EQ(fp_attend(plan, &qt, &kt, &vt, &m, &ot, &params, nullptr), FP_OK)
        << fp_last_error();
  }
  auto state = [&](void *data, fp_dtype_t dtype, float *lse) {
    fp_attn_state_t s{};
    s.o = bshd(o[0], kQHeads);
    s.o.data = data;
    s.dtype = dtype;
    s.lse = lse;
    s.lse_strides[0] = kQHeads * seq;
    s.lse_strides[1] = seq;
    s.lse_strides[2] = 1;
    return s;
  };
  // bf16 out, and fp32 out (which skips the final rounding).
  std::vector<uint16_t> merged(q.size());
  std::vector<float> merged32(q.size()), lM(l[0].size()), lM32(l[0].size());
  fp_attn_state_t a = state(o[0].data(), FP_DTYPE_BF16, l[0].data()),
                  b = state(o[1].data(), FP_DTYPE_BF16, l[1].data()),
                  out = state(merged.data(), FP_DTYPE_BF16, lM.data()),
                  out32 = state(merged32.data(), FP_DTYPE_F32, lM32.data());
  ASSERT_EQ(fp_merge_states(plan, &a, &b, &out, nullptr), FP_OK)
      << fp_last_error();
  ASSERT_EQ(fp_merge_states(plan, &a, &b, &out32, nullptr), FP_OK)
      << fp_last_error();
  const float tol = splitTolerance(v);
  int firstBlockRows = 0;
  float worst = 0;
  for (size_t e = 0; e < merged.size(); ++e) {
    const float whole = fp::bf16BitsToFloat(o[2][e]);
    ASSERT_NEAR(fp::bf16BitsToFloat(merged[e]), whole, tol) << e;
    worst = std::max(worst, std::fabs(fp::bf16BitsToFloat(merged[e]) - whole));
    ASSERT_NEAR(merged32[e], whole, tol) << e;
    // fp32 out is bf16 out before its final rounding.
    ASSERT_EQ(merged[e], fp::floatToBF16Bits(merged32[e])) << e;
  }
  std::printf("[          ] max |merged - unsplit| = %g (bound %g)\n", worst,
              tol);
  for (size_t r = 0; r < lM.size(); ++r) {
    EXPECT_NEAR(lM[r], l[2][r], 1e-5f * std::max(1.0f, std::fabs(l[2][r])));
    EXPECT_EQ(lM[r], lM32[r]);
    if (std::isinf(l[0][r])) { // query block 0: nothing below the diagonal
      ++firstBlockRows;
      EXPECT_EQ(lM[r], l[1][r]);
    }
  }
  EXPECT_EQ(firstBlockRows, batch * kQHeads * kBlock);

  // In place into a (O and LSE): the same bits.
  std::vector<uint16_t> expectO = merged;
  std::vector<float> expectL = lM;
  ASSERT_EQ(fp_merge_states(plan, &a, &b, &a, nullptr), FP_OK)
      << fp_last_error();
  EXPECT_EQ(o[0], expectO);
  EXPECT_EQ(l[0], expectL);
  fp_plan_destroy(plan);
}

// fp::Plan::mergeStates is the C entry point's implementation: same
// results, same messages.
TEST(MergeStatesApiTest, CppPlanMatchesC) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.max_seq_len = 64;
  auto plan = fp::Plan::create(spec);
  ASSERT_TRUE(plan.isOk()) << plan.status().toString();
  std::vector<float> oa(2 * 3 * 8, 1.0f), ob(oa.size(), 3.0f), out(oa.size());
  std::vector<float> la(6, 0.0f), lb(6, 0.0f), lo(6);
  auto state = [](std::vector<float> &o, std::vector<float> &l) {
    fp_attn_state_t s{};
    s.o = {o.data(), {1, 2, 3, 8}, {48, 24, 8, 1}};
    s.dtype = FP_DTYPE_F32;
    s.lse = l.data();
    s.lse_strides[1] = 2;
    s.lse_strides[2] = 1;
    return s;
  };
  fp_attn_state_t a = state(oa, la), b = state(ob, lb), o = state(out, lo);
  ASSERT_TRUE((*plan)->mergeStates(&a, &b, &o, nullptr).isOk());
  for (float x : out)
    EXPECT_EQ(x, 2.0f); // equal weights: the mean
  for (float x : lo)
    EXPECT_EQ(x, std::log(2.0f));
  o.o.shape[3] = 7;
  fp::Status st = (*plan)->mergeStates(&a, &b, &o, nullptr);
  EXPECT_EQ(st.code(), fp::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "out.o.shape[3]: expected 8 (a.o.shape[3]), got 7");
}

// Every bad argument of the C entry point is named and nothing is written.
TEST(MergeStatesApiTest, BadArgumentsAreNamedAndNothingIsWritten) {
  fp_plan_t *plan = cpuPlan(1, 64);
  ASSERT_NE(plan, nullptr);
  std::vector<uint16_t> oa(4 * 3 * 8, 0x3f80), ob(oa.size(), 0x4000),
      out(oa.size(), 0x7777);
  std::vector<float> la(12, 0.5f), lb(12, 1.5f), lo(12, 99.0f);
  auto state = [](std::vector<uint16_t> &o, std::vector<float> &l) {
    fp_attn_state_t s{};
    s.o = {o.data(), {1, 4, 3, 8}, {96, 24, 8, 1}};
    s.dtype = FP_DTYPE_BF16;
    s.lse = l.data();
    s.lse_strides[1] = 4;
    s.lse_strides[2] = 1;
    return s;
  };
  struct Case {
    const char *what;
    std::function<fp_status_t(fp_attn_state_t &, fp_attn_state_t &,
                              fp_attn_state_t &)>
        call;
    fp_status_t code;
    const char *message;
  };
  const Case cases[] = {
      {"null plan",
       [](auto &a, auto &b, auto &o) {
         return fp_merge_states(nullptr, &a, &b, &o, nullptr);
       },
       FP_ERROR_INVALID_ARGUMENT,
       "plan: expected a plan from fp_plan_create, got NULL"},
      {"null a",
       [&](auto &, auto &b, auto &o) {
         return fp_merge_states(plan, nullptr, &b, &o, nullptr);
       },
       FP_ERROR_INVALID_ARGUMENT,
       "a: expected a pointer to an fp_attn_state_t, got NULL"},
      {"null out",
       [&](auto &a, auto &b, auto &) {
         return fp_merge_states(plan, &a, &b, nullptr, nullptr);
       },
       FP_ERROR_INVALID_ARGUMENT,
       "out: expected a pointer to an fp_attn_state_t, got NULL"},
      {"dtype out of the enum",
       [&](auto &a, auto &b, auto &o) {
         const int32_t bad = 7;
         std::memcpy(&b.dtype, &bad, sizeof(bad));
         return fp_merge_states(plan, &a, &b, &o, nullptr);
       },
       FP_ERROR_INVALID_ARGUMENT,
       "b.dtype: expected FP_DTYPE_BF16 (0), FP_DTYPE_F16 (1) or "
       "FP_DTYPE_F32 (2), got 7"},
      {"shape",
       [&](auto &a, auto &b, auto &o) {
         b.o.shape[2] = 2;
         return fp_merge_states(plan, &a, &b, &o, nullptr);
       },
       FP_ERROR_INVALID_ARGUMENT, "b.o.shape[2]: expected 3 (a.o.shape[2]), got 2"},
      {"null lse",
       [&](auto &a, auto &b, auto &o) {
         a.lse = nullptr;
         return fp_merge_states(plan, &a, &b, &o, nullptr);
       },
       FP_ERROR_INVALID_ARGUMENT, "a.lse: expected a pointer"},
      {"partial overlap",
       [&](auto &a, auto &b, auto &o) {
         o.o.data = static_cast<uint16_t *>(a.o.data) + 8;
         return fp_merge_states(plan, &a, &b, &o, nullptr);
       },
       FP_ERROR_INVALID_ARGUMENT,
       "out.o: expected memory disjoint from a.o, or exactly a.o"},
      {"strides[3]",
       [&](auto &a, auto &b, auto &o) {
         o.o.strides[3] = 0;
         return fp_merge_states(plan, &a, &b, &o, nullptr);
       },
       FP_ERROR_INVALID_ARGUMENT, "out.o.strides[3]: expected 1"},
  };
  for (const Case &c : cases) {
    fp_attn_state_t a = state(oa, la), b = state(ob, lb), o = state(out, lo);
    EXPECT_EQ(c.call(a, b, o), c.code) << c.what;
    EXPECT_NE(std::string(fp_last_error()).find(c.message), std::string::npos)
        << c.what << ": " << fp_last_error();
    for (uint16_t x : out)
      ASSERT_EQ(x, 0x7777) << c.what;
    for (float x : lo)
      ASSERT_EQ(x, 99.0f) << c.what;
  }
  // After success the message is empty.
  fp_attn_state_t a = state(oa, la), b = state(ob, lb), o = state(out, lo);
  ASSERT_EQ(fp_merge_states(plan, &a, &b, &o, nullptr), FP_OK);
  EXPECT_STREQ(fp_last_error(), "");
  fp_plan_destroy(plan);
}

} // namespace
