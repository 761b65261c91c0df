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
 * Varlen (engine shapes, docs/semantics.md section 2): b sequences packed in
 * one call, K/V packed or paged; see FpVarlenSequences. Grids come from the
 * host-side maxima, and CTAs past their own sequence's length exit:
 *   varlen_block_pool:        grid (ceil(max_seqlen_k / B), h_kv, b).
 *   varlen_query_pool:        grid (ceil(max_seqlen_q / B), h_q, b).
 *   varlen_pattern_discovery: grid (ceil(max_seqlen_q / B), h_q, b).
 *   varlen_masked_attention:  grid (ceil(max_seqlen_q / BLOCK_M), h_q, b).
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
#define FP_PARAMS_ABI_VERSION 4

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

/* The sequences of a varlen call. Sequence i has q rows
 * [cu_seqlens_q[i], cu_seqlens_q[i+1]) of the packed q [total_q, h_q, d] and
 * k_len_i >= q_len_i keys, its queries being its last q_len_i positions
 * (prefix p_i = k_len_i - q_len_i). K/V are packed, rows
 * [cu_seqlens_k[i], cu_seqlens_k[i+1]) of [total_k, h_kv, d]
 * (page_table null), or paged, [num_pages, page_size, h_kv, d] with key t in
 * page page_table[i * max_pages + t / page_size], slot t % page_size, and
 * k_len_i = k_lens[i]. All lengths are device data: every kernel checks its
 * sequence against the host-side bounds here and skips it when they do not
 * hold (fp/varlen.cuh). */
typedef struct FpVarlenSequences {
  const fp_i32 *cu_seqlens_q; /* [b+1] */
  const fp_i32 *cu_seqlens_k; /* [b+1], packed K/V only */
  const fp_i32 *page_table;   /* [b, max_pages], paged K/V only */
  const fp_i32 *k_lens;       /* [b], paged K/V only */
  const fp_i32 *apply_last_n; /* optional [b]: nonzero = last_n applies; null = all */
  fp_i32 batch;
  fp_i32 total_q;             /* rows of q and out */
  fp_i32 total_k;             /* packed: rows of k and v */
  fp_i32 num_pages;           /* paged: pages of k and v */
  fp_i32 max_pages;           /* paged: columns of page_table */
  fp_i32 page_size_log2;      /* paged: log2(page size), 0..8 */
  fp_i32 max_seqlen_q, max_seqlen_k;
} FpVarlenSequences;

/* Block means of a varlen call, fp32 sums stored in the input dtype.
 * varlen_block_pool: src = K (packed or paged), dst = kbar
 * [b, h_kv, max_key_blocks, d]; blocks past a sequence's k_len are not
 * written. varlen_query_pool (pooled queries): src = q, dst = qbar
 * [num_rows, h_q, d], one row per compact-mask row (query block I of
 * sequence i at row floor(cu_seqlens_q[i] / B) + i + I). Strides of src in
 * elements: page (paged K only), row (slot), head. */
typedef struct FpVarlenPoolParams {
  FpVarlenSequences seqs;
  const void *src;
  void *dst;
  fp_i64 src_page_stride, src_seq_stride, src_head_stride;
  fp_i32 num_heads, max_key_blocks;
} FpVarlenPoolParams;

/* Discovery of a varlen call into the compact mask (fp_varlen_mask_t):
 * query block I of sequence i is mask row floor(cu_seqlens_q[i] / B) + i + I;
 * counts [num_rows, h_q], ids [num_rows, h_q, max_key_blocks] ascending
 * absolute key-block ids. */
typedef struct FpVarlenDiscoveryParams {
  FpVarlenSequences seqs;
  const void *q;
  const void *kbar;
  const void *qbar; /* [num_rows, h_q, d]; only read when score_query == FP_SCORE_POOLED_QUERIES */
  fp_i32 *counts;
  fp_i32 *ids;
  fp_u64 *kept_counter; /* optional: atomically += kept blocks */
  fp_i64 q_seq_stride, q_head_stride;
  fp_i32 num_q_heads, num_kv_heads, max_key_blocks;
  float scale, alpha;
  fp_i32 sink, window, last_n, min_budget, threshold_kind, score_query;
} FpVarlenDiscoveryParams;

/* Attention of a varlen call over the kept blocks of the compact mask, with
 * the bottom-right causal mask (local row r sees keys <= p_i + r).
 * o [total_q, h_q, d]; lse optional [h_q, total_q]. */
typedef struct FpVarlenAttentionParams {
  FpVarlenSequences seqs;
  const void *q, *k, *v;
  void *o;
  float *lse;
  const fp_i32 *counts;
  const fp_i32 *ids;
  fp_i64 q_seq_stride, q_head_stride;
  fp_i64 k_page_stride, k_seq_stride, k_head_stride;
  fp_i64 v_page_stride, v_seq_stride, v_head_stride;
  fp_i64 o_seq_stride, o_head_stride;
  fp_i32 num_q_heads, num_kv_heads, max_key_blocks;
  float scale;
} FpVarlenAttentionParams;

#endif /* FP_DEVICE_PARAMS_H */
