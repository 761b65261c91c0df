//===- fuzz_dialect.cpp - fp dialect text through verifiers and pipeline --===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The bytes are MLIR text as fp-opt reads it (fp ops in func.func). Parse
// (the fp verifiers run as part of it), then fp-compile-pipeline (expand,
// fuse, select tiles, convert to EmitC) with options picked from the input's
// hash (arch, keep-scores, tuning tables, forced tiles), then the CUDA
// emission and the kernel manifest, like
// fp::codegen::generateKernels. Only diagnostics are allowed: a crash, an
// assertion, a sanitizer report or an escaped exception is a finding.
//
// Inputs that mention `emitc` are skipped: hand-written EmitC exercises
// upstream MLIR's EmitC parser and C++ emitter, not our code (our EmitC is
// what the pipeline produces, and that is emitted).
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/CudaEmitter.h"
#include "fp/Compiler/KernelManifest.h"
#include "fp/Compiler/Passes.h"
#include "fp/Dialect/FPDialect.h"

#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <string>

using namespace mlir;

namespace {

const char *const kArchs[] = {"sm_80", "sm_86", "sm_89", "sm_90", "sm_90a"};

uint64_t fnv1a(const uint8_t *data, size_t size) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i)
    h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // Keep single inputs fast: the parser is linear, the passes are not the
  // point of huge inputs.
  if (size > 16384)
    return 0;
  // MLIR's lexer reads the NUL after the buffer (as files, std::string and
  // MemoryBuffer provide): copy the bytes into a std::string.
  std::string owned(reinterpret_cast<const char *>(data), size);
  llvm::StringRef text(owned);
  if (text.contains("emitc"))
    return 0;

  DialectRegistry registry;
  registry
      .insert<mlir::fp::FPDialect, func::FuncDialect, emitc::EmitCDialect>();
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  context.allowUnregisteredDialects(false);
  size_t diagnostics = 0;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &) {
    ++diagnostics;
    return success();
  });

  ParserConfig config(&context, /*verifyAfterParse=*/true);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, config);
  if (!module)
    return 0;

  // Pipeline options from the input's hash: arch, keep-scores, the shipped
  // tuning tables, and now and then forced tiles (valid, odd or extreme).
  uint64_t hash = fnv1a(data, size);
  mlir::fp::CompilePipelineOptions options;
  options.arch = kArchs[hash % 5];
  options.keepScores = (hash >> 8) & 1;
  options.builtinTuning = (hash >> 9) & 1;
  options.lengthBucket = int64_t(1024) << ((hash >> 10) % 9);
  if (((hash >> 16) & 7) == 0) {
    const char *attention[] = {"128x32x4x2",     "64x64x4x3",  "16x16x1x1",
                               "4096x4096x64x9", "128x33x4x2", "1x1x1x1"};
    const char *discovery[] = {"64x4", "32x2", "1x1", "100000x64", "128x8"};
    options.attentionTile = attention[(hash >> 20) % 6];
    options.discoveryTile = discovery[(hash >> 24) % 5];
  }
  PassManager pm(&context);
  mlir::fp::buildCompilePipeline(pm, options);
  if (failed(pm.run(*module)))
    return 0;

  std::string cuda;
  llvm::raw_string_ostream os(cuda);
  if (failed(mlir::fp::translateToCuda(*module, os)))
    return 0;
  (void)mlir::fp::buildKernelManifest(*module);
  return 0;
}
