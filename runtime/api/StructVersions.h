//===- StructVersions.h - Sizes of each version of the C structs -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// A versioned struct of flashprefill.h is read up to the caller's
// struct_size only; these are the sizes each version ends at. One home for
// them: the readers (Plan.cpp) and the initialisers (CApi.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_API_STRUCTVERSIONS_H
#define FLASHPREFILL_RUNTIME_API_STRUCTVERSIONS_H

#include "flashprefill/flashprefill.h"

#include <cstddef>
#include <cstdint>

namespace fp {

/// End of the last field of version 1 of fp_params_t: callers compiled
/// against v1 pass at least this.
constexpr size_t kParamsV1Size = offsetof(fp_params_t, max_seqlen_k) +
                                 sizeof(((fp_params_t *)nullptr)->max_seqlen_k);
/// Version 2 appended dense_below_tokens.
constexpr size_t kParamsV2Size =
    offsetof(fp_params_t, dense_below_tokens) + sizeof(int64_t);
/// Version 3 appended mean_correction (sizeof adds the tail padding).
constexpr size_t kParamsV3Size =
    offsetof(fp_params_t, mean_correction) + sizeof(int32_t);
static_assert(sizeof(fp_params_t) - kParamsV3Size < alignof(fp_params_t),
              "a new fp_params_t field needs its version size here");
constexpr size_t kSpecV1Size =
    offsetof(fp_plan_spec_t, max_workspace_bytes) + sizeof(uint64_t);
/// Version 1 of fp_varlen_t ends with apply_last_n.
constexpr size_t kVarlenV1Size =
    offsetof(fp_varlen_t, apply_last_n) + sizeof(const int32_t *);
/// Version 2 appended pooled_k.
constexpr size_t kVarlenV2Size =
    offsetof(fp_varlen_t, pooled_k) + sizeof(const void *);
static_assert(kVarlenV2Size == sizeof(fp_varlen_t),
              "a new fp_varlen_t field needs its version size here");

} // namespace fp

#endif // FLASHPREFILL_RUNTIME_API_STRUCTVERSIONS_H
