//===- flashprefill/runtime/device_target.h - Kernels for a GPU -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Which kernels a GPU gets, decided from its compute capability alone (a
// pure function, so tests can fake any capability). The GPUs the tiles are
// tuned for get their own arch; any newer or otherwise unknown GPU (compute
// capability 8.0 or later) runs the portable mma.sync kernels instead of
// failing: compiled by NVRTC for its exact arch where NVRTC knows it, else
// as compute_80 PTX that the driver JIT-compiles.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_DEVICE_TARGET_H
#define FLASHPREFILL_RUNTIME_DEVICE_TARGET_H

#include "flashprefill/status.h"

#include <string>
#include <vector>

namespace fp {
namespace rt {

/// How the runtime builds kernels for one GPU.
struct DeviceTarget {
  /// The arch codegen selects tiles and the mainloop for (the
  /// fp-compile-pipeline `arch`): "sm_80", "sm_86", "sm_89", "sm_90a".
  std::string kernelArch;
  /// What NVRTC compiles for: a CUBIN arch ("sm_90a", "sm_100") or
  /// "compute_80" (PTX, compiled by the driver at load time).
  std::string compileArch;
  /// One line for stderr when the GPU is not one the kernels are tuned for;
  /// empty otherwise.
  std::string notice;
};

/// The kernels for a GPU of compute capability `major`.`minor` with
/// `maxSharedMemOptin` bytes of opt-in shared memory per CTA, given the real
/// archs NVRTC compiles for (Nvrtc::supportedArchs(), e.g. {75, 80, ...,
/// 120}; empty if unknown).
///
///   8.0 -> sm_80, 8.6 -> sm_86, 8.9 -> sm_89, 9.0 -> sm_90a (wgmma/TMA).
///   Any other capability >= 8.0 (Blackwell 10.x and 12.x, Orin 8.7, ...):
///   the mma.sync kernels with the tiles chosen for sm_80 (163 KB of shared
///   memory or more) or sm_86 (99 KB), compiled for sm_<major><minor> when
///   NVRTC lists it, else compute_80; with a notice.
///   Below 8.0: kUnsupported (the kernels need mma.sync bf16 and cp.async).
StatusOr<DeviceTarget> deviceTargetFor(int major, int minor,
                                       long maxSharedMemOptin,
                                       const std::vector<int> &nvrtcArchs);

/// The kernel archs deviceTargetFor may return, for tests that check the
/// compiler accepts each.
const std::vector<std::string> &deviceTargetKernelArchs();

} // namespace rt
} // namespace fp

#endif // FLASHPREFILL_RUNTIME_DEVICE_TARGET_H
