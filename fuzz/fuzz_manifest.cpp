//===- fuzz_manifest.cpp - The CUDA plan's kernel-manifest parser ---------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// parseManifest() (runtime/api/CudaPlan.cpp) reads the manifest stored in a
// kernel-cache entry. It lives in that file's anonymous namespace, so this
// target compiles CudaPlan.cpp into itself (with Plan.cpp and CpuPlan.cpp,
// so the CudaPlan class links) and replaces the MLIR codegen with a stub:
// no MLIR is linked. Invariant: any text gives a Manifest or a Status,
// never an exception or a crash; a parsed manifest has the runtime's ABI.
//
// If parseManifest moves to its own header (see fuzz/README.md), include
// that instead and drop the extra sources.
//
//===----------------------------------------------------------------------===//
#include "../runtime/api/CudaPlan.cpp"

#include "FuzzInput.h"

namespace fp::codegen {
// CudaPlan.cpp's only MLIR dependency; never called here.
StatusOr<GeneratedKernels> generateKernels(const KernelSpec &) {
  return Status(StatusCode::kInternal,
                "codegen is stubbed in fp-fuzz-manifest");
}
} // namespace fp::codegen

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
