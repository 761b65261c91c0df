//===- EmbeddedHeaders.cpp - Access to the embedded device headers --------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Accessors over the table generated from runtime/device/fp/. Compiled into
// FPDeviceHeaders together with the generated table.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/embedded_headers.h"

#include <cassert>
#include <cctype>
#include <vector>

namespace fp {
namespace rt {

size_t embeddedHeaderCount() { return detail::kEmbeddedHeaderTableSize; }

const EmbeddedHeader &embeddedHeader(size_t index) {
  assert(index < detail::kEmbeddedHeaderTableSize && "header index in range");
  return detail::kEmbeddedHeaderTable[index];
}

const EmbeddedHeader *findEmbeddedHeader(std::string_view name) {
  // A linear scan: there are a handful of headers and lookups are rare.
  for (size_t i = 0; i < detail::kEmbeddedHeaderTableSize; ++i)
    if (name == detail::kEmbeddedHeaderTable[i].name)
      return &detail::kEmbeddedHeaderTable[i];
  return nullptr;
}

std::string_view embeddedHeadersHash() {
  return detail::kEmbeddedHeaderContentHash;
}

namespace {

/// "fp/arch" + "../common.cuh" -> "fp/common.cuh"; "" if it leaves the root.
std::string joinNormalized(std::string_view dir, std::string_view relative) {
  std::vector<std::string> parts;
  auto push = [&](std::string_view path) {
    while (!path.empty()) {
      size_t slash = path.find('/');
      std::string_view part = path.substr(0, slash);
      path = slash == std::string_view::npos ? std::string_view()
                                             : path.substr(slash + 1);
      if (part.empty() || part == ".")
        continue;
      if (part == "..") {
        if (parts.empty())
          return false;
        parts.pop_back();
        continue;
      }
      parts.emplace_back(part);
    }
    return true;
  };
  if (!push(dir) || !push(relative))
    return "";
  std::string joined;
  for (const std::string &part : parts)
    joined += (joined.empty() ? "" : "/") + part;
  return joined;
}

} // namespace

std::string rewriteRelativeIncludes(
    std::string_view contents, std::string_view includerName,
    const std::function<bool(const std::string &)> &isEmbedded) {
  size_t slash = includerName.rfind('/');
  std::string_view dir = slash == std::string_view::npos
                             ? std::string_view()
                             : includerName.substr(0, slash);
  std::string out;
  out.reserve(contents.size());
  while (!contents.empty()) {
    size_t newline = contents.find('\n');
    std::string_view line = contents.substr(
        0, newline == std::string_view::npos ? contents.size() : newline + 1);
    contents.remove_prefix(line.size());
    // Match: spaces '#' spaces "include" spaces '"' path '"'.
    size_t i = 0;
    auto skipSpaces = [&] {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t'))
        ++i;
    };
    skipSpaces();
    bool isInclude = i < line.size() && line[i] == '#';
    if (isInclude) {
      ++i;
      skipSpaces();
      isInclude = line.substr(i, 7) == "include";
      i += 7;
    }
    if (isInclude) {
      skipSpaces();
      size_t open = i;
      size_t close = open < line.size() && line[open] == '"'
                         ? line.find('"', open + 1)
                         : std::string_view::npos;
      if (close != std::string_view::npos) {
        std::string_view path = line.substr(open + 1, close - open - 1);
        std::string resolved = joinNormalized(dir, path);
        if (!resolved.empty() && resolved != path && isEmbedded(resolved)) {
          out.append(line.substr(0, open + 1));
          out.append(resolved);
          out.append(line.substr(close));
          continue;
        }
      }
    }
    out.append(line);
  }
  return out;
}

} // namespace rt
} // namespace fp
