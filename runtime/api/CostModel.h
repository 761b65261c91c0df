//===- CostModel.h - When dense attention beats discovery + sparse -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The short-prompt fall-back (DESIGN.md section 3: never slower than dense).
/// Sparse prefill costs discovery plus the kept fraction of dense attention:
///   T_sparse(L) = T_disc(L) + rho(L) * T_dense(L)
/// so dense wins iff rho(L) >= 1 - r(L), r(L) = T_disc(L) / T_dense(L).
///
/// rho(L), the expected density of the rule's mask, comes from fp-tune's
/// measurements on the structured generator (the `density` of tuning
/// database entries for the plan's key, one per length bucket), interpolated
/// linearly in log(L) / log(rho) and extrapolated with the nearest segment's
/// slope. r(L) is calibrated on one H100 (sm_90a kernels, bf16, d 128,
/// B 128, h_q 32, h_kv 8; bench/dev/NOTES.md): pool + discovery over dense
/// attention was 0.115 at 4K, 0.038 at 16K and 0.018 at 64K, fitted by
///   r(L) = 0.017 + 400 / L.
/// With the shipped H100 densities (0.48 at 4K, 0.24 at 16K, 0.11 at 64K)
/// the break-even is about 1.5K tokens.
///
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_API_COSTMODEL_H
#define FLASHPREFILL_API_COSTMODEL_H

#include <cstdint>
#include <utility>
#include <vector>

namespace fp {

/// (length, density) measurements; densities outside (0, 1] are ignored.
using DensityPoints = std::vector<std::pair<int64_t, double>>;

/// Expected density at `seqLen`, clamped to (0, 1]; 1 without points.
double expectedDensity(const DensityPoints &points, int64_t seqLen);

/// Discovery-to-dense-attention time ratio r(L) (see the file comment).
double discoveryToDenseRatio(int64_t seqLen);

/// The length below which dense attention is predicted faster: the smallest
/// multiple of `blockSize` in [blockSize, maxSeqLen] where
/// rho(L) < 1 - r(L), or 0 when sparse already wins at one block, or
/// maxSeqLen + 1 when dense wins up to maxSeqLen. Without points: 0 (no
/// basis for a prediction, never fall back).
int64_t denseBreakEvenTokens(const DensityPoints &points, int64_t blockSize,
                             int64_t maxSeqLen);

} // namespace fp

#endif // FLASHPREFILL_API_COSTMODEL_H
