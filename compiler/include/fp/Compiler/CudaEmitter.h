//===- CudaEmitter.h - EmitC module to CUDA C++ -----------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#ifndef FP_COMPILER_CUDAEMITTER_H
#define FP_COMPILER_CUDAEMITTER_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::fp {

/// Prints a module lowered by convert-fp-to-emitc as CUDA C++ (EmitC's C++
/// emitter). Fails with a diagnostic when the module is not lowered yet.
LogicalResult translateToCuda(ModuleOp module, llvm::raw_ostream &os);

} // namespace mlir::fp

#endif // FP_COMPILER_CUDAEMITTER_H
