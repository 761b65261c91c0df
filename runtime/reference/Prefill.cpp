//===- Prefill.cpp - Reference prefill and fp64 attention -------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The whole operator (pool, score, threshold, attend) and the fp64 "truth"
// that error bounds are measured against.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/reference.h"

#include "Internal.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace fp::ref {

StatusOr<PrefillOutput> prefill(const TensorView &q, const TensorView &k,
                                const TensorView &v, const Options &options) {
  FP_RETURN_IF_ERROR(validateProblem(q, k, v, options));
  PrefillOutput result;
  StatusOr<Tensor> kbar = blockPool(k, options);
  FP_RETURN_IF_ERROR(kbar.status());
  result.kbar = std::move(*kbar);
  TensorView qbarView;
  if (options.scoreQuery == ScoreQuery::kPooled) {
    StatusOr<Tensor> qbar = blockPool(q, options);
    FP_RETURN_IF_ERROR(qbar.status());
    result.qbar = std::move(*qbar);
    qbarView = result.qbar.view();
  }
  StatusOr<BlockScores> scores = blockScore(
      q, result.kbar.view(), options,
      options.scoreQuery == ScoreQuery::kPooled ? &qbarView : nullptr);
  FP_RETURN_IF_ERROR(scores.status());
  result.scores = std::move(*scores);
  StatusOr<BlockMask> mask = thresholdMask(result.scores, options);
  FP_RETURN_IF_ERROR(mask.status());
  result.mask = std::move(*mask);
  StatusOr<AttentionOutput> attention =
      maskedAttention(q, k, v, result.mask, options);
  FP_RETURN_IF_ERROR(attention.status());
  result.attention = std::move(*attention);
  return result;
}

StatusOr<NaiveAttentionOutput>
naiveAttention(const TensorView &q, const TensorView &k, const TensorView &v,
               const Options &options, const BlockMask *mask) {
  FP_RETURN_IF_ERROR(validateProblem(q, k, v, options));
  const int64_t blockSize = options.blockSize;
  const int64_t seqLen = q.seq;
  const int64_t nb = numBlocks(seqLen, blockSize);
  if (mask)
    FP_RETURN_IF_ERROR(mask->validate(q.batch, q.heads, nb));
  const int64_t d = q.dim, dv = v.dim;
  // The problem's scale is the float the kernels use; only the arithmetic
  // is done in double.
  const double scale = resolveScale(options, d);
  NaiveAttentionOutput result;
  result.out.assign(static_cast<size_t>(q.batch * seqLen * q.heads * dv), 0.0);
  result.lse.assign(static_cast<size_t>(q.batch * q.heads * seqLen),
                    -std::numeric_limits<double>::infinity());

  const CausalGeometry geometry = CausalGeometry::wholePrompt(seqLen, blockSize);
  Tensor kbar, vbar;
  detail::MeanTerms terms;
  if (options.meanCorrection) {
    FP_RETURN_IF_ERROR(detail::poolMeanTerms(k, v, options, kbar, vbar));
    terms = {kbar.view(), vbar.view()};
  }
  std::vector<double> logits;
  std::vector<char> keptBlock(static_cast<size_t>(nb));
  for (int64_t b = 0; b < q.batch; ++b)
    for (int64_t h = 0; h < q.heads; ++h)
      for (int64_t r = 0; r < seqLen; ++r) {
        const int64_t i = r / blockSize;
        for (int64_t j = 0; j < nb; ++j)
          keptBlock[j] = mask ? mask->contains(b, h, i, j) : 1;
        result.lse[(b * q.heads + h) * seqLen + r] = detail::naiveRow(
            q, k, v, geometry, b, h, r, scale,
            [&](int64_t j) { return keptBlock[j] != 0; },
            &result.out[((b * seqLen + r) * q.heads + h) * dv], logits,
            options.meanCorrection ? &terms : nullptr);
      }
  return result;
}

} // namespace fp::ref
