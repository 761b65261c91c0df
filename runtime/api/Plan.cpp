//===- Plan.cpp - Argument validation and workspace layout ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Every public entry validates all of its arguments here, before a backend
// touches memory, so that on error nothing is written.
//
//===----------------------------------------------------------------------===//
#include "PlanBackends.h"

#include "fp/params.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace fp {

namespace {

/// Integers in messages with their own signedness: a size_t of SIZE_MAX
/// must not read as -1.
template <typename Integer> std::string str(Integer value) {
  static_assert(std::is_integral_v<Integer>);
  return std::to_string(value);
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

size_t alignUp(size_t bytes) { return (bytes + 255) & ~size_t(255); }

/// End of the last field of version 1 of fp_params_t: callers compiled
/// against v1 pass at least this.
constexpr size_t kParamsV1Size = offsetof(fp_params_t, max_seqlen_k) +
                                 sizeof(((fp_params_t *)nullptr)->max_seqlen_k);
/// Version 2 appended dense_below_tokens.
constexpr size_t kParamsV2Size =
    offsetof(fp_params_t, dense_below_tokens) + sizeof(int64_t);
constexpr size_t kSpecV1Size =
    offsetof(fp_plan_spec_t, max_workspace_bytes) + sizeof(uint64_t);

/// How many bytes of a caller's versioned struct this library reads: the
/// largest version it knows that fits within the caller's struct_size (a
/// size between two versions ends inside a field, which is not read).
/// Reading sizeof(T) instead would run past an older caller's struct.
template <size_t N>
size_t versionedPrefix(size_t structSize, const size_t (&versionSizes)[N]) {
  size_t prefix = 0;
  for (size_t size : versionSizes)
    if (size <= structSize && size > prefix)
      prefix = size;
  return prefix;
}

/// The value ranges of a params struct read by readParams().
Status checkParamValues(const fp_params_t *params) {
  if (!(params->alpha >= 0.0f && params->alpha <= 1.0f))
    return invalidArgument("params.alpha: expected a value in [0, 1], got " +
                           formatFloat(params->alpha));
  if (params->sink < 0)
    return invalidArgument("params.sink: expected >= 0, got " +
                           str(params->sink));
  if (params->window < 1)
    return invalidArgument("params.window: expected >= 1 (the diagonal block "
                           "is kept only by the window), got " +
                           str(params->window));
  if (params->last_n < 0)
    return invalidArgument("params.last_n: expected >= 0, got " +
                           str(params->last_n));
  if (params->min_budget < 0)
    return invalidArgument("params.min_budget: expected >= 0, got " +
                           str(params->min_budget));
  if (params->threshold_kind != FP_THRESHOLD_RELATIVE_MAX &&
      params->threshold_kind != FP_THRESHOLD_MIN_MAX)
    return invalidArgument("params.threshold_kind: expected 0 (relative_max) "
                           "or 1 (min_max), got " +
                           str(params->threshold_kind));
  if (!std::isfinite(params->scale))
    return invalidArgument("params.scale: expected a finite value (<= 0 for "
                           "1/sqrt(head_dim)), got " +
                           formatFloat(params->scale));
  if (params->dense_below_tokens < FP_DENSE_BELOW_AUTO)
    return invalidArgument("params.dense_below_tokens: expected -1 "
                           "(FP_DENSE_BELOW_AUTO), 0 (never) or a token "
                           "count, got " +
                           str(params->dense_below_tokens));
  if (params->cu_seqlens_q || params->cu_seqlens_k ||
      params->max_seqlen_q != 0 || params->max_seqlen_k != 0)
    return unsupported("params.cu_seqlens_q / cu_seqlens_k / max_seqlen_q / "
                       "max_seqlen_k: variable-length batches are not "
                       "supported yet; expected NULL and 0");
  return Status::ok();
}


/// The value ranges of a spec read by readPlanSpec().
Status checkPlanSpecValues(const fp_plan_spec_t &spec) {
  // A C caller may store any int in the enum field; loading an out-of-range
  // enum value is undefined in C++, so read the int.
  static_assert(sizeof(spec.dtype) == sizeof(int32_t));
  int32_t dtype;
  std::memcpy(&dtype, &spec.dtype, sizeof(dtype));
  if (dtype != FP_DTYPE_BF16 && dtype != FP_DTYPE_F16)
    return invalidArgument("spec.dtype: expected FP_DTYPE_BF16 (0) or "
                           "FP_DTYPE_F16 (1), got " +
                           str(dtype));
  if (spec.head_dim < 16 || spec.head_dim > 256 || spec.head_dim % 16 != 0)
    return invalidArgument("spec.head_dim: expected a multiple of 16 in "
                           "[16, 256], got " +
                           str(spec.head_dim));
  if (spec.head_dim_v != 0 && spec.head_dim_v != spec.head_dim)
    return unsupported("spec.head_dim_v: d_v != d is not supported yet; "
                       "expected 0 or " +
                       str(spec.head_dim) + ", got " + str(spec.head_dim_v));
  if (spec.num_q_heads <= 0 || spec.num_kv_heads <= 0)
    return invalidArgument("spec.num_q_heads, spec.num_kv_heads: expected "
                           "positive values, got " +
                           str(spec.num_q_heads) + " and " +
                           str(spec.num_kv_heads));
  if (spec.num_q_heads % spec.num_kv_heads != 0)
    return invalidArgument("spec.num_q_heads: expected a multiple of "
                           "num_kv_heads (" +
                           str(spec.num_kv_heads) + "), got " +
                           str(spec.num_q_heads));
  if (spec.block_size < 16 || spec.block_size > 256 ||
      (spec.block_size & (spec.block_size - 1)) != 0)
    return invalidArgument("spec.block_size: expected a power of two in "
                           "[16, 256], got " +
                           str(spec.block_size));
  if (spec.causal != 1)
    return unsupported("spec.causal: only causal prefill is implemented; "
                       "expected 1, got " +
                       str(spec.causal));
  if (spec.max_batch <= 0)
    return invalidArgument("spec.max_batch: expected > 0, got " +
                           str(spec.max_batch));
  if (spec.max_seq_len <= 0)
    return invalidArgument("spec.max_seq_len: expected > 0, got " +
                           str(spec.max_seq_len));
  // Kernels take the batch and lengths as 32-bit ints; layout() must not
  // overflow (it is monotone, so the maximum bounds every problem).
  if (spec.max_batch > INT32_MAX)
    return invalidArgument("spec.max_batch: expected <= 2147483647, got " +
                           str(spec.max_batch));
  if (spec.max_seq_len > INT32_MAX)
    return invalidArgument("spec.max_seq_len: expected <= 2147483647, got " +
                           str(spec.max_seq_len));
  long double nb = ceilDiv(spec.max_seq_len, spec.block_size);
  long double workspace =
      (long double)spec.max_batch * nb *
      (((long double)spec.num_q_heads + spec.num_kv_heads) * spec.head_dim * 2 +
       (long double)spec.num_q_heads * (nb + 1) * 4);
  if (workspace > 0x1p62L)
    return invalidArgument(
        "spec.max_batch, spec.max_seq_len: the workspace at max_batch " +
        str(spec.max_batch) + " and max_seq_len " + str(spec.max_seq_len) +
        " would exceed 2^62 bytes");
  if (spec.device < FP_DEVICE_CPU)
    return invalidArgument("spec.device: expected a CUDA ordinal >= 0 or "
                           "FP_DEVICE_CPU (-1), got " +
                           str(spec.device));
  return Status::ok();
}

/// The caller's params as this library's struct: the caller's versions'
/// fields copied, later fields at their fp_params_init defaults.
StatusOr<fp_params_t> readParams(const fp_params_t *params) {
  if (!params)
    return invalidArgument("params: expected a pointer (fp_params_init), got "
                           "NULL");
  if (params->struct_size < kParamsV1Size)
    return invalidArgument(
        "params.struct_size: expected >= " + str(kParamsV1Size) +
        " (call fp_params_init), got " + str(params->struct_size));
  if (params->struct_size > sizeof(fp_params_t))
    return unsupported("params.struct_size: " + str(params->struct_size) +
                       " is larger than this library's fp_params_t (" +
                       str(sizeof(fp_params_t)) +
                       "): the caller was built against a newer header");
  fp_params_t copy;
  fp_params_init(&copy);
  std::memcpy(&copy, params,
              versionedPrefix(params->struct_size,
                              {kParamsV1Size, kParamsV2Size}));
  FP_RETURN_IF_ERROR(checkParamValues(&copy));
  return copy;
}

/// The caller's spec as this library's struct (see readParams).
StatusOr<fp_plan_spec_t> readPlanSpec(const fp_plan_spec_t &spec) {
  if (spec.struct_size < kSpecV1Size)
    return invalidArgument(
        "spec.struct_size: expected " + str(sizeof(fp_plan_spec_t)) +
        " (call fp_plan_spec_init), got " + str(spec.struct_size));
  if (spec.struct_size > sizeof(fp_plan_spec_t))
    return unsupported("spec.struct_size: " + str(spec.struct_size) +
                       " is larger than this library's fp_plan_spec_t (" +
                       str(sizeof(fp_plan_spec_t)) + ")");
  fp_plan_spec_t copy;
  fp_plan_spec_init(&copy);
  std::memcpy(&copy, &spec, versionedPrefix(spec.struct_size, {kSpecV1Size}));
  FP_RETURN_IF_ERROR(checkPlanSpecValues(copy));
  return copy;
}

} // namespace

Status validateParams(const fp_params_t *params) {
  StatusOr<fp_params_t> read = readParams(params);
  return read.isOk() ? Status::ok() : read.status();
}

Status validatePlanSpec(const fp_plan_spec_t &spec) {
  StatusOr<fp_plan_spec_t> read = readPlanSpec(spec);
  return read.isOk() ? Status::ok() : read.status();
}

StatusOr<std::unique_ptr<Plan>> Plan::create(const fp_plan_spec_t &spec) {
  return create(spec, PlanTuning());
}

StatusOr<std::unique_ptr<Plan>> Plan::create(const fp_plan_spec_t &callerSpec,
                                             const PlanTuning &tuning) {
  StatusOr<fp_plan_spec_t> read = readPlanSpec(callerSpec);
  if (!read.isOk())
    return read.status();
  const fp_plan_spec_t &spec = *read;
  std::unique_ptr<Plan> plan;
  if (spec.device == FP_DEVICE_CPU) {
    auto cpu = createCpuPlan(spec);
    if (!cpu.isOk())
      return cpu.status();
    plan = std::move(*cpu);
  } else {
    auto gpu = createCudaPlan(spec, tuning);
    if (!gpu.isOk())
      return gpu.status();
    plan = std::move(*gpu);
  }
  // The largest problem must fit the caller's workspace limit.
  WorkspaceLayout largest = plan->layout(spec.max_batch, spec.max_seq_len);
  if (spec.max_workspace_bytes != 0 &&
      largest.totalBytes > spec.max_workspace_bytes)
    return invalidArgument(
        "spec.max_workspace_bytes: the workspace at max_batch " +
        str(spec.max_batch) + " and max_seq_len " + str(spec.max_seq_len) +
        " is " + str(largest.totalBytes) + " bytes (mask " +
        str(largest.totalBytes - largest.counts) + "), over the limit " +
        str(spec.max_workspace_bytes));
  return plan;
}

Plan::~Plan() = default;

Plan::WorkspaceLayout Plan::layout(int64_t batch, int64_t seqLen) const {
  int64_t nb = ceilDiv(seqLen, spec_.block_size);
  size_t pooledRow = size_t(nb) * spec_.head_dim * 2;
  WorkspaceLayout l;
  l.kbar = 0;
  l.qbar = alignUp(size_t(batch) * spec_.num_kv_heads * pooledRow);
  size_t qbarBytes =
      spec_.pooled_queries ? size_t(batch) * spec_.num_q_heads * pooledRow : 0;
  l.selectBytes = l.qbar + alignUp(qbarBytes);
  l.counts = l.selectBytes;
  size_t rows = size_t(batch) * spec_.num_q_heads * nb;
  l.ids = l.counts + alignUp(rows * sizeof(int32_t));
  l.totalBytes = l.ids + alignUp(rows * nb * sizeof(int32_t));
  return l;
}

static Status checkProblemSize(const fp_plan_spec_t &spec, int64_t batch,
                               int64_t seqLen) {
  if (batch <= 0 || batch > spec.max_batch)
    return invalidArgument("batch: expected 1.." + str(spec.max_batch) +
                           " (the plan's max_batch), got " + str(batch));
  if (seqLen <= 0 || seqLen > spec.max_seq_len)
    return invalidArgument("seq_len: expected 1.." + str(spec.max_seq_len) +
                           " (the plan's max_seq_len), got " + str(seqLen));
  return Status::ok();
}

StatusOr<size_t> Plan::workspaceBytes(int64_t batch, int64_t seqLen) const {
  FP_RETURN_IF_ERROR(checkProblemSize(spec_, batch, seqLen));
  return layout(batch, seqLen).totalBytes;
}

StatusOr<size_t> Plan::selectWorkspaceBytes(int64_t batch,
                                            int64_t seqLen) const {
  FP_RETURN_IF_ERROR(checkProblemSize(spec_, batch, seqLen));
  return layout(batch, seqLen).selectBytes;
}

StatusOr<size_t> Plan::maskBytes(int64_t batch, int64_t seqLen) const {
  FP_RETURN_IF_ERROR(checkProblemSize(spec_, batch, seqLen));
  WorkspaceLayout l = layout(batch, seqLen);
  return l.totalBytes - l.counts;
}

Status Plan::validateTensor(const fp_tensor_t *t, const char *name,
                            int64_t batch, int64_t seqLen, int64_t heads,
                            const char *headsName) const {
  std::string n = name;
  if (!t)
    return invalidArgument(n + ": expected a tensor, got NULL");
  if (!t->data)
    return invalidArgument(n + ".data: expected a pointer, got NULL");
  const int64_t expected[4] = {batch, seqLen, heads, spec_.head_dim};
  const char *dims[4] = {"batch", "seq", headsName, "head_dim"};
  for (int i = 0; i < 4; ++i)
    if (t->shape[i] != expected[i])
      return invalidArgument(n + ".shape[" + str(i) + "] (" + dims[i] +
                             "): expected " + str(expected[i]) + ", got " +
                             str(t->shape[i]));
  if (t->strides[3] != 1)
    return invalidArgument(n +
                           ".strides[3]: expected 1 (contiguous head "
                           "dim), got " +
                           str(t->strides[3]));
  for (int i = 0; i < 3; ++i)
    if (t->strides[i] < 0)
      return invalidArgument(n + ".strides[" + str(i) +
                             "]: expected >= 0, got " + str(t->strides[i]));
  if (onDevice()) {
    // cp.async moves 16-byte chunks: rows must start on 16-byte boundaries.
    if (reinterpret_cast<uintptr_t>(t->data) % 16 != 0)
      return invalidArgument(n + ".data: expected a 16-byte aligned device "
                                 "pointer");
    for (int i = 0; i < 3; ++i)
      if (t->strides[i] % 8 != 0)
        return invalidArgument(n + ".strides[" + str(i) +
                               "]: expected a multiple of 8 elements (16 "
                               "bytes), got " +
                               str(t->strides[i]));
  }
  return Status::ok();
}

StatusOr<Plan::Problem> Plan::validateTokens(const fp_tensor_t *q,
                                             const fp_tensor_t *k,
                                             const fp_tensor_t *v,
                                             const fp_tensor_t *out) const {
  if (!q)
    return invalidArgument("q: expected a tensor, got NULL");
  int64_t batch = q->shape[0], seqLen = q->shape[1];
  FP_RETURN_IF_ERROR(checkProblemSize(spec_, batch, seqLen));
  FP_RETURN_IF_ERROR(
      validateTensor(q, "q", batch, seqLen, spec_.num_q_heads, "heads"));
  if (k && k->shape[1] != seqLen && k->shape[1] > 0)
    return unsupported("k.shape[1] (s_k): s_q != s_k is not supported yet; "
                       "expected " +
                       str(seqLen) + " (= q.shape[1]), got " +
                       str(k->shape[1]));
  FP_RETURN_IF_ERROR(
      validateTensor(k, "k", batch, seqLen, spec_.num_kv_heads, "heads"));
  if (v)
    FP_RETURN_IF_ERROR(
        validateTensor(v, "v", batch, seqLen, spec_.num_kv_heads, "heads"));
  if (out)
    FP_RETURN_IF_ERROR(
        validateTensor(out, "out", batch, seqLen, spec_.num_q_heads, "heads"));
  return Problem{batch, seqLen, ceilDiv(seqLen, spec_.block_size)};
}

Status Plan::validateMask(const fp_mask_t *mask, const Problem &problem) const {
  if (!mask)
    return invalidArgument("mask: expected a mask, got NULL");
  if (!mask->counts || !mask->ids)
    return invalidArgument("mask.counts, mask.ids: expected pointers, got " +
                           std::string(mask->counts ? "" : "counts NULL ") +
                           std::string(mask->ids ? "" : "ids NULL"));
  if (mask->batch != problem.batch)
    return invalidArgument("mask.batch: expected " + str(problem.batch) +
                           " (= q.shape[0]), got " + str(mask->batch));
  if (mask->heads != spec_.num_q_heads)
    return invalidArgument("mask.heads: expected " + str(spec_.num_q_heads) +
                           " (the plan's num_q_heads), got " +
                           str(mask->heads));
  if (mask->num_blocks != problem.numBlocks)
    return invalidArgument("mask.num_blocks: expected " +
                           str(problem.numBlocks) + " (ceil(" +
                           str(problem.seqLen) + " / " + str(spec_.block_size) +
                           ")), got " + str(mask->num_blocks));
  return Status::ok();
}

Status Plan::validateWorkspace(const void *workspace, size_t bytes,
                               size_t required, const Problem &problem) const {
  if (bytes < required)
    return invalidArgument("workspace_bytes: expected >= " + str(required) +
                           " for batch " + str(problem.batch) +
                           " and seq_len " + str(problem.seqLen) + ", got " +
                           str(bytes));
  if (!workspace)
    return invalidArgument("workspace: expected a pointer, got NULL");
  if (onDevice() && reinterpret_cast<uintptr_t>(workspace) % 256 != 0)
    return invalidArgument("workspace: expected a 256-byte aligned device "
                           "pointer (cudaMalloc's alignment)");
  return Status::ok();
}

Status Plan::select(const fp_tensor_t *q, const fp_tensor_t *k,
                    const fp_params_t *params, const fp_mask_t *mask,
                    void *workspace, size_t workspaceBytes,
                    void *stream) const {
  auto problem = validateTokens(q, k, nullptr, nullptr);
  if (!problem.isOk())
    return problem.status();
  StatusOr<fp_params_t> read = readParams(params);
  if (!read.isOk())
    return read.status();
  FP_RETURN_IF_ERROR(validateMask(mask, *problem));
  WorkspaceLayout l = layout(problem->batch, problem->seqLen);
  FP_RETURN_IF_ERROR(
      validateWorkspace(workspace, workspaceBytes, l.selectBytes, *problem));
  return runSelect(*problem, *q, *k, *read, *mask, workspace, stream);
}

StatusOr<Plan::Problem>
Plan::validateAttention(const fp_tensor_t *q, const fp_tensor_t *k,
                        const fp_tensor_t *v, const fp_tensor_t *out,
                        const fp_params_t *params,
                        fp_params_t *read) const {
  if (!out)
    return invalidArgument("out: expected a tensor, got NULL");
  if (!v)
    return invalidArgument("v: expected a tensor, got NULL");
  auto problem = validateTokens(q, k, v, out);
  if (!problem.isOk())
    return problem.status();
  StatusOr<fp_params_t> readOrError = readParams(params);
  if (!readOrError.isOk())
    return readOrError.status();
  *read = *readOrError;
  return problem;
}

Status Plan::attend(const fp_tensor_t *q, const fp_tensor_t *k,
                    const fp_tensor_t *v, const fp_mask_t *mask,
                    const fp_tensor_t *out, const fp_params_t *params,
                    void *stream) const {
  fp_params_t read;
  auto problem = validateAttention(q, k, v, out, params, &read);
  if (!problem.isOk())
    return problem.status();
  FP_RETURN_IF_ERROR(validateMask(mask, *problem));
  return runAttend(*problem, *q, *k, *v, *mask, *out, read, stream);
}

Status Plan::prefill(const fp_tensor_t *q, const fp_tensor_t *k,
                     const fp_tensor_t *v, const fp_tensor_t *out,
                     const fp_params_t *params, void *workspace,
                     size_t workspaceBytes, void *stream) const {
  fp_params_t effective;
  auto problem = validateAttention(q, k, v, out, params, &effective);
  if (!problem.isOk())
    return problem.status();
  WorkspaceLayout l = layout(problem->batch, problem->seqLen);
  FP_RETURN_IF_ERROR(
      validateWorkspace(workspace, workspaceBytes, l.totalBytes, *problem));
  char *base = static_cast<char *>(workspace);
  fp_mask_t mask{reinterpret_cast<int32_t *>(base + l.counts),
                 reinterpret_cast<int32_t *>(base + l.ids), problem->batch,
                 spec_.num_q_heads, problem->numBlocks};
  // Short prompts: the cost model (or the caller) says dense attention is
  // faster than scoring; alpha = 0 keeps every causal block and lets
  // discovery skip the scoring entirely.
  const int64_t denseBelow =
      effective.dense_below_tokens != FP_DENSE_BELOW_AUTO
          ? effective.dense_below_tokens
          : info_.denseBelowTokens;
  if (problem->seqLen < denseBelow)
    effective.alpha = 0.0f;
  FP_RETURN_IF_ERROR(
      runSelect(*problem, *q, *k, effective, mask, workspace, stream));
  return runAttend(*problem, *q, *k, *v, mask, *out, effective, stream);
}

} // namespace fp
