//===- PlanBackends.h - CPU and CUDA implementations of Plan ----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_API_PLANBACKENDS_H
#define FLASHPREFILL_RUNTIME_API_PLANBACKENDS_H

#include "flashprefill/flashprefill.hpp"

namespace fp {

/// The CPU reference backend (host pointers, synchronous).
StatusOr<std::unique_ptr<Plan>> createCpuPlan(const fp_plan_spec_t &spec);
/// The CUDA backend: codegen + NVRTC + kernel cache + driver launches.
StatusOr<std::unique_ptr<Plan>> createCudaPlan(const fp_plan_spec_t &spec,
                                               const PlanTuning &tuning);

} // namespace fp

#endif // FLASHPREFILL_RUNTIME_API_PLANBACKENDS_H
