//===- flashprefill/runtime/kernel_cache.h - Compiled-kernel cache -*- C++
//-*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Two levels: an in-process map, then one file per kernel on disk.
//
// Key: SHA-256 over (key format, source, program name, the embedded
// device-header content hash, the toolchain version (e.g. "nvrtc-13.0"),
// arch, every option, the caller's codegen version, FP_PARAMS_ABI_VERSION,
// the manifest). Arch is hashed even though it usually leaves the source
// unchanged, so an sm_80 CUBIN is never served to sm_90a.
//
// Disk: one file "<key>.fpk" per entry in the cache directory: a fixed
// header (magic, format version, flags, key, section sizes, SHA-256 of the
// payload) followed by the payload (binary, manifest, compile log). Entries
// are written to a uniquely named temp file in the same directory (pid,
// random, counter) and rename()d into place, which is atomic on POSIX file
// systems: readers see the old entry or the new one, never a partial file,
// and processes compiling the same key at once all succeed (last rename
// wins; the contents are the same). No lock is taken. An entry that fails
// any check (size, magic, version, key, checksum) is a miss: the kernel is
// recompiled and the entry rewritten. Something at an entry's path that is
// not a regular file (a FIFO, a directory) is never read (reading a FIFO
// would block): corrupt, with a warning.
//
// Directory: $FLASHPREFILL_CACHE_DIR, else $XDG_CACHE_HOME/flashprefill,
// else $HOME/.cache/flashprefill; FLASHPREFILL_CACHE=off (or 0, false, no)
// disables the disk level. When the directory cannot be created or written,
// the cache warns once and continues in memory only.
//
// Thread safety: every method may be called concurrently. One mutex guards
// the map and the statistics; compiles and file I/O run outside it, and
// concurrent requests for a key already being compiled wait for that compile
// instead of starting another.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_KERNEL_CACHE_H
#define FLASHPREFILL_RUNTIME_KERNEL_CACHE_H

#include "flashprefill/runtime/nvrtc.h"
#include "flashprefill/status.h"

#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace fp {
namespace rt {

/// Everything that determines a compiled kernel. Every field is hashed into
/// the key.
struct CompileRequest {
  std::string source;                       ///< CUDA C++ source
  std::string programName = "fp_kernel.cu"; ///< name in diagnostics
  std::string arch;                         ///< "sm_90a" or "compute_80"
  /// NVRTC options beyond -arch/-std/-default-device/-I, e.g.
  /// "--use_fast_math", "-Xptxas", "-v".
  std::vector<std::string> options;
  std::string codegenVersion; ///< identifies the generator of `source`
  /// Compiler identity, e.g. Nvrtc::versionString(); the NVRTC overload of
  /// getOrCompile() fills it in.
  std::string toolchainVersion;
  /// Kernel manifest from codegen (entry names, params layout, grid rule);
  /// opaque to the cache, stored with the binary and returned on hits.
  std::string manifest;
};

/// What a compile function produces.
struct CompileOutput {
  std::string binary; ///< CUBIN or NUL-terminated PTX
  bool isCubin = false;
  std::string log;           ///< compile log (kept: holds the ptxas report)
  double compileSeconds = 0; ///< reported back to the caller on a miss
};

/// Compiles a request; must not throw.
using CompileFn =
    std::function<StatusOr<CompileOutput>(const CompileRequest &)>;

/// Where a getOrCompile() result came from.
enum class CacheOrigin { kCompiled, kMemory, kDisk };

/// A compiled kernel as handed out by the cache.
struct CompiledKernel {
  std::string binary; ///< CUBIN or NUL-terminated PTX
  bool isCubin = false;
  std::string manifest; ///< the request's manifest
  std::string log;      ///< the compile log, also on hits
  std::vector<KernelResourceReport> resources; ///< parsed from `log`
  std::string key;                             ///< hex SHA-256 cache key
  CacheOrigin origin = CacheOrigin::kCompiled;
  double compileSeconds = 0; ///< 0 unless origin == kCompiled
};

/// Counters since construction.
struct CacheStats {
  uint64_t memoryHits = 0;        ///< served from the in-process map
  uint64_t diskHits = 0;          ///< served from a valid disk entry
  uint64_t misses = 0;            ///< compiled (including failed compiles)
  uint64_t compileFailures = 0;   ///< compile function returned an error
  uint64_t corruptEntries = 0;    ///< disk entries rejected by a check
  uint64_t diskWrites = 0;        ///< entries written
  uint64_t diskWriteFailures = 0; ///< entries that could not be written
};

/// Cache settings.
struct CacheConfig {
  /// Cache directory; empty means memory only.
  std::string directory;
  /// Receives warnings (one line, no newline). Default: "flashprefill:
  /// warning: ..." on stderr.
  std::function<void(const std::string &)> warn;

  /// Reads FLASHPREFILL_CACHE, FLASHPREFILL_CACHE_DIR, XDG_CACHE_HOME and
  /// HOME through `lookup` (getenv when null); see the file comment.
  static CacheConfig fromEnvironment(
      const std::function<std::string(const char *)> &lookup = nullptr);
};

/// The compiled-kernel cache. See the file comment.
class KernelCache {
public:
  explicit KernelCache(CacheConfig config);
  ~KernelCache();
  KernelCache(const KernelCache &) = delete;
  KernelCache &operator=(const KernelCache &) = delete;

  /// The process-wide cache, configured from the environment on first use.
  static KernelCache &global();

  /// The hex key of `request` (see the file comment).
  static std::string computeKey(const CompileRequest &request);

  /// Returns the kernel for `request` from memory, else from disk, else by
  /// calling `compile` and storing the result. A compile error is returned
  /// as is and not cached (the next call compiles again).
  StatusOr<CompiledKernel> getOrCompile(const CompileRequest &request,
                                        const CompileFn &compile);

  /// Same, compiling with NVRTC (Nvrtc::get()): fills
  /// request.toolchainVersion and passes request.options as extra options.
  /// kNotFound when NVRTC is missing.
  StatusOr<CompiledKernel> getOrCompile(CompileRequest request);

  /// The counters so far.
  CacheStats stats() const;

  /// The directory in use; empty when the disk level is off or was disabled
  /// after a write failure.
  std::string directory() const;

  /// The path of `key`'s entry file (whether or not it exists); empty when
  /// the disk level is off.
  std::string entryPath(const std::string &key) const;

  /// Drops the in-process map (not the disk), e.g. to measure disk hits.
  void clearMemory();

private:
  struct LoadResult;
  LoadResult loadFromDisk(const std::string &key, const std::string &dir);
  bool storeToDisk(const std::string &key, const std::string &dir,
                   const CompiledKernel &kernel, std::string *error);
  void disableDisk(const std::string &why);

  CacheConfig config_;
  mutable std::mutex mutex_;
  bool diskEnabled_ = false;
  bool warned_ = false;
  std::map<std::string, std::shared_ptr<const CompiledKernel>> memory_;
  std::map<std::string, std::shared_future<StatusOr<CompiledKernel>>> inFlight_;
  CacheStats stats_;
};

} // namespace rt
} // namespace fp

#endif // FLASHPREFILL_RUNTIME_KERNEL_CACHE_H
