//===- FPDialect.cpp - The fp dialect and its attributes --------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Dialect/FPDialect.h"
#include "fp/Dialect/TileRules.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace mlir;
using namespace mlir::fp;

#include "fp/Dialect/FPDialect.cpp.inc"
#include "fp/Dialect/FPEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "fp/Dialect/FPAttrs.cpp.inc"

void FPDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "fp/Dialect/FPAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "fp/Dialect/FPOps.cpp.inc"
      >();
}

FailureOr<llvm::APFloat> mlir::fp::parseFloatParameter(AsmParser &parser) {
  double value;
  if (parser.parseFloat(value))
    return failure();
  return llvm::APFloat(static_cast<float>(value));
}

std::string mlir::fp::formatFloat(float value) {
  // Shortest of %.6g .. %.9g that reads back bit-exactly, so 0.1 prints as
  // 0.1 and not 1.000000e-01, and every float round-trips.
  char text[32];
  for (int digits = 6; digits <= 9; ++digits) {
    std::snprintf(text, sizeof(text), "%.*g", digits, value);
    if (std::strtof(text, nullptr) == value)
      break;
  }
  std::string literal(text);
  // The MLIR float grammar needs a '.' or an exponent ("2" would be an int).
  if (std::isfinite(value) && literal.find_first_of(".eE") == std::string::npos)
    literal += ".0";
  return literal;
}

void mlir::fp::printFloatParameter(AsmPrinter &printer,
                                   const llvm::APFloat &value) {
  printer << formatFloat(value.convertToFloat());
}

LogicalResult
ThresholdAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                      ThresholdKind kind, llvm::APFloat apAlpha, int64_t sink,
                      int64_t window, int64_t lastN, int64_t minBudget) {
  (void)kind;
  float alpha = apAlpha.convertToFloat();
  // `!(a >= 0 && a <= 1)` also rejects NaN.
  if (!(alpha >= 0.0f && alpha <= 1.0f))
    return emitError() << "alpha: expected a value in [0, 1], got "
                       << formatFloat(alpha);
  if (sink < 0)
    return emitError() << "sink: expected a value >= 0, got " << sink;
  if (window < 1)
    return emitError() << "window: expected a value >= 1 (the diagonal block "
                          "is kept only by the window), got "
                       << window;
  if (lastN < 0)
    return emitError() << "last_n: expected a value >= 0, got " << lastN;
  if (minBudget < 0)
    return emitError() << "min_budget: expected a value >= 0, got "
                       << minBudget;
  return success();
}

namespace {

LogicalResult reportTileProblem(function_ref<InFlightDiagnostic()> emitError,
                                StringRef attribute,
                                const std::string &problem) {
  if (problem.empty())
    return success();
  return emitError() << attribute << " " << problem;
}

} // namespace

LogicalResult PoolTileAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                   int64_t threads) {
  return reportTileProblem(emitError, "#fp.pool_tile",
                           poolTileProblem(threads));
}

LogicalResult
DiscoveryTileAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                          int64_t keyChunk, int64_t warps) {
  return reportTileProblem(emitError, "#fp.discovery_tile",
                           discoveryTileProblem(keyChunk, warps));
}

LogicalResult
AttentionTileAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                          int64_t blockM, int64_t blockN, int64_t warps,
                          int64_t stages) {
  return reportTileProblem(emitError, "#fp.attention_tile",
                           attentionTileProblem(blockM, blockN, warps, stages));
}
