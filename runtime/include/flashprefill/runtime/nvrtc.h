//===- flashprefill/runtime/nvrtc.h - NVRTC, loaded at run time -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// NVRTC is opened with dlopen so the library loads (and the CPU reference
// runs) on machines without the CUDA toolkit; only compiling needs it.
//
// Where cuda_fp16.h / cuda_bf16.h come from: NVRTC 13.0 has no built-in copy
// of them ("could not open source file cuda_bf16.h (no directories in search
// list)" without an include path; checked on 13.0.88), so the wrapper adds
// -I<dir> for the first directory holding cuda_fp16.h among
//   $FLASHPREFILL_CUDA_INCLUDE, $CUDA_HOME/include, $CUDA_PATH/include,
//   <dir of libnvrtc>/../include, <dir of libnvrtc>/../../include,
//   /usr/local/cuda/include, and the toolkit include dir seen at build time;
// plus <dir>/cccl when present (CCCL's cuda::ptx). When none exists the
// compile runs without -I, relying on whatever the NVRTC build has built in
// (a later NVRTC may ship these headers); a failing compile then says which
// directories were searched. The project's own headers (fp/...) always come
// from memory (embedded_headers.h).
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_NVRTC_H
#define FLASHPREFILL_RUNTIME_NVRTC_H

#include "flashprefill/status.h"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fp {
namespace rt {

/// Resource usage of one function as reported by `ptxas -v`.
struct KernelResourceReport {
  std::string kernel;       ///< (mangled) function name
  std::string arch;         ///< "sm_90a"; empty for non-entry functions
  bool isEntry = false;     ///< a __global__ kernel (vs. a device function)
  int registers = -1;       ///< registers per thread; -1 if not reported
  int barriers = -1;        ///< named barriers used; -1 if not reported
  long spillStoreBytes = 0; ///< bytes of spill stores per thread
  long spillLoadBytes = 0;  ///< bytes of spill loads per thread
  long sharedMemBytes = 0;  ///< static shared memory per block
  long stackFrameBytes = 0; ///< stack frame per thread
  long cumulativeStackBytes = 0; ///< stack including callees, per thread
  long constMemBytes = 0;        ///< cmem[0] (parameter bank) bytes
};

/// Parses the `ptxas -v` lines of an NVRTC program log into one report per
/// function, entries first in log order, then device functions. Lines that
/// are not ptxas info (warnings, front-end messages) are ignored.
std::vector<KernelResourceReport> parsePtxasReport(std::string_view log);

/// Options for one NVRTC compile.
struct NvrtcOptions {
  /// "sm_XY[a]" produces a CUBIN for exactly that arch; "compute_XY[a]"
  /// produces PTX.
  std::string arch;
  /// --use_fast_math (approximate exp/div); off so results match the
  /// reference unless a caller opts in.
  bool fastMath = false;
  /// -Xptxas -v: ptxas prints per-kernel resources into the log, parsed into
  /// NvrtcOutput::resources. Only meaningful for CUBIN targets.
  bool ptxasVerbose = false;
  /// -lineinfo, for profilers.
  bool lineInfo = false;
  /// Passed through verbatim after the options above.
  std::vector<std::string> extraOptions;
  /// C++ name expressions (e.g. "fp::kernel<128>") whose mangled names
  /// are wanted; see NvrtcOutput::loweredNames.
  std::vector<std::string> nameExpressions;
};

/// The result of a successful compile.
struct NvrtcOutput {
  std::string binary;                          ///< CUBIN or PTX bytes
  bool isCubin = false;                        ///< true for sm_* targets
  std::string log;                             ///< NVRTC's program log
  std::vector<KernelResourceReport> resources; ///< parsed from the log
  /// (name expression, lowered name) for each requested name expression.
  std::vector<std::pair<std::string, std::string>> loweredNames;
  std::vector<std::string> options; ///< the exact options NVRTC received
  double compileSeconds = 0;        ///< wall time of nvrtcCompileProgram
};

/// Checks an arch string: "sm_" or "compute_" then digits, optionally 'a' or
/// 'f'. Returns kInvalidArgument naming `arch` and the expected form.
Status validateArch(std::string_view arch);

/// A loaded NVRTC library. Compiles are thread-safe (each uses its own
/// nvrtcProgram; the object itself is immutable after load).
class Nvrtc {
public:
  /// The process-wide instance, loaded on first use from the default
  /// candidates: $FLASHPREFILL_NVRTC_PATH (if set), libnvrtc.so.13,
  /// libnvrtc.so, $CUDA_HOME/lib64/, /usr/local/cuda/lib64/. Returns
  /// kNotFound "NVRTC not found: tried ..." when none loads; the outcome is
  /// remembered.
  static StatusOr<const Nvrtc *> get();

  /// Loads NVRTC from the first of `candidates` (names or paths for dlopen)
  /// that works. For tests and tools; most callers want get().
  static StatusOr<std::unique_ptr<Nvrtc>>
  load(const std::vector<std::string> &candidates);

  /// The default dlopen candidates, in order.
  static std::vector<std::string> defaultCandidates();

  ~Nvrtc();
  Nvrtc(const Nvrtc &) = delete;
  Nvrtc &operator=(const Nvrtc &) = delete;

  /// NVRTC's (major, minor) version.
  std::pair<int, int> version() const { return {major_, minor_}; }
  /// "nvrtc-13.0": the version as it enters the kernel cache key.
  std::string versionString() const;
  /// Resolved path of the loaded library.
  const std::string &libraryPath() const { return libraryPath_; }
  /// The real archs this NVRTC compiles for, as numbers (80, 86, ..., 120);
  /// empty when the library does not say (before NVRTC 11.2).
  const std::vector<int> &supportedArchs() const { return supportedArchs_; }
  /// Directory added with -I for cuda_fp16.h / cuda_bf16.h; empty if none
  /// was found (see the file comment).
  const std::string &cudaIncludeDir() const { return cudaIncludeDir_; }
  /// Directories that were searched for cudaIncludeDir().
  const std::vector<std::string> &searchedIncludeDirs() const {
    return searchedIncludeDirs_;
  }

  /// The option list compile() passes to NVRTC for `options`.
  std::vector<std::string> buildOptions(const NvrtcOptions &options) const;

  /// Compiles `source` (named `programName` in diagnostics) with the embedded
  /// device headers available as "fp/...". Errors: kInvalidArgument for a
  /// bad arch; kCompileError carrying NVRTC's log; kInternal when an NVRTC
  /// call other than the compile fails.
  StatusOr<NvrtcOutput> compile(std::string_view source,
                                std::string_view programName,
                                const NvrtcOptions &options) const;

  struct Api; // dlsym'ed entry points (NVRTC.cpp)

private:
  Nvrtc();

  void *handle_ = nullptr;
  std::unique_ptr<Api> api_;
  int major_ = 0, minor_ = 0;
  std::string libraryPath_;
  std::string cudaIncludeDir_;
  std::vector<std::string> searchedIncludeDirs_;
  std::vector<int> supportedArchs_;
};

} // namespace rt
} // namespace fp

#endif // FLASHPREFILL_RUNTIME_NVRTC_H
