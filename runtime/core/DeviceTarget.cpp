//===- DeviceTarget.cpp - Which kernels a GPU gets ------------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/device_target.h"

#include <algorithm>

namespace fp {
namespace rt {

namespace {

/// Opt-in shared memory of sm_80's tiles (A100: 163 KB); below it the
/// portable path takes sm_86's tiles, which fit 99 KB.
constexpr long kSm80SharedMem = 163 * 1024;

} // namespace

const std::vector<std::string> &deviceTargetKernelArchs() {
  static const std::vector<std::string> archs = {"sm_80", "sm_86", "sm_89",
                                                 "sm_90a"};
  return archs;
}

StatusOr<DeviceTarget> deviceTargetFor(int major, int minor,
                                       long maxSharedMemOptin,
                                       const std::vector<int> &nvrtcArchs) {
  std::string capability = std::to_string(major) + "." + std::to_string(minor);
  if (minor < 0 || minor > 9)
    return invalidArgument("compute capability " + capability +
                           ": expected a minor version in 0..9");
  if (major < 8)
    return unsupported("compute capability " + capability +
                       ": expected 8.0 or newer (the kernels need mma.sync "
                       "on bf16 and cp.async)");
  int code = major * 10 + minor;
  DeviceTarget target;
  switch (code) {
  case 80:
  case 86:
  case 89:
    target.kernelArch = target.compileArch = "sm_" + std::to_string(code);
    return target;
  case 90:
    // Hopper: the wgmma/TMA kernels, which need the arch-specific target.
    target.kernelArch = target.compileArch = "sm_90a";
    return target;
  default:
    break;
  }
  // Not a GPU we tune for: the portable mma.sync kernels (any 8.0+ GPU runs
  // them), never the arch-specific sm_90a ones.
  target.kernelArch = maxSharedMemOptin >= kSm80SharedMem ? "sm_80" : "sm_86";
  bool nvrtcKnowsIt =
      std::find(nvrtcArchs.begin(), nvrtcArchs.end(), code) != nvrtcArchs.end();
  target.compileArch =
      nvrtcKnowsIt ? "sm_" + std::to_string(code) : "compute_80";
  target.notice = "flashprefill: compute capability " + capability +
                  " is not one the kernels are tuned for (8.0, 8.6, 8.9, "
                  "9.0); running the portable mma.sync kernels (" +
                  target.kernelArch + " tiles) " +
                  (nvrtcKnowsIt
                       ? "compiled for " + target.compileArch
                       : "as compute_80 PTX for the driver to compile (this "
                         "NVRTC does not know sm_" +
                             std::to_string(code) + ")");
  return target;
}

} // namespace rt
} // namespace fp
