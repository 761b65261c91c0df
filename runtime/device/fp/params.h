/*===- fp/params.h - Kernel parameter structs shared by host and device -*- C -*-===*
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The contract between generated kernels (compiled by NVRTC) and the host
 * runtime (compiled by the host compiler). Every generated kernel takes one of
 * these structs by value; the host fills the same struct, so both sides see
 * the same layout. Plain C with fixed-width types only: this header must
 * compile under NVRTC (no host standard library) and under C and C++ hosts.
 *
 * Tensor conventions:
 *   q, o        [b, s_q, h_q, d]   element strides (batch, seq, head); the
 *   k, v        [b, s_k, h_kv, d]  last dimension is contiguous (stride 1).
 *   kbar, qbar  [b, h, nb, d]      contiguous, input dtype (written by
 *                                  block_pool).
 *   counts      [b, h_q, nb]       int32, kept blocks per query block.
 *   ids         [b, h_q, nb, nb]   int32, ascending kept key-block ids;
 *                                  entries past counts[...] are unspecified.
 *   lse         [b, h_q, s_q]      fp32 natural-log log-sum-exp, optional.
 * Partial-block rule: kept block j of query block I crosses the diagonal
 * (needs causal masking) iff j == I; no per-entry flag is stored.
 *
 * Grid rules (the manifest repeats them for the runtime):
 *   block_pool:         grid (nb, h, b)             one CTA pools one block.
 *   pattern_discovery:  grid (nb, h_q, b)           one CTA per query block.
 *   masked_attention:   grid (ceil(s_q / BLOCK_M), h_q, b).
 *
 *===----------------------------------------------------------------------===*/
#ifndef FP_DEVICE_PARAMS_H
#define FP_DEVICE_PARAMS_H

#if defined(__CUDACC_RTC__)
typedef int fp_i32;
typedef unsigned int fp_u32;
typedef long long fp_i64;
typedef unsigned long long fp_u64;
#else
#include <stdint.h>
typedef int32_t fp_i32;
typedef uint32_t fp_u32;
typedef int64_t fp_i64;
typedef uint64_t fp_u64;
#endif

/* Bumped whenever a struct below changes layout; part of the cache key. */
#define FP_PARAMS_ABI_VERSION 2

/* A CUDA tensor map (CUtensorMap: 128 opaque bytes, 128-byte aligned as in CUDA 13),
 * encoded by the host with cuTensorMapEncodeTiled and read by TMA. Declared
 * here so that NVRTC code needs no cuda.h. */
#if defined(__cplusplus)
#define FP_ALIGN128 alignas(128)
#else
#define FP_ALIGN128 _Alignas(128)
#endif
typedef struct FpTensorMap {
  FP_ALIGN128 fp_u64 opaque[16];
} FpTensorMap;

/* threshold_kind values. */
#define FP_THRESHOLD_RELATIVE_MAX 0 /* t = alpha * max */
#define FP_THRESHOLD_MIN_MAX 1      /* t = alpha * max + (1 - alpha) * min */

/* score_query values. */
#define FP_SCORE_FULL_QUERIES 0   /* every valid query row is a probe */
#define FP_SCORE_POOLED_QUERIES 1 /* block-mean queries (qbar) */

/* Mean of each block of `num_heads` heads of `src` into `dst`
 * ([b, h, nb, d], contiguous), fp32 accumulation, stored in the input dtype.
 * Used for K (and for Q in the pooled-query variant). */
typedef struct FpPoolParams {
  const void *src;
  void *dst;
  fp_i64 src_batch_stride, src_seq_stride, src_head_stride;
  fp_i32 batch, seq_len, num_heads, num_blocks;
} FpPoolParams;

/* Fused block_score + threshold_mask + compaction into the padded-rows mask. */
typedef struct FpDiscoveryParams {
  const void *q;
  const void *kbar;
  const void *qbar; /* only read when score_query == FP_SCORE_POOLED_QUERIES */
  fp_i32 *counts;
  fp_i32 *ids;
  fp_u64 *kept_counter; /* optional: atomically += kept blocks */
  float *debug_scores;  /* optional: [b, h_q, nb, nb] normalised scores */
  fp_i64 q_batch_stride, q_seq_stride, q_head_stride;
  fp_i32 batch, seq_q, seq_k, num_q_heads, num_kv_heads, num_blocks;
  float scale, alpha;
  fp_i32 sink, window, last_n, min_budget;
  fp_i32 threshold_kind, score_query;
} FpDiscoveryParams;

/* Flash attention over the kept blocks of each query block.
 *
 * tma_q / tma_k / tma_v are read only by the sm_90a mainloop (the kernel
 * manifest says so with `tma=1`); the host encodes each as a rank-4 map over
 * (d, seq, head, batch) with a (64, rows, 1, 1) box and 128-byte swizzle,
 * rows = BLOCK_M for Q and BLOCK_N for K and V. Kernels take the struct as a
 * `const __grid_constant__` parameter so TMA can address the maps in place. */
typedef struct FpAttentionParams {
  FpTensorMap tma_q, tma_k, tma_v;
  const void *q, *k, *v;
  void *o;
  float *lse; /* optional */
  const fp_i32 *counts;
  const fp_i32 *ids;
  fp_i64 q_batch_stride, q_seq_stride, q_head_stride;
  fp_i64 k_batch_stride, k_seq_stride, k_head_stride;
  fp_i64 v_batch_stride, v_seq_stride, v_head_stride;
  fp_i64 o_batch_stride, o_seq_stride, o_head_stride;
  fp_i32 batch, seq_q, seq_k, num_q_heads, num_kv_heads, num_blocks;
  float scale;
} FpAttentionParams;

#endif /* FP_DEVICE_PARAMS_H */
