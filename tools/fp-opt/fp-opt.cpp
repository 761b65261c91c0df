//===- fp-opt.cpp - The fp compiler driver ----------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// mlir-opt for the fp dialect, plus `--fp-emit` to turn the lowered module
// into CUDA C++ or the kernel manifest:
//
//   fp-opt prefill.mlir --fp-compile-pipeline="arch=sm_90a" --fp-emit=cuda
//   fp-opt prefill.mlir --fp-compile-pipeline="arch=sm_90a" --fp-emit=cubin -o
//   p.cubin
//
// PTX and CUBIN go through the runtime's NVRTC wrapper, the same code (and
// embedded device headers) the runtime JIT uses.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/nvrtc.h"
#include "fp/Compiler/CudaEmitter.h"
#include "fp/Compiler/KernelManifest.h"
#include "fp/Compiler/Passes.h"
#include "fp/Compiler/TileConfig.h"
#include "fp/Dialect/FPDialect.h"
#include "fp/Dialect/TextNesting.h"

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

enum class EmitKind { Mlir, Cuda, Manifest, Ptx, Cubin };

llvm::cl::opt<EmitKind> emitKind(
    "fp-emit", llvm::cl::desc("What to write after the passes ran"),
    llvm::cl::values(
        clEnumValN(EmitKind::Mlir, "mlir", "the MLIR module (default)"),
        clEnumValN(EmitKind::Cuda, "cuda",
                   "CUDA C++ of a module lowered by fp-compile-pipeline"),
        clEnumValN(EmitKind::Manifest, "manifest",
                   "the kernel manifest the runtime launches from"),
        clEnumValN(EmitKind::Ptx, "ptx",
                   "PTX for the module's arch (compute_90a for sm_90a) "
                   "compiled by NVRTC"),
        clEnumValN(EmitKind::Cubin, "cubin",
                   "a CUBIN for the module's arch compiled by NVRTC")),
    llvm::cl::init(EmitKind::Mlir));

llvm::cl::opt<bool> ptxasVerbose(
    "fp-ptxas-verbose",
    llvm::cl::desc("With --fp-emit=cubin: print ptxas' register, spill and "
                   "shared-memory report per kernel to stderr"),
    llvm::cl::init(false));

const char *emitKindName() {
  switch (emitKind) {
  case EmitKind::Mlir:
    return "mlir";
  case EmitKind::Cuda:
    return "cuda";
  case EmitKind::Manifest:
    return "manifest";
  case EmitKind::Ptx:
    return "ptx";
  case EmitKind::Cubin:
    return "cubin";
  }
  return "?";
}

/// A lowered module must name a supported arch and hold at least one kernel:
/// without this an empty module gave empty CUDA/PTX with exit 0, and
/// --fp-emit=cubin dereferenced the missing fp.arch.
FailureOr<mlir::fp::TargetArch> requireKernels(ModuleOp module) {
  auto fail = [&](const llvm::Twine &why) {
    llvm::errs() << "error: --fp-emit=" << emitKindName() << ": " << why
                 << "\n";
    return failure();
  };
  Attribute arch = module->getAttr("fp.arch");
  auto archName = llvm::dyn_cast_or_null<StringAttr>(arch);
  if (!archName) {
    std::string got;
    llvm::raw_string_ostream gotStream(got);
    if (arch)
      gotStream << arch;
    else
      gotStream << "none";
    return fail("expected a string module attribute 'fp.arch' (one of " +
                mlir::fp::supportedArchList() +
                ", set by --fp-compile-pipeline=\"arch=...\"), got " + got);
  }
  std::optional<mlir::fp::TargetArch> target =
      mlir::fp::parseTargetArch(archName.getValue());
  if (!target)
    return fail("fp.arch: expected one of " + mlir::fp::supportedArchList() +
                ", got '" + archName.getValue() + "'");
  if (module.getOps<emitc::FuncOp>().empty())
    return fail("the module holds no fp kernels (expected fp.prefill or fp "
                "kernel ops lowered by --fp-compile-pipeline)");
  return *target;
}

/// Reads the input file ("-": stdin) and refuses text nested deeper than
/// the parser's stack allows (fp/Dialect/TextNesting.h); null after
/// printing the error.
std::unique_ptr<llvm::MemoryBuffer>
openCheckedInput(const std::string &inputFilename) {
  std::string errorMessage;
  auto input = openInputFile(inputFilename, &errorMessage);
  if (!input) {
    llvm::errs() << errorMessage << "\n";
    return nullptr;
  }
  if (auto nesting = mlir::fp::findExcessiveNesting(input->getBuffer())) {
    llvm::errs() << (inputFilename == "-" ? "<stdin>" : inputFilename) << ":"
                 << nesting->line << ": error: " << nesting->message << "\n";
    return nullptr;
  }
  return input;
}

/// mlir-opt's own driver, reading the input through openCheckedInput.
LogicalResult optMain(int argc, char **argv, const std::string &inputFilename,
                      const std::string &outputFilename,
                      DialectRegistry &registry) {
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();
  // These print and exit without reading the input.
  if (config.shouldShowDialects() || config.shouldListPasses())
    return MlirOptMain(argc, argv, inputFilename, outputFilename, registry);
  auto input = openCheckedInput(inputFilename);
  if (!input)
    return failure();
  std::string errorMessage;
  auto output = openOutputFile(outputFilename, &errorMessage);
  if (!output) {
    llvm::errs() << errorMessage << "\n";
    return failure();
  }
  if (failed(MlirOptMain(output->os(), std::move(input), registry, config)))
    return failure();
  output->keep();
  return success();
}

/// Compiles the CUDA source of `module` with NVRTC into `binary`.
LogicalResult compileWithNvrtc(ModuleOp module, std::string &binary) {
  std::string source;
  llvm::raw_string_ostream sourceStream(source);
  if (failed(mlir::fp::translateToCuda(module, sourceStream)))
    return failure();
  FailureOr<mlir::fp::TargetArch> target = requireKernels(module);
  if (failed(target))
    return failure();
  auto nvrtc = ::fp::rt::Nvrtc::get();
  if (!nvrtc.isOk()) {
    llvm::errs() << "--fp-emit: " << nvrtc.status().toString() << "\n";
    return failure();
  }
  ::fp::rt::NvrtcOptions options;
  if (emitKind == EmitKind::Ptx) {
    // The module's virtual arch: the sm_90a kernels hold wgmma and
    // setmaxnreg, which only compute_90a PTX may carry.
    options.arch = "compute_" + target->name.substr(3);
  } else {
    options.arch = target->name;
    options.ptxasVerbose = ptxasVerbose;
  }
  auto output = (*nvrtc)->compile(source, "fp_kernels.cu", options);
  if (!output.isOk()) {
    llvm::errs() << "--fp-emit: " << output.status().toString() << "\n";
    return failure();
  }
  for (const auto &report : output->resources)
    if (report.isEntry)
      llvm::errs() << report.kernel << ": " << report.registers
                   << " registers, " << report.spillStoreBytes
                   << " bytes spill stores, " << report.spillLoadBytes
                   << " bytes spill loads, " << report.sharedMemBytes
                   << " bytes static smem\n";
  binary = std::move(output->binary);
  return success();
}

/// Runs the passes as mlir-opt would, then translates the result.
LogicalResult emitTranslated(const std::string &inputFilename,
                             const std::string &outputFilename,
                             DialectRegistry &registry) {
  MlirOptMainConfig config = MlirOptMainConfig::createFromCLOptions();
  if (!config.inputSplitMarker().empty()) {
    llvm::errs() << "--fp-emit: cannot be combined with -split-input-file\n";
    return failure();
  }
  auto input = openCheckedInput(inputFilename);
  if (!input)
    return failure();
  std::string errorMessage;
  std::string lowered;
  llvm::raw_string_ostream loweredStream(lowered);
  if (failed(MlirOptMain(loweredStream, std::move(input), registry, config)))
    return failure();

  MLIRContext context(registry);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(lowered, &context);
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
    // Checked before anything reaches the output, which may be stdout.
    std::string source;
    llvm::raw_string_ostream sourceStream(source);
    if (failed(mlir::fp::translateToCuda(*module, sourceStream)) ||
        failed(requireKernels(*module)))
      return failure();
    output->os() << source;
  } else if (emitKind == EmitKind::Ptx || emitKind == EmitKind::Cubin) {
    std::string binary;
    if (failed(compileWithNvrtc(*module, binary)))
      return failure();
    output->os() << binary;
  } else {
    if (failed(requireKernels(*module)))
      return failure();
    FailureOr<std::string> manifest = mlir::fp::buildKernelManifest(*module);
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
  registry
      .insert<mlir::fp::FPDialect, func::FuncDialect, emitc::EmitCDialect>();
  mlir::fp::registerCompilerPasses();

  auto [inputFilename, outputFilename] = registerAndParseCLIOptions(
      argc, argv, "FlashPrefill compiler driver", registry);
  if (emitKind == EmitKind::Mlir)
    return asMainReturnCode(
        optMain(argc, argv, inputFilename, outputFilename, registry));
  return asMainReturnCode(
      emitTranslated(inputFilename, outputFilename, registry));
}
