//===- ManifestParser.h - Reading kernel manifests --------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The manifest is the text codegen writes next to the CUDA source
// (fp/Compiler/KernelManifest.h): per kernel its entry, params struct,
// threads, grid rule and shared memory; the launch roles; the params struct
// sizes and ABI. The CUDA plan reads it back from the kernel cache, where a
// damaged entry may hold anything whose checksum passed, so parsing never
// throws (fp-fuzz-manifest).
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_API_MANIFESTPARSER_H
#define FLASHPREFILL_API_MANIFESTPARSER_H

#include "flashprefill/status.h"

#include <charconv>
#include <cstddef>
#include <map>
#include <string>

namespace fp {

/// One `kernel` line of the manifest.
struct ManifestKernel {
  std::string entry, params, grid;
  int threads = 0;
  long smemBase = 0, smemPerKeyBlock = 0;
  /// Box rows of the tensor maps the kernel reads (sm_90a attention), 0 if
  /// it reads none.
  int tmaQRows = 0, tmaKVRows = 0;
};

struct Manifest {
  std::map<std::string, ManifestKernel> kernels; ///< by entry
  std::map<std::string, std::string> launches;   ///< role -> entry
  std::map<std::string, size_t> structSizes;     ///< struct -> bytes
  std::string arch;
  int paramsAbi = -1;
};

/// A whole decimal integer, without exceptions (std::stoi throws on the
/// malformed text a damaged cache entry may hold).
template <typename T>
bool parseManifestNumber(const std::string &text, T *value) {
  const char *end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, *value);
  return error == std::errc() && ptr == end;
}

/// Parses the manifest text; kInternal on malformed input (it comes from
/// our own codegen, or a cache entry whose checksum passed) and when its
/// params ABI or struct sizes differ from this runtime's fp/params.h.
StatusOr<Manifest> parseManifest(const std::string &text);

} // namespace fp

#endif // FLASHPREFILL_API_MANIFESTPARSER_H
