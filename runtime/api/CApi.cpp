//===- CApi.cpp - The C API over fp::Plan -----------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Thin: converts fp::Status to a code plus a per-thread message. No C++
// exception crosses this boundary (the library itself does not throw; a
// std::bad_alloc is turned into FP_ERROR_INTERNAL).
//
//===----------------------------------------------------------------------===//
#include "flashprefill/flashprefill.h"
#include "flashprefill/flashprefill.hpp"

#include "StructVersions.h"

#include <algorithm>
#include <cstring>

#include <new>
#include <string>

struct fp_plan {
  std::unique_ptr<fp::Plan> plan;
};

namespace {

thread_local std::string lastError;

fp_status_t report(const fp::Status &status) {
  lastError = status.isOk() ? std::string() : status.message();
  return static_cast<fp_status_t>(status.code());
}

template <typename Fn> fp_status_t guarded(Fn &&fn) {
  try {
    return report(fn());
  } catch (const std::bad_alloc &) {
    return report(fp::Status(fp::StatusCode::kInternal, "out of host memory"));
  } catch (...) {
    return report(
        fp::Status(fp::StatusCode::kInternal, "unexpected C++ exception"));
  }
}

fp::Status nullPlan() {
  return fp::invalidArgument("plan: expected a plan from fp_plan_create, got "
                             "NULL");
}

size_t bytesOrZero(fp::StatusOr<size_t> bytes) {
  report(bytes.isOk() ? fp::Status::ok() : bytes.status());
  return bytes.isOk() ? *bytes : 0;
}

} // namespace

extern "C" {

void fp_plan_spec_init_sized(fp_plan_spec_t *spec, size_t struct_size) {
  if (!spec || struct_size < fp::kSpecV1Size)
    return;
  fp_plan_spec_t defaults{};
  defaults.dtype = FP_DTYPE_BF16;
  defaults.head_dim = 128;
  defaults.num_q_heads = 32;
  defaults.num_kv_heads = 8;
  defaults.block_size = FP_DEFAULT_BLOCK_SIZE;
  defaults.causal = 1;
  defaults.max_batch = 1;
  defaults.device = 0;
  // Never more than the caller's struct (an older header's is smaller).
  const size_t size = std::min(struct_size, sizeof(fp_plan_spec_t));
  defaults.struct_size = size;
  std::memcpy(spec, &defaults, size);
}

// The exported symbol of binaries built against headers where
// fp_plan_spec_init was a function: version 1's size, the only one then.
#undef fp_plan_spec_init
void fp_plan_spec_init(fp_plan_spec_t *spec) {
  fp_plan_spec_init_sized(spec, fp::kSpecV1Size);
}

void fp_params_init_sized(fp_params_t *params, size_t struct_size) {
  if (!params || struct_size < fp::kParamsV1Size)
    return;
  fp_params_t defaults{};
  defaults.alpha = FP_DEFAULT_ALPHA;
  defaults.sink = FP_DEFAULT_SINK;
  defaults.window = FP_DEFAULT_WINDOW;
  defaults.last_n = FP_DEFAULT_LAST_N;
  defaults.min_budget = FP_DEFAULT_MIN_BUDGET;
  defaults.threshold_kind = 0;
  defaults.dense_below_tokens = FP_DENSE_BELOW_AUTO;
  defaults.mean_correction = 0;
  // Never more than the caller's struct (an older header's is smaller).
  const size_t size = std::min(struct_size, sizeof(fp_params_t));
  defaults.struct_size = size;
  std::memcpy(params, &defaults, size);
}

// The exported symbol of binaries built against headers of versions 1-2,
// where fp_params_init was a function: version 2's size (what it wrote
// then). Headers of version 3 on call fp_params_init_sized with their size.
#undef fp_params_init
void fp_params_init(fp_params_t *params) {
  fp_params_init_sized(params, fp::kParamsV2Size);
}

fp_status_t fp_plan_create(const fp_plan_spec_t *spec, fp_plan_t **plan) {
  return guarded([&]() -> fp::Status {
    if (!plan)
      return fp::invalidArgument("plan: expected a pointer to receive the "
                                 "plan, got NULL");
    *plan = nullptr;
    if (!spec)
      return fp::invalidArgument("spec: expected a pointer "
                                 "(fp_plan_spec_init), got NULL");
    auto created = fp::Plan::create(*spec);
    if (!created.isOk())
      return created.status();
    *plan = new fp_plan{std::move(*created)};
    return fp::Status::ok();
  });
}

void fp_plan_destroy(fp_plan_t *plan) { delete plan; }

size_t fp_plan_workspace_bytes(const fp_plan_t *plan, int64_t batch,
                               int64_t seq_len) {
  if (!plan)
    return report(nullPlan()), 0;
  return bytesOrZero(plan->plan->workspaceBytes(batch, seq_len));
}

int64_t fp_plan_dense_below_tokens(const fp_plan_t *plan) {
  if (!plan)
    return report(nullPlan()), -1;
  return plan->plan->info().denseBelowTokens;
}

size_t fp_plan_select_workspace_bytes(const fp_plan_t *plan, int64_t batch,
                                      int64_t seq_len) {
  if (!plan)
    return report(nullPlan()), 0;
  return bytesOrZero(plan->plan->selectWorkspaceBytes(batch, seq_len));
}

size_t fp_plan_mask_bytes(const fp_plan_t *plan, int64_t batch,
                          int64_t seq_len) {
  if (!plan)
    return report(nullPlan()), 0;
  return bytesOrZero(plan->plan->maskBytes(batch, seq_len));
}

fp_status_t fp_select(const fp_plan_t *plan, const fp_tensor_t *q,
                      const fp_tensor_t *k, const fp_params_t *params,
                      fp_mask_t *mask, void *workspace, size_t workspace_bytes,
                      void *stream) {
  return guarded([&] {
    return plan ? plan->plan->select(q, k, params, mask, workspace,
                                     workspace_bytes, stream)
                : nullPlan();
  });
}

fp_status_t fp_attend(const fp_plan_t *plan, const fp_tensor_t *q,
                      const fp_tensor_t *k, const fp_tensor_t *v,
                      const fp_mask_t *mask, fp_tensor_t *out,
                      const fp_params_t *params, void *stream) {
  return guarded([&] {
    return plan ? plan->plan->attend(q, k, v, mask, out, params, stream)
                : nullPlan();
  });
}

fp_status_t fp_prefill(const fp_plan_t *plan, const fp_tensor_t *q,
                       const fp_tensor_t *k, const fp_tensor_t *v,
                       fp_tensor_t *out, const fp_params_t *params,
                       void *workspace, size_t workspace_bytes, void *stream) {
  return guarded([&] {
    return plan ? plan->plan->prefill(q, k, v, out, params, workspace,
                                      workspace_bytes, stream)
                : nullPlan();
  });
}

size_t fp_plan_varlen_workspace_bytes(const fp_plan_t *plan, int64_t batch,
                                      int64_t total_q, int64_t max_seqlen_q,
                                      int64_t max_seqlen_k) {
  if (!plan)
    return report(nullPlan()), 0;
  return bytesOrZero(plan->plan->varlenWorkspaceBytes(
      batch, total_q, max_seqlen_q, max_seqlen_k));
}

size_t fp_plan_varlen_select_workspace_bytes(const fp_plan_t *plan,
                                             int64_t batch, int64_t total_q,
                                             int64_t max_seqlen_q,
                                             int64_t max_seqlen_k) {
  if (!plan)
    return report(nullPlan()), 0;
  return bytesOrZero(plan->plan->varlenSelectWorkspaceBytes(
      batch, total_q, max_seqlen_q, max_seqlen_k));
}

size_t fp_plan_varlen_mask_bytes(const fp_plan_t *plan, int64_t batch,
                                 int64_t total_q, int64_t max_seqlen_k) {
  if (!plan)
    return report(nullPlan()), 0;
  return bytesOrZero(
      plan->plan->varlenMaskBytes(batch, total_q, max_seqlen_k));
}

size_t fp_plan_varlen_pooled_keys_bytes(const fp_plan_t *plan, int64_t batch,
                                        int64_t max_seqlen_k) {
  if (!plan)
    return report(nullPlan()), 0;
  return bytesOrZero(plan->plan->varlenPooledKeysBytes(batch, max_seqlen_k));
}

fp_status_t fp_pool_keys_varlen(const fp_plan_t *plan, const fp_tensor_t *q,
                                const fp_tensor_t *k, const fp_varlen_t *varlen,
                                void *pooled_k, void *stream) {
  return guarded([&] {
    return plan ? plan->plan->poolKeysVarlen(q, k, varlen, pooled_k, stream)
                : nullPlan();
  });
}

fp_status_t fp_select_varlen(const fp_plan_t *plan, const fp_tensor_t *q,
                             const fp_tensor_t *k, const fp_varlen_t *varlen,
                             const fp_params_t *params, fp_varlen_mask_t *mask,
                             void *workspace, size_t workspace_bytes,
                             void *stream) {
  return guarded([&] {
    return plan ? plan->plan->selectVarlen(q, k, varlen, params, mask,
                                           workspace, workspace_bytes, stream)
                : nullPlan();
  });
}

fp_status_t fp_attend_varlen(const fp_plan_t *plan, const fp_tensor_t *q,
                             const fp_tensor_t *k, const fp_tensor_t *v,
                             const fp_varlen_t *varlen,
                             const fp_varlen_mask_t *mask, fp_tensor_t *out,
                             const fp_params_t *params, void *stream) {
  return guarded([&] {
    return plan ? plan->plan->attendVarlen(q, k, v, varlen, mask, out, params,
                                           stream)
                : nullPlan();
  });
}

fp_status_t fp_prefill_varlen(const fp_plan_t *plan, const fp_tensor_t *q,
                              const fp_tensor_t *k, const fp_tensor_t *v,
                              const fp_varlen_t *varlen, fp_tensor_t *out,
                              const fp_params_t *params, void *workspace,
                              size_t workspace_bytes, void *stream) {
  return guarded([&] {
    return plan ? plan->plan->prefillVarlen(q, k, v, varlen, out, params,
                                            workspace, workspace_bytes, stream)
                : nullPlan();
  });
}

fp_status_t fp_merge_states(const fp_plan_t *plan, const fp_attn_state_t *a,
                            const fp_attn_state_t *b, fp_attn_state_t *out,
                            void *stream) {
  return guarded([&] {
    return plan ? plan->plan->mergeStates(a, b, out, stream) : nullPlan();
  });
}

const char *fp_last_error(void) { return lastError.c_str(); }

const char *fp_status_name(fp_status_t status) {
  return fp::statusCodeName(static_cast<fp::StatusCode>(status));
}

} // extern "C"
