//===- Kernels.cpp - Inner loops of the reference ---------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// dot8, rowLogits and accumulatePV (Numerics.h) written on 8-wide vectors
// (GCC/Clang vector extensions): every operation is elementwise, so the
// order stated in Numerics.h holds in every build. On x86-64 an AVX2 clone
// (no FMA) is selected at load time; it computes the same bits, faster.
//
//===----------------------------------------------------------------------===//
#include "Numerics.h"

#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) &&        \
    !defined(__APPLE__)
#define FP_REF_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define FP_REF_CLONES
#endif

namespace fp::ref::detail {

namespace {

typedef float V8 __attribute__((vector_size(32)));

inline float combineLanes(const float *acc) {
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) +
         ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

/// Adds the tail elements [from, n) to their lanes and combines.
inline float finishDot(float *lanes, const float *a, const float *b,
                       int64_t from, int64_t n) {
  for (int64_t c = from; c < n; ++c)
    lanes[c % 8] += a[c] * b[c];
  return combineLanes(lanes);
}

} // namespace

FP_REF_CLONES float dot8(const float *a, const float *b, int64_t n) {
  V8 acc = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    V8 x, y;
    std::memcpy(&x, a + c, sizeof(V8));
    std::memcpy(&y, b + c, sizeof(V8));
    acc += x * y;
  }
  float lanes[8];
  std::memcpy(lanes, &acc, sizeof(V8));
  return finishDot(lanes, a, b, c, n);
}

FP_REF_CLONES void rowLogits(const float *q, const float *keys, int64_t n,
                             int64_t d, float scale, float *s) {
  constexpr int kKeys = 8; // independent accumulators sharing each q load
  int64_t c = 0;
  for (; c + kKeys <= n; c += kKeys) {
    V8 acc[kKeys];
    for (int t = 0; t < kKeys; ++t)
      acc[t] = V8{0, 0, 0, 0, 0, 0, 0, 0};
    int64_t x = 0;
    for (; x + 8 <= d; x += 8) {
      V8 qv;
      std::memcpy(&qv, q + x, sizeof(V8));
      for (int t = 0; t < kKeys; ++t) {
        V8 kv;
        std::memcpy(&kv, keys + (c + t) * d + x, sizeof(V8));
        acc[t] += qv * kv;
      }
    }
    for (int t = 0; t < kKeys; ++t) {
      float lanes[8];
      std::memcpy(lanes, &acc[t], sizeof(V8));
      s[c + t] = finishDot(lanes, q, keys + (c + t) * d, x, d) * scale;
    }
  }
  for (; c < n; ++c)
    s[c] = dot8(q, keys + c * d, d) * scale;
}

FP_REF_CLONES void accumulatePV(const float *p, const float *values, int64_t n,
                                int64_t dv, float *o) {
  constexpr int kVecs = 8; // 64 outputs stay in registers while keys stream
  int64_t x = 0;
  for (; x + 8 * kVecs <= dv; x += 8 * kVecs) {
    V8 acc[kVecs];
    for (int t = 0; t < kVecs; ++t)
      std::memcpy(&acc[t], o + x + 8 * t, sizeof(V8));
    for (int64_t c = 0; c < n; ++c) {
      const float *row = values + c * dv + x;
      const float pc = p[c];
      for (int t = 0; t < kVecs; ++t) {
        V8 v;
        std::memcpy(&v, row + 8 * t, sizeof(V8));
        acc[t] += pc * v;
      }
    }
    for (int t = 0; t < kVecs; ++t)
      std::memcpy(o + x + 8 * t, &acc[t], sizeof(V8));
  }
  for (; x + 8 <= dv; x += 8) {
    V8 acc;
    std::memcpy(&acc, o + x, sizeof(V8));
    for (int64_t c = 0; c < n; ++c) {
      V8 v;
      std::memcpy(&v, values + c * dv + x, sizeof(V8));
      acc += p[c] * v;
    }
    std::memcpy(o + x, &acc, sizeof(V8));
  }
  for (; x < dv; ++x) {
    float acc = o[x];
    for (int64_t c = 0; c < n; ++c)
      acc += p[c] * values[c * dv + x];
    o[x] = acc;
  }
}

} // namespace fp::ref::detail
