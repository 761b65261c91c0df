//===- DynamicLibrary.cpp - dlopen helpers for the runtime core -----------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "DynamicLibrary.h"

#include <climits>
#include <cstdlib>
#include <dlfcn.h>

namespace fp {
namespace rt {
namespace detail {

OpenedLibrary openFirst(const std::vector<std::string> &candidates) {
  OpenedLibrary result;
  for (const std::string &candidate : candidates) {
    if (candidate.empty())
      continue;
    void *handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) {
      result.handle = handle;
      result.candidate = candidate;
      return result;
    }
    const char *why = dlerror();
    result.failures.push_back(candidate + " (" + (why ? why : "unknown") + ")");
  }
  return result;
}

std::string libraryPathOf(void *symbol) {
  Dl_info info;
  if (!symbol || !dladdr(symbol, &info) || !info.dli_fname)
    return "";
  char resolved[PATH_MAX];
  if (realpath(info.dli_fname, resolved))
    return resolved;
  return info.dli_fname;
}

std::string getEnv(const char *name) {
  const char *value = std::getenv(name);
  return value ? std::string(value) : std::string();
}

std::string join(const std::vector<std::string> &parts,
                 const std::string &separator) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i)
      out += separator;
    out += parts[i];
  }
  return out;
}

} // namespace detail
} // namespace rt
} // namespace fp
