/*===- CApiExample.c - The C API from C ---------------------------*- C -*-===*
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A prefill on the CPU backend through the C API, as an engine written in C
 * would call it; exits non-zero on any failure.
 *
 *===----------------------------------------------------------------------===*/
#include "flashprefill/flashprefill.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* bf16 bits of a float (round to nearest even). */
static uint16_t toBf16(float value) {
  union { float f; uint32_t u; } bits = {value};
  return (uint16_t)((bits.u + 0x7fff + ((bits.u >> 16) & 1)) >> 16);
}

static float fromBf16(uint16_t value) {
  union { uint32_t u; float f; } bits = {(uint32_t)value << 16};
  return bits.f;
}

int main(void) {
  enum { B = 1, S = 200, HQ = 4, HKV = 2, D = 64 };
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.head_dim = D;
  spec.num_q_heads = HQ;
  spec.num_kv_heads = HKV;
  spec.block_size = 64;
  spec.max_seq_len = S;
  fp_plan_t *plan = NULL;
  if (fp_plan_create(&spec, &plan) != FP_OK) {
    fprintf(stderr, "fp_plan_create: %s\n", fp_last_error());
    return 1;
  }
  uint16_t *q = malloc(sizeof(uint16_t) * B * S * HQ * D);
  uint16_t *k = malloc(sizeof(uint16_t) * B * S * HKV * D);
  uint16_t *v = malloc(sizeof(uint16_t) * B * S * HKV * D);
  uint16_t *o = malloc(sizeof(uint16_t) * B * S * HQ * D);
  for (int i = 0; i < B * S * HQ * D; ++i)
    q[i] = toBf16(sinf(0.37f * (float)i) + 0.1f * (float)(i % 7));
  for (int i = 0; i < B * S * HKV * D; ++i) {
    k[i] = toBf16(cosf(0.11f * (float)i));
    v[i] = toBf16((float)((i * 13) % 17) / 17.0f - 0.5f);
  }
  fp_tensor_t tq = {q, {B, S, HQ, D}, {S * HQ * D, HQ * D, D, 1}};
  fp_tensor_t tk = {k, {B, S, HKV, D}, {S * HKV * D, HKV * D, D, 1}};
  fp_tensor_t tv = {v, {B, S, HKV, D}, {S * HKV * D, HKV * D, D, 1}};
  fp_tensor_t to = {o, {B, S, HQ, D}, {S * HQ * D, HQ * D, D, 1}};
  fp_params_t params;
  fp_params_init(&params);
  size_t bytes = fp_plan_workspace_bytes(plan, B, S);
  void *workspace = malloc(bytes);
  fp_status_t status =
      fp_prefill(plan, &tq, &tk, &tv, &to, &params, workspace, bytes, NULL);
  if (status != FP_OK) {
    fprintf(stderr, "fp_prefill: %s: %s\n", fp_status_name(status),
            fp_last_error());
    return 1;
  }
  /* Outputs are convex combinations of values in [-0.5, 0.5]. */
  for (int i = 0; i < B * S * HQ * D; ++i) {
    float x = fromBf16(o[i]);
    if (!(x >= -0.51f && x <= 0.51f)) {
      fprintf(stderr, "output %d = %f out of range\n", i, x);
      return 1;
    }
  }
  /* A bad argument is reported by name. */
  params.alpha = 2.0f;
  status = fp_prefill(plan, &tq, &tk, &tv, &to, &params, workspace, bytes,
                      NULL);
  if (status != FP_ERROR_INVALID_ARGUMENT) {
    fprintf(stderr, "expected invalid argument, got %s\n",
            fp_status_name(status));
    return 1;
  }
  printf("C API prefill ok (%zu workspace bytes); bad alpha: %s\n", bytes,
         fp_last_error());
  free(workspace);
  free(q), free(k), free(v), free(o);
  fp_plan_destroy(plan);
  return 0;
}
