//===- TextNesting.cpp - Refuse MLIR text nested too deep to parse --------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Dialect/TextNesting.h"

#include "llvm/Support/FormatVariadic.h"

std::optional<mlir::fp::TextNestingError>
mlir::fp::findExcessiveNesting(llvm::StringRef text, size_t limit) {
  // MLIR bytecode starts with this magic number; its reader is not ours.
  if (text.starts_with("ML\xEFR"))
    return std::nullopt;
  size_t depth = 0, line = 1;
  // Brackets of every kind share one count: the parser recurses on each, and
  // a mismatched closer is a parse error before any deeper recursion, so
  // the count bounds the recursion depth.
  for (size_t i = 0, n = text.size(); i < n; ++i) {
    char c = text[i];
    switch (c) {
    case '\n':
      ++line;
      break;
    case '"':
      // A string literal ends at the closing quote or, unterminated, at the
      // end of the line (the lexer's error); '\' escapes one character.
      for (++i; i < n && text[i] != '"' && text[i] != '\n'; ++i)
        if (text[i] == '\\' && i + 1 < n && text[i + 1] != '\n')
          ++i;
      if (i < n && text[i] == '\n')
        ++line;
      break;
    case '/':
      if (i + 1 < n && text[i + 1] == '/')
        while (i + 1 < n && text[i + 1] != '\n')
          ++i;
      break;
    case '(':
    case '[':
    case '{':
    case '<':
      if (++depth > limit)
        return TextNestingError{
            line, llvm::formatv("brackets nested deeper than the limit of "
                                "{0}: refusing to parse",
                                limit)};
      break;
    case '>':
      if (i > 0 && text[i - 1] == '-') // `->`
        break;
      [[fallthrough]];
    case ')':
    case ']':
    case '}':
      if (depth > 0)
        --depth;
      break;
    default:
      break;
    }
  }
  return std::nullopt;
}
