//===- DynamicLibrary.h - dlopen helpers for the runtime core ---*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Internal to runtime/core. NVRTC and the CUDA driver are opened at run time
// so the library loads on machines without them.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_CORE_DYNAMICLIBRARY_H
#define FLASHPREFILL_RUNTIME_CORE_DYNAMICLIBRARY_H

#include <string>
#include <vector>

namespace fp {
namespace rt {
namespace detail {

/// Outcome of openFirst(): the handle (null on failure), the candidate that
/// loaded, and a "candidate (dlerror)" line per failed attempt.
struct OpenedLibrary {
  void *handle = nullptr;
  std::string candidate;
  std::vector<std::string> failures;
};

/// dlopen()s the first loadable entry of `candidates` (RTLD_NOW |
/// RTLD_LOCAL: its symbols must not interpose on the host process's).
OpenedLibrary openFirst(const std::vector<std::string> &candidates);

/// The file a loaded `symbol` lives in (realpath'ed), or "".
std::string libraryPathOf(void *symbol);

/// getenv() that treats an empty value as unset.
std::string getEnv(const char *name);

/// Joins `parts` with `separator`.
std::string join(const std::vector<std::string> &parts,
                 const std::string &separator);

} // namespace detail
} // namespace rt
} // namespace fp

#endif // FLASHPREFILL_RUNTIME_CORE_DYNAMICLIBRARY_H
