//===- CostModel.h - When dense attention beats discovery + sparse -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The short-prompt fall-back (never slower than dense; bench/RESULTS.md).
/// Sparse prefill costs discovery plus the kept fraction of dense attention,
/// which short prompts run at a lower rate than the dense kernel:
///   T_sparse(L) = T_disc(L) + rho(L) / eta * T_dense(L)
/// so dense wins iff rho(L) / eta + r(L) >= 1, r(L) = T_disc(L) / T_dense(L).
///
/// rho(L), the expected density of the rule's mask, comes from fp-tune's
/// measurements on the structured generator (the `density` of tuning
/// database entries for the plan's arch and block size, one per length
/// bucket), interpolated linearly in log(L) / log(rho) and extrapolated with
/// the nearest segment's slope. r(L) and eta are calibrated on one H100
/// (sm_90a kernels, bf16, d 128, B 128, h_q 32, h_kv 8; bench/RESULTS.md):
/// pool + discovery over dense attention was 0.227 at 2K, 0.095 at 4K, 0.038
/// at 16K and 0.018 at 64K, fitted by r(L) = 0.017 + 400 / L; kept-block
/// attention ran at eta = 0.86 / 0.73 / 0.70 of the dense kernel's rate at
/// 2K / 4K / 8K (fewer, shorter CTAs), taken as 0.75. Measured there: dense
/// faster at 2K (sparse total 0.110 ms vs 0.100), sparse faster at 4K (0.215
/// vs 0.286); with the shipped H100 densities the model's break-even is
/// 2688 tokens.
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

/// Rate of kept-block attention relative to dense at short lengths (eta).
inline constexpr double kSparseAttentionEfficiency = 0.75;

/// The length below which dense attention is predicted faster: the smallest
/// multiple of `blockSize` in [blockSize, maxSeqLen] where
/// rho(L) / eta + r(L) < 1, or 0 when sparse already wins at one block, or
/// maxSeqLen + 1 when dense wins up to maxSeqLen. Without points: 0 (no
/// basis for a prediction, never fall back).
int64_t denseBreakEvenTokens(const DensityPoints &points, int64_t blockSize,
                             int64_t maxSeqLen);

} // namespace fp

#endif // FLASHPREFILL_API_COSTMODEL_H
