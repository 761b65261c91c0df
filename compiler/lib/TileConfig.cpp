//===- TileConfig.cpp - Kernel configurations and their costs ---*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/TileConfig.h"
#include "fp/Dialect/TileRules.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir::fp;

std::optional<TargetArch> mlir::fp::parseTargetArch(llvm::StringRef name) {
  // Opt-in shared memory per CTA from the CUDA programming guide's
  // compute-capability table (A100: 163 KB, consumer Ampere/Ada: 99 KB,
  // Hopper: 227 KB).
  return llvm::StringSwitch<std::optional<TargetArch>>(name)
      .Case("sm_80", TargetArch{"sm_80", 80, 163 * 1024})
      .Case("sm_86", TargetArch{"sm_86", 86, 99 * 1024})
      .Case("sm_89", TargetArch{"sm_89", 89, 99 * 1024})
      .Case("sm_90", TargetArch{"sm_90", 90, 227 * 1024})
      .Case("sm_90a", TargetArch{"sm_90a", 90, 227 * 1024, 90})
      .Default(std::nullopt);
}

llvm::StringRef mlir::fp::supportedArchList() {
  return "sm_80, sm_86, sm_89, sm_90, sm_90a";
}

llvm::ArrayRef<int64_t> mlir::fp::supportedHeadDims() {
  static const int64_t dims[] = {64, 128, 256};
  return dims;
}

llvm::ArrayRef<int64_t> mlir::fp::supportedBlockSizes() {
  static const int64_t sizes[] = {64, 128};
  return sizes;
}

PoolTile mlir::fp::defaultPoolTile(const KernelKey &) { return {128}; }

// Defaults per (head dim, block size), the same for bf16 and f16, for the
// mma.sync mainloop (sm_80 .. sm_89 and plain sm_90; sm_90a has its own,
// defaultHopperAttentionTile below): every one compiles without spills and
// fits 98304 bytes of shared memory, so sm_86/89 too (table and register
// counts in runtime/device/fp/kernels.cuh; checked by
// unittests/Compiler/KernelCompileTest.cpp).
//
//   d    B   | discovery chunk warps | attention BlockM BlockN warps stages
//   64   64  | 64    4               | 64     64     4     2
//   64   128 | 64    4               | 128    64     4     2
//   128  64  | 64    4               | 64     64     4     2
//   128  128 | 64    4               | 128    32     4     2
//   256  64  | 32    4               | 64     32     4     2
//   256  128 | 32    4               | 64     32     4     2
//
// Measured alternatives (H100, bf16, 16K, h_q 32, h_kv 8): d 128 with
// 128x64x4x2 reaches 352 TFLOP/s dense vs 322 but spills 8-16 B; d 256 with
// 128x64x8x2 reaches 337 vs 284 but needs 196 KB (sm_90 only).
DiscoveryTile mlir::fp::defaultDiscoveryTile(const KernelKey &key) {
  // Half-size kbar chunks at d = 256 keep the double buffer small.
  return {key.headDim >= 256 ? 32 : 64, 4};
}

// sm_90a (wgmma/TMA mainloop): one producer warpgroup plus one consumer
// warpgroup per 64 query rows; the CTA covers one query block (block_m = B)
// and a sub-tile is a whole key block, except at d = 256 and B = 128, where
// block_n 64 keeps two stages in 193 KB. Dense causal on one H100 (bf16,
// h_q 32, h_kv 8, 16K tokens): 620 TFLOP/s at d = 128 (sm80 mainloop 318),
// 631 at d = 256, 453 at d = 64; bench/dev/NOTES.md has the log.
static AttentionTile defaultHopperAttentionTile(const KernelKey &key) {
  int64_t blockM = key.blockSize;
  int64_t blockN = key.headDim >= 256 && key.blockSize >= 128 ? 64 : key.blockSize;
  return {blockM, blockN, 4 * (blockM / 64 + 1), 2};
}

AttentionTile mlir::fp::defaultAttentionTile(const KernelKey &key) {
  if (key.attentionMainloop == 90)
    return defaultHopperAttentionTile(key);
  // 4 warps of 16-row slices; the accumulator (block_m / 4 rows x d fp32
  // per warp) bounds block_m * d, and block_n trades S registers for it.
  int64_t blockM = key.headDim >= 256 ? 64 : key.blockSize;
  int64_t blockN =
      (key.headDim >= 256 || (key.headDim >= 128 && blockM >= 128)) ? 32 : 64;
  return {blockM, blockN, 4, 2};
}

int64_t mlir::fp::discoverySmemBaseBytes(const KernelKey &key,
                                         const DiscoveryTile &t) {
  // Mirrors DiscoveryTraits: query tile, double-buffered kbar chunk,
  // per-warp column sums, then reduction scratch (32 floats), radix
  // histogram (256 counters) and 16 words of misc state.
  return key.blockSize * key.headDim * key.elementBytes +
         2 * t.keyChunk * key.headDim * key.elementBytes +
         t.warps * t.keyChunk * 4 + (32 + 256 + 16) * 4;
}

int64_t mlir::fp::discoverySmemPerKeyBlockBytes(const KernelKey &,
                                                const DiscoveryTile &) {
  return 8;
}

int64_t mlir::fp::attentionSmemBytes(const KernelKey &key,
                                     const AttentionTile &t) {
  int64_t tiles =
      (t.blockM + 2 * t.stages * t.blockN) * key.headDim * key.elementBytes;
  if (key.attentionMainloop == 90) // AttentionMainloopSm90::kSmemBytes
    return 1024 + tiles + 8 * (1 + 4 * t.stages);
  return tiles;
}

std::string mlir::fp::checkAttentionTile(const KernelKey &key,
                                         const AttentionTile &t,
                                         const TargetArch &arch) {
  // The rules the verifiers apply first, then the mainloop's and the arch's.
  std::string problem =
      attentionTileProblem(t.blockM, t.blockN, t.warps, t.stages);
  if (problem.empty())
    problem = attentionTileBlockProblem(key.blockSize, t.blockM, t.blockN);
  if (!problem.empty())
    return problem;
  if (key.attentionMainloop == 90) {
    // AttentionMainloopSm90's static_asserts, as diagnostics.
    if (t.blockM != 64 && t.blockM != 128)
      return llvm::formatv("block_m: expected 64 or 128 (one consumer "
                           "warpgroup per 64 rows) on sm_90a, got {0}",
                           t.blockM);
    if (t.blockN != 64 && t.blockN != 128 && t.blockN != 256)
      return llvm::formatv("block_n: expected 64, 128 or 256 (a wgmma N) on "
                           "sm_90a, got {0}",
                           t.blockN);
    if (t.warps != 4 * (t.blockM / 64 + 1))
      return llvm::formatv("warps: expected {0} on sm_90a with block_m {1} "
                           "(a producer warpgroup plus one consumer "
                           "warpgroup per 64 rows), got {2}",
                           4 * (t.blockM / 64 + 1), t.blockM, t.warps);
  } else if (t.blockM % (16 * t.warps) != 0) {
    return llvm::formatv("warps: expected 1 to 16 warps with block_m {0} a "
                         "multiple of 16 * warps, got {1}",
                         t.blockM, t.warps);
  }
  int64_t smem = attentionSmemBytes(key, t);
  if (smem > arch.maxSmemPerBlock)
    return llvm::formatv("attention tile needs {0} bytes of shared memory; "
                         "{1} allows at most {2}",
                         smem, arch.name, arch.maxSmemPerBlock);
  return "";
}

std::string mlir::fp::checkDiscoveryTile(const KernelKey &key,
                                         const DiscoveryTile &t,
                                         const TargetArch &arch) {
  std::string problem = discoveryTileProblem(t.keyChunk, t.warps);
  if (problem.empty())
    problem = discoveryTileBlockProblem(key.blockSize, t.warps);
  if (!problem.empty())
    return problem;
  int64_t smem = discoverySmemBaseBytes(key, t);
  if (smem > arch.maxSmemPerBlock)
    return llvm::formatv("discovery tile needs {0} bytes of shared memory; "
                         "{1} allows at most {2}",
                         smem, arch.name, arch.maxSmemPerBlock);
  return "";
}

std::string mlir::fp::checkPoolTile(const KernelKey &, const PoolTile &t) {
  return poolTileProblem(t.threads);
}
