//===- ManifestParser.cpp - Reading kernel manifests ------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "ManifestParser.h"

#include "fp/params.h"

#include <sstream>
#include <utility>

namespace fp {

StatusOr<Manifest> parseManifest(const std::string &text) {
  auto malformed = [](const std::string &line) {
    return Status(StatusCode::kInternal,
                  "kernel manifest: malformed number in '" + line + "'");
  };
  Manifest m;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string tag;
    words >> tag;
    if (tag == "arch") {
      words >> m.arch;
    } else if (tag == "params_abi") {
      words >> m.paramsAbi;
    } else if (tag == "kernel") {
      ManifestKernel k;
      words >> k.entry;
      std::string field;
      while (words >> field) {
        size_t eq = field.find('=');
        if (eq == std::string::npos)
          continue;
        std::string key = field.substr(0, eq), value = field.substr(eq + 1);
        bool ok = true;
        if (key == "params")
          k.params = value;
        else if (key == "threads")
          ok = parseManifestNumber(value, &k.threads);
        else if (key == "grid")
          k.grid = value;
        else if (key == "smem_base")
          ok = parseManifestNumber(value, &k.smemBase);
        else if (key == "smem_per_key_block")
          ok = parseManifestNumber(value, &k.smemPerKeyBlock);
        else if (key == "tma_q_rows")
          ok = parseManifestNumber(value, &k.tmaQRows) && k.tmaQRows > 0 && k.tmaQRows <= 256;
        else if (key == "tma_kv_rows")
          ok = parseManifestNumber(value, &k.tmaKVRows) && k.tmaKVRows > 0 && k.tmaKVRows <= 256;
        if (!ok)
          return malformed(line);
      }
      m.kernels[k.entry] = k;
    } else if (tag == "launch") {
      std::string function, role, entry;
      words >> function >> role >> entry;
      m.launches[role] = entry;
    } else if (tag == "struct") {
      std::string name, size;
      words >> name >> size;
      if (size.rfind("size=", 0) == 0 &&
          !parseManifestNumber(size.substr(5), &m.structSizes[name]))
        return malformed(line);
    }
  }
  if (m.paramsAbi != FP_PARAMS_ABI_VERSION)
    return Status(StatusCode::kInternal,
                  "kernel manifest: params_abi " + std::to_string(m.paramsAbi) +
                      ", runtime expects " +
                      std::to_string(FP_PARAMS_ABI_VERSION));
  const std::pair<const char *, size_t> sizes[] = {
      {"FpPoolParams", sizeof(FpPoolParams)},
      {"FpDiscoveryParams", sizeof(FpDiscoveryParams)},
      {"FpAttentionParams", sizeof(FpAttentionParams)},
      {"FpVarlenPoolParams", sizeof(FpVarlenPoolParams)},
      {"FpVarlenDiscoveryParams", sizeof(FpVarlenDiscoveryParams)},
      {"FpVarlenAttentionParams", sizeof(FpVarlenAttentionParams)}};
  for (auto [name, size] : sizes)
    if (m.structSizes[name] != size)
      return Status(StatusCode::kInternal,
                    std::string("kernel manifest: ") + name + " is " +
                        std::to_string(m.structSizes[name]) +
                        " bytes for codegen but " + std::to_string(size) +
                        " for the runtime (stale fp/params.h)");
  return m;
}

} // namespace fp
