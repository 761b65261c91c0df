//===- fuzz_manifest.cpp - The CUDA plan's kernel-manifest parser ---------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// parseManifest() (runtime/api/ManifestParser.h) reads the manifest stored
// in a kernel-cache entry. Invariant: any text gives a Manifest or a
// Status, never an exception or a crash; a parsed manifest has the
// runtime's ABI.
//
//===----------------------------------------------------------------------===//
#include "ManifestParser.h"

#include "FuzzInput.h"
#include "fp/params.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  fp::StatusOr<fp::Manifest> manifest = fp::parseManifest(text);
  if (!manifest.isOk()) {
    FP_FUZZ_CHECK(manifest.status().code() == fp::StatusCode::kInternal,
                  manifest.status().toString());
    FP_FUZZ_CHECK(!manifest.status().message().empty(), "");
    return 0;
  }
  FP_FUZZ_CHECK(manifest->paramsAbi == FP_PARAMS_ABI_VERSION, "");
  return 0;
}
