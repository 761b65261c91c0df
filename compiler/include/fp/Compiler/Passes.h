//===- Passes.h - fp compiler passes ----------------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#ifndef FP_COMPILER_PASSES_H
#define FP_COMPILER_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <memory>
#include <string>

namespace mlir {
namespace emitc {
class EmitCDialect;
} // namespace emitc
namespace fp {

#define GEN_PASS_DECL
#include "fp/Compiler/Passes.h.inc"

/// Options of the whole pipeline (`fp-compile-pipeline`).
struct CompilePipelineOptions {
  /// Target GPU architecture (sm_80, sm_86, sm_89, sm_90, sm_90a).
  std::string arch = "sm_90a";
  /// fp-tune database and the length bucket to look up ("" / 0: none).
  std::string tuningDb;
  int64_t lengthBucket = 0;
  /// Also consult the databases shipped with the library.
  bool builtinTuning = false;
  /// Forced tiles ("128x32x4x2", "64x4"; "": none).
  std::string attentionTile, discoveryTile;
};

/// Adds expand, fuse, select-tiles and convert-to-EmitC to `pm`.
void buildCompilePipeline(OpPassManager &pm,
                          const CompilePipelineOptions &options);

/// Registers every fp pass and the `fp-compile-pipeline` pipeline.
void registerCompilerPasses();

#define GEN_PASS_REGISTRATION
#include "fp/Compiler/Passes.h.inc"

} // namespace fp
} // namespace mlir

#endif // FP_COMPILER_PASSES_H
