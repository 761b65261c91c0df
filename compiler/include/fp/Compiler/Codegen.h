//===- Codegen.h - Kernel source and manifest for a spec --------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The codegen layer the runtime calls: builds the fp.prefill module for a
// kernel spec, runs fp-compile-pipeline and returns the CUDA source and the
// kernel manifest. The MLIR context lives and dies inside the call; nothing
// MLIR appears in this header, so runtime code can include it.
//
//===----------------------------------------------------------------------===//
#ifndef FP_COMPILER_CODEGEN_H
#define FP_COMPILER_CODEGEN_H

#include "flashprefill/status.h"

#include <string>
#include <vector>

namespace fp::codegen {

/// The compile-time facts of a kernel set. Everything else (lengths, batch,
/// alpha, sink, window, last_n, min_budget, scale) is a kernel argument.
struct KernelSpec {
  std::string dtype = "bf16"; ///< "bf16" or "f16"
  int headDim = 128;
  int numQHeads = 32;
  int numKvHeads = 8;
  int blockSize = 128;
  std::string arch = "sm_90a";
  bool pooledQueries = false; ///< score with block-mean queries
  /// Tile choice beyond the heuristics: an fp-tune database looked up at
  /// `lengthBucket`, or forced tiles ("128x32x4x2", "64x4").
  std::string tuningDb;
  int64_t lengthBucket = 0;
  bool builtinTuning = false; ///< fall back to the shipped databases
  std::string attentionTile, discoveryTile;
};

struct GeneratedKernels {
  std::string mlir;     ///< the input module (for debugging)
  std::string source;   ///< CUDA C++ including "fp/kernels.cuh"
  std::string manifest; ///< see fp/Compiler/KernelManifest.h
  /// Warnings of a successful run (a tuning database that could not be
  /// read, a stale tuned tile): the caller shows them, since a serving
  /// process would otherwise never learn that its database is ignored.
  std::vector<std::string> warnings;
};

/// Generates kernels for `spec`. Errors name the spec field and the
/// supported values (kInvalidArgument, or kUnsupported for valid requests
/// codegen cannot build yet).
StatusOr<GeneratedKernels> generateKernels(const KernelSpec &spec);

} // namespace fp::codegen

#endif // FP_COMPILER_CODEGEN_H
