//===- BlockScore.cpp - Reference block_score -------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// docs/semantics.md section 1, step 2: per query block I, the share of the
// tile's softmax mass (one shared max M_I, rows not normalised one by one) that
// falls on each pooled key block j <= I. Padded rows (r >= L) never count,
// and row r sees block j only when j's last valid token is visible to it.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/reference.h"

#include "Internal.h"
#include "Numerics.h"
#include "Parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace fp::ref {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

/// Checks that `pooled` ([b, nb, heads, d] logical) matches q.
Status checkPooled(const char *name, const TensorView &pooled,
                   const TensorView &q, int64_t nb, int64_t expectHeads) {
  FP_RETURN_IF_ERROR(detail::checkView(name, pooled));
  std::string n(name);
  if (pooled.dtype != q.dtype)
    return invalidArgument(n + ".dtype: expected " + dtypeName(q.dtype) +
                           " (the dtype of q), got " + dtypeName(pooled.dtype));
  if (pooled.batch != q.batch || pooled.seq != nb || pooled.dim != q.dim ||
      (expectHeads > 0 && pooled.heads != expectHeads))
    return invalidArgument(
        n + ": expected logical shape [" + std::to_string(q.batch) + ", " +
        std::to_string(nb) + ", " +
        (expectHeads > 0 ? std::to_string(expectHeads) : std::string("h_kv")) +
        ", " + std::to_string(q.dim) + "] ([b, nb, h, d]), got [" +
        std::to_string(pooled.batch) + ", " + std::to_string(pooled.seq) +
        ", " + std::to_string(pooled.heads) + ", " +
        std::to_string(pooled.dim) + "]");
  return Status::ok();
}

/// score_j = E_j / (sum_j' E_j' + epsilon), the sum in ascending j.
void normalise(const float *energy, int64_t n, float *scores) {
  float total = 0.0f;
  for (int64_t j = 0; j < n; ++j)
    total += energy[j];
  for (int64_t j = 0; j < n; ++j)
    scores[j] = energy[j] / (total + FP_SCORE_EPSILON);
}

} // namespace

void detail::scoreRow(const TensorView &q, const TensorView &kbar,
                      const TensorView *qbarView, const Options &options,
                      const CausalGeometry &geometry, int64_t b, int64_t h,
                      int64_t i, float *scores) {
  const int64_t blockSize = geometry.blockSize;
  const int64_t d = q.dim;
  const int64_t group = q.heads / kbar.heads;
  const float scale = resolveScale(options, d);
  const bool pooled = qbarView != nullptr;
  const int64_t hk = h / group;
  const int64_t numJ = geometry.lastKeyBlock(i) + 1; // candidates j <= J(I)

  // Pooled keys of blocks 0..J(I), as float.
  std::vector<float> kbarF(static_cast<size_t>(numJ * d));
  for (int64_t j = 0; j < numJ; ++j)
    detail::toFloat(kbar.dtype, kbar.row(b, j, hk), d, &kbarF[j * d]);
  std::vector<float> energy(static_cast<size_t>(numJ), 0.0f);

  if (pooled) {
    // One probe, qbar_I, at the block's last valid row: it sees every j.
    std::vector<float> probe(static_cast<size_t>(d));
    detail::toFloat(q.dtype, qbarView->row(b, i, h), d, probe.data());
    std::vector<float> s(static_cast<size_t>(numJ));
    float maxLogit = kNegInf;
    for (int64_t j = 0; j < numJ; ++j) {
      s[j] = detail::dot8(probe.data(), &kbarF[j * d], d) * scale;
      maxLogit = std::max(maxLogit, s[j]);
    }
    if (maxLogit != kNegInf)
      for (int64_t j = 0; j < numJ; ++j)
        energy[j] = std::exp(s[j] - maxLogit);
    normalise(energy.data(), numJ, scores);
    return;
  }

  // Full queries: the valid local rows r of block I only.
  const int64_t r0 = i * blockSize;
  const int64_t r1 = geometry.lastRow(i) + 1;
  const int64_t rows = r1 - r0;
  std::vector<float> qF(static_cast<size_t>(rows * d));
  for (int64_t r = r0; r < r1; ++r)
    detail::toFloat(q.dtype, q.row(b, r, h), d, &qF[(r - r0) * d]);
  // s[r][j] for visible (r, j); invisible entries are never read.
  std::vector<float> s(static_cast<size_t>(rows * numJ), 0.0f);
  float maxLogit = kNegInf;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t j = 0; j < numJ; ++j) {
      if (!geometry.rowScoresBlock(r, j))
        continue;
      float logit =
          detail::dot8(&qF[(r - r0) * d], &kbarF[j * d], d) * scale;
      s[(r - r0) * numJ + j] = logit;
      maxLogit = std::max(maxLogit, logit);
    }
  // M_I = -inf only when every logit is -inf: then every E is 0 (not
  // NaN).
  if (maxLogit != kNegInf)
    for (int64_t j = 0; j < numJ; ++j)
      for (int64_t r = r0; r < r1; ++r)
        if (geometry.rowScoresBlock(r, j))
          energy[j] += std::exp(s[(r - r0) * numJ + j] - maxLogit);
  normalise(energy.data(), numJ, scores);
}

StatusOr<BlockScores> blockScore(const TensorView &q, const TensorView &kbar,
                                 const Options &options,
                                 const TensorView *qbar) {
  FP_RETURN_IF_ERROR(validateOptions(options));
  FP_RETURN_IF_ERROR(detail::checkView("q", q));
  const int64_t blockSize = options.blockSize;
  const int64_t seqLen = q.seq;
  const int64_t nb = numBlocks(seqLen, blockSize);
  FP_RETURN_IF_ERROR(checkPooled("kbar", kbar, q, nb, /*expectHeads=*/0));
  if (kbar.heads <= 0 || q.heads % kbar.heads != 0)
    return invalidArgument("kbar.heads: expected a divisor of q.heads (" +
                           std::to_string(q.heads) + "), got " +
                           std::to_string(kbar.heads));
  const bool pooled = options.scoreQuery == ScoreQuery::kPooled;
  Tensor ownQbar;
  TensorView qbarView;
  if (pooled) {
    if (qbar) {
      FP_RETURN_IF_ERROR(checkPooled("qbar", *qbar, q, nb, q.heads));
      qbarView = *qbar;
    } else {
      StatusOr<Tensor> pooledQ = blockPool(q, options);
      FP_RETURN_IF_ERROR(pooledQ.status());
      ownQbar = std::move(*pooledQ);
      qbarView = ownQbar.view();
    }
  }

  BlockScores result;
  result.batch = q.batch;
  result.heads = q.heads;
  result.numBlocks = nb;
  result.values.assign(static_cast<size_t>(q.batch * q.heads * nb * nb), 0.0f);

  // Tasks (b, h, I), largest I first so the threads finish together.
  const int64_t rowsPerI = q.batch * q.heads;
  detail::parallelFor(
      nb * rowsPerI, options.numThreads, [&](int64_t task, int) {
        const int64_t i = nb - 1 - task / rowsPerI;
        const int64_t b = (task % rowsPerI) / q.heads;
        const int64_t h = task % q.heads;
        detail::scoreRow(q, kbar, pooled ? &qbarView : nullptr, options,
                         CausalGeometry::wholePrompt(seqLen, blockSize), b,
                         h, i, result.row(b, h, i));
      });
  return result;
}

Status blockScoreRow(const TensorView &q, const TensorView &kbar,
                     const Options &options, int64_t b, int64_t h, int64_t i,
                     float *scores, const TensorView *qbar) {
  return blockScoreRow(q, kbar, options,
                       CausalGeometry::wholePrompt(q.seq, options.blockSize),
                       b, h, i, scores, qbar);
}

Status blockScoreRow(const TensorView &q, const TensorView &kbar,
                     const Options &options, const CausalGeometry &geometry,
                     int64_t b, int64_t h, int64_t i, float *scores,
                     const TensorView *qbar) {
  FP_RETURN_IF_ERROR(validateOptions(options));
  FP_RETURN_IF_ERROR(detail::checkView("q", q));
  if (geometry.queryLen != q.seq || geometry.keyLen < geometry.queryLen ||
      geometry.blockSize != options.blockSize)
    return invalidArgument(
        "geometry: expected queryLen = q.seq (" + std::to_string(q.seq) +
        "), keyLen >= queryLen and blockSize = options.blockSize (" +
        std::to_string(options.blockSize) + "), got queryLen " +
        std::to_string(geometry.queryLen) + ", keyLen " +
        std::to_string(geometry.keyLen) + ", blockSize " +
        std::to_string(geometry.blockSize));
  const int64_t nq = geometry.numQueryBlocks();
  FP_RETURN_IF_ERROR(checkPooled("kbar", kbar, q, geometry.numKeyBlocks(),
                                 /*expectHeads=*/0));
  if (kbar.heads <= 0 || q.heads % kbar.heads != 0)
    return invalidArgument("kbar.heads: expected a divisor of q.heads (" +
                           std::to_string(q.heads) + "), got " +
                           std::to_string(kbar.heads));
  if (b < 0 || b >= q.batch || h < 0 || h >= q.heads || i < 0 || i >= nq)
    return invalidArgument("(b, h, i): expected a row of [" +
                           std::to_string(q.batch) + ", " +
                           std::to_string(q.heads) + ", " +
                           std::to_string(nq) + "]");
  const bool pooled = options.scoreQuery == ScoreQuery::kPooled;
  if (pooled) {
    if (!qbar)
      return invalidArgument("qbar: expected the pooled queries with "
                             "scoreQuery = kPooled, got NULL");
    FP_RETURN_IF_ERROR(checkPooled("qbar", *qbar, q, nq, q.heads));
  }
  detail::scoreRow(q, kbar, pooled ? qbar : nullptr, options, geometry, b, h,
                   i, scores);
  return Status::ok();
}

} // namespace fp::ref
