/*===- fp/merge_states.h - Parameters of the merge_states kernel -*- C -*-===*
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Shared by the host (CudaPlan.cpp fills it) and fp/merge_states.cuh
 * (NVRTC). Kept out of fp/params.h: the kernel is hand-written, compiled as
 * its own program, and its layout is versioned by the program's own cache
 * key (the header's bytes), not by FP_PARAMS_ABI_VERSION.
 *
 * Two attention states a, b and the merged `out`: O [batch, seq, heads, dim]
 * with element strides (batch, seq, head; dim contiguous), LSE [batch,
 * heads, seq] fp32 with element strides (batch, head, seq). One warp merges
 * one row (b, s, h); grid-stride over the rows.
 *
 *===----------------------------------------------------------------------===*/
#ifndef FP_DEVICE_MERGE_STATES_H
#define FP_DEVICE_MERGE_STATES_H

#include "fp/params.h"

/* Element types, the values of fp_dtype_t. */
#define FP_MERGE_BF16 0
#define FP_MERGE_F16 1
#define FP_MERGE_F32 2

/* Threads per CTA (4 warps: 4 rows at a time). */
#define FP_MERGE_THREADS 128

/* The NVRTC program, its entry, and a device global holding
 * sizeof(FpMergeStatesParams) as the device compiler sees it (the host
 * checks it against its own after loading). */
#define FP_MERGE_STATES_SOURCE "#include \"fp/merge_states.cuh\"\n"
#define FP_MERGE_STATES_ENTRY "fp_merge_states"
#define FP_MERGE_STATES_PARAMS_BYTES "fp_merge_states_params_bytes"

typedef struct FpMergeStatesParams {
  const void *o_a;
  const void *o_b;
  void *o;
  const float *lse_a;
  const float *lse_b;
  float *lse; /* may be NULL: not written */
  fp_i64 o_a_strides[3], o_b_strides[3], o_strides[3];       /* b, s, h */
  fp_i64 lse_a_strides[3], lse_b_strides[3], lse_strides[3]; /* b, h, s */
  fp_i64 batch, seq, heads, dim;
  fp_i32 type_a, type_b, type_o; /* FP_MERGE_* */
} FpMergeStatesParams;

#endif /* FP_DEVICE_MERGE_STATES_H */
