//===- Numerics.h - Arithmetic shared by the reference ops ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The two inner loops of the reference, with their summation order fixed so
// results are reproducible (see flashprefill/reference.h):
//   * dot products: fp32 products accumulated in 8 lanes (lane l takes the
//     elements c with c % 8 == l, in ascending c), lanes combined as
//     ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7));
//   * P.V: o[x] += p[c] * v[c][x] for c ascending, separately for each x.
// Both orders are plain elementwise IEEE operations on 8-wide vectors, so the
// same bits come out of the scalar, SSE and AVX2 builds; Kernels.cpp builds
// an AVX2 clone picked at run time. The library is compiled with
// -ffp-contract=off, so no FMA changes the rounding.
//
//===----------------------------------------------------------------------===//
#ifndef FP_REFERENCE_NUMERICS_H
#define FP_REFERENCE_NUMERICS_H

#include "flashprefill/dtype.h"

#include <cstdint>

namespace fp::ref::detail {

/// The dot product of a and b (n elements) in the documented order.
float dot8(const float *a, const float *b, int64_t n);

/// s[c] = dot8(q, keys + c * d, d) * scale for c in [0, n).
void rowLogits(const float *q, const float *keys, int64_t n, int64_t d,
               float scale, float *s);

/// o[x] += p[c] * values[c * dv + x] for c = 0 .. n-1 in order, every x.
void accumulatePV(const float *p, const float *values, int64_t n, int64_t dv,
                  float *o);

/// Converts n 16-bit elements of `type` to float (exact).
inline void toFloat(DType type, const uint16_t *src, int64_t n, float *dst) {
  if (type == DType::kBF16) {
    for (int64_t c = 0; c < n; ++c)
      dst[c] = bf16BitsToFloat(src[c]);
  } else {
    for (int64_t c = 0; c < n; ++c)
      dst[c] = f16BitsToFloat(src[c]);
  }
}

} // namespace fp::ref::detail

#endif // FP_REFERENCE_NUMERICS_H
