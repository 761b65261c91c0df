//===- fp-opt.cpp - The fp compiler driver ----------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// mlir-opt for the fp dialect, plus `--fp-emit` to turn the lowered module
// into CUDA C++ or the kernel manifest:
//
//   fp-opt prefill.mlir --fp-compile-pipeline="arch=sm_90a" --fp-emit=cuda
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/CudaEmitter.h"
#include "fp/Compiler/KernelManifest.h"
#include "fp/Compiler/Passes.h"
#include "fp/Dialect/FPDialect.h"

#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;

namespace {

enum class EmitKind { Mlir, Cuda, Manifest };

llvm::cl::opt<EmitKind> emitKind(
    "fp-emit", llvm::cl::desc("What to write after the passes ran"),
    llvm::cl::values(
        clEnumValN(EmitKind::Mlir, "mlir", "the MLIR module (default)"),
        clEnumValN(EmitKind::Cuda, "cuda",
                   "CUDA C++ of a module lowered by fp-compile-pipeline"),
        clEnumValN(EmitKind::Manifest, "manifest",
                   "the kernel manifest the runtime launches from")),
    llvm::cl::init(EmitKind::Mlir));

/// Runs the passes as mlir-opt would, then translates the result.
LogicalResult emitTranslated(const std::string &inputFilename,
                             const std::string &outputFilename,
                             DialectRegistry &registry) {
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();
  if (!config.inputSplitMarker().empty()) {
    llvm::errs() << "--fp-emit: cannot be combined with -split-input-file\n";
    return failure();
  }
  std::string errorMessage;
  auto input = openInputFile(inputFilename, &errorMessage);
  if (!input) {
    llvm::errs() << errorMessage << "\n";
    return failure();
  }
  std::string lowered;
  llvm::raw_string_ostream loweredStream(lowered);
  if (failed(MlirOptMain(loweredStream, std::move(input), registry, config)))
    return failure();

  MLIRContext context(registry);
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(lowered, &context);
  if (!module)
    return failure();
  // ToolOutputFile removes the file unless keep() runs: no half-written
  // output on failure.
  auto output = openOutputFile(outputFilename, &errorMessage);
  if (!output) {
    llvm::errs() << errorMessage << "\n";
    return failure();
  }
  if (emitKind == EmitKind::Cuda) {
    if (failed(fp::translateToCuda(*module, output->os())))
      return failure();
  } else {
    FailureOr<std::string> manifest = fp::buildKernelManifest(*module);
    if (failed(manifest))
      return failure();
    output->os() << *manifest;
  }
  output->keep();
  return success();
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  DialectRegistry registry;
  // Only the dialects fp-opt must parse: fp ops live in func.func bodies and
  // lower to emitc.
  registry.insert<fp::FPDialect, func::FuncDialect, emitc::EmitCDialect>();
  fp::registerCompilerPasses();

  auto [inputFilename, outputFilename] = registerAndParseCLIOptions(
      argc, argv, "FlashPrefill compiler driver", registry);
  if (emitKind == EmitKind::Mlir)
    return asMainReturnCode(
        MlirOptMain(argc, argv, inputFilename, outputFilename, registry));
  return asMainReturnCode(
      emitTranslated(inputFilename, outputFilename, registry));
}
