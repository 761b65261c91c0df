//===- TextNesting.h - Refuse MLIR text nested too deep ---------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// MLIR's parser is recursive descent: every nested bracket is a few stack
// frames, and 10,000 nested '[' overflow the stack. Tools that parse
// untrusted text (fp-opt, the dialect fuzz target) scan it first, in linear
// time and constant space, and refuse deeper input with a diagnostic.
//
//===----------------------------------------------------------------------===//
#ifndef FP_DIALECT_TEXTNESTING_H
#define FP_DIALECT_TEXTNESTING_H

#include "llvm/ADT/StringRef.h"

#include <cstddef>
#include <optional>
#include <string>

namespace mlir::fp {

/// Far deeper than any real fp module (a few levels) and far shallower than
/// the nesting that overflows an 8 MiB stack.
constexpr size_t kMaxTextNesting = 512;

struct TextNestingError {
  size_t line; ///< 1-based line where the nesting first exceeds the limit
  std::string message;
};

/// Scans MLIR text for (), [], {} and <> nesting deeper than `limit`,
/// outside string literals and `//` comments (`->` is not a bracket). MLIR
/// bytecode is not text and is let through. nullopt when within the limit.
std::optional<TextNestingError>
findExcessiveNesting(llvm::StringRef text, size_t limit = kMaxTextNesting);

} // namespace mlir::fp

#endif // FP_DIALECT_TEXTNESTING_H
