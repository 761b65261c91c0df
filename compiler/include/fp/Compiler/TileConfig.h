//===- TileConfig.h - Kernel configurations and their costs -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// What codegen can build, the default tiles per (arch, head dim, block size,
// dtype, GQA group), and the shared-memory formulas of the device templates
// (runtime/device/fp/*.cuh traits). Generated kernels also export the
// templates' own figures, which the runtime compares with these, so a drift
// between the two is caught at load time rather than as a launch failure.
//
//===----------------------------------------------------------------------===//
#ifndef FP_COMPILER_TILECONFIG_H
#define FP_COMPILER_TILECONFIG_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::fp {

/// A target GPU: the arch name used for NVRTC and its limits.
struct TargetArch {
  std::string name;        ///< "sm_90a"
  int computeCapability;   ///< 90
  int64_t maxSmemPerBlock; ///< opt-in dynamic shared memory per CTA, bytes
  /// The masked_attention mainloop (the kArch template argument): 90 for
  /// sm_90a, whose wgmma/setmaxnreg the Hopper mainloop needs; 80 (mma.sync)
  /// for everything else, plain sm_90 included.
  int attentionMainloop = 80;
};

/// Parses "sm_80", "sm_86", "sm_89", "sm_90", "sm_90a"; nullopt otherwise.
std::optional<TargetArch> parseTargetArch(llvm::StringRef name);
/// The arch names parseTargetArch accepts, for diagnostics.
llvm::StringRef supportedArchList();

/// Head dims and block sizes the device templates are instantiated for.
llvm::ArrayRef<int64_t> supportedHeadDims();
llvm::ArrayRef<int64_t> supportedBlockSizes();

struct PoolTile {
  int64_t threads;
};
struct DiscoveryTile {
  int64_t keyChunk, warps;
};
struct AttentionTile {
  int64_t blockM, blockN, warps, stages;
};

/// What a default depends on. `elementBytes` is 2 for bf16 and f16.
struct KernelKey {
  int computeCapability;
  int64_t headDim, blockSize, elementBytes, group;
  int attentionMainloop = 80; ///< TargetArch::attentionMainloop
};

PoolTile defaultPoolTile(const KernelKey &key);
DiscoveryTile defaultDiscoveryTile(const KernelKey &key);
AttentionTile defaultAttentionTile(const KernelKey &key);

/// Dynamic shared memory of pattern_discovery: base + perKeyBlock * nb.
int64_t discoverySmemBaseBytes(const KernelKey &key, const DiscoveryTile &t);
int64_t discoverySmemPerKeyBlockBytes(const KernelKey &key,
                                      const DiscoveryTile &t);
/// Dynamic shared memory of masked_attention.
int64_t attentionSmemBytes(const KernelKey &key, const AttentionTile &t);

/// Empty when the tile can be built for `key`, else why not (names the
/// parameter and the expected value). The verifiers' rules
/// (fp/Dialect/TileRules.h) come first, then the mainloop's and the arch's.
std::string checkAttentionTile(const KernelKey &key, const AttentionTile &t,
                               const TargetArch &arch);
std::string checkDiscoveryTile(const KernelKey &key, const DiscoveryTile &t,
                               const TargetArch &arch);
std::string checkPoolTile(const KernelKey &key, const PoolTile &t);

} // namespace mlir::fp

#endif // FP_COMPILER_TILECONFIG_H
