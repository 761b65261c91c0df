//===- TestUtil.h - Helpers for the reference tests -------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Small builders so each test states its case in a few lines: tensors from
// a formula or from seeded noise, single-head / single-batch views for
// slicing checks, and options with small blocks.
//
//===----------------------------------------------------------------------===//
#ifndef FP_UNITTESTS_REFERENCE_TESTUTIL_H
#define FP_UNITTESTS_REFERENCE_TESTUTIL_H

#include "flashprefill/reference.h"

#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace fp::ref::test {

/// A kBSHD tensor whose element (b, s, h, c) is fn(b, s, h, c), rounded.
inline Tensor
makeTensor(DType dtype, int64_t batch, int64_t seq, int64_t heads, int64_t dim,
           const std::function<float(int64_t, int64_t, int64_t, int64_t)> &fn) {
  Tensor t = Tensor::zeros(dtype, batch, seq, heads, dim);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t c = 0; c < dim; ++c)
          t.set(b, s, h, c, fn(b, s, h, c));
  return t;
}

/// Seeded N(0, stddev^2) noise.
inline Tensor randomTensor(DType dtype, int64_t batch, int64_t seq,
                           int64_t heads, int64_t dim, uint32_t seed,
                           float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, stddev);
  Tensor t = Tensor::zeros(dtype, batch, seq, heads, dim);
  for (uint16_t &x : t.storage())
    x = floatToBits(dtype, normal(rng));
  return t;
}

/// Options with block size `blockSize`, no forced blocks, two threads.
inline Options plainOptions(int blockSize, float alpha) {
  Options o;
  o.blockSize = blockSize;
  o.alpha = alpha;
  o.sink = 0;
  o.window = 0;
  o.lastN = 0;
  o.numThreads = 2;
  return o;
}

/// A view of head `h` (only) of `view`, for per-head comparisons.
inline TensorView headSlice(const TensorView &view, int64_t h) {
  TensorView s = view;
  s.data = view.data + h * view.headStride;
  s.heads = 1;
  return s;
}

/// A view of batch `b` (only) of `view`.
inline TensorView batchSlice(const TensorView &view, int64_t b) {
  TensorView s = view;
  s.data = view.data + b * view.batchStride;
  s.batch = 1;
  return s;
}

/// BlockScores for batch 1, head 1 from hand-written rows (rows[I] holds
/// score[I, 0..I]).
inline BlockScores scoresFromRows(const std::vector<std::vector<float>> &rows) {
  BlockScores s;
  s.batch = 1;
  s.heads = 1;
  s.numBlocks = static_cast<int64_t>(rows.size());
  s.values.assign(rows.size() * rows.size(), 0.0f);
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j)
      s.values[i * rows.size() + j] = rows[i][j];
  return s;
}

/// Whether every output element and LSE is free of NaN.
inline bool hasNaN(const AttentionOutput &out) {
  for (int64_t b = 0; b < out.out.batch(); ++b)
    for (int64_t s = 0; s < out.out.seq(); ++s)
      for (int64_t h = 0; h < out.out.heads(); ++h)
        for (int64_t c = 0; c < out.out.dim(); ++c)
          if (out.out.at(b, s, h, c) != out.out.at(b, s, h, c))
            return true;
  for (float x : out.lse)
    if (x != x)
      return true;
  return false;
}

} // namespace fp::ref::test

#endif // FP_UNITTESTS_REFERENCE_TESTUTIL_H
