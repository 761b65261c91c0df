//===- FPDialect.h - The fp dialect -----------------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Dialect, enums, attributes and ops of the fp dialect, in one header.
//
//===----------------------------------------------------------------------===//
#ifndef FP_DIALECT_FPDIALECT_H
#define FP_DIALECT_FPDIALECT_H

#include "flashprefill/defaults.h"

// ODS-generated op classes need these before the .h.inc files.
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "fp/Dialect/FPDialect.h.inc"
#include "fp/Dialect/FPEnums.h.inc"

namespace mlir::fp {
/// Parses a float attribute parameter (any float literal).
FailureOr<llvm::APFloat> parseFloatParameter(AsmParser &parser);
/// The shortest decimal text that parses back to exactly `value`, always
/// with a '.' or an exponent ("0.1", "1.0", "1e-05").
std::string formatFloat(float value);
/// Prints a float attribute parameter with the fewest digits that parse back
/// to the same value.
void printFloatParameter(AsmPrinter &printer, const llvm::APFloat &value);
} // namespace mlir::fp

#define GET_ATTRDEF_CLASSES
#include "fp/Dialect/FPAttrs.h.inc"

#define GET_OP_CLASSES
#include "fp/Dialect/FPOps.h.inc"

#endif // FP_DIALECT_FPDIALECT_H
