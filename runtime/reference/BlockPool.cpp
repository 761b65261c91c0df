//===- BlockPool.cpp - Reference block_pool ---------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// docs/semantics.md section 1, step 1: the mean of each block's valid rows,
// fp32 accumulation in ascending row order, stored rounded to the input dtype
// (so the scoring dot product can run on tensor cores).
//
//===----------------------------------------------------------------------===//
#include "flashprefill/reference.h"

#include "Internal.h"
#include "Parallel.h"

#include <algorithm>
#include <vector>

namespace fp::ref {

StatusOr<Tensor> blockPool(const TensorView &x, const Options &options) {
  FP_RETURN_IF_ERROR(validateOptions(options));
  FP_RETURN_IF_ERROR(detail::checkView("x", x));
  const int64_t blockSize = options.blockSize;
  const int64_t nb = numBlocks(x.seq, blockSize);
  Tensor out =
      Tensor::zeros(x.dtype, x.batch, nb, x.heads, x.dim, Layout::kBHSD);
  MutableTensorView dst = out.mutableView();

  // One task per (b, h): every block of one head.
  detail::parallelFor(
      x.batch * x.heads, options.numThreads, [&](int64_t task, int) {
        int64_t b = task / x.heads, h = task % x.heads;
        std::vector<float> acc(static_cast<size_t>(x.dim));
        for (int64_t j = 0; j < nb; ++j) {
          int64_t first = j * blockSize;
          int64_t last = std::min(first + blockSize, x.seq); // exclusive
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t s = first; s < last; ++s) {
            const uint16_t *src = x.row(b, s, h);
            for (int64_t c = 0; c < x.dim; ++c)
              acc[c] += bitsToFloat(x.dtype, src[c]);
          }
          float count = static_cast<float>(last - first);
          uint16_t *o = dst.row(b, j, h);
          for (int64_t c = 0; c < x.dim; ++c)
            o[c] = floatToBits(x.dtype, acc[c] / count);
        }
      });
  return out;
}

} // namespace fp::ref
