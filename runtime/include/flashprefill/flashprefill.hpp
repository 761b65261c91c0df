//===- flashprefill/flashprefill.hpp - The C++ API --------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The C++ face of the runtime; it takes the same structs as the C API
// (flashprefill.h), so both document one contract, and returns fp::Status
// instead of codes. See flashprefill.h for the rules (streams, alignment,
// threads).
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_FLASHPREFILL_HPP
#define FLASHPREFILL_FLASHPREFILL_HPP

#include "flashprefill/flashprefill.h"
#include "flashprefill/status.h"

#include <memory>
#include <string>

namespace fp {

/// How a plan came to be, for logs and the README's JIT numbers.
struct PlanInfo {
  std::string device;       ///< "NVIDIA H100 80GB HBM3" or "CPU (reference)"
  /// What the kernels were compiled for: "sm_90a", "sm_100" (a GPU the
  /// tiles are not tuned for runs the portable kernels), "compute_80" (PTX
  /// the driver compiles, for a GPU NVRTC does not know), or "" on the CPU.
  std::string arch;
  std::string kernelOrigin; ///< "compiled", "memory cache", "disk cache"
  std::string attentionKernel, discoveryKernel; ///< entry names (tiles)
  double codegenSeconds = 0, compileSeconds = 0, totalSeconds = 0;
  /// prefill() with FP_DENSE_BELOW_AUTO runs dense attention below this
  /// many tokens (runtime/api/CostModel.h); 0 = never.
  int64_t denseBelowTokens = 0;
};

/// Kernel tile choice beyond the spec (fp-tune, experiments). By default a
/// plan looks up the length bucket of max_seq_len in fp-tune's database at
/// TuningDatabase::defaultPath(), then in the databases shipped with the
/// library (bench/tuning/), else uses the heuristics.
struct PlanTuning {
  std::string tuningDatabase; ///< "" = the default path
  bool useTuningDatabase = true;
  std::string attentionTile; ///< forced, e.g. "128x32x4x2"
  std::string discoveryTile; ///< forced, e.g. "64x4"
};

/// Compiled kernels for one spec on one device (or the CPU reference).
/// Immutable after create(): every method may be called concurrently.
class Plan {
public:
  /// Validates `spec`, then generates, compiles (or fetches from the kernel
  /// cache) and loads every kernel. Errors name the spec field.
  static StatusOr<std::unique_ptr<Plan>> create(const fp_plan_spec_t &spec);
  static StatusOr<std::unique_ptr<Plan>> create(const fp_plan_spec_t &spec,
                                                const PlanTuning &tuning);
  virtual ~Plan();

  const fp_plan_spec_t &spec() const { return spec_; }
  const PlanInfo &info() const { return info_; }

  /// Workspace of prefill(): pooled keys (and queries) plus the mask.
  StatusOr<size_t> workspaceBytes(int64_t batch, int64_t seqLen) const;
  /// Workspace of select(): pooled keys (and queries).
  StatusOr<size_t> selectWorkspaceBytes(int64_t batch, int64_t seqLen) const;
  /// Bytes of a mask (counts + ids).
  StatusOr<size_t> maskBytes(int64_t batch, int64_t seqLen) const;

  Status select(const fp_tensor_t *q, const fp_tensor_t *k,
                const fp_params_t *params, const fp_mask_t *mask,
                void *workspace, size_t workspaceBytes, void *stream) const;
  Status attend(const fp_tensor_t *q, const fp_tensor_t *k,
                const fp_tensor_t *v, const fp_mask_t *mask,
                const fp_tensor_t *out, const fp_params_t *params,
                void *stream) const;
  Status prefill(const fp_tensor_t *q, const fp_tensor_t *k,
                 const fp_tensor_t *v, const fp_tensor_t *out,
                 const fp_params_t *params, void *workspace,
                 size_t workspaceBytes, void *stream) const;

  // Engine shapes (flashprefill.h, docs/varlen.md): packed or paged K/V
  // after a cached prefix, the compact mask, LSE [h_q, total_q].

  /// Workspace of prefillVarlen(): pooled keys (and queries) plus the
  /// compact mask, for these host-side sizes.
  StatusOr<size_t> varlenWorkspaceBytes(int64_t batch, int64_t totalQ,
                                        int64_t maxSeqlenQ,
                                        int64_t maxSeqlenK) const;
  /// Workspace of selectVarlen(): pooled keys (and queries).
  StatusOr<size_t> varlenSelectWorkspaceBytes(int64_t batch, int64_t totalQ,
                                              int64_t maxSeqlenQ,
                                              int64_t maxSeqlenK) const;
  /// Bytes of a compact mask (counts + ids).
  StatusOr<size_t> varlenMaskBytes(int64_t batch, int64_t totalQ,
                                   int64_t maxSeqlenK) const;

  /// Bytes of the pooled keys of a varlen call (fp_varlen_t.pooled_k).
  StatusOr<size_t> varlenPooledKeysBytes(int64_t batch,
                                         int64_t maxSeqlenK) const;
  /// Rule step 1 alone (fp_pool_keys_varlen).
  Status poolKeysVarlen(const fp_tensor_t *q, const fp_tensor_t *k,
                        const fp_varlen_t *varlen, void *pooledK,
                        void *stream) const;
  Status selectVarlen(const fp_tensor_t *q, const fp_tensor_t *k,
                      const fp_varlen_t *varlen, const fp_params_t *params,
                      const fp_varlen_mask_t *mask, void *workspace,
                      size_t workspaceBytes, void *stream) const;
  Status attendVarlen(const fp_tensor_t *q, const fp_tensor_t *k,
                      const fp_tensor_t *v, const fp_varlen_t *varlen,
                      const fp_varlen_mask_t *mask, const fp_tensor_t *out,
                      const fp_params_t *params, void *stream) const;
  Status prefillVarlen(const fp_tensor_t *q, const fp_tensor_t *k,
                       const fp_tensor_t *v, const fp_varlen_t *varlen,
                       const fp_tensor_t *out, const fp_params_t *params,
                       void *workspace, size_t workspaceBytes,
                       void *stream) const;

  /// out = merge(a, b) by LSE (fp_merge_states, docs/merge-states.md).
  /// States of any shape; the CPU plan runs the reference, a CUDA plan one
  /// kernel on `stream`.
  Status mergeStates(const fp_attn_state_t *a, const fp_attn_state_t *b,
                     const fp_attn_state_t *out, void *stream) const;

protected:
  /// A validated problem: shapes agree with the plan and each other.
  struct Problem {
    int64_t batch, seqLen, numBlocks;
  };
  /// Byte offsets of the workspace regions (256-byte aligned).
  struct WorkspaceLayout {
    size_t kbar, qbar, counts, ids, selectBytes, totalBytes;
  };

  explicit Plan(const fp_plan_spec_t &spec) : spec_(spec) {}
  WorkspaceLayout layout(int64_t batch, int64_t seqLen) const;
  /// The backend: called after every argument was validated.
  virtual Status runSelect(const Problem &problem, const fp_tensor_t &q,
                           const fp_tensor_t &k, const fp_params_t &params,
                           const fp_mask_t &mask, void *workspace,
                           void *stream) const = 0;
  virtual Status runAttend(const Problem &problem, const fp_tensor_t &q,
                           const fp_tensor_t &k, const fp_tensor_t &v,
                           const fp_mask_t &mask, const fp_tensor_t &out,
                           const fp_params_t &params, void *stream) const = 0;
  /// Whether tensors are device memory (alignment rules apply).
  virtual bool onDevice() const = 0;

  /// A validated varlen call: the host-side sizes (the lengths themselves
  /// live with the data and are the backend's to read).
  struct VarlenShape {
    int64_t batch, totalQ, maxSeqlenQ, maxSeqlenK;
    int64_t numRows;      ///< floor(total_q / B) + batch
    int64_t maxKeyBlocks; ///< ceil(max_seqlen_k / B)
    bool paged;           ///< K/V [num_pages, page_size, h_kv, d]
  };
  /// The varlen workspace (256-byte aligned regions): pooled keys
  /// [batch, h_kv, maxKeyBlocks, d], pooled queries [numRows, h_q, d] (pooled
  /// queries only), then the mask's counts and ids.
  WorkspaceLayout varlenLayout(int64_t batch, int64_t totalQ,
                               int64_t maxSeqlenK) const;
  /// params.mean_correction on a plan that cannot compute it: UNSUPPORTED.
  Status checkMeanCorrection(const fp_params_t &params) const;
  /// batch * h_kv * ceil(maxSeqlenK / B) * d * 2 (sizes already checked).
  size_t pooledKeysBytes(int64_t batch, int64_t maxSeqlenK) const;
  /// The varlen backend, called after every host-visible argument was
  /// validated (`varlen` is this library's struct: fields past the caller's
  /// struct_size zero). A backend that has no varlen path keeps these
  /// defaults, which return FP_ERROR_UNSUPPORTED.
  virtual Status runSelectVarlen(const VarlenShape &shape,
                                 const fp_tensor_t &q, const fp_tensor_t &k,
                                 const fp_varlen_t &varlen,
                                 const fp_params_t &params,
                                 const fp_varlen_mask_t &mask,
                                 void *workspace, void *stream) const;
  /// Pooled keys [batch, h_kv, maxKeyBlocks, d] into `pooledK`.
  virtual Status runPoolKeysVarlen(const VarlenShape &shape,
                                   const fp_tensor_t &q, const fp_tensor_t &k,
                                   const fp_varlen_t &varlen, void *pooledK,
                                   void *stream) const;
  virtual Status runAttendVarlen(const VarlenShape &shape,
                                 const fp_tensor_t &q, const fp_tensor_t &k,
                                 const fp_tensor_t &v,
                                 const fp_varlen_t &varlen,
                                 const fp_varlen_mask_t &mask,
                                 const fp_tensor_t &out,
                                 const fp_params_t &params,
                                 void *stream) const;
  /// The device merge, called after ref::validateMergeStates passed (CPU
  /// plans run the reference instead). The default returns
  /// FP_ERROR_UNSUPPORTED.
  virtual Status runMergeStates(const fp_attn_state_t &a,
                                const fp_attn_state_t &b,
                                const fp_attn_state_t &out,
                                void *stream) const;

  fp_plan_spec_t spec_;
  PlanInfo info_;

private:
  StatusOr<Problem> validateTokens(const fp_tensor_t *q, const fp_tensor_t *k,
                                   const fp_tensor_t *v,
                                   const fp_tensor_t *out) const;
  Status validateTensor(const fp_tensor_t *t, const char *name, int64_t batch,
                        int64_t seqLen, int64_t heads,
                        const char *headsName) const;
  /// Tokens, output and params of attend() and prefill(); `read` receives
  /// the params as this library's struct (fields past the caller's
  /// struct_size at their defaults).
  StatusOr<Problem> validateAttention(const fp_tensor_t *q,
                                      const fp_tensor_t *k,
                                      const fp_tensor_t *v,
                                      const fp_tensor_t *out,
                                      const fp_params_t *params,
                                      fp_params_t *read) const;
  Status validateMask(const fp_mask_t *mask, const Problem &problem) const;
  Status validateWorkspace(const void *workspace, size_t bytes, size_t required,
                           const Problem &problem) const;
  Status checkWorkspace(const void *workspace, size_t bytes, size_t required,
                        const std::string &forWhat) const;
  /// Everything the host can see of a varlen call: `read` receives the
  /// caller's fp_varlen_t (read up to its struct_size), tensors are checked
  /// against it and the plan; v and out may be NULL (select).
  StatusOr<VarlenShape> validateVarlenCall(const fp_tensor_t *q,
                                           const fp_tensor_t *k,
                                           const fp_tensor_t *v,
                                           const fp_tensor_t *out,
                                           const fp_varlen_t *varlen,
                                           fp_varlen_t *read) const;
  Status validateVarlenMask(const fp_varlen_mask_t *mask,
                            const VarlenShape &shape) const;
};

/// Checks a params struct (struct_size, ranges, reserved fields).
Status validateParams(const fp_params_t *params);
/// Checks an fp_varlen_t's host-side fields (struct_size, batch and maxima
/// against `spec`, which pointers are given); the lengths it points to are
/// not read.
Status validateVarlenFields(const fp_varlen_t *varlen,
                            const fp_plan_spec_t &spec);
/// Checks a plan spec; `onDevice` adds the GPU codegen limits.
Status validatePlanSpec(const fp_plan_spec_t &spec);

} // namespace fp

#endif // FLASHPREFILL_FLASHPREFILL_HPP
