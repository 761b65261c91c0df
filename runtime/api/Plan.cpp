//===- Plan.cpp - Argument validation and workspace layout ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Every public entry validates all of its arguments here, before a backend
// touches memory, so that on error nothing is written.
//
//===----------------------------------------------------------------------===//
#include "PlanBackends.h"
#include "StructVersions.h"

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
  if (params->mean_correction != 0 && params->mean_correction != 1)
    return invalidArgument("params.mean_correction: expected 0 (off) or 1 "
                           "(on), got " +
                           str(params->mean_correction));
  if (params->cu_seqlens_q || params->cu_seqlens_k ||
      params->max_seqlen_q != 0 || params->max_seqlen_k != 0)
    return unsupported("params.cu_seqlens_q / cu_seqlens_k / max_seqlen_q / "
                       "max_seqlen_k: variable-length batches are not "
                       "supported through fp_params_t (describe them with "
                       "fp_varlen_t and call fp_select_varlen, "
                       "fp_attend_varlen or fp_prefill_varlen); expected "
                       "NULL and 0");
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
                              {kParamsV1Size, kParamsV2Size, kParamsV3Size}));
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

/// The caller's fp_varlen_t as this library's struct (see readParams;
/// fields past the caller's struct_size are zero).
StatusOr<fp_varlen_t> readVarlen(const fp_varlen_t *varlen) {
  if (!varlen)
    return invalidArgument("varlen: expected a pointer to an fp_varlen_t, got "
                           "NULL");
  if (varlen->struct_size < kVarlenV1Size)
    return invalidArgument("varlen.struct_size: expected >= " +
                           str(kVarlenV1Size) +
                           " (version 1 of fp_varlen_t), got " +
                           str(varlen->struct_size));
  if (varlen->struct_size > sizeof(fp_varlen_t))
    return unsupported("varlen.struct_size: " + str(varlen->struct_size) +
                       " is larger than this library's fp_varlen_t (" +
                       str(sizeof(fp_varlen_t)) +
                       "): the caller was built against a newer header");
  fp_varlen_t copy{};
  std::memcpy(&copy, varlen,
              versionedPrefix(varlen->struct_size,
                              {kVarlenV1Size, kVarlenV2Size}));
  return copy;
}

/// Parameter names of the host sizes: the byte queries name their own
/// arguments, the calls the struct fields and q's shape.
struct VarlenSizeNames {
  const char *batch, *totalQ, *maxSeqlenQ, *maxSeqlenK;
};
constexpr VarlenSizeNames kQueryNames = {"batch", "total_q", "max_seqlen_q",
                                         "max_seqlen_k"};
constexpr VarlenSizeNames kCallNames = {"varlen.batch", "q.shape[1] (total_q)",
                                        "varlen.max_seqlen_q",
                                        "varlen.max_seqlen_k"};

/// The host sizes of a varlen call against the plan. These bounds also keep
/// the varlen workspace within the plan's (checked) maximum size.
Status checkVarlenSizes(const fp_plan_spec_t &spec, int64_t batch,
                        int64_t totalQ, int64_t maxSeqlenQ,
                        int64_t maxSeqlenK, const VarlenSizeNames &names) {
  if (batch <= 0 || batch > spec.max_batch)
    return invalidArgument(std::string(names.batch) + ": expected 1.." +
                           str(spec.max_batch) +
                           " (the plan's max_batch), got " + str(batch));
  const int64_t maxTokens = spec.max_batch * spec.max_seq_len;
  if (totalQ <= 0 || totalQ > maxTokens)
    return invalidArgument(std::string(names.totalQ) + ": expected 1.." +
                           str(maxTokens) +
                           " (the plan's max_batch * max_seq_len), got " +
                           str(totalQ));
  if (maxSeqlenK <= 0 || maxSeqlenK > spec.max_seq_len)
    return invalidArgument(std::string(names.maxSeqlenK) + ": expected 1.." +
                           str(spec.max_seq_len) +
                           " (the plan's max_seq_len), got " +
                           str(maxSeqlenK));
  if (maxSeqlenQ <= 0 || maxSeqlenQ > maxSeqlenK)
    return invalidArgument(std::string(names.maxSeqlenQ) + ": expected 1.." +
                           str(maxSeqlenK) + " (" + names.maxSeqlenK +
                           ": a sequence has at least as many keys as "
                           "queries), got " +
                           str(maxSeqlenQ));
  return Status::ok();
}

/// The fields of a read fp_varlen_t that the host can check: sizes against
/// the plan, and which pointers are given (the lengths are not read here).
Status checkVarlenFields(const fp_varlen_t &varlen,
                         const fp_plan_spec_t &spec) {
  // total_q comes from q; 1 stands in for it here.
  FP_RETURN_IF_ERROR(checkVarlenSizes(spec, varlen.batch, 1,
                                      varlen.max_seqlen_q, varlen.max_seqlen_k,
                                      kCallNames));
  if (!varlen.cu_seqlens_q)
    return invalidArgument("varlen.cu_seqlens_q: expected a pointer to "
                           "batch + 1 offsets, got NULL");
  if (varlen.cu_seqlens_k) {
    if (varlen.page_table || varlen.k_lens)
      return invalidArgument(
          "varlen.cu_seqlens_k, varlen.page_table: expected packed K/V "
          "(cu_seqlens_k) or paged K/V (page_table and k_lens), not both");
    return Status::ok();
  }
  if (!varlen.page_table || !varlen.k_lens)
    return invalidArgument(
        "varlen.cu_seqlens_k, varlen.page_table, varlen.k_lens: expected "
        "cu_seqlens_k (packed K/V) or page_table and k_lens (paged K/V), "
        "got " +
        std::string(varlen.page_table ? "page_table without k_lens"
                    : varlen.k_lens   ? "k_lens without page_table"
                                      : "none of them"));
  if (varlen.max_pages <= 0 || varlen.max_pages > INT32_MAX)
    return invalidArgument("varlen.max_pages: expected 1..2147483647 (the "
                           "columns of page_table), got " +
                           str(varlen.max_pages));
  return Status::ok();
}

} // namespace

Status validateVarlenFields(const fp_varlen_t *varlen,
                            const fp_plan_spec_t &spec) {
  StatusOr<fp_varlen_t> read = readVarlen(varlen);
  if (!read.isOk())
    return read.status();
  return checkVarlenFields(*read, spec);
}

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
  // The largest problem must fit the caller's workspace limit: whole
  // prompts at max_batch x max_seq_len, and varlen calls at their maxima
  // (batch max_batch, total_q max_batch * max_seq_len, max_seqlen_k
  // max_seq_len), whose compact mask has max_batch more rows.
  if (spec.max_workspace_bytes != 0) {
    WorkspaceLayout largest = plan->layout(spec.max_batch, spec.max_seq_len);
    WorkspaceLayout varlen = plan->varlenLayout(
        spec.max_batch, spec.max_batch * spec.max_seq_len, spec.max_seq_len);
    const bool varlenLarger = varlen.totalBytes > largest.totalBytes;
    const WorkspaceLayout &worst = varlenLarger ? varlen : largest;
    if (worst.totalBytes > spec.max_workspace_bytes)
      return invalidArgument(
          "spec.max_workspace_bytes: the workspace of " +
          std::string(varlenLarger ? "a varlen call at batch " : "a prefill at batch ") +
          str(spec.max_batch) +
          (varlenLarger ? ", total_q " + str(spec.max_batch * spec.max_seq_len) +
                              " and max_seqlen_k "
                        : " and max_seq_len ") +
          str(spec.max_seq_len) + " is " + str(worst.totalBytes) +
          " bytes (mask " + str(worst.totalBytes - worst.counts) +
          "), over the limit " + str(spec.max_workspace_bytes));
  }
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
                       str(k->shape[1]) +
                       " (a chunk after a cached prefix: fp_prefill_varlen)");
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
  return checkWorkspace(workspace, bytes, required,
                        "batch " + str(problem.batch) + " and seq_len " +
                            str(problem.seqLen));
}

Status Plan::checkWorkspace(const void *workspace, size_t bytes,
                            size_t required, const std::string &forWhat) const {
  if (bytes < required)
    return invalidArgument("workspace_bytes: expected >= " + str(required) +
                           " for " + forWhat + ", got " + str(bytes));
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
  FP_RETURN_IF_ERROR(checkMeanCorrection(*read));
  return problem;
}

Status Plan::checkMeanCorrection(const fp_params_t &params) const {
  if (params.mean_correction && onDevice())
    return unsupported("params.mean_correction: mean correction is "
                       "implemented on CPU plans only so far (no CUDA "
                       "kernel computes it yet); expected 0 on a CUDA plan");
  return Status::ok();
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

//===----------------------------------------------------------------------===//
// Engine shapes
//===----------------------------------------------------------------------===//

Plan::WorkspaceLayout Plan::varlenLayout(int64_t batch, int64_t totalQ,
                                         int64_t maxSeqlenK) const {
  const int64_t numRows = totalQ / spec_.block_size + batch;
  const int64_t maxKeyBlocks = ceilDiv(maxSeqlenK, spec_.block_size);
  const size_t pooledRow = size_t(spec_.head_dim) * 2;
  WorkspaceLayout l;
  l.kbar = 0;
  l.qbar = alignUp(size_t(batch) * spec_.num_kv_heads * size_t(maxKeyBlocks) *
                   pooledRow);
  const size_t qbarBytes =
      spec_.pooled_queries
          ? size_t(numRows) * spec_.num_q_heads * pooledRow
          : 0;
  l.selectBytes = l.qbar + alignUp(qbarBytes);
  l.counts = l.selectBytes;
  const size_t rows = size_t(numRows) * spec_.num_q_heads;
  l.ids = l.counts + alignUp(rows * sizeof(int32_t));
  l.totalBytes =
      l.ids + alignUp(rows * size_t(maxKeyBlocks) * sizeof(int32_t));
  return l;
}

StatusOr<size_t> Plan::varlenWorkspaceBytes(int64_t batch, int64_t totalQ,
                                            int64_t maxSeqlenQ,
                                            int64_t maxSeqlenK) const {
  FP_RETURN_IF_ERROR(checkVarlenSizes(spec_, batch, totalQ, maxSeqlenQ,
                                      maxSeqlenK, kQueryNames));
  return varlenLayout(batch, totalQ, maxSeqlenK).totalBytes;
}

StatusOr<size_t> Plan::varlenSelectWorkspaceBytes(int64_t batch,
                                                  int64_t totalQ,
                                                  int64_t maxSeqlenQ,
                                                  int64_t maxSeqlenK) const {
  FP_RETURN_IF_ERROR(checkVarlenSizes(spec_, batch, totalQ, maxSeqlenQ,
                                      maxSeqlenK, kQueryNames));
  return varlenLayout(batch, totalQ, maxSeqlenK).selectBytes;
}

StatusOr<size_t> Plan::varlenMaskBytes(int64_t batch, int64_t totalQ,
                                       int64_t maxSeqlenK) const {
  // The mask does not depend on max_seqlen_q: max_seqlen_k stands in.
  FP_RETURN_IF_ERROR(checkVarlenSizes(spec_, batch, totalQ, maxSeqlenK,
                                      maxSeqlenK, kQueryNames));
  WorkspaceLayout l = varlenLayout(batch, totalQ, maxSeqlenK);
  return l.totalBytes - l.counts;
}

StatusOr<size_t> Plan::varlenPooledKeysBytes(int64_t batch,
                                             int64_t maxSeqlenK) const {
  FP_RETURN_IF_ERROR(checkVarlenSizes(spec_, batch, 1, 1, maxSeqlenK,
                                      kQueryNames));
  return pooledKeysBytes(batch, maxSeqlenK);
}

size_t Plan::pooledKeysBytes(int64_t batch, int64_t maxSeqlenK) const {
  return size_t(batch) * spec_.num_kv_heads *
         size_t(ceilDiv(maxSeqlenK, spec_.block_size)) *
         size_t(spec_.head_dim) * 2;
}

StatusOr<Plan::VarlenShape>
Plan::validateVarlenCall(const fp_tensor_t *q, const fp_tensor_t *k,
                         const fp_tensor_t *v, const fp_tensor_t *out,
                         const fp_varlen_t *varlen, fp_varlen_t *read) const {
  if (!q)
    return invalidArgument("q: expected a tensor, got NULL");
  StatusOr<fp_varlen_t> readOrError = readVarlen(varlen);
  if (!readOrError.isOk())
    return readOrError.status();
  *read = *readOrError;
  FP_RETURN_IF_ERROR(checkVarlenFields(*read, spec_));
  if (read->pooled_k && onDevice() &&
      reinterpret_cast<uintptr_t>(read->pooled_k) % 16 != 0)
    return invalidArgument("varlen.pooled_k: expected a 16-byte aligned "
                           "device pointer (rows are loaded 16 bytes at a "
                           "time)");
  const int64_t totalQ = q->shape[1];
  FP_RETURN_IF_ERROR(checkVarlenSizes(spec_, read->batch, totalQ,
                                      read->max_seqlen_q, read->max_seqlen_k,
                                      kCallNames));
  FP_RETURN_IF_ERROR(
      validateTensor(q, "q", 1, totalQ, spec_.num_q_heads, "heads"));
  if (!k)
    return invalidArgument("k: expected a tensor, got NULL");
  const bool paged = read->cu_seqlens_k == nullptr;
  if (paged) {
    const int64_t numPages = k->shape[0], pageSize = k->shape[1];
    if (numPages <= 0 || numPages > INT32_MAX)
      return invalidArgument("k.shape[0] (num_pages): expected 1..2147483647, "
                             "got " +
                             str(numPages));
    if (pageSize < 1 || pageSize > 256 || (pageSize & (pageSize - 1)) != 0)
      return invalidArgument("k.shape[1] (page_size): expected a power of two "
                             "in [1, 256], got " +
                             str(pageSize));
  } else {
    if (k->shape[1] <= 0 || k->shape[1] > INT32_MAX)
      return invalidArgument("k.shape[1] (total_k): expected 1..2147483647 "
                             "(cu_seqlens_k are int32), got " +
                             str(k->shape[1]));
    if (k->shape[0] != 1)
      return invalidArgument("k.shape[0]: expected 1 (packed K/V is [1, "
                             "total_k, h_kv, d]), got " +
                             str(k->shape[0]));
  }
  FP_RETURN_IF_ERROR(validateTensor(k, "k", k->shape[0], k->shape[1],
                                    spec_.num_kv_heads, "heads"));
  if (v)
    FP_RETURN_IF_ERROR(validateTensor(v, "v", k->shape[0], k->shape[1],
                                      spec_.num_kv_heads, "heads"));
  if (out)
    FP_RETURN_IF_ERROR(
        validateTensor(out, "out", 1, totalQ, spec_.num_q_heads, "heads"));
  return VarlenShape{read->batch,
                     totalQ,
                     read->max_seqlen_q,
                     read->max_seqlen_k,
                     totalQ / spec_.block_size + read->batch,
                     ceilDiv(read->max_seqlen_k, spec_.block_size),
                     paged};
}

Status Plan::validateVarlenMask(const fp_varlen_mask_t *mask,
                                const VarlenShape &shape) const {
  if (!mask)
    return invalidArgument("mask: expected an fp_varlen_mask_t, got NULL");
  if (!mask->counts || !mask->ids)
    return invalidArgument("mask.counts, mask.ids: expected pointers, got " +
                           std::string(mask->counts ? "" : "counts NULL ") +
                           std::string(mask->ids ? "" : "ids NULL"));
  if (mask->num_rows != shape.numRows)
    return invalidArgument(
        "mask.num_rows: expected " + str(shape.numRows) + " (floor(total_q / " +
        "block_size) + batch = floor(" + str(shape.totalQ) + " / " +
        str(spec_.block_size) + ") + " + str(shape.batch) + "), got " +
        str(mask->num_rows));
  if (mask->heads != spec_.num_q_heads)
    return invalidArgument("mask.heads: expected " + str(spec_.num_q_heads) +
                           " (the plan's num_q_heads), got " +
                           str(mask->heads));
  if (mask->max_key_blocks != shape.maxKeyBlocks)
    return invalidArgument("mask.max_key_blocks: expected " +
                           str(shape.maxKeyBlocks) + " (ceil(max_seqlen_k / " +
                           "block_size) = ceil(" + str(shape.maxSeqlenK) +
                           " / " + str(spec_.block_size) + ")), got " +
                           str(mask->max_key_blocks));
  return Status::ok();
}

/// "batch 3, total_q 700 and max_seqlen_k 512", for workspace messages.
static std::string varlenSizesText(int64_t batch, int64_t totalQ,
                                   int64_t maxSeqlenK) {
  return "batch " + str(batch) + ", total_q " + str(totalQ) +
         " and max_seqlen_k " + str(maxSeqlenK);
}

Status Plan::selectVarlen(const fp_tensor_t *q, const fp_tensor_t *k,
                          const fp_varlen_t *varlen, const fp_params_t *params,
                          const fp_varlen_mask_t *mask, void *workspace,
                          size_t workspaceBytes, void *stream) const {
  fp_varlen_t read;
  auto shape = validateVarlenCall(q, k, nullptr, nullptr, varlen, &read);
  if (!shape.isOk())
    return shape.status();
  StatusOr<fp_params_t> readParamsOrError = readParams(params);
  if (!readParamsOrError.isOk())
    return readParamsOrError.status();
  FP_RETURN_IF_ERROR(validateVarlenMask(mask, *shape));
  WorkspaceLayout l = varlenLayout(shape->batch, shape->totalQ,
                                   shape->maxSeqlenK);
  FP_RETURN_IF_ERROR(checkWorkspace(workspace, workspaceBytes, l.selectBytes,
                                    varlenSizesText(shape->batch, shape->totalQ, shape->maxSeqlenK)));
  return runSelectVarlen(*shape, *q, *k, read, *readParamsOrError, *mask,
                         workspace, stream);
}

Status Plan::poolKeysVarlen(const fp_tensor_t *q, const fp_tensor_t *k,
                            const fp_varlen_t *varlen, void *pooledK,
                            void *stream) const {
  fp_varlen_t read;
  auto shape = validateVarlenCall(q, k, nullptr, nullptr, varlen, &read);
  if (!shape.isOk())
    return shape.status();
  if (read.pooled_k)
    return invalidArgument("varlen.pooled_k: expected NULL for "
                           "fp_pool_keys_varlen (it writes the pooled keys "
                           "to its pooled_k argument), got a pointer");
  if (!pooledK)
    return invalidArgument(
        "pooled_k: expected a buffer of fp_plan_varlen_pooled_keys_bytes = " +
        str(pooledKeysBytes(shape->batch, shape->maxSeqlenK)) +
        " bytes, got NULL");
  if (onDevice() && reinterpret_cast<uintptr_t>(pooledK) % 16 != 0)
    return invalidArgument("pooled_k: expected a 16-byte aligned device "
                           "pointer (rows are stored 16 bytes at a time)");
  return runPoolKeysVarlen(*shape, *q, *k, read, pooledK, stream);
}

Status Plan::attendVarlen(const fp_tensor_t *q, const fp_tensor_t *k,
                          const fp_tensor_t *v, const fp_varlen_t *varlen,
                          const fp_varlen_mask_t *mask, const fp_tensor_t *out,
                          const fp_params_t *params, void *stream) const {
  if (!out)
    return invalidArgument("out: expected a tensor, got NULL");
  if (!v)
    return invalidArgument("v: expected a tensor, got NULL");
  fp_varlen_t read;
  auto shape = validateVarlenCall(q, k, v, out, varlen, &read);
  if (!shape.isOk())
    return shape.status();
  StatusOr<fp_params_t> readParamsOrError = readParams(params);
  if (!readParamsOrError.isOk())
    return readParamsOrError.status();
  FP_RETURN_IF_ERROR(checkMeanCorrection(*readParamsOrError));
  FP_RETURN_IF_ERROR(validateVarlenMask(mask, *shape));
  return runAttendVarlen(*shape, *q, *k, *v, read, *mask, *out,
                         *readParamsOrError, stream);
}

Status Plan::prefillVarlen(const fp_tensor_t *q, const fp_tensor_t *k,
                           const fp_tensor_t *v, const fp_varlen_t *varlen,
                           const fp_tensor_t *out, const fp_params_t *params,
                           void *workspace, size_t workspaceBytes,
                           void *stream) const {
  if (!out)
    return invalidArgument("out: expected a tensor, got NULL");
  if (!v)
    return invalidArgument("v: expected a tensor, got NULL");
  fp_varlen_t read;
  auto shape = validateVarlenCall(q, k, v, out, varlen, &read);
  if (!shape.isOk())
    return shape.status();
  StatusOr<fp_params_t> readParamsOrError = readParams(params);
  if (!readParamsOrError.isOk())
    return readParamsOrError.status();
  FP_RETURN_IF_ERROR(checkMeanCorrection(*readParamsOrError));
  fp_params_t effective = *readParamsOrError;
  WorkspaceLayout l = varlenLayout(shape->batch, shape->totalQ,
                                   shape->maxSeqlenK);
  FP_RETURN_IF_ERROR(checkWorkspace(workspace, workspaceBytes, l.totalBytes,
                                    varlenSizesText(shape->batch, shape->totalQ, shape->maxSeqlenK)));
  char *base = static_cast<char *>(workspace);
  fp_varlen_mask_t mask{reinterpret_cast<int32_t *>(base + l.counts),
                        reinterpret_cast<int32_t *>(base + l.ids),
                        shape->numRows, spec_.num_q_heads, shape->maxKeyBlocks};
  // Short prompts (see prefill()): decided on the host from max_seqlen_k,
  // never from the device-side lengths.
  const int64_t denseBelow =
      effective.dense_below_tokens != FP_DENSE_BELOW_AUTO
          ? effective.dense_below_tokens
          : info_.denseBelowTokens;
  if (shape->maxSeqlenK < denseBelow)
    effective.alpha = 0.0f;
  FP_RETURN_IF_ERROR(runSelectVarlen(*shape, *q, *k, read, effective, mask,
                                     workspace, stream));
  return runAttendVarlen(*shape, *q, *k, *v, read, mask, *out, effective,
                         stream);
}

Status Plan::runSelectVarlen(const VarlenShape &, const fp_tensor_t &,
                             const fp_tensor_t &, const fp_varlen_t &,
                             const fp_params_t &, const fp_varlen_mask_t &,
                             void *, void *) const {
  return unsupported("varlen calls on the GPU: not implemented yet");
}

Status Plan::runPoolKeysVarlen(const VarlenShape &, const fp_tensor_t &,
                               const fp_tensor_t &, const fp_varlen_t &, void *,
                               void *) const {
  return unsupported("varlen calls on the GPU: not implemented yet");
}

Status Plan::runAttendVarlen(const VarlenShape &, const fp_tensor_t &,
                             const fp_tensor_t &, const fp_tensor_t &,
                             const fp_varlen_t &, const fp_varlen_mask_t &,
                             const fp_tensor_t &, const fp_params_t &,
                             void *) const {
  return unsupported("varlen calls on the GPU: not implemented yet");
}

} // namespace fp
