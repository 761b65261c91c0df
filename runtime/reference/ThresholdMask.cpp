//===- ThresholdMask.cpp - Reference threshold_mask -------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// docs/semantics.md section 1, step 3: per row (b, q head, I) keep the
// blocks whose score reaches a threshold relative to the row's best, plus
// the forced blocks (sinks, local window, dense last rows) and, optionally,
// the k best non-forced blocks. Emits the padded-rows mask in ascending id
// order.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/reference.h"

#include "Parallel.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace fp::ref {

int32_t thresholdRow(const float *row, int64_t i, int64_t nb,
                     const Options &options, int32_t *ids) {
  // Whole prompt: J(I) = I and nb query blocks.
  return thresholdRow(
      row, CausalGeometry::wholePrompt(nb * options.blockSize, options.blockSize),
      i, options, ids);
}

int32_t thresholdRow(const float *row, const CausalGeometry &geometry,
                     int64_t i, const Options &options, int32_t *ids) {
  const float alpha = options.alpha;
  const int64_t k = options.minBudget;
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t lastJ = geometry.lastKeyBlock(i);
  const int64_t numJ = lastJ + 1; // the scored row: j in [0, J(I)]
  const int64_t nq = geometry.numQueryBlocks();
  auto forced = [&](int64_t j) {
    return j < options.sink || lastJ - j < options.window ||
           i >= nq - options.lastN;
  };

  // Max and min over the scored row (comparisons skip NaN).
  float maxScore = -inf, minScore = inf;
  for (int64_t j = 0; j < numJ; ++j) {
    if (row[j] > maxScore)
      maxScore = row[j];
    if (row[j] < minScore)
      minScore = row[j];
  }
  float threshold = options.thresholdKind == ThresholdKind::kMinMax
                        ? alpha * maxScore + (1.0f - alpha) * minScore
                        : alpha * maxScore;

  // min_budget: the k-th largest score among the non-forced blocks, found
  // by selection (nth_element), not by sorting the row. With at most k
  // candidates, all of them pass.
  float budgetThreshold = inf;
  if (k > 0) {
    std::vector<float> candidates;
    for (int64_t j = 0; j < numJ; ++j)
      if (!forced(j) && row[j] == row[j]) // skip NaN
        candidates.push_back(row[j]);
    if (static_cast<int64_t>(candidates.size()) <= k) {
      budgetThreshold = -inf;
    } else {
      std::nth_element(candidates.begin(), candidates.begin() + (k - 1),
                       candidates.end(), std::greater<float>());
      budgetThreshold = candidates[k - 1];
    }
  }

  // alpha = 0 keeps every causal block, NaN scores included: it is how
  // dense attention is asked for (the dense fall-back of fp_prefill), and
  // the kernels then skip scoring. (The threshold alone would drop a NaN
  // score, or every block when all are NaN: 0 * -inf.)
  const bool keepAll = !(alpha > 0.0f);
  int32_t count = 0;
  for (int64_t j = 0; j < numJ; ++j) {
    bool keep = keepAll || forced(j) || row[j] >= threshold ||
                (k > 0 && row[j] >= budgetThreshold);
    if (keep)
      ids[count++] = static_cast<int32_t>(j);
  }
  return count;
}

StatusOr<BlockMask> thresholdMask(const BlockScores &scores,
                                  const Options &options) {
  FP_RETURN_IF_ERROR(validateOptions(options));
  const int64_t nb = scores.numBlocks;
  if (scores.batch < 0 || scores.heads < 0 || nb < 0 ||
      static_cast<int64_t>(scores.values.size()) !=
          scores.batch * scores.heads * nb * nb)
    return invalidArgument(
        "scores.values: expected batch * heads * nb * nb = " +
        std::to_string(scores.batch * scores.heads * nb * nb) +
        " entries, got " + std::to_string(scores.values.size()));

  BlockMask mask = BlockMask::empty(scores.batch, scores.heads, nb);
  detail::parallelFor(
      scores.batch * scores.heads, options.numThreads, [&](int64_t task, int) {
        const int64_t b = task / scores.heads, h = task % scores.heads;
        for (int64_t i = 0; i < nb; ++i) {
          const int64_t row = (b * scores.heads + h) * nb + i;
          mask.counts[row] = thresholdRow(scores.row(b, h, i), i, nb, options,
                                          mask.ids.data() + row * nb);
        }
      });
  return mask;
}

} // namespace fp::ref
