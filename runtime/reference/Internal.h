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
#include <utility>
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
  std::vector<float> meanK;  // [key blocks, d]: kbar of one (b, kv head)
  std::vector<float> meanV;  // [key blocks, d_v]: vbar
  std::vector<float> meanS;  // [rows, key blocks]: q_r . kbar_j * scale
  std::vector<char> kept;    // [key blocks]: kept by the row's mask
};

/// The block means that mean correction adds back (docs/semantics.md
/// section 3): blockPool(k) and blockPool(v) of the sequence, logical
/// [b, key blocks, h_kv, d] and [b, key blocks, h_kv, d_v], any strides.
struct MeanTerms {
  TensorView kbar, vbar;
};

/// Step 4 for query block `i` of (batch b, query head h) over the `count`
/// kept key blocks `ids` (validated): writes out.row(b, r, h) and
/// lseOfHead[r] for the block's local rows r.
/// With `mean` (mean correction on), every key block j that is not in
/// `ids` and whose keys are all visible to row r adds n_j * exp(s_rj - m)
/// to l and that times vbar_j to o, s_rj = dot8(q_r, kbar_j) * scale, m the
/// row's max over exact and mean logits; fp32, P of these terms unrounded,
/// added after the exact blocks in ascending j.
void attendBlock(const TensorView &q, const TensorView &k, const TensorView &v,
                 const CausalGeometry &geometry, int64_t b, int64_t h,
                 int64_t i, int32_t count, const int32_t *ids, float scale,
                 AttentionScratch &scratch, const MutableTensorView &out,
                 float *lseOfHead, const MeanTerms *mean = nullptr);

/// Pooled K and V (blockPool of each) for mean correction.
Status poolMeanTerms(const TensorView &k, const TensorView &v,
                     const Options &options, Tensor &kbar, Tensor &vbar);

/// The fp64 truth for local row r of (b, h): keys c <= prefix + r of the
/// blocks `kept(j)` says are kept. Writes out[0..d_v) (0 when no key) and
/// returns the LSE (-inf when no key).
/// With `mean`, the mean-correction terms in double: for every block j
/// not kept and wholly visible to r, n_j copies of (kbar_j, vbar_j).
template <typename KeptFn>
double naiveRow(const TensorView &q, const TensorView &k, const TensorView &v,
                const CausalGeometry &geometry, int64_t b, int64_t h,
                int64_t r, double scale, KeptFn &&kept, double *out,
                std::vector<double> &logits, const MeanTerms *mean = nullptr);

template <typename KeptFn>
double naiveRow(const TensorView &q, const TensorView &k, const TensorView &v,
                const CausalGeometry &geometry, int64_t b, int64_t h,
                int64_t r, double scale, KeptFn &&kept, double *out,
                std::vector<double> &logits, const MeanTerms *mean) {
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
  // Mean terms: pruned blocks whose last key the row sees (so all of them).
  std::vector<std::pair<int64_t, double>> meanLogits;
  if (mean) {
    for (int64_t j = 0; j < geometry.numKeyBlocks(); ++j) {
      const int64_t lastKey = std::min((j + 1) * blockSize, geometry.keyLen) - 1;
      if (kept(j) || lastKey > geometry.prefix() + r)
        continue;
      double dot = 0.0;
      for (int64_t x = 0; x < d; ++x)
        dot += static_cast<double>(q.at(b, r, h, x)) *
               static_cast<double>(mean->kbar.at(b, j, hk, x));
      meanLogits.emplace_back(j, dot * scale);
      m = any ? std::max(m, dot * scale) : dot * scale;
      any = true;
    }
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
  for (const auto &[j, s] : meanLogits) {
    const double keys =
        static_cast<double>(std::min(blockSize, geometry.keyLen - j * blockSize));
    const double p = keys * std::exp(s - m);
    l += p;
    for (int64_t x = 0; x < dv; ++x)
      out[x] += p * static_cast<double>(mean->vbar.at(b, j, hk, x));
  }
  for (int64_t x = 0; x < dv; ++x)
    out[x] /= l;
  return m + std::log(l);
}

} // namespace fp::ref::detail

#endif // FP_REFERENCE_INTERNAL_H
