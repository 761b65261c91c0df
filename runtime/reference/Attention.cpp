//===- Attention.cpp - Reference masked_attention ---------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// docs/semantics.md section 1, step 4: softmax attention of each query row over
// the keys of its block's kept key blocks, causal inside the blocks that cross
// the diagonal. Numerics follow a bf16/fp16 flash kernel: fp32 logits, max, exp
// and sums; P rounded to the input dtype before the PV product; the row sum l
// taken from the unrounded P. Two passes per query block (logits and their max
// first, then exp + PV) so the result is the online softmax whose running max
// is already the final max, independent of any tiling.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/reference.h"

#include "Internal.h"
#include "Numerics.h"
#include "Parallel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace fp::ref {

namespace {

void resize(std::vector<float> &buffer, int64_t size) {
  if (static_cast<int64_t>(buffer.size()) < size)
    buffer.resize(static_cast<size_t>(size));
}

} // namespace

void detail::attendBlock(const TensorView &q, const TensorView &k,
                         const TensorView &v, const CausalGeometry &geometry,
                         int64_t b, int64_t h, int64_t i, int32_t count,
                         const int32_t *ids, float scale,
                         AttentionScratch &buf, const MutableTensorView &out,
                         float *lseOfHead, const MeanTerms *mean) {
  const int64_t blockSize = geometry.blockSize;
  const int64_t keyLen = geometry.keyLen;
  const int64_t d = q.dim, dv = v.dim;
  const int64_t hk = h / (q.heads / k.heads);
  const float negInf = -std::numeric_limits<float>::infinity();
  const int64_t r0 = i * blockSize;
  const int64_t r1 = geometry.lastRow(i) + 1;
  const int64_t rows = r1 - r0;
  const int64_t keysPerRow = count * blockSize;

  resize(buf.q, rows * d);
  resize(buf.kv, blockSize * std::max(d, dv));
  resize(buf.logits, rows * keysPerRow);
  resize(buf.acc, rows * dv);
  for (int64_t r = r0; r < r1; ++r)
    detail::toFloat(q.dtype, q.row(b, r, h), d, &buf.q[(r - r0) * d]);

  // Keys of block j visible to row r: [jB, jB + visibleKeys(r, j)); only
  // blocks that cross the diagonal are partial.

  // Pass 1: logits s = dot(q_r, k_c) * scale and the row max m.
  std::vector<float> rowMax(static_cast<size_t>(rows), negInf);
  std::vector<int64_t> seen(static_cast<size_t>(rows), 0);
  for (int32_t e = 0; e < count; ++e) {
    const int64_t j = ids[e];
    const int64_t first = j * blockSize;
    const int64_t keys = std::min(blockSize, keyLen - first);
    for (int64_t c = 0; c < keys; ++c)
      detail::toFloat(k.dtype, k.row(b, first + c, hk), d, &buf.kv[c * d]);
    for (int64_t r = r0; r < r1; ++r) {
      const float *qRow = &buf.q[(r - r0) * d];
      float *s = &buf.logits[(r - r0) * keysPerRow + e * blockSize];
      const int64_t n = geometry.visibleKeys(r, j);
      detail::rowLogits(qRow, buf.kv.data(), n, d, scale, s);
      float &m = rowMax[r - r0];
      for (int64_t c = 0; c < n; ++c)
        m = std::max(m, s[c]);
      seen[r - r0] += n;
    }
  }

  // Mean terms (mean correction): logits of the pruned blocks each row sees
  // whole, in the row max too. meanS[r, j] = -inf marks "no term".
  const int64_t keyBlocks = geometry.numKeyBlocks();
  if (mean) {
    resize(buf.meanK, keyBlocks * d);
    resize(buf.meanV, keyBlocks * dv);
    resize(buf.meanS, rows * keyBlocks);
    buf.kept.assign(static_cast<size_t>(keyBlocks), 0);
    for (int32_t e = 0; e < count; ++e)
      buf.kept[static_cast<size_t>(ids[e])] = 1;
    for (int64_t j = 0; j < keyBlocks; ++j) {
      detail::toFloat(mean->kbar.dtype, mean->kbar.row(b, j, hk), d,
                      &buf.meanK[j * d]);
      detail::toFloat(mean->vbar.dtype, mean->vbar.row(b, j, hk), dv,
                      &buf.meanV[j * dv]);
    }
    for (int64_t r = r0; r < r1; ++r) {
      float *s = &buf.meanS[(r - r0) * keyBlocks];
      detail::rowLogits(&buf.q[(r - r0) * d], buf.meanK.data(), keyBlocks, d,
                        scale, s);
      float &m = rowMax[r - r0];
      for (int64_t j = 0; j < keyBlocks; ++j) {
        const int64_t keys = std::min(blockSize, keyLen - j * blockSize);
        if (buf.kept[static_cast<size_t>(j)] ||
            geometry.visibleKeys(r, j) < keys) {
          s[j] = negInf;
          continue;
        }
        m = std::max(m, s[j]);
        ++seen[r - r0];
      }
    }
  }

  // Pass 2: p = exp(s - m), l += p (unrounded), o += round(p) * v.
  std::vector<float> rowSum(static_cast<size_t>(rows), 0.0f);
  std::fill(buf.acc.begin(), buf.acc.begin() + rows * dv, 0.0f);
  for (int32_t e = 0; e < count; ++e) {
    const int64_t j = ids[e];
    const int64_t first = j * blockSize;
    const int64_t keys = std::min(blockSize, keyLen - first);
    for (int64_t c = 0; c < keys; ++c)
      detail::toFloat(v.dtype, v.row(b, first + c, hk), dv, &buf.kv[c * dv]);
    for (int64_t r = r0; r < r1; ++r) {
      // Turn this block's logits into rounded P in place.
      float *s = &buf.logits[(r - r0) * keysPerRow + e * blockSize];
      const float m = rowMax[r - r0];
      const int64_t n = geometry.visibleKeys(r, j);
      for (int64_t c = 0; c < n; ++c) {
        float p = std::exp(s[c] - m);
        rowSum[r - r0] += p;
        s[c] = roundToDType(q.dtype, p);
      }
      detail::accumulatePV(s, buf.kv.data(), n, dv, &buf.acc[(r - r0) * dv]);
    }
  }

  // Mean terms after the exact blocks, ascending j: w = n_j * exp(s - m),
  // unrounded (they are not a PV product of the kernel's tiles).
  if (mean)
    for (int64_t r = r0; r < r1; ++r) {
      const float *s = &buf.meanS[(r - r0) * keyBlocks];
      const float m = rowMax[r - r0];
      float *o = &buf.acc[(r - r0) * dv];
      for (int64_t j = 0; j < keyBlocks; ++j) {
        if (s[j] == negInf)
          continue;
        const float keys =
            static_cast<float>(std::min(blockSize, keyLen - j * blockSize));
        const float w = keys * std::exp(s[j] - m);
        rowSum[r - r0] += w;
        const float *vbar = &buf.meanV[j * dv];
        for (int64_t x = 0; x < dv; ++x)
          o[x] += w * vbar[x];
      }
    }

  // Epilogue: O = round(o / l), LSE = m + log(l); no visible key: 0, -inf.
  for (int64_t r = r0; r < r1; ++r) {
    uint16_t *dst = out.row(b, r, h);
    float *lse = &lseOfHead[r];
    if (seen[r - r0] == 0) {
      for (int64_t x = 0; x < dv; ++x)
        dst[x] = floatToBits(q.dtype, 0.0f);
      *lse = negInf;
      continue;
    }
    const float l = rowSum[r - r0];
    const float *o = &buf.acc[(r - r0) * dv];
    for (int64_t x = 0; x < dv; ++x)
      dst[x] = floatToBits(q.dtype, o[x] / l);
    *lse = rowMax[r - r0] + std::log(l);
  }
}

StatusOr<AttentionOutput>
maskedAttention(const TensorView &q, const TensorView &k, const TensorView &v,
                const BlockMask &mask, const Options &options) {
  FP_RETURN_IF_ERROR(validateProblem(q, k, v, options));
  const int64_t blockSize = options.blockSize;
  const int64_t seqLen = q.seq;
  const int64_t nb = numBlocks(seqLen, blockSize);
  FP_RETURN_IF_ERROR(mask.validate(q.batch, q.heads, nb));

  const CausalGeometry geometry = CausalGeometry::wholePrompt(seqLen, blockSize);
  const float scale = resolveScale(options, q.dim);
  AttentionOutput result;
  result.out = Tensor::zeros(q.dtype, q.batch, seqLen, q.heads, v.dim);
  result.lse.assign(static_cast<size_t>(q.batch * q.heads * seqLen),
                    -std::numeric_limits<float>::infinity());
  MutableTensorView out = result.out.mutableView();

  Tensor kbar, vbar;
  detail::MeanTerms terms;
  if (options.meanCorrection) {
    FP_RETURN_IF_ERROR(detail::poolMeanTerms(k, v, options, kbar, vbar));
    terms = {kbar.view(), vbar.view()};
  }
  std::vector<detail::AttentionScratch> scratch(
      static_cast<size_t>(detail::resolveThreads(options.numThreads)));
  const int64_t rowsPerI = q.batch * q.heads;
  // Tasks (b, h, I), largest I first so the threads finish together.
  detail::parallelFor(
      nb * rowsPerI, options.numThreads, [&](int64_t task, int worker) {
        const int64_t i = nb - 1 - task / rowsPerI;
        const int64_t b = (task % rowsPerI) / q.heads;
        const int64_t h = task % q.heads;
        detail::attendBlock(q, k, v, geometry, b, h, i, mask.count(b, h, i),
                            mask.rowIds(b, h, i), scale,
                            scratch[static_cast<size_t>(worker)], out,
                            &result.lse[(b * q.heads + h) * seqLen],
                            options.meanCorrection ? &terms : nullptr);
      });
  return result;
}

Status detail::poolMeanTerms(const TensorView &k, const TensorView &v,
                             const Options &options, Tensor &kbar,
                             Tensor &vbar) {
  StatusOr<Tensor> pooledK = blockPool(k, options);
  FP_RETURN_IF_ERROR(pooledK.status());
  StatusOr<Tensor> pooledV = blockPool(v, options);
  FP_RETURN_IF_ERROR(pooledV.status());
  kbar = std::move(*pooledK);
  vbar = std::move(*pooledV);
  return Status::ok();
}

StatusOr<AttentionOutput> denseCausalAttention(const TensorView &q,
                                               const TensorView &k,
                                               const TensorView &v,
                                               const Options &options) {
  FP_RETURN_IF_ERROR(validateProblem(q, k, v, options));
  BlockMask dense = BlockMask::denseCausal(q.batch, q.heads,
                                           numBlocks(q.seq, options.blockSize));
  return maskedAttention(q, k, v, dense, options);
}

} // namespace fp::ref
