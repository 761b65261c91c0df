//===- GpuVarlenTest.cpp - Engine shapes on the GPU vs the oracle -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The varlen kernels (docs/semantics.md section 2: packed sequences after
// cached prefixes, packed or paged K/V) through the public API against the
// CPU reference (ref::selectVarlen, ref::naiveAttentionVarlen): compact
// masks equal except near-threshold ties (counted as GpuPrefillTest does),
// outputs within the fp64 error bound on the GPU's own mask, every row
// written, LSE [h_q, total_q]; prefix 0 equals the s_q == s_k kernels;
// paged (page sizes 1 to 256, shuffled pages, NaN in unused slots) equals
// packed bit for bit; CUDA-graph replay with fixed maxima and new lengths;
// bad device-side lengths skip their sequence without a fault. Each
// sequence's inputs are structured inputs of k_len tokens whose last q_len
// queries are the sequence's queries. Tests skip without a GPU.
//
//===----------------------------------------------------------------------===//
#include "GpuTestUtil.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <numeric>
#include <ostream>
#include <random>

namespace fp::gputest {
namespace {

struct Seq {
  int64_t qLen, kLen;
  int32_t applyLastN = 1;
};

struct VarlenCase {
  int headDim, blockSize;
  fp_dtype_t dtype;
  int qHeads, kvHeads;
  std::vector<Seq> seqs;
  const char *name;
  bool pooled = false; ///< the plan scores with pooled queries
};

void PrintTo(const VarlenCase &c, std::ostream *os) { *os << c.name; }

DType dtypeOf(fp_dtype_t t) { return t == FP_DTYPE_BF16 ? DType::kBF16 : DType::kF16; }

/// A varlen call on the host: packed q / k / v and, optionally, the same
/// K/V in shuffled pages.
struct HostVarlen {
  DType dt;
  int64_t d, hq, hkv, blockSize;
  std::vector<int32_t> cuQ, cuK, applyLastN, kLens;
  std::vector<uint16_t> q, k, v; // [total, h, d]
  int64_t totalQ = 0, totalK = 0, maxQ = 0, maxK = 0;
  // Paged copy (pageSize > 0).
  int64_t pageSize = 0, numPages = 0, maxPages = 0;
  std::vector<int32_t> pageTable;
  std::vector<uint16_t> kPaged, vPaged;

  int64_t batch() const { return int64_t(cuQ.size()) - 1; }

  ref::VarlenProblem problem(bool paged) const {
    ref::VarlenProblem p;
    p.q = {q.data(), dt, 1, totalQ, hq, d, totalQ * hq * d, hq * d, d};
    if (paged) {
      p.k = {kPaged.data(), dt, numPages, pageSize, hkv, d, pageSize * hkv * d, hkv * d, d};
      p.v = {vPaged.data(), dt, numPages, pageSize, hkv, d, pageSize * hkv * d, hkv * d, d};
      p.pageTable = pageTable;
      p.maxPages = maxPages;
      p.kLens = kLens;
    } else {
      p.k = {k.data(), dt, 1, totalK, hkv, d, totalK * hkv * d, hkv * d, d};
      p.v = {v.data(), dt, 1, totalK, hkv, d, totalK * hkv * d, hkv * d, d};
      p.cuSeqlensK = cuK;
    }
    p.cuSeqlensQ = cuQ;
    p.applyLastN = applyLastN;
    p.maxSeqlenQ = maxQ;
    p.maxSeqlenK = maxK;
    return p;
  }
  /// Sequence i's queries [1, q_len, h_q, d] and keys [1, k_len, h_kv, d].
  ref::TensorView seqQ(int64_t i) const {
    const int64_t n = cuQ[i + 1] - cuQ[i];
    return {q.data() + cuQ[i] * hq * d, dt, 1, n, hq, d, n * hq * d, hq * d, d};
  }
  ref::TensorView seqK(int64_t i) const {
    const int64_t n = cuK[i + 1] - cuK[i];
    return {k.data() + cuK[i] * hkv * d, dt, 1, n, hkv, d, n * hkv * d, hkv * d, d};
  }
};

HostVarlen makeHost(const VarlenCase &c, uint64_t seed) {
  HostVarlen h;
  h.dt = dtypeOf(c.dtype);
  h.d = c.headDim, h.hq = c.qHeads, h.hkv = c.kvHeads, h.blockSize = c.blockSize;
  h.cuQ = {0};
  h.cuK = {0};
  for (size_t i = 0; i < c.seqs.size(); ++i) {
    const Seq &s = c.seqs[i];
    testing::StructuredConfig config = structuredConfig(
        c.dtype, 1, s.kLen, c.qHeads, c.kvHeads, c.headDim, c.blockSize, seed + i);
    testing::StructuredInputs in = testing::makeStructuredInputs(config);
    const int64_t prefix = s.kLen - s.qLen;
    // Queries: the last q_len positions of the prompt.
    h.q.insert(h.q.end(), in.q.begin() + prefix * c.qHeads * c.headDim, in.q.end());
    h.k.insert(h.k.end(), in.k.begin(), in.k.end());
    h.v.insert(h.v.end(), in.v.begin(), in.v.end());
    h.cuQ.push_back(int32_t(h.cuQ.back() + s.qLen));
    h.cuK.push_back(int32_t(h.cuK.back() + s.kLen));
    h.kLens.push_back(int32_t(s.kLen));
    h.applyLastN.push_back(s.applyLastN);
    h.maxQ = std::max(h.maxQ, s.qLen);
    h.maxK = std::max(h.maxK, s.kLen);
  }
  h.totalQ = h.cuQ.back();
  h.totalK = h.cuK.back();
  return h;
}

/// Moves the packed K/V into pages of `pageSize` slots in a shuffled order;
/// unused slots hold NaN and unused page-table entries an id far out of
/// range, so reading either shows up.
void pageKv(HostVarlen &h, int64_t pageSize, uint64_t seed) {
  h.pageSize = pageSize;
  const int64_t b = h.batch();
  h.maxPages = 1;
  int64_t pages = 0;
  for (int64_t i = 0; i < b; ++i) {
    const int64_t n = (h.kLens[i] + pageSize - 1) / pageSize;
    h.maxPages = std::max(h.maxPages, n);
    pages += n;
  }
  h.numPages = pages + 3; // a few pages nobody uses
  std::vector<int32_t> order(size_t(h.numPages));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t row = h.hkv * h.d;
  const uint16_t nan = h.dt == DType::kBF16 ? 0x7FC0 : 0x7E00;
  h.kPaged.assign(size_t(h.numPages * pageSize * row), nan);
  h.vPaged.assign(h.kPaged.size(), nan);
  h.pageTable.assign(size_t(b * h.maxPages), 1 << 30);
  int64_t next = 0;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t t = 0; t < h.kLens[i]; ++t) {
      if (t % pageSize == 0)
        h.pageTable[i * h.maxPages + t / pageSize] = order[next++];
      const int64_t page = h.pageTable[i * h.maxPages + t / pageSize];
      const int64_t dst = (page * pageSize + t % pageSize) * row;
      const int64_t src = (h.cuK[i] + t) * row;
      std::copy_n(h.k.begin() + src, row, h.kPaged.begin() + dst);
      std::copy_n(h.v.begin() + src, row, h.vPaged.begin() + dst);
    }
}

template <typename T> std::unique_ptr<DeviceBuffer> deviceCopy(const rt::CudaDriver *drv,
                                                               const std::vector<T> &host) {
  auto buffer = std::make_unique<DeviceBuffer>(drv, std::max<size_t>(host.size() * sizeof(T), 4));
  EXPECT_TRUE(buffer->ok());
  if (!host.empty())
    EXPECT_TRUE(buffer->upload(host.data()).isOk());
  return buffer;
}

/// A varlen call on the device: inputs, outputs poisoned with NaN, the
/// compact mask, the workspace; select + attend on a stream.
struct GpuVarlen {
  GpuVarlen(const rt::CudaDriver *drv, const Plan &plan, const HostVarlen &h, bool paged,
            int64_t maxQ, int64_t maxK)
      : drv(drv), paged(paged), hq(h.hq), d(h.d), totalQ(h.totalQ) {
    q = deviceCopy(drv, h.q);
    k = deviceCopy(drv, paged ? h.kPaged : h.k);
    v = deviceCopy(drv, paged ? h.vPaged : h.v);
    cuQ = deviceCopy(drv, h.cuQ);
    cuK = deviceCopy(drv, h.cuK);
    pageTable = deviceCopy(drv, h.pageTable);
    kLens = deviceCopy(drv, h.kLens);
    applyLastN = deviceCopy(drv, h.applyLastN);
    const int64_t b = h.batch();
    numRows = h.totalQ / h.blockSize + b;
    maxKeyBlocks = (maxK + h.blockSize - 1) / h.blockSize;
    out = std::make_unique<DeviceBuffer>(drv, size_t(h.totalQ * h.hq * h.d) * 2);
    lse = std::make_unique<DeviceBuffer>(drv, size_t(h.hq * h.totalQ) * 4);
    counts = std::make_unique<DeviceBuffer>(drv, size_t(numRows * h.hq) * 4);
    ids = std::make_unique<DeviceBuffer>(drv, size_t(numRows * h.hq * maxKeyBlocks) * 4);
    kept = std::make_unique<DeviceBuffer>(drv, 8);
    auto bytes = plan.varlenSelectWorkspaceBytes(b, h.totalQ, maxQ, maxK);
    EXPECT_TRUE(bytes.isOk()) << bytes.status().toString();
    workspace = std::make_unique<DeviceBuffer>(drv, bytes.isOk() ? *bytes : 256);
    poison();
    qt = {q->get(), {1, h.totalQ, h.hq, h.d}, {h.totalQ * h.hq * h.d, h.hq * h.d, h.d, 1}};
    ot = {out->get(), {1, h.totalQ, h.hq, h.d}, {h.totalQ * h.hq * h.d, h.hq * h.d, h.d, 1}};
    if (paged) {
      const int64_t ps = h.pageSize;
      kt = {k->get(), {h.numPages, ps, h.hkv, h.d}, {ps * h.hkv * h.d, h.hkv * h.d, h.d, 1}};
      vt = {v->get(), {h.numPages, ps, h.hkv, h.d}, {ps * h.hkv * h.d, h.hkv * h.d, h.d, 1}};
    } else {
      kt = {k->get(), {1, h.totalK, h.hkv, h.d}, {h.totalK * h.hkv * h.d, h.hkv * h.d, h.d, 1}};
      vt = kt;
      vt.data = v->get();
    }
    varlen.struct_size = sizeof(fp_varlen_t);
    varlen.batch = b;
    varlen.max_seqlen_q = maxQ;
    varlen.max_seqlen_k = maxK;
    varlen.cu_seqlens_q = static_cast<const int32_t *>(cuQ->get());
    varlen.cu_seqlens_k = paged ? nullptr : static_cast<const int32_t *>(cuK->get());
    varlen.page_table = paged ? static_cast<const int32_t *>(pageTable->get()) : nullptr;
    varlen.max_pages = paged ? h.maxPages : 0;
    varlen.k_lens = paged ? static_cast<const int32_t *>(kLens->get()) : nullptr;
    varlen.apply_last_n = static_cast<const int32_t *>(applyLastN->get());
    mask = {static_cast<int32_t *>(counts->get()), static_cast<int32_t *>(ids->get()), numRows,
            h.hq, maxKeyBlocks};
  }

  void poison() {
    EXPECT_TRUE(out->fill(0xFF).isOk() && lse->fill(0xFF).isOk()); // NaN
    EXPECT_TRUE(counts->fill(0xFF).isOk() && ids->fill(0xFF).isOk());
    EXPECT_TRUE(kept->fill(0).isOk());
  }

  Status run(const Plan &plan, const fp_params_t &params, void *stream) {
    fp_params_t p = params;
    p.lse = static_cast<float *>(lse->get());
    p.kept_counter = static_cast<unsigned long long *>(kept->get());
    FP_RETURN_IF_ERROR(plan.selectVarlen(&qt, &kt, &varlen, &p, &mask, workspace->get(),
                                         workspace->size(), stream));
    return plan.attendVarlen(&qt, &kt, &vt, &varlen, &mask, &ot, &p, stream);
  }

  void download() {
    ASSERT_EQ(drv->api().ctxSynchronize(), CUDA_SUCCESS);
    hostOut.resize(out->size() / 2);
    hostLse.resize(lse->size() / 4);
    hostCounts.resize(counts->size() / 4);
    hostIds.resize(ids->size() / 4);
    ASSERT_TRUE(out->download(hostOut.data()).isOk());
    ASSERT_TRUE(lse->download(hostLse.data()).isOk());
    ASSERT_TRUE(counts->download(hostCounts.data()).isOk());
    ASSERT_TRUE(ids->download(hostIds.data()).isOk());
    ASSERT_TRUE(kept->download(&hostKept).isOk());
  }

  /// The GPU's mask as a reference mask: rows of no query block and entries
  /// past a count (unspecified on the GPU) set as the reference sets them.
  ref::VarlenMask refMask(const HostVarlen &h) const {
    ref::VarlenMask m = ref::VarlenMask::empty(numRows, hq, maxKeyBlocks, h.blockSize);
    for (int64_t i = 0; i < h.batch(); ++i) {
      const int64_t nq = (h.cuQ[i + 1] - h.cuQ[i] + h.blockSize - 1) / h.blockSize;
      for (int64_t I = 0; I < nq; ++I)
        for (int64_t head = 0; head < hq; ++head) {
          const int64_t row = ref::VarlenMask::rowOf(h.cuQ, i, I, h.blockSize) * hq + head;
          const int32_t count = hostCounts[row];
          m.counts[row] = count;
          for (int32_t c = 0; c < count && c < maxKeyBlocks; ++c)
            m.ids[row * maxKeyBlocks + c] = hostIds[row * maxKeyBlocks + c];
        }
    }
    return m;
  }

  const rt::CudaDriver *drv;
  bool paged;
  int64_t hq, d, totalQ, numRows = 0, maxKeyBlocks = 0;
  std::unique_ptr<DeviceBuffer> q, k, v, cuQ, cuK, pageTable, kLens, applyLastN, out, lse,
      counts, ids, kept, workspace;
  fp_tensor_t qt{}, kt{}, vt{}, ot{};
  fp_varlen_t varlen{};
  fp_varlen_mask_t mask{};
  std::vector<uint16_t> hostOut;
  std::vector<float> hostLse;
  std::vector<int32_t> hostCounts, hostIds;
  uint64_t hostKept = 0;
};

ref::Options optionsOf(const HostVarlen &h, bool pooled = false) {
  ref::Options options;
  options.blockSize = int(h.blockSize);
  options.scoreQuery = pooled ? ref::ScoreQuery::kPooled : ref::ScoreQuery::kFull;
  return options;
}

/// Compares the GPU's compact mask with the reference's row by row; a
/// disagreement is near-threshold when the block's reference score lies
/// within 1e-4 * max of the threshold (its row scored with
/// ref::blockScoreRow). Returns {near, other}.
std::pair<int64_t, int64_t> compareMasks(const HostVarlen &h, const GpuVarlen &g,
                                         const ref::VarlenMask &want,
                                         const ref::Options &options) {
  int64_t near = 0, other = 0;
  const int64_t mkb = g.maxKeyBlocks;
  for (int64_t i = 0; i < h.batch(); ++i) {
    const ref::CausalGeometry geometry{h.cuQ[i + 1] - h.cuQ[i], h.kLens[i], h.blockSize};
    std::unique_ptr<ref::Tensor> kbar;
    for (int64_t I = 0; I < geometry.numQueryBlocks(); ++I)
      for (int64_t head = 0; head < h.hq; ++head) {
        const int64_t row = ref::VarlenMask::rowOf(h.cuQ, i, I, h.blockSize) * h.hq + head;
        const int64_t J = geometry.lastKeyBlock(I);
        std::vector<char> wantSet(size_t(J + 1), 0), gotSet(size_t(J + 1), 0);
        for (int32_t c = 0; c < want.counts[row]; ++c)
          wantSet[want.ids[row * mkb + c]] = 1;
        bool bad = g.hostCounts[row] < 0 || g.hostCounts[row] > J + 1;
        for (int32_t c = 0; !bad && c < g.hostCounts[row]; ++c) {
          const int32_t j = g.hostIds[row * mkb + c];
          bad = j < 0 || j > J || (c > 0 && j <= g.hostIds[row * mkb + c - 1]);
          if (!bad)
            gotSet[j] = 1;
        }
        if (bad) {
          ADD_FAILURE() << "sequence " << i << " head " << head << " block " << I
                        << ": malformed GPU mask row (count " << g.hostCounts[row] << ")";
          ++other;
          continue;
        }
        if (wantSet == gotSet)
          continue;
        if (!kbar) {
          auto pooled = ref::blockPool(h.seqK(i), options);
          EXPECT_TRUE(pooled.isOk());
          kbar = std::make_unique<ref::Tensor>(std::move(*pooled));
        }
        std::vector<float> scores(size_t(J + 1));
        std::unique_ptr<ref::Tensor> qbar;
        if (options.scoreQuery == ref::ScoreQuery::kPooled) {
          auto pooled = ref::blockPool(h.seqQ(i), options);
          EXPECT_TRUE(pooled.isOk());
          qbar = std::make_unique<ref::Tensor>(std::move(*pooled));
        }
        const ref::TensorView qbarView = qbar ? qbar->view() : ref::TensorView{};
        EXPECT_TRUE(ref::blockScoreRow(h.seqQ(i), kbar->view(), options, geometry, 0, head, I,
                                       scores.data(), qbar ? &qbarView : nullptr)
                        .isOk());
        const float maxScore = *std::max_element(scores.begin(), scores.end());
        const float threshold = options.alpha * maxScore;
        for (int64_t j = 0; j <= J; ++j)
          if (wantSet[j] != gotSet[j])
            (std::fabs(scores[j] - threshold) <= 1e-4f * maxScore ? near : other)++;
      }
  }
  return {near, other};
}

/// Output and LSE of every sequence row on the GPU's mask against fp64
/// (bound: twice the error of the fp32 reference kernel, at least 2e-3).
void checkOutputs(const HostVarlen &h, bool paged, const GpuVarlen &g,
                  const ref::Options &options) {
  ref::VarlenProblem problem = h.problem(paged);
  ref::VarlenMask mask = g.refMask(h);
  auto truth = ref::naiveAttentionVarlen(problem, options, &mask);
  auto naive = ref::attendVarlen(problem, mask, options);
  ASSERT_TRUE(truth.isOk()) << truth.status().toString();
  ASSERT_TRUE(naive.isOk()) << naive.status().toString();
  const int64_t rowElems = h.hq * h.d;
  const size_t used = size_t(h.cuQ.back() * rowElems);
  std::vector<double> gpu(used), naiveValues(used), truthValues(used);
  int64_t nonFinite = 0;
  for (size_t e = 0; e < used; ++e) {
    gpu[e] = bitsToFloat(h.dt, g.hostOut[e]);
    naiveValues[e] = bitsToFloat(h.dt, naive->out.storage()[e]);
    truthValues[e] = truth->out[e];
    nonFinite += !std::isfinite(gpu[e]);
  }
  EXPECT_EQ(nonFinite, 0) << "unwritten (NaN-poisoned) or non-finite outputs";
  const double gpuError = testing::relativeL2(gpu, truthValues);
  const double naiveError = testing::relativeL2(naiveValues, truthValues);
  const double bound = std::max(2.0 * naiveError, 2e-3);
  double maxLseError = 0;
  for (int64_t head = 0; head < h.hq; ++head)
    for (int64_t r = 0; r < h.cuQ.back(); ++r) {
      const size_t at = size_t(head * h.totalQ + r);
      if (std::isinf(truth->lse[at])) {
        EXPECT_TRUE(std::isinf(g.hostLse[at]) && g.hostLse[at] < 0) << "row " << r;
        continue;
      }
      maxLseError = std::max(maxLseError, std::fabs(g.hostLse[at] - truth->lse[at]));
    }
  std::printf("  rel L2 vs fp64: gpu %.3e, fp32 reference kernel %.3e, bound %.3e; max |LSE "
              "error| %.3e\n",
              gpuError, naiveError, bound, maxLseError);
  EXPECT_LE(gpuError, bound);
  EXPECT_LE(maxLseError, 1e-3);
}

std::unique_ptr<Plan> planFor(const VarlenCase &c, int64_t maxBatch, int64_t maxSeqLen) {
  if (!c.pooled)
    return makePlan(c.dtype, c.headDim, c.qHeads, c.kvHeads, c.blockSize, maxBatch, maxSeqLen);
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.dtype = c.dtype;
  spec.head_dim = c.headDim;
  spec.num_q_heads = c.qHeads;
  spec.num_kv_heads = c.kvHeads;
  spec.block_size = c.blockSize;
  spec.max_batch = maxBatch;
  spec.max_seq_len = maxSeqLen;
  spec.pooled_queries = 1;
  auto plan = Plan::create(spec);
  EXPECT_TRUE(plan.isOk()) << plan.status().toString();
  return plan.isOk() ? std::move(*plan) : nullptr;
}

//===----------------------------------------------------------------------===//
// Masks and outputs against the reference
//===----------------------------------------------------------------------===//

class GpuVarlenTest : public ::testing::TestWithParam<VarlenCase> {};

// A packed batch of mixed lengths and prefixes (B-aligned and not, prefix
// 0, one query, last_n on some sequences only): mask parity, kept-block
// counter, outputs and LSE; then the same batch with paged K/V gives the
// same mask and output bits.
TEST_P(GpuVarlenTest, MatchesReference) {
  const VarlenCase c = GetParam();
  FP_REQUIRE_GPU(drv);
  HostVarlen h = makeHost(c, 17);
  auto plan = planFor(c, h.batch(), h.maxK);
  ASSERT_TRUE(plan);
  GpuVarlen g(drv, *plan, h, /*paged=*/false, h.maxQ, h.maxK);
  fp_params_t params;
  fp_params_init(&params);
  ASSERT_TRUE(g.run(*plan, params, nullptr).isOk());
  g.download();

  const ref::Options options = optionsOf(h, c.pooled);
  auto want = ref::selectVarlen(h.problem(false), options);
  ASSERT_TRUE(want.isOk()) << want.status().toString();
  auto [near, other] = compareMasks(h, g, *want, options);
  ref::VarlenMask got = g.refMask(h);
  const double density = double(got.keptBlocks()) / double(std::max<int64_t>(1, want->keptBlocks()));
  std::printf("  %s: kept %lld blocks (reference %lld, ratio %.4f), near-threshold "
              "disagreements %lld, other %lld\n",
              c.name, (long long)got.keptBlocks(), (long long)want->keptBlocks(), density,
              (long long)near, (long long)other);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(int64_t(g.hostKept), got.keptBlocks());
  checkOutputs(h, false, g, options);
}

INSTANTIATE_TEST_SUITE_P(
    Batches, GpuVarlenTest,
    ::testing::Values(
        VarlenCase{128, 128, FP_DTYPE_BF16, 8, 2,
                   {{1000, 3000}, {129, 129, 0}, {1, 700}, {640, 640 + 384}, {2048, 2100, 0}},
                   "d128_b128_bf16_mixed"},
        VarlenCase{64, 64, FP_DTYPE_F16, 4, 1,
                   {{300, 1000}, {64, 64}, {65, 130, 0}, {1, 1}, {777, 2000}},
                   "d64_b64_f16_mixed"},
        VarlenCase{256, 128, FP_DTYPE_BF16, 4, 2, {{500, 1500}, {127, 127}, {256, 1280, 0}},
                   "d256_b128_bf16_mixed"},
        VarlenCase{128, 64, FP_DTYPE_F16, 8, 8, {{1000, 1000}, {33, 1033}, {200, 4000}},
                   "d128_b64_f16_mha"},
        // Pooled queries: one block-mean probe per query block, at its last row.
        VarlenCase{128, 128, FP_DTYPE_BF16, 8, 2,
                   {{1000, 3000}, {129, 129, 0}, {1, 700}, {640, 640 + 384}},
                   "d128_b128_bf16_pooled_queries", true},
        VarlenCase{64, 64, FP_DTYPE_F16, 4, 1, {{300, 1000}, {65, 130, 0}, {777, 2000}},
                   "d64_b64_f16_pooled_queries", true}),
    [](const ::testing::TestParamInfo<VarlenCase> &info) { return std::string(info.param.name); });

//===----------------------------------------------------------------------===//
// Paged = packed
//===----------------------------------------------------------------------===//

// For page sizes 1, 16, 64, 128 and 256 (below, at and above the 32-row
// K/V tile: per-row addresses or one base per tile), pages shuffled, NaN in
// every unused slot and absurd ids past each sequence's pages: the paged
// kernels give the packed kernels' mask and output bits.
TEST(GpuVarlenPagedTest, PagedEqualsPacked) {
  FP_REQUIRE_GPU(drv);
  const VarlenCase c{128, 128, FP_DTYPE_BF16, 8, 2,
                     {{700, 2500}, {129, 129}, {1, 300}, {1024, 1024 + 256, 0}},
                     "paged"};
  HostVarlen h = makeHost(c, 29);
  auto plan = planFor(c, h.batch(), h.maxK);
  ASSERT_TRUE(plan);
  fp_params_t params;
  fp_params_init(&params);
  GpuVarlen packed(drv, *plan, h, false, h.maxQ, h.maxK);
  ASSERT_TRUE(packed.run(*plan, params, nullptr).isOk());
  packed.download();
  for (int64_t pageSize : {1, 16, 64, 128, 256}) {
    SCOPED_TRACE("page size " + std::to_string(pageSize));
    pageKv(h, pageSize, 100 + pageSize);
    GpuVarlen paged(drv, *plan, h, true, h.maxQ, h.maxK);
    ASSERT_TRUE(paged.run(*plan, params, nullptr).isOk());
    paged.download();
    ref::VarlenMask a = packed.refMask(h), b = paged.refMask(h);
    EXPECT_EQ(a.counts, b.counts);
    EXPECT_EQ(a.ids, b.ids);
    const size_t used = size_t(h.cuQ.back() * h.hq * h.d);
    EXPECT_TRUE(std::equal(packed.hostOut.begin(), packed.hostOut.begin() + used,
                           paged.hostOut.begin()))
        << "paged output differs from packed";
    EXPECT_EQ(packed.hostLse, paged.hostLse);
    std::printf("  page size %lld (%lld pages): %s\n", (long long)pageSize,
                (long long)h.numPages,
                a.ids == b.ids && std::equal(packed.hostOut.begin(),
                                             packed.hostOut.begin() + used,
                                             paged.hostOut.begin())
                    ? "bit-identical to packed"
                    : "DIFFERS");
  }
  // And the paged run against the reference, at the smallest page.
  pageKv(h, 1, 7);
  GpuVarlen paged(drv, *plan, h, true, h.maxQ, h.maxK);
  ASSERT_TRUE(paged.run(*plan, params, nullptr).isOk());
  paged.download();
  checkOutputs(h, true, paged, optionsOf(h));
}

//===----------------------------------------------------------------------===//
// Prefix 0 = the s_q == s_k kernels
//===----------------------------------------------------------------------===//

// Two whole prompts (prefix 0) packed in one varlen call keep exactly the
// blocks of the s_q == s_k kernels on a [2, s, h, d] batch, and give their
// output bits where both run the mma.sync mainloop (on sm_90a the dense
// kernels use the wgmma mainloop; both are then checked against fp64).
TEST(GpuVarlenPrefixTest, PrefixZeroEqualsPrefill) {
  FP_REQUIRE_GPU(drv);
  const int64_t s = 1500, hq = 8, hkv = 2, d = 128, bs = 128;
  const VarlenCase c{int(d), int(bs), FP_DTYPE_BF16, int(hq), int(hkv), {{s, s}, {s, s}}, "p0"};
  GpuCase dense = makeCase(drv, FP_DTYPE_BF16, 2, s, hq, hkv, d, bs, 31);
  ASSERT_TRUE(dense.plan);
  fp_params_t params;
  fp_params_init(&params);
  ASSERT_TRUE(dense.problem->run(*dense.plan, params, nullptr).isOk());
  dense.problem->download();

  // The same tokens as a packed varlen batch.
  HostVarlen h;
  h.dt = DType::kBF16;
  h.d = d, h.hq = hq, h.hkv = hkv, h.blockSize = bs;
  h.q = dense.inputs.q;
  h.k = dense.inputs.k;
  h.v = dense.inputs.v;
  h.cuQ = h.cuK = {0, int32_t(s), int32_t(2 * s)};
  h.kLens = {int32_t(s), int32_t(s)};
  h.applyLastN = {1, 1};
  h.totalQ = h.totalK = 2 * s;
  h.maxQ = h.maxK = s;
  GpuVarlen g(drv, *dense.plan, h, false, s, s);
  ASSERT_TRUE(g.run(*dense.plan, params, nullptr).isOk());
  g.download();
  const GpuProblem &p = *dense.problem;
  int64_t rowsDiffer = 0;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t head = 0; head < hq; ++head)
      for (int64_t I = 0; I < p.numBlocks; ++I) {
        const int64_t denseRow = (b * hq + head) * p.numBlocks + I;
        const int64_t row = ref::VarlenMask::rowOf(h.cuQ, b, I, bs) * hq + head;
        const int32_t count = p.hostCounts[denseRow];
        bool same = g.hostCounts[row] == count;
        for (int32_t j = 0; same && j < count; ++j)
          same = g.hostIds[row * g.maxKeyBlocks + j] == p.hostIds[denseRow * p.numBlocks + j];
        rowsDiffer += !same;
      }
  EXPECT_EQ(rowsDiffer, 0) << "mask rows that differ from the s_q == s_k kernels";
  EXPECT_EQ(g.hostKept, p.hostKept);
  // LSE: [b, h, s] vs [h, total_q].
  std::vector<float> denseLse(g.hostLse.size());
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t head = 0; head < hq; ++head)
      for (int64_t r = 0; r < s; ++r)
        denseLse[head * 2 * s + b * s + r] = p.hostLse[(b * hq + head) * s + r];
  if (dense.plan->info().arch != "sm_90a") {
    EXPECT_EQ(g.hostOut, p.hostOut);
    EXPECT_EQ(g.hostLse, denseLse);
  } else {
    std::vector<double> a(g.hostOut.size()), bb(g.hostOut.size());
    for (size_t e = 0; e < a.size(); ++e) {
      a[e] = bitsToFloat(DType::kBF16, g.hostOut[e]);
      bb[e] = bitsToFloat(DType::kBF16, p.hostOut[e]);
    }
    const double diff = testing::relativeL2(a, bb);
    std::printf("  sm_90a: varlen (mma.sync) vs dense (wgmma) output rel L2 %.3e\n", diff);
    EXPECT_LE(diff, 4e-3);
  }
  checkOutputs(h, false, g, optionsOf(h));
}

//===----------------------------------------------------------------------===//
// CUDA graphs with fixed maxima
//===----------------------------------------------------------------------===//

// select + attend captured once with fixed maxima replay for other lengths
// written to the same device arrays between replays, matching direct calls.
TEST(GpuVarlenGraphTest, CaptureReplaysWithFixedMaxima) {
  FP_REQUIRE_GPU(drv);
  const auto &api = drv->api();
  const VarlenCase first{64, 64, FP_DTYPE_F16, 8, 2, {{500, 1200}, {300, 300}, {64, 2000}}, "a"};
  // Same totals (total_q 864, total_k 3500) split differently, within the
  // maxima 1024 / 2048.
  const VarlenCase second{64, 64, FP_DTYPE_F16, 8, 2, {{64, 64}, {700, 1436}, {100, 2000}}, "b"};
  const int64_t maxQ = 1024, maxK = 2048;
  auto plan = planFor(first, 3, maxK);
  ASSERT_TRUE(plan);
  HostVarlen a = makeHost(first, 3), b = makeHost(second, 5);
  ASSERT_EQ(a.totalQ, b.totalQ);
  ASSERT_EQ(a.totalK, b.totalK);
  fp_params_t params;
  fp_params_init(&params);

  // Direct results for both length sets.
  std::vector<std::vector<uint16_t>> directOut;
  std::vector<std::vector<int32_t>> directCounts;
  for (const HostVarlen *h : {&a, &b}) {
    GpuVarlen direct(drv, *plan, *h, false, maxQ, maxK);
    ASSERT_TRUE(direct.run(*plan, params, nullptr).isOk());
    direct.download();
    directOut.push_back(direct.hostOut);
    directCounts.push_back(direct.hostCounts);
  }

  GpuVarlen g(drv, *plan, a, false, maxQ, maxK);
  CUstream stream = nullptr;
  ASSERT_EQ(api.streamCreate(&stream, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  ASSERT_EQ(api.ctxSynchronize(), CUDA_SUCCESS);
  ASSERT_EQ(api.streamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL), CUDA_SUCCESS);
  Status captured = g.run(*plan, params, stream);
  CUgraph graph = nullptr;
  ASSERT_EQ(api.streamEndCapture(stream, &graph), CUDA_SUCCESS);
  ASSERT_TRUE(captured.isOk()) << captured.toString();
  CUgraphExec exec = nullptr;
  ASSERT_EQ(api.graphInstantiate(&exec, graph, 0), CUDA_SUCCESS);
  const HostVarlen *sets[] = {&a, &b, &a};
  for (int replay = 0; replay < 3; ++replay) {
    const HostVarlen &h = *sets[replay];
    // New lengths and data in the captured buffers.
    ASSERT_TRUE(g.q->upload(h.q.data()).isOk());
    ASSERT_TRUE(g.k->upload(h.k.data()).isOk());
    ASSERT_TRUE(g.v->upload(h.v.data()).isOk());
    ASSERT_TRUE(g.cuQ->upload(h.cuQ.data()).isOk());
    ASSERT_TRUE(g.cuK->upload(h.cuK.data()).isOk());
    ASSERT_TRUE(g.applyLastN->upload(h.applyLastN.data()).isOk());
    g.poison();
    ASSERT_EQ(api.ctxSynchronize(), CUDA_SUCCESS);
    ASSERT_EQ(api.graphLaunch(exec, stream), CUDA_SUCCESS);
    ASSERT_EQ(api.streamSynchronize(stream), CUDA_SUCCESS);
    g.download();
    const int index = replay == 1 ? 1 : 0;
    EXPECT_EQ(g.hostOut, directOut[index]) << "replay " << replay;
    const ref::VarlenMask m = g.refMask(h);
    int64_t countsDiffer = 0;
    for (size_t r = 0; r < m.counts.size(); ++r) // rows of no block: unspecified
      countsDiffer += m.counts[r] != 0 && m.counts[r] != directCounts[index][r];
    EXPECT_EQ(countsDiffer, 0) << "replay " << replay;
  }
  api.graphExecDestroy(exec);
  api.graphDestroy(graph);
  api.streamDestroy(stream);
}

//===----------------------------------------------------------------------===//
// Bad device-side lengths
//===----------------------------------------------------------------------===//

// Lengths the host cannot see break the bounds (k_len < q_len, a sequence
// past total_q, a page id out of range, k_len past the page table): the
// kernels skip those sequences (or read zeros for the bad page) instead of
// reading out of bounds, the calls succeed, no CUDA error follows, and the
// intact sequences still match the reference.
TEST(GpuVarlenBadLengthsTest, BadDeviceLengthsSkipTheirSequence) {
  FP_REQUIRE_GPU(drv);
  const VarlenCase c{64, 64, FP_DTYPE_BF16, 4, 2, {{200, 600}, {100, 300}, {150, 900}}, "bad"};
  HostVarlen h = makeHost(c, 41);
  pageKv(h, 16, 9);
  auto plan = planFor(c, h.batch(), 1024);
  ASSERT_TRUE(plan);
  fp_params_t params;
  fp_params_init(&params);
  GpuVarlen good(drv, *plan, h, true, 256, 1024);
  ASSERT_TRUE(good.run(*plan, params, nullptr).isOk());
  good.download();

  struct Corruption {
    const char *what;
    std::function<void(HostVarlen &)> apply;
    std::vector<int64_t> intact; ///< sequences whose output must not change
  } corruptions[] = {
      {"k_len < q_len", [](HostVarlen &x) { x.kLens[1] = 50; }, {0, 2}},
      {"k_len past the page table",
       [](HostVarlen &x) { x.kLens[1] = int32_t(x.maxPages * x.pageSize + 1); }, {0, 2}},
      {"k_len above max_seqlen_k", [](HostVarlen &x) { x.kLens[1] = 5000; }, {0, 2}},
      {"negative k_len", [](HostVarlen &x) { x.kLens[1] = -7; }, {0, 2}},
      {"cu_seqlens_q past total_q", [](HostVarlen &x) { x.cuQ[3] = int32_t(x.totalQ + 5); },
       {0, 1}},
      {"page id out of range", [](HostVarlen &x) { x.pageTable[1 * x.maxPages + 2] = 1 << 29; },
       {0, 2}},
      {"negative page id", [](HostVarlen &x) { x.pageTable[1 * x.maxPages] = -3; }, {0, 2}},
  };
  const int64_t rowElems = h.hq * h.d;
  for (const Corruption &bad : corruptions) {
    SCOPED_TRACE(bad.what);
    HostVarlen broken = h;
    bad.apply(broken);
    GpuVarlen g(drv, *plan, broken, true, 256, 1024);
    ASSERT_TRUE(g.run(*plan, params, nullptr).isOk());
    g.download(); // synchronises: a fault would fail here
    for (int64_t i : bad.intact) {
      const auto begin = size_t(h.cuQ[i] * rowElems), end = size_t(h.cuQ[i + 1] * rowElems);
      EXPECT_TRUE(std::equal(good.hostOut.begin() + begin, good.hostOut.begin() + end,
                             g.hostOut.begin() + begin))
          << "sequence " << i << " changed";
    }
  }
  EXPECT_EQ(drv->api().ctxSynchronize(), CUDA_SUCCESS);
}

// fp_attend_varlen on a hand-made compact mask: counts far past the row,
// negative and huge block ids. Device memory is not validated; the kernel
// clamps counts to the row and never reads keys outside [0, k_len).
TEST(GpuVarlenBadLengthsTest, HandMadeMasksNeverReadOutOfBounds) {
  FP_REQUIRE_GPU(drv);
  const VarlenCase c{64, 64, FP_DTYPE_F16, 4, 2, {{200, 600}, {100, 300}}, "mask"};
  HostVarlen h = makeHost(c, 43);
  pageKv(h, 1, 3);
  auto plan = planFor(c, h.batch(), 1024);
  ASSERT_TRUE(plan);
  fp_params_t params;
  fp_params_init(&params);
  for (bool paged : {false, true}) {
    SCOPED_TRACE(paged ? "paged" : "packed");
    GpuVarlen g(drv, *plan, h, paged, 256, 1024);
    std::vector<int32_t> counts(g.counts->size() / 4), ids(g.ids->size() / 4);
    for (size_t r = 0; r < counts.size(); ++r)
      counts[r] = r % 3 == 0 ? 1 << 28 : r % 3 == 1 ? -9 : int32_t(g.maxKeyBlocks);
    const int32_t pattern[] = {-5, 1 << 30, -(1 << 30), 3, 2, 1000, 0, 7};
    for (size_t e = 0; e < ids.size(); ++e)
      ids[e] = pattern[e % 8];
    ASSERT_TRUE(g.counts->upload(counts.data()).isOk());
    ASSERT_TRUE(g.ids->upload(ids.data()).isOk());
    fp_params_t p = params;
    p.lse = static_cast<float *>(g.lse->get());
    ASSERT_TRUE(plan->attendVarlen(&g.qt, &g.kt, &g.vt, &g.varlen, &g.mask, &g.ot, &p, nullptr)
                    .isOk());
    g.download(); // synchronises: a fault would fail here
    int64_t nonFinite = 0;
    for (size_t e = 0; e < size_t(h.cuQ.back() * h.hq * h.d); ++e)
      nonFinite += !std::isfinite(bitsToFloat(h.dt, g.hostOut[e]));
    EXPECT_EQ(nonFinite, 0) << "every row is still written, without NaN";
  }
}

} // namespace
} // namespace fp::gputest
