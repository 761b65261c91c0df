//===- Codegen.cpp - Kernel source and manifest for a spec ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/Codegen.h"

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
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;

namespace {

std::string prefillModule(const ::fp::codegen::KernelSpec &spec) {
  std::string q = llvm::formatv("tensor<?x?x{0}x{1}x{2}>", spec.numQHeads,
                                spec.headDim, spec.dtype);
  std::string kv = llvm::formatv("tensor<?x?x{0}x{1}x{2}>", spec.numKvHeads,
                                 spec.headDim, spec.dtype);
  std::string lse = llvm::formatv("tensor<?x{0}x?xf32>", spec.numQHeads);
  return llvm::formatv(
      "func.func @prefill(%q: {0}, %k: {1}, %v: {1}) -> ({0}, {2}) {{\n"
      "  %o, %l = fp.prefill %q, %k, %v {{block_size = {3} : i64, "
      "query_kind = #fp<query_kind {4}>, threshold = #fp.threshold<>}\n"
      "    : ({0}, {1}, {1}) -> ({0}, {2})\n"
      "  return %o, %l : {0}, {2}\n"
      "}\n",
      q, kv, lse, spec.blockSize, spec.pooledQueries ? "pooled" : "full");
}

/// The varlen forms (docs/semantics.md section 2), packed and paged K/V.
/// They share the pooling and discovery kernels (which read the layout from
/// their parameters); attention has one kernel per layout.
std::string prefillVarlenModule(const ::fp::codegen::KernelSpec &spec) {
  std::string q = llvm::formatv("tensor<?x{0}x{1}x{2}>", spec.numQHeads,
                                spec.headDim, spec.dtype);
  std::string packed = llvm::formatv("tensor<?x{0}x{1}x{2}>", spec.numKvHeads,
                                     spec.headDim, spec.dtype);
  std::string paged = llvm::formatv("tensor<?x?x{0}x{1}x{2}>",
                                    spec.numKvHeads, spec.headDim, spec.dtype);
  std::string lse = llvm::formatv("tensor<{0}x?xf32>", spec.numQHeads);
  return llvm::formatv(
      "func.func @prefill_varlen_packed(%q: {0}, %k: {1}, %v: {1}, "
      "%cu_q: tensor<?xi32>, %cu_k: tensor<?xi32>) -> ({0}, {3}) {{\n"
      "  %o, %l = fp.prefill_varlen %q, %k, %v, %cu_q, %cu_k {{block_size = "
      "{4} : i64, query_kind = #fp<query_kind {5}>, threshold = "
      "#fp.threshold<>}\n"
      "    : ({0}, {1}, {1}, tensor<?xi32>, tensor<?xi32>) -> ({0}, {3})\n"
      "  return %o, %l : {0}, {3}\n"
      "}\n"
      "func.func @prefill_varlen_paged(%q: {0}, %k: {2}, %v: {2}, "
      "%cu_q: tensor<?xi32>, %pages: tensor<?x?xi32>, %k_lens: "
      "tensor<?xi32>) -> ({0}, {3}) {{\n"
      "  %o, %l = fp.prefill_varlen %q, %k, %v, %cu_q, %pages, %k_lens "
      "{{block_size = {4} : i64, query_kind = #fp<query_kind {5}>, threshold "
      "= #fp.threshold<>}\n"
      "    : ({0}, {2}, {2}, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) "
      "-> ({0}, {3})\n"
      "  return %o, %l : {0}, {3}\n"
      "}\n",
      q, packed, paged, lse, spec.blockSize,
      spec.pooledQueries ? "pooled" : "full");
}

} // namespace

namespace fp::codegen {

StatusOr<GeneratedKernels> generateKernels(const KernelSpec &spec) {
  if (spec.dtype != "bf16" && spec.dtype != "f16")
    return invalidArgument("dtype: expected \"bf16\" or \"f16\", got \"" +
                           spec.dtype + "\"");
  if (spec.numQHeads <= 0 || spec.numKvHeads <= 0)
    return invalidArgument(llvm::formatv("num_q_heads and num_kv_heads: "
                                         "expected positive values, got {0} "
                                         "and {1}",
                                         spec.numQHeads, spec.numKvHeads));

  GeneratedKernels out;
  out.mlir = prefillModule(spec) + prefillVarlenModule(spec);

  DialectRegistry registry;
  registry
      .insert<mlir::fp::FPDialect, func::FuncDialect, emitc::EmitCDialect>();
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  // Collect diagnostics as the error message instead of printing them.
  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    if (diag.getSeverity() == DiagnosticSeverity::Warning)
      out.warnings.push_back(diag.str());
    if (!diagnostics.empty())
      diagnostics += "; ";
    diagnostics += diag.str();
    return success();
  });

  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(out.mlir, &context);
  if (!module)
    return invalidArgument("kernel spec: " + diagnostics);
  PassManager pm(&context);
  mlir::fp::CompilePipelineOptions options;
  options.arch = spec.arch;
  options.tuningDb = spec.tuningDb;
  options.lengthBucket = spec.lengthBucket;
  options.builtinTuning = spec.builtinTuning;
  options.attentionTile = spec.attentionTile;
  options.discoveryTile = spec.discoveryTile;
  mlir::fp::buildCompilePipeline(pm, options);
  if (failed(pm.run(*module))) {
    // Verifier errors mean a bad spec; select-tiles errors mean a valid
    // request codegen does not support.
    bool unsupportedRequest =
        diagnostics.find("unsupported") != std::string::npos;
    return Status(unsupportedRequest ? StatusCode::kUnsupported
                                     : StatusCode::kInvalidArgument,
                  "kernel spec: " + diagnostics);
  }
  llvm::raw_string_ostream source(out.source);
  if (failed(mlir::fp::translateToCuda(*module, source)))
    return Status(StatusCode::kInternal, "CUDA emission: " + diagnostics);
  FailureOr<std::string> manifest = mlir::fp::buildKernelManifest(*module);
  if (failed(manifest))
    return Status(StatusCode::kInternal, "manifest: " + diagnostics);
  out.manifest = std::move(*manifest);
  return out;
}

} // namespace fp::codegen
