//===- CostModel.cpp - When dense attention beats discovery + sparse -------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "CostModel.h"

#include <algorithm>
#include <cmath>

namespace fp {

namespace {

/// The usable points (positive length, density in (0, 1]), by length.
DensityPoints usablePoints(const DensityPoints &points) {
  DensityPoints valid;
  for (const auto &[length, density] : points)
    if (length > 0 && density > 0 && density <= 1)
      valid.emplace_back(length, density);
  std::sort(valid.begin(), valid.end());
  return valid;
}

/// expectedDensity on points already filtered and sorted by usablePoints.
double densityOnUsable(const DensityPoints &valid, int64_t seqLen) {
  if (valid.empty() || seqLen <= 0)
    return 1.0;
  if (valid.size() == 1)
    return valid.front().second;
  // The segment that contains seqLen, or the nearest one for extrapolation.
  size_t hi = 1;
  while (hi + 1 < valid.size() && valid[hi].first < seqLen)
    ++hi;
  const auto &[l0, d0] = valid[hi - 1];
  const auto &[l1, d1] = valid[hi];
  if (l0 == l1)
    return std::min(1.0, d1);
  const double t = (std::log(double(seqLen)) - std::log(double(l0))) /
                   (std::log(double(l1)) - std::log(double(l0)));
  const double logDensity = std::log(d0) + t * (std::log(d1) - std::log(d0));
  return std::clamp(std::exp(logDensity), 1e-6, 1.0);
}

} // namespace

double expectedDensity(const DensityPoints &points, int64_t seqLen) {
  return densityOnUsable(usablePoints(points), seqLen);
}

double discoveryToDenseRatio(int64_t seqLen) {
  return 0.017 + 400.0 / double(std::max<int64_t>(seqLen, 1));
}

int64_t denseBreakEvenTokens(const DensityPoints &points, int64_t blockSize,
                             int64_t maxSeqLen) {
  const DensityPoints valid = usablePoints(points); // once, not per length
  if (valid.empty() || blockSize <= 0 || maxSeqLen <= 0)
    return 0;
  for (int64_t length = blockSize; length <= maxSeqLen; length += blockSize)
    if (densityOnUsable(valid, length) / kSparseAttentionEfficiency +
            discoveryToDenseRatio(length) <
        1.0)
      return length == blockSize ? 0 : length;
  return maxSeqLen + 1;
}

} // namespace fp
