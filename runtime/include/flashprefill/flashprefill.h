/*===- flashprefill/flashprefill.h - The C API -------------------*- C -*-===*
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Block-sparse causal prefill attention for engines. Usage:
 *
 *   fp_plan_spec_t spec; fp_plan_spec_init(&spec);
 *   spec.num_q_heads = 32; spec.num_kv_heads = 8; spec.max_seq_len = 65536;
 *   fp_plan_t *plan; fp_plan_create(&spec, &plan);       // JIT + cache
 *   size_t bytes = fp_plan_workspace_bytes(plan, batch, seq_len);
 *   fp_params_t params; fp_params_init(&params);          // shared defaults
 *   fp_prefill(plan, &q, &k, &v, &out, &params, workspace, bytes, stream);
 *   fp_plan_destroy(plan);
 *
 * Rules:
 *  - Every call returns FP_OK or an error code; fp_last_error() (per
 *    thread) names the argument and the expected value. On error nothing is
 *    written to outputs.
 *  - GPU plans take device pointers and a CUstream (NULL: the legacy default
 *    stream); calls only enqueue work: no allocation, no synchronization, so
 *    they can be captured in CUDA graphs. CPU plans (device = FP_DEVICE_CPU)
 *    take host pointers, run the reference synchronously and ignore stream.
 *  - Tensors are [b, s, h, d] with element strides; the last dimension must
 *    be contiguous. On the GPU the data pointers must be 16-byte aligned and
 *    the batch, seq and head strides multiples of 8 elements (16 bytes).
 *    Packed QKV layouts (q, k, v views into one buffer) are fine.
 *  - A plan belongs to one device; its entry points may be called from
 *    several threads at once (a plan is immutable after creation).
 *
 *===----------------------------------------------------------------------===*/
#ifndef FLASHPREFILL_FLASHPREFILL_H
#define FLASHPREFILL_FLASHPREFILL_H

#include "flashprefill/defaults.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FP_API_VERSION 1

/* Status codes (the values of fp::StatusCode). */
typedef enum fp_status {
  FP_OK = 0,
  FP_ERROR_INVALID_ARGUMENT = 1,
  FP_ERROR_UNSUPPORTED = 2,
  FP_ERROR_NOT_FOUND = 3,
  FP_ERROR_COMPILE = 4,
  FP_ERROR_CUDA = 5,
  FP_ERROR_NO_DEVICE = 6,
  FP_ERROR_IO = 7,
  FP_ERROR_INTERNAL = 8
} fp_status_t;

/* Element types. Plans are bf16 or f16; FP_DTYPE_F32 is for the outputs of
 * fp_merge_states (fp_attn_state_t) only. */
typedef enum fp_dtype {
  FP_DTYPE_BF16 = 0,
  FP_DTYPE_F16 = 1,
  FP_DTYPE_F32 = 2
} fp_dtype_t;

/* fp_plan_spec_t.device value selecting the CPU reference backend. */
#define FP_DEVICE_CPU (-1)

/* Compile-time facts of a plan; fp_plan_spec_init() sets the defaults. */
typedef struct fp_plan_spec {
  size_t struct_size; /* sizeof(fp_plan_spec_t) */
  fp_dtype_t dtype;   /* FP_DTYPE_BF16 */
  int32_t head_dim;   /* 128; 64, 128 or 256 on the GPU */
  int32_t head_dim_v; /* 0 = head_dim (d_v != d is not supported yet) */
  int32_t num_q_heads, num_kv_heads; /* 32, 8 */
  int32_t block_size;                /* FP_DEFAULT_BLOCK_SIZE */
  int32_t causal;                    /* 1 (only causal is supported) */
  int32_t pooled_queries;            /* 0: score with every query row */
  int64_t max_batch;                 /* 1 */
  int64_t max_seq_len;               /* required, > 0 */
  int32_t device;                    /* CUDA ordinal 0, or FP_DEVICE_CPU */
  uint64_t max_workspace_bytes;      /* 0: no limit */
} fp_plan_spec_t;

/* Runtime parameters; fp_params_init() sets the shared defaults. */
typedef struct fp_params {
  size_t struct_size; /* sizeof(fp_params_t): fields are only ever appended */
  float alpha;        /* FP_DEFAULT_ALPHA, in [0, 1] */
  int32_t sink;       /* FP_DEFAULT_SINK */
  int32_t window;     /* FP_DEFAULT_WINDOW, >= 1 */
  int32_t last_n;     /* FP_DEFAULT_LAST_N */
  int32_t min_budget; /* FP_DEFAULT_MIN_BUDGET */
  int32_t threshold_kind; /* 0 relative_max (default), 1 min_max */
  float scale;            /* <= 0: 1 / sqrt(head_dim) */
  float *lse;             /* optional [b, h_q, s_q] fp32 natural log */
  unsigned long long *kept_counter; /* optional; += kept blocks (device ptr
                                       on the GPU) */
  /* Reserved for variable-length batches; must be NULL / 0 for now. */
  const int32_t *cu_seqlens_q;
  const int32_t *cu_seqlens_k;
  int64_t max_seqlen_q, max_seqlen_k;
  /* Version 2. fp_prefill() only (fp_select / fp_attend always follow the
   * rule): below this many tokens it keeps every causal block (dense
   * attention) because scoring would cost more than it saves.
   * FP_DENSE_BELOW_AUTO (-1, the default) = the plan's cost model
   * (fp_plan_dense_below_tokens); 0 = never; callers built against version 1
   * get AUTO. */
  int64_t dense_below_tokens;
  /* Version 3. Mean correction (docs/semantics.md section 3): 1 = every key
   * block that is not kept and whose keys are all visible to a query row
   * adds n_j copies of its mean key and mean value to that row's softmax
   * (the LSE includes them); 0 (default) = off. fp_attend, fp_prefill and
   * their varlen forms; CPU plans only for now (CUDA plans return
   * FP_ERROR_UNSUPPORTED naming this field). */
  int32_t mean_correction;
} fp_params_t;

#define FP_DENSE_BELOW_AUTO (-1)

/* A [b, s, h, d] tensor view: element strides, strides[3] must be 1. */
typedef struct fp_tensor {
  void *data;
  int64_t shape[4];
  int64_t strides[4];
} fp_tensor_t;

/* The padded-rows block mask: counts [b, h_q, nb], ascending ids
 * [b, h_q, nb, nb]; kept block j of query block I needs causal masking iff
 * j == I. */
typedef struct fp_mask {
  int32_t *counts;
  int32_t *ids;
  int64_t batch, heads, num_blocks;
} fp_mask_t;

typedef struct fp_plan fp_plan_t;

/* Fills the first struct_size bytes of *spec with the defaults and sets
 * spec->struct_size = struct_size (at most this library's sizeof; below
 * version 1's size writes nothing). fp_plan_spec_init(s) is a macro passing
 * this header's sizeof, as fp_params_init below; the exported function of
 * that name fills version 1 for binaries built against earlier headers. */
void fp_plan_spec_init_sized(fp_plan_spec_t *spec, size_t struct_size);
void fp_plan_spec_init(fp_plan_spec_t *spec);
#ifndef FP_NO_PARAMS_INIT_MACRO
#define fp_plan_spec_init(spec) fp_plan_spec_init_sized((spec), sizeof(fp_plan_spec_t))
#endif
/* Fills the first struct_size bytes of *params with the defaults and sets
 * params->struct_size = struct_size (at most sizeof(fp_params_t) of this
 * library; a smaller size is an older caller's struct, whose later fields
 * are not written). struct_size below version 1's size writes nothing. */
void fp_params_init_sized(fp_params_t *params, size_t struct_size);
/* fp_params_init(p): the defaults for this header's fp_params_t. It is a
 * macro so that the size is the caller's sizeof; the exported function of
 * that name (for binaries built against earlier headers) fills version 2,
 * the size it had when it was the only initialiser. */
void fp_params_init(fp_params_t *params);
#ifndef FP_NO_PARAMS_INIT_MACRO
#define fp_params_init(params) fp_params_init_sized((params), sizeof(fp_params_t))
#endif

/* Compiles (or fetches from the kernel cache) every kernel of `spec`. */
fp_status_t fp_plan_create(const fp_plan_spec_t *spec, fp_plan_t **plan);
void fp_plan_destroy(fp_plan_t *plan);

/* Workspace bytes fp_prefill needs for (batch, seq_len) (pooled keys, pooled
 * queries, mask); 0 with fp_last_error() set when the request exceeds the
 * plan. fp_select needs fp_plan_select_workspace_bytes (no mask). */
size_t fp_plan_workspace_bytes(const fp_plan_t *plan, int64_t batch,
                               int64_t seq_len);
size_t fp_plan_select_workspace_bytes(const fp_plan_t *plan, int64_t batch,
                                      int64_t seq_len);
/* Bytes of the mask alone (counts + ids), for callers that keep it. */
size_t fp_plan_mask_bytes(const fp_plan_t *plan, int64_t batch,
                          int64_t seq_len);

/* The plan's short-prompt break-even (cost model, see fp_params_t
 * dense_below_tokens): fp_prefill() with FP_DENSE_BELOW_AUTO runs dense
 * attention below this many tokens; 0 = never (always on the CPU
 * reference, and on the GPU when no density measurement is known for the
 * plan's arch and block size). -1 with plan == NULL. */
int64_t fp_plan_dense_below_tokens(const fp_plan_t *plan);

/* Finds the kept blocks: writes `mask`. */
fp_status_t fp_select(const fp_plan_t *plan, const fp_tensor_t *q,
                      const fp_tensor_t *k, const fp_params_t *params,
                      fp_mask_t *mask, void *workspace,
                      size_t workspace_bytes, void *stream);
/* Attention over the kept blocks of `mask`: writes `out` (and params->lse). */
fp_status_t fp_attend(const fp_plan_t *plan, const fp_tensor_t *q,
                      const fp_tensor_t *k, const fp_tensor_t *v,
                      const fp_mask_t *mask, fp_tensor_t *out,
                      const fp_params_t *params, void *stream);
/* fp_select then fp_attend, the mask living in the workspace. */
fp_status_t fp_prefill(const fp_plan_t *plan, const fp_tensor_t *q,
                       const fp_tensor_t *k, const fp_tensor_t *v,
                       fp_tensor_t *out, const fp_params_t *params,
                       void *workspace, size_t workspace_bytes, void *stream);

/*---------------------------------------------------------------------------
 * Engine shapes (docs/semantics.md section 2): chunked prefill after a cached
 * prefix, packed variable-length batches, paged K/V.
 *
 * One call carries `batch` sequences. Sequence i has q_len_i new queries and
 * k_len_i >= q_len_i keys; its queries are its LAST q_len_i positions
 * (prefix p_i = k_len_i - q_len_i, causal aligned bottom-right).
 *   q, out  fp_tensor_t of shape [1, total_q, h_q, d]   (rows of all sequences)
 *   K/V packed: fp_tensor_t of shape [1, total_k, h_kv, d], with cu_seqlens_k
 *   K/V paged:  fp_tensor_t of shape [num_pages, page_size, h_kv, d]
 *               (element strides: page, slot, head), with page_table, k_lens
 * Lengths live where the plan's data lives (device memory on the GPU, host
 * memory on the CPU backend): no host synchronisation. The host-side maxima
 * size the grid and the workspace; a CUDA graph captured with fixed maxima
 * replays for any lengths within them.
 *---------------------------------------------------------------------------*/
typedef struct fp_varlen {
  size_t struct_size;          /* sizeof(fp_varlen_t) */
  int64_t batch;               /* b >= 1, <= plan max_batch */
  int64_t max_seqlen_q;        /* >= every q_len_i, in [1, max_seqlen_k] */
  int64_t max_seqlen_k;        /* >= every k_len_i, <= plan max_seq_len */
  /* [b+1] non-decreasing, [0] = 0, [b] <= total_q; total_q (q.shape[1]) is
   * in [1, plan max_batch * max_seq_len]. Rows [cu_seqlens_q[b], total_q)
   * belong to no sequence: their output and LSE are left untouched. */
  const int32_t *cu_seqlens_q;
  /* Packed K/V: cu_seqlens_k [b+1] (non-decreasing, [0] = 0, [b] <= total_k);
   * NULL when paged. */
  const int32_t *cu_seqlens_k;
  /* Paged K/V (cu_seqlens_k NULL): page_table [b, max_pages] (row-major) of page
   * ids in [0, num_pages); sequence i's key t lives in page
   * page_table[i * max_pages + t / page_size], slot t % page_size.
   * k_lens [b]: k_len_i, with ceil(k_len_i / page_size) <= max_pages. */
  const int32_t *page_table;
  int64_t max_pages; /* columns of page_table, >= 1; entries past a
                        sequence's ceil(k_len_i / page_size) are not read */
  const int32_t *k_lens;
  /* Optional [b]: nonzero = last_n applies to sequence i (a prompt's final
   * chunk); NULL = last_n applies to every sequence. */
  const int32_t *apply_last_n;
  /* Version 2. Optional [b, h_kv, ceil(max_seqlen_k / B), d], contiguous, in
   * K's dtype, on the plan's device: the pooled keys (rule step 1, block
   * means) of every key block of each sequence, as fp_pool_keys_varlen
   * writes them. Non-NULL: fp_select_varlen / fp_prefill_varlen score
   * against these instead of pooling K (selection then reads no key), so an
   * engine can keep the pooled keys of a cached prefix from chunk to chunk
   * and context parallelism can select over keys held by other GPUs. Block
   * j of sequence i must hold the mean of its keys [jB, min((j+1)B,
   * k_len_i)) rounded to the dtype: the mask is the rule's only then. NULL:
   * pool K (version 1 behaviour). */
  const void *pooled_k;
} fp_varlen_t;

/* The compact block mask of a varlen call. Query block I of sequence i is
 * row  floor(cu_seqlens_q[i] / B) + i + I  (rows of different sequences never
 * overlap; num_rows = floor(total_q / B) + batch bounds them all):
 *   counts [num_rows, h_q]                  kept blocks of (row, head)
 *   ids    [num_rows, h_q, max_key_blocks]  ascending ABSOLUTE key-block ids
 *           in [0, J_i(I)], J_i(I) = (p_i + last local row of I) / B;
 *           entries past the count are unspecified (the CPU backend
 *           writes -1, and count 0 in rows of no query block)
 * max_key_blocks = ceil(max_seqlen_k / B). Rows that belong to no query block
 * are unspecified. Kept block j of (i, I) needs token-level masking iff its
 * last key min((j+1)B, k_len_i) - 1 > p_i + I*B. */
typedef struct fp_varlen_mask {
  int32_t *counts;
  int32_t *ids;
  int64_t num_rows, heads, max_key_blocks;
} fp_varlen_mask_t;

/* Workspace bytes for a varlen call with these host-side sizes: fp_prefill
 * (mask included) and fp_select (no mask); the mask alone. 0 with
 * fp_last_error() set when the request exceeds the plan. */
size_t fp_plan_varlen_workspace_bytes(const fp_plan_t *plan, int64_t batch,
                                      int64_t total_q, int64_t max_seqlen_q,
                                      int64_t max_seqlen_k);
size_t fp_plan_varlen_select_workspace_bytes(const fp_plan_t *plan,
                                             int64_t batch, int64_t total_q,
                                             int64_t max_seqlen_q,
                                             int64_t max_seqlen_k);
size_t fp_plan_varlen_mask_bytes(const fp_plan_t *plan, int64_t batch,
                                 int64_t total_q, int64_t max_seqlen_k);

/* Bytes of the pooled keys of a varlen call (fp_varlen_t.pooled_k,
 * fp_pool_keys_varlen): batch * h_kv * ceil(max_seqlen_k / B) * d elements
 * of the plan's dtype. 0 with fp_last_error() set when the sizes exceed the
 * plan. */
size_t fp_plan_varlen_pooled_keys_bytes(const fp_plan_t *plan, int64_t batch,
                                        int64_t max_seqlen_k);

/* Rule step 1 alone for a varlen call: writes the pooled keys of every key
 * block of each sequence to pooled_k ([b, h_kv, ceil(max_seqlen_k / B), d],
 * contiguous, K's dtype, fp_plan_varlen_pooled_keys_bytes bytes); entries of
 * blocks past a sequence's ceil(k_len_i / B) are not written. q, k and
 * varlen are checked as by fp_select_varlen (q only for its shape: no query
 * is read); varlen->pooled_k must be NULL. A key block's mean depends only
 * on its own keys, so the pooled keys of a B-aligned chunk's blocks stay
 * valid when later chunks arrive. */
fp_status_t fp_pool_keys_varlen(const fp_plan_t *plan, const fp_tensor_t *q,
                                const fp_tensor_t *k, const fp_varlen_t *varlen,
                                void *pooled_k, void *stream);

/* The varlen entry points take the fields of fp_params_t as fp_select /
 * fp_attend / fp_prefill do, except: params->lse, when given, is
 * [h_q, total_q] (natural log; the layout of FlashAttention's varlen LSE);
 * the reserved cu_seqlens / max_seqlen fields of fp_params_t must stay
 * NULL / 0 (fp_varlen_t carries the shape); fp_prefill_varlen's dense
 * fall-back (dense_below_tokens) applies when max_seqlen_k is below it, so
 * that the host decides without reading device lengths. last_n counts query
 * blocks of each sequence's own call (its last blocks), and applies only to
 * the sequences that fp_varlen_t.apply_last_n selects. */
fp_status_t fp_select_varlen(const fp_plan_t *plan, const fp_tensor_t *q,
                             const fp_tensor_t *k, const fp_varlen_t *varlen,
                             const fp_params_t *params, fp_varlen_mask_t *mask,
                             void *workspace, size_t workspace_bytes,
                             void *stream);
fp_status_t fp_attend_varlen(const fp_plan_t *plan, const fp_tensor_t *q,
                             const fp_tensor_t *k, const fp_tensor_t *v,
                             const fp_varlen_t *varlen,
                             const fp_varlen_mask_t *mask, fp_tensor_t *out,
                             const fp_params_t *params, void *stream);
fp_status_t fp_prefill_varlen(const fp_plan_t *plan, const fp_tensor_t *q,
                              const fp_tensor_t *k, const fp_tensor_t *v,
                              const fp_varlen_t *varlen, fp_tensor_t *out,
                              const fp_params_t *params, void *workspace,
                              size_t workspace_bytes, void *stream);

/*---------------------------------------------------------------------------
 * Merging attention states (docs/merge-states.md).
 *
 * Engines split one attention into passes over disjoint key sets (a cached
 * prefix and the new tokens, a prefix shared by many requests in cascade
 * attention, key shards in context parallelism); each pass gives an output
 * O_x and its log-sum-exp LSE_x, and merging two gives the attention over
 * the union of their keys. Per row, in fp32:
 *   m = max(lse_a, lse_b),  w_a = exp(lse_a - m),  w_b = exp(lse_b - m)
 *   O = (w_a O_a + w_b O_b) / (w_a + w_b)     stored in out's dtype
 *   LSE = m + log(w_a + w_b)
 * LSE is the natural log of the sum of exp(scale * q.k), as params->lse
 * returns it (FlashInfer's is base 2: lse_natural = lse_base2 * ln 2).
 * Rows where a side saw no key (LSE -inf; +inf too, which FlashAttention-2
 * writes there): both empty -> O = 0, LSE = -inf; one empty -> the other
 * state (O copied bit for bit when the dtypes agree, else rounded; LSE bit
 * for bit), the empty side's O never read. A NaN LSE gives O = NaN and
 * LSE = NaN. Never NaN otherwise.
 *---------------------------------------------------------------------------*/
typedef struct fp_attn_state {
  fp_tensor_t o;     /* [b, s, h, d] element strides, strides[3] == 1; the
                        varlen layout is [1, total_q, h, d] */
  fp_dtype_t dtype;  /* o's elements: FP_DTYPE_BF16, _F16 or _F32 */
  float *lse;        /* [b, h, s] fp32 natural log (varlen: [h, total_q]);
                        NULL in `out`: the merged LSE is not written */
  int64_t lse_strides[3]; /* elements: batch, head, seq. Varlen
                             {0, total_q, 1}; dense {h*s, s, 1};
                             FlashInfer's [total_q, h]: {0, 1, h} */
} fp_attn_state_t;

/* out = merge(a, b). a, b and out share one shape (any b, s, h, d: not the
 * plan's); their dtypes may differ. On a CPU plan it runs the reference
 * (host pointers); on a CUDA plan one kernel on `stream` (device pointers,
 * no allocation, no synchronization). Merging in place is allowed: out->o
 * may be exactly a->o or b->o (same data, dtype and strides), out->lse
 * exactly a->lse or b->lse (same pointer and strides); out's views must
 * otherwise share no byte with any other view, nor overlap themselves.
 * Pointers aligned to their element size. Every violation is a named
 * error and nothing is written. */
fp_status_t fp_merge_states(const fp_plan_t *plan, const fp_attn_state_t *a,
                            const fp_attn_state_t *b, fp_attn_state_t *out,
                            void *stream);

/* The message of the calling thread's last error ("" after success). */
const char *fp_last_error(void);
/* "ok", "invalid argument", ... */
const char *fp_status_name(fp_status_t status);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FLASHPREFILL_FLASHPREFILL_H */
