//===- Internal.h - Helpers shared by the reference sources -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#ifndef FP_REFERENCE_INTERNAL_H
#define FP_REFERENCE_INTERNAL_H

#include "flashprefill/reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace fp::ref::detail {

/// Checks one tensor view: non-negative batch/seq/heads, dim > 0, a known
/// dtype and non-null data when non-empty. `name` prefixes the message.
Status checkView(const char *name, const TensorView &view);

/// Checks one mask row (kept ids of a query block whose candidates are
/// [0, lastKeyBlock]): count in [0, lastKeyBlock + 1], ids strictly
/// ascending in range. `what` names the row, e.g. "mask.ids[b=0, h=1, I=2]".
Status checkMaskRow(const std::string &countName, const std::string &idsName,
                    int32_t count, const int32_t *ids, int64_t lastKeyBlock);

/// Step 2 for query block `i` of (batch b, query head h): scores[0..J(I)]
/// of `geometry` (q.seq == queryLen, kbar holds numKeyBlocks pooled blocks).
/// `qbar` non-null selects pooled queries. Arguments already validated.
void scoreRow(const TensorView &q, const TensorView &kbar,
              const TensorView *qbar, const Options &options,
              const CausalGeometry &geometry, int64_t b, int64_t h, int64_t i,
              float *scores);

/// Per-worker buffers of attendBlock, grown on demand and reused.
struct AttentionScratch {
  std::vector<float> q;      // [rows, d]
  std::vector<float> kv;     // [B, max(d, d_v)]: one K or V block
  std::vector<float> logits; // [rows, count * B]
  std::vector<float> acc;    // [rows, d_v]
};

/// Step 4 for query block `i` of (batch b, query head h) over the `count`
/// kept key blocks `ids` (validated): writes out.row(b, r, h) and
/// lseOfHead[r] for the block's local rows r.
void attendBlock(const TensorView &q, const TensorView &k, const TensorView &v,
                 const CausalGeometry &geometry, int64_t b, int64_t h,
                 int64_t i, int32_t count, const int32_t *ids, float scale,
                 AttentionScratch &scratch, const MutableTensorView &out,
                 float *lseOfHead);

/// The fp64 truth for local row r of (b, h): keys c <= prefix + r of the
/// blocks `kept(j)` says are kept. Writes out[0..d_v) (0 when no key) and
/// returns the LSE (-inf when no key).
template <typename KeptFn>
double naiveRow(const TensorView &q, const TensorView &k, const TensorView &v,
                const CausalGeometry &geometry, int64_t b, int64_t h,
                int64_t r, double scale, KeptFn &&kept, double *out,
                std::vector<double> &logits);

template <typename KeptFn>
double naiveRow(const TensorView &q, const TensorView &k, const TensorView &v,
                const CausalGeometry &geometry, int64_t b, int64_t h,
                int64_t r, double scale, KeptFn &&kept, double *out,
                std::vector<double> &logits) {
  const int64_t blockSize = geometry.blockSize;
  const int64_t d = q.dim, dv = v.dim;
  const int64_t hk = h / (q.heads / k.heads);
  // Causal: key c <= prefix + r (the row's absolute position).
  const int64_t lastVisible =
      std::min(geometry.prefix() + r, geometry.keyLen - 1);
  if (static_cast<int64_t>(logits.size()) < lastVisible + 1)
    logits.resize(static_cast<size_t>(lastVisible + 1));
  double m = -std::numeric_limits<double>::infinity();
  bool any = false;
  for (int64_t c = 0; c <= lastVisible; ++c) {
    if (!kept(c / blockSize))
      continue;
    double dot = 0.0;
    for (int64_t x = 0; x < d; ++x)
      dot += static_cast<double>(q.at(b, r, h, x)) *
             static_cast<double>(k.at(b, c, hk, x));
    logits[c] = dot * scale;
    m = any ? std::max(m, logits[c]) : logits[c];
    any = true;
  }
  for (int64_t x = 0; x < dv; ++x)
    out[x] = 0.0;
  if (!any)
    return -std::numeric_limits<double>::infinity();
  double l = 0.0;
  for (int64_t c = 0; c <= lastVisible; ++c) {
    if (!kept(c / blockSize))
      continue;
    double p = std::exp(logits[c] - m);
    l += p;
    for (int64_t x = 0; x < dv; ++x)
      out[x] += p * static_cast<double>(v.at(b, c, hk, x));
  }
  for (int64_t x = 0; x < dv; ++x)
    out[x] /= l;
  return m + std::log(l);
}

} // namespace fp::ref::detail

#endif // FP_REFERENCE_INTERNAL_H
