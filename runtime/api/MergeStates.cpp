//===- MergeStates.cpp - fp_merge_states over both backends -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The arguments are views the host can check in full (nothing lives in
// device memory but the numbers), so one validation serves both backends:
// ref::validateMergeStates, before anything is written. CPU plans then run
// the reference; CUDA plans their merge kernel (CudaPlan.cpp).
//
//===----------------------------------------------------------------------===//
#include "PlanBackends.h"

#include "flashprefill/reference.h"

#include <cstring>
#include <string>

namespace fp {

namespace {

/// The reference's view of a C state; `name` for the messages.
StatusOr<ref::AttentionState> stateOf(const fp_attn_state_t *state,
                                      const char *name) {
  if (!state)
    return invalidArgument(std::string(name) +
                           ": expected a pointer to an fp_attn_state_t, got "
                           "NULL");
  // A C enum can hold any int: check before narrowing to StateType.
  int32_t dtype;
  static_assert(sizeof(state->dtype) == sizeof(dtype));
  std::memcpy(&dtype, &state->dtype, sizeof(dtype));
  if (dtype != FP_DTYPE_BF16 && dtype != FP_DTYPE_F16 && dtype != FP_DTYPE_F32)
    return invalidArgument(std::string(name) +
                           ".dtype: expected FP_DTYPE_BF16 (0), FP_DTYPE_F16 "
                           "(1) or FP_DTYPE_F32 (2), got " +
                           std::to_string(dtype));
  ref::AttentionState s;
  s.o = state->o.data;
  s.type = dtype == FP_DTYPE_BF16  ? ref::StateType::kBF16
           : dtype == FP_DTYPE_F16 ? ref::StateType::kF16
                                   : ref::StateType::kF32;
  for (int i = 0; i < 4; ++i) {
    s.shape[i] = state->o.shape[i];
    s.strides[i] = state->o.strides[i];
  }
  s.lse = state->lse;
  for (int i = 0; i < 3; ++i)
    s.lseStrides[i] = state->lse_strides[i];
  return s;
}

} // namespace

Status Plan::mergeStates(const fp_attn_state_t *a, const fp_attn_state_t *b,
                         const fp_attn_state_t *out, void *stream) const {
  auto ra = stateOf(a, "a");
  if (!ra.isOk())
    return ra.status();
  auto rb = stateOf(b, "b");
  if (!rb.isOk())
    return rb.status();
  auto ro = stateOf(out, "out");
  if (!ro.isOk())
    return ro.status();
  FP_RETURN_IF_ERROR(ref::validateMergeStates(*ra, *rb, *ro));
  if (!onDevice())
    return ref::mergeStates(*ra, *rb, *ro);
  return runMergeStates(*a, *b, *out, stream);
}

Status Plan::runMergeStates(const fp_attn_state_t &, const fp_attn_state_t &,
                            const fp_attn_state_t &, void *) const {
  return unsupported("fp_merge_states: this plan's backend has no merge "
                     "kernel");
}

} // namespace fp
