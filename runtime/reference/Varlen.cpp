//===- Varlen.cpp - Reference of the engine shapes --------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// docs/semantics.md section 2: packed batches of chunks after a cached prefix,
// over packed or paged K/V. The rule is not restated here: each sequence is
// cut out of the packed tensors (paged K/V gathered into a contiguous copy)
// and run through the same row helpers as the whole-prompt ops, with the
// sequence's CausalGeometry. Only the bookkeeping lives in this file: input
// validation, the compact mask's rows and the [h_q, total_q] LSE.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/reference.h"

#include "Internal.h"
#include "Parallel.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

namespace fp::ref {

namespace {

std::string str(int64_t value) { return std::to_string(value); }

std::string indexed(const char *name, int64_t i) {
  return std::string(name) + "[" + str(i) + "]";
}

/// cu_seqlens: b + 1 offsets, [0] = 0, non-decreasing, [b] <= total.
Status checkOffsets(const char *name, const std::vector<int32_t> &offsets,
                    int64_t expectedSize, int64_t total,
                    const char *totalName) {
  if (static_cast<int64_t>(offsets.size()) != expectedSize)
    return invalidArgument(std::string(name) + ": expected b + 1 = " +
                           str(expectedSize) + " offsets, got " +
                           str(static_cast<int64_t>(offsets.size())));
  if (offsets[0] != 0)
    return invalidArgument(indexed(name, 0) + ": expected 0, got " +
                           str(offsets[0]));
  for (size_t i = 1; i < offsets.size(); ++i)
    if (offsets[i] < offsets[i - 1])
      return invalidArgument(indexed(name, int64_t(i)) +
                             ": expected non-decreasing offsets (>= " +
                             indexed(name, int64_t(i) - 1) + " = " +
                             str(offsets[i - 1]) + "), got " +
                             str(offsets[i]));
  const int64_t last = offsets.back();
  if (last > total)
    return invalidArgument(indexed(name, expectedSize - 1) + ": expected <= " +
                           totalName + " = " + str(total) + ", got " +
                           str(last));
  return Status::ok();
}

Status checkSameShape(const char *name, const TensorView &view,
                      const TensorView &like, const char *likeName) {
  if (view.batch != like.batch || view.seq != like.seq ||
      view.heads != like.heads)
    return invalidArgument(
        std::string(name) + ": expected [" + str(like.batch) + ", " +
        str(like.seq) + ", " + str(like.heads) + ", d_v] (the shape of " +
        likeName + "), got [" + str(view.batch) + ", " + str(view.seq) + ", " +
        str(view.heads) + ", " + str(view.dim) + "]");
  return Status::ok();
}

/// Where key length i comes from, for messages.
std::string keyLenName(const VarlenProblem &problem, int64_t i) {
  return problem.paged() ? indexed("k_lens", i)
                         : indexed("cu_seqlens_k", i + 1) + " - " +
                               indexed("cu_seqlens_k", i);
}

Status checkPaged(const VarlenProblem &problem) {
  const int64_t b = problem.batch();
  const int64_t numPages = problem.k.batch, pageSize = problem.k.seq;
  if (problem.pageTable.empty() || problem.kLens.empty())
    return invalidArgument(
        "cu_seqlens_k, page_table, k_lens: expected cu_seqlens_k (packed "
        "K/V) or page_table and k_lens (paged K/V), got " +
        std::string(problem.pageTable.empty() ? "no page_table"
                                              : "no k_lens"));
  if (pageSize < 1 || pageSize > 256 || (pageSize & (pageSize - 1)) != 0)
    return invalidArgument("k.seq (page_size): expected a power of two in "
                           "[1, 256], got " +
                           str(pageSize));
  if (static_cast<int64_t>(problem.kLens.size()) != b)
    return invalidArgument("k_lens: expected b = " + str(b) +
                           " lengths, got " +
                           str(int64_t(problem.kLens.size())));
  if (problem.maxPages < 1)
    return invalidArgument("max_pages: expected >= 1 (the columns of "
                           "page_table), got " +
                           str(problem.maxPages));
  if (static_cast<int64_t>(problem.pageTable.size()) != b * problem.maxPages)
    return invalidArgument("page_table: expected b * max_pages = " +
                           str(b * problem.maxPages) + " entries, got " +
                           str(int64_t(problem.pageTable.size())));
  for (int64_t i = 0; i < b; ++i) {
    const int64_t kLen = problem.kLens[size_t(i)];
    if (kLen < 0)
      return invalidArgument(indexed("k_lens", i) + ": expected >= 0, got " +
                             str(kLen));
    const int64_t pages = (kLen + pageSize - 1) / pageSize;
    if (pages > problem.maxPages)
      return invalidArgument(
          indexed("k_lens", i) + ": " + str(kLen) + " keys need ceil(" +
          str(kLen) + " / " + str(pageSize) + ") = " + str(pages) +
          " pages; expected at most max_pages = " + str(problem.maxPages) +
          " (the page table is too narrow)");
    for (int64_t t = 0; t < pages; ++t) {
      const int32_t page = problem.pageTable[size_t(i * problem.maxPages + t)];
      if (page < 0 || page >= numPages)
        return invalidArgument("page_table[" + str(i) + "][" + str(t) +
                               "]: expected a page id in [0, " +
                               str(numPages) + ") (k.shape[0]), got " +
                               str(page));
    }
  }
  return Status::ok();
}

/// Queries of sequence i: a view into the packed q.
TensorView queryView(const VarlenProblem &problem, int64_t i) {
  TensorView view = problem.q;
  view.data += problem.queryStart(i) * view.seqStride;
  view.batch = 1;
  view.seq = problem.queryLen(i);
  return view;
}

/// K or V of sequence i as [1, k_len, h_kv, d]: a view into packed K/V, or
/// the sequence's pages gathered into `storage`.
TensorView keyView(const VarlenProblem &problem, const TensorView &packedOrPaged,
                   int64_t i, Tensor &storage) {
  const int64_t kLen = problem.keyLen(i);
  if (!problem.paged()) {
    TensorView view = packedOrPaged;
    view.data += problem.cuSeqlensK[size_t(i)] * view.seqStride;
    view.batch = 1;
    view.seq = kLen;
    return view;
  }
  const TensorView &pages = packedOrPaged;
  const int64_t pageSize = pages.seq;
  storage = Tensor::zeros(pages.dtype, 1, kLen, pages.heads, pages.dim);
  MutableTensorView dst = storage.mutableView();
  for (int64_t t = 0; t < kLen; ++t) {
    const int64_t page =
        problem.pageTable[size_t(i * problem.maxPages + t / pageSize)];
    for (int64_t h = 0; h < pages.heads; ++h)
      std::copy_n(pages.row(page, t % pageSize, h), pages.dim,
                  dst.row(0, t, h));
  }
  return storage.view();
}

/// The options of sequence i: lastN only where it applies.
Options sequenceOptions(const VarlenProblem &problem, const Options &options,
                        int64_t i) {
  Options o = options;
  if (!problem.lastNApplies(i))
    o.lastN = 0;
  return o;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

} // namespace

//===----------------------------------------------------------------------===//
// VarlenProblem, VarlenMask
//===----------------------------------------------------------------------===//

int64_t VarlenProblem::resolvedMaxSeqlenQ() const {
  if (maxSeqlenQ > 0)
    return maxSeqlenQ;
  int64_t most = 0;
  for (int64_t i = 0; i < batch(); ++i)
    most = std::max(most, queryLen(i));
  return most;
}

int64_t VarlenProblem::resolvedMaxSeqlenK() const {
  if (maxSeqlenK > 0)
    return maxSeqlenK;
  int64_t most = 0;
  for (int64_t i = 0; i < batch(); ++i)
    most = std::max(most, keyLen(i));
  return most;
}

VarlenMask VarlenMask::empty(int64_t numRows, int64_t heads,
                             int64_t maxKeyBlocks, int64_t blockSize) {
  VarlenMask mask;
  mask.numRows = numRows;
  mask.heads = heads;
  mask.maxKeyBlocks = maxKeyBlocks;
  mask.blockSize = blockSize;
  mask.counts.assign(size_t(numRows * heads), 0);
  mask.ids.assign(size_t(numRows * heads * maxKeyBlocks), -1);
  return mask;
}

std::vector<int32_t> VarlenMask::kept(const std::vector<int32_t> &cuSeqlensQ,
                                      int64_t i, int64_t h,
                                      int64_t queryBlock) const {
  const int64_t row = rowOf(cuSeqlensQ, i, queryBlock, blockSize);
  const int32_t *first = rowIds(row, h);
  return std::vector<int32_t>(first, first + count(row, h));
}

bool VarlenMask::contains(const std::vector<int32_t> &cuSeqlensQ, int64_t i,
                          int64_t h, int64_t queryBlock, int64_t j) const {
  const std::vector<int32_t> ids = kept(cuSeqlensQ, i, h, queryBlock);
  return std::binary_search(ids.begin(), ids.end(), static_cast<int32_t>(j));
}

int64_t VarlenMask::keptBlocks() const {
  int64_t total = 0;
  for (int32_t c : counts)
    total += c;
  return total;
}

Status VarlenMask::validate(const VarlenProblem &problem,
                            int64_t expectBlockSize) const {
  const int64_t expectRows = numRowsFor(problem.totalQ(), problem.batch(),
                                        expectBlockSize);
  const int64_t expectKeyBlocks =
      ceilDiv(problem.resolvedMaxSeqlenK(), expectBlockSize);
  auto expectEqual = [](const char *name, int64_t expected, const char *why,
                        int64_t got) {
    return expected == got
               ? Status::ok()
               : invalidArgument(std::string(name) + ": expected " +
                                 str(expected) + " (" + why + "), got " +
                                 str(got));
  };
  FP_RETURN_IF_ERROR(expectEqual("mask.block_size", expectBlockSize,
                                 "options.blockSize", blockSize));
  FP_RETURN_IF_ERROR(expectEqual("mask.num_rows", expectRows,
                                 "floor(total_q / B) + b", numRows));
  FP_RETURN_IF_ERROR(
      expectEqual("mask.heads", problem.q.heads, "the query heads of q", heads));
  FP_RETURN_IF_ERROR(expectEqual("mask.max_key_blocks", expectKeyBlocks,
                                 "ceil(max_seqlen_k / B)", maxKeyBlocks));
  FP_RETURN_IF_ERROR(expectEqual("mask.counts size", numRows * heads,
                                 "num_rows * h_q",
                                 static_cast<int64_t>(counts.size())));
  FP_RETURN_IF_ERROR(expectEqual("mask.ids size",
                                 numRows * heads * maxKeyBlocks,
                                 "num_rows * h_q * max_key_blocks",
                                 static_cast<int64_t>(ids.size())));
  for (int64_t i = 0; i < problem.batch(); ++i) {
    const CausalGeometry g = problem.geometry(i, blockSize);
    for (int64_t qb = 0; qb < g.numQueryBlocks(); ++qb) {
      const int64_t row = rowOf(problem.cuSeqlensQ, i, qb, blockSize);
      for (int64_t h = 0; h < heads; ++h) {
        const std::string where = "[row=" + str(row) + ", h=" + str(h) +
                                  "] (sequence " + str(i) + ", I=" + str(qb) +
                                  ")";
        FP_RETURN_IF_ERROR(detail::checkMaskRow(
            "mask.counts" + where, "mask.ids" + where, count(row, h),
            rowIds(row, h), g.lastKeyBlock(qb)));
      }
    }
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

Status validateVarlen(const VarlenProblem &problem, const Options &options) {
  FP_RETURN_IF_ERROR(validateOptions(options));
  const TensorView &q = problem.q, &k = problem.k, &v = problem.v;
  FP_RETURN_IF_ERROR(detail::checkView("q", q));
  FP_RETURN_IF_ERROR(detail::checkView("k", k));
  FP_RETURN_IF_ERROR(detail::checkView("v", v));
  if (k.dtype != q.dtype || v.dtype != q.dtype)
    return invalidArgument(std::string(k.dtype != q.dtype ? "k" : "v") +
                           ".dtype: expected " + dtypeName(q.dtype) +
                           " (the dtype of q), got " +
                           dtypeName(k.dtype != q.dtype ? k.dtype : v.dtype));
  if (q.batch != 1)
    return invalidArgument("q.batch: expected 1 (q is [1, total_q, h_q, d]), "
                           "got " +
                           str(q.batch));
  if (k.dim != q.dim)
    return invalidArgument("k.dim: expected " + str(q.dim) + " (q.dim), got " +
                           str(k.dim));
  FP_RETURN_IF_ERROR(checkSameShape("v", v, k, "k"));
  if (k.heads <= 0 || q.heads % k.heads != 0)
    return invalidArgument("q.heads: expected a multiple of k.heads (" +
                           str(k.heads) + "), got " + str(q.heads));

  if (problem.cuSeqlensQ.size() < 2)
    return invalidArgument("cu_seqlens_q: expected b + 1 >= 2 offsets, got " +
                           str(int64_t(problem.cuSeqlensQ.size())));
  const int64_t b = problem.batch();
  FP_RETURN_IF_ERROR(checkOffsets("cu_seqlens_q", problem.cuSeqlensQ, b + 1,
                                  q.seq, "total_q (q.seq)"));
  if (!problem.cuSeqlensK.empty()) {
    if (!problem.pageTable.empty() || !problem.kLens.empty())
      return invalidArgument(
          "cu_seqlens_k, page_table: expected packed K/V (cu_seqlens_k) or "
          "paged K/V (page_table and k_lens), not both");
    if (k.batch != 1)
      return invalidArgument("k.batch: expected 1 (packed K/V is [1, total_k, "
                             "h_kv, d]), got " +
                             str(k.batch));
    FP_RETURN_IF_ERROR(checkOffsets("cu_seqlens_k", problem.cuSeqlensK, b + 1,
                                    k.seq, "total_k (k.seq)"));
  } else {
    FP_RETURN_IF_ERROR(checkPaged(problem));
  }
  for (int64_t i = 0; i < b; ++i)
    if (problem.keyLen(i) < problem.queryLen(i))
      return invalidArgument(
          keyLenName(problem, i) + " (k_len of sequence " + str(i) +
          "): expected >= q_len = " + str(problem.queryLen(i)) +
          " (the queries are the last q_len keys), got " +
          str(problem.keyLen(i)));
  if (!problem.applyLastN.empty() &&
      static_cast<int64_t>(problem.applyLastN.size()) != b)
    return invalidArgument("apply_last_n: expected b = " + str(b) +
                           " flags (or none: every sequence), got " +
                           str(int64_t(problem.applyLastN.size())));
  const struct {
    const char *name, *lenName;
    int64_t value;
    bool keys;
  } maxima[] = {{"max_seqlen_q", "q_len", problem.maxSeqlenQ, false},
                {"max_seqlen_k", "k_len", problem.maxSeqlenK, true}};
  for (const auto &m : maxima) {
    if (m.value < 0)
      return invalidArgument(std::string(m.name) +
                             ": expected >= 0 (0 = the actual maximum), got " +
                             str(m.value));
    if (m.value == 0)
      continue;
    for (int64_t i = 0; i < b; ++i) {
      const int64_t len = m.keys ? problem.keyLen(i) : problem.queryLen(i);
      if (len > m.value)
        return invalidArgument(std::string(m.name) + ": expected >= every " +
                               m.lenName + ", got " + str(m.value) +
                               " < the " + m.lenName + " " + str(len) +
                               " of sequence " + str(i));
    }
  }
  if (problem.pooledK.data) {
    const TensorView &pk = problem.pooledK;
    FP_RETURN_IF_ERROR(detail::checkView("pooled_k", pk));
    const int64_t blocks =
        ceilDiv(problem.resolvedMaxSeqlenK(), options.blockSize);
    if (pk.dtype != q.dtype)
      return invalidArgument(std::string("pooled_k.dtype: expected ") +
                             dtypeName(q.dtype) +
                             " (the dtype of q), got " + dtypeName(pk.dtype));
    if (pk.batch != b || pk.seq != blocks || pk.heads != k.heads ||
        pk.dim != k.dim)
      return invalidArgument(
          "pooled_k: expected [b, ceil(max_seqlen_k / B), h_kv, d] = [" +
          str(b) + ", " + str(blocks) + ", " + str(k.heads) + ", " +
          str(k.dim) + "], got [" + str(pk.batch) + ", " + str(pk.seq) +
          ", " + str(pk.heads) + ", " + str(pk.dim) + "]");
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Ops
//===----------------------------------------------------------------------===//

StatusOr<Tensor> poolKeysVarlen(const VarlenProblem &problem,
                                const Options &options) {
  FP_RETURN_IF_ERROR(validateVarlen(problem, options));
  if (problem.pooledK.data)
    return invalidArgument("pooled_k: expected none when pooling the keys "
                           "(poolKeysVarlen computes them), got a tensor");
  const int64_t blocks =
      ceilDiv(problem.resolvedMaxSeqlenK(), options.blockSize);
  Tensor pooled = Tensor::zeros(problem.q.dtype, problem.batch(), blocks,
                                problem.k.heads, problem.k.dim, Layout::kBHSD);
  MutableTensorView dst = pooled.mutableView();
  for (int64_t i = 0; i < problem.batch(); ++i) {
    Tensor keyStorage;
    const TensorView k = keyView(problem, problem.k, i, keyStorage);
    if (k.seq == 0)
      continue;
    StatusOr<Tensor> kbar = blockPool(k, options);
    FP_RETURN_IF_ERROR(kbar.status());
    const TensorView src = kbar->view();
    for (int64_t j = 0; j < src.seq; ++j)
      for (int64_t h = 0; h < src.heads; ++h)
        std::copy_n(src.row(0, j, h), src.dim, dst.row(i, j, h));
  }
  return pooled;
}

StatusOr<VarlenMask> selectVarlen(const VarlenProblem &problem,
                                  const Options &options) {
  FP_RETURN_IF_ERROR(validateVarlen(problem, options));
  const int64_t blockSize = options.blockSize;
  const int64_t heads = problem.q.heads;
  VarlenMask mask = VarlenMask::empty(
      VarlenMask::numRowsFor(problem.totalQ(), problem.batch(), blockSize),
      heads, ceilDiv(problem.resolvedMaxSeqlenK(), blockSize), blockSize);
  const bool pooled = options.scoreQuery == ScoreQuery::kPooled;
  for (int64_t i = 0; i < problem.batch(); ++i) {
    const CausalGeometry g = problem.geometry(i, blockSize);
    if (g.queryLen == 0)
      continue;
    const TensorView q = queryView(problem, i);
    // The pooled keys: given (blocks of this sequence only), or pooled here.
    Tensor kbar;
    TensorView kbarView;
    if (problem.pooledK.data) {
      kbarView = problem.pooledK;
      kbarView.data += i * kbarView.batchStride;
      kbarView.batch = 1;
      kbarView.seq = ceilDiv(g.keyLen, blockSize);
    } else {
      Tensor keyStorage;
      const TensorView k = keyView(problem, problem.k, i, keyStorage);
      StatusOr<Tensor> pooledNow = blockPool(k, options);
      FP_RETURN_IF_ERROR(pooledNow.status());
      kbar = std::move(*pooledNow);
      kbarView = kbar.view();
    }
    Tensor qbar;
    if (pooled) {
      StatusOr<Tensor> pooledQ = blockPool(q, options);
      FP_RETURN_IF_ERROR(pooledQ.status());
      qbar = std::move(*pooledQ);
    }
    const TensorView qbarView = qbar.view();
    const Options seqOptions = sequenceOptions(problem, options, i);
    const int64_t nq = g.numQueryBlocks();
    // Tasks (h, I), largest I first so the threads finish together.
    detail::parallelFor(nq * heads, options.numThreads, [&](int64_t task, int) {
      const int64_t qb = nq - 1 - task / heads, h = task % heads;
      std::vector<float> scores(size_t(g.lastKeyBlock(qb) + 1));
      detail::scoreRow(q, kbarView, pooled ? &qbarView : nullptr, seqOptions,
                       g, 0, h, qb, scores.data());
      const int64_t row =
          VarlenMask::rowOf(problem.cuSeqlensQ, i, qb, blockSize);
      mask.counts[size_t(row * heads + h)] = thresholdRow(
          scores.data(), g, qb, seqOptions, mask.rowIds(row, h));
    });
  }
  return mask;
}

StatusOr<VarlenOutput> attendVarlen(const VarlenProblem &problem,
                                    const VarlenMask &mask,
                                    const Options &options) {
  FP_RETURN_IF_ERROR(validateVarlen(problem, options));
  const int64_t blockSize = options.blockSize;
  FP_RETURN_IF_ERROR(mask.validate(problem, blockSize));
  const int64_t heads = problem.q.heads, totalQ = problem.totalQ();
  const float scale = resolveScale(options, problem.q.dim);
  VarlenOutput result;
  result.out =
      Tensor::zeros(problem.q.dtype, 1, totalQ, heads, problem.v.dim);
  result.lse.assign(size_t(heads * totalQ),
                    -std::numeric_limits<float>::infinity());
  std::vector<detail::AttentionScratch> scratch(
      size_t(detail::resolveThreads(options.numThreads)));
  for (int64_t i = 0; i < problem.batch(); ++i) {
    const CausalGeometry g = problem.geometry(i, blockSize);
    if (g.queryLen == 0)
      continue;
    const TensorView q = queryView(problem, i);
    Tensor keyStorage, valueStorage;
    const TensorView k = keyView(problem, problem.k, i, keyStorage);
    const TensorView v = keyView(problem, problem.v, i, valueStorage);
    MutableTensorView out = result.out.mutableView();
    out.data += problem.queryStart(i) * out.seqStride;
    out.seq = g.queryLen;
    Tensor kbar, vbar;
    detail::MeanTerms terms;
    if (options.meanCorrection) {
      FP_RETURN_IF_ERROR(detail::poolMeanTerms(k, v, options, kbar, vbar));
      terms = {kbar.view(), vbar.view()};
    }
    const int64_t nq = g.numQueryBlocks();
    detail::parallelFor(
        nq * heads, options.numThreads, [&](int64_t task, int worker) {
          const int64_t qb = nq - 1 - task / heads, h = task % heads;
          const int64_t row =
              VarlenMask::rowOf(problem.cuSeqlensQ, i, qb, blockSize);
          detail::attendBlock(
              q, k, v, g, 0, h, qb, mask.count(row, h), mask.rowIds(row, h),
              scale, scratch[size_t(worker)], out,
              &result.lse[size_t(h * totalQ + problem.queryStart(i))],
              options.meanCorrection ? &terms : nullptr);
        });
  }
  result.mask = mask;
  return result;
}

StatusOr<VarlenOutput> prefillVarlen(const VarlenProblem &problem,
                                     const Options &options) {
  StatusOr<VarlenMask> mask = selectVarlen(problem, options);
  FP_RETURN_IF_ERROR(mask.status());
  return attendVarlen(problem, *mask, options);
}

StatusOr<NaiveAttentionOutput>
naiveAttentionVarlen(const VarlenProblem &problem, const Options &options,
                     const VarlenMask *mask) {
  FP_RETURN_IF_ERROR(validateVarlen(problem, options));
  const int64_t blockSize = options.blockSize;
  if (mask)
    FP_RETURN_IF_ERROR(mask->validate(problem, blockSize));
  const int64_t heads = problem.q.heads, totalQ = problem.totalQ();
  const int64_t dv = problem.v.dim;
  const double scale = resolveScale(options, problem.q.dim);
  NaiveAttentionOutput result;
  result.out.assign(size_t(totalQ * heads * dv), 0.0);
  result.lse.assign(size_t(heads * totalQ),
                    -std::numeric_limits<double>::infinity());
  std::vector<double> logits;
  for (int64_t i = 0; i < problem.batch(); ++i) {
    const CausalGeometry g = problem.geometry(i, blockSize);
    if (g.queryLen == 0)
      continue;
    const TensorView q = queryView(problem, i);
    Tensor keyStorage, valueStorage;
    const TensorView k = keyView(problem, problem.k, i, keyStorage);
    const TensorView v = keyView(problem, problem.v, i, valueStorage);
    const int64_t start = problem.queryStart(i);
    Tensor kbar, vbar;
    detail::MeanTerms terms;
    if (options.meanCorrection) {
      FP_RETURN_IF_ERROR(detail::poolMeanTerms(k, v, options, kbar, vbar));
      terms = {kbar.view(), vbar.view()};
    }
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t r = 0; r < g.queryLen; ++r) {
        const int64_t qb = r / blockSize;
        std::vector<int32_t> kept;
        if (mask)
          kept = mask->kept(problem.cuSeqlensQ, i, h, qb);
        auto isKept = [&](int64_t j) {
          return !mask || std::binary_search(kept.begin(), kept.end(),
                                             static_cast<int32_t>(j));
        };
        result.lse[size_t(h * totalQ + start + r)] =
            detail::naiveRow(q, k, v, g, 0, h, r, scale, isKept,
                             &result.out[size_t(((start + r) * heads + h) * dv)],
                             logits, options.meanCorrection ? &terms : nullptr);
      }
  }
  return result;
}

} // namespace fp::ref
