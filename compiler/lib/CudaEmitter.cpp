//===- CudaEmitter.cpp - EmitC module to CUDA C++ ---------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/CudaEmitter.h"

#include "fp/Dialect/FPDialect.h"

#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Target/Cpp/CppEmitter.h"

using namespace mlir;

LogicalResult mlir::fp::translateToCuda(ModuleOp module,
                                        llvm::raw_ostream &os) {
  // Catch tensor-level IR here: EmitC's emitter would otherwise fail on the
  // first fp op with a message that does not say what to do.
  WalkResult notLowered = module.walk([](Operation *op) {
    if (isa<func::FuncOp>(op) || isa<FPDialect>(op->getDialect())) {
      op->emitError("expected IR lowered to EmitC; run "
                    "--fp-compile-pipeline before emitting CUDA");
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (notLowered.wasInterrupted())
    return failure();
  return emitc::translateToCpp(module, os);
}
