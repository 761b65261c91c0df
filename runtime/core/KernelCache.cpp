//===- KernelCache.cpp - Compiled-kernel cache ----------------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// See kernel_cache.h for the key, the entry format and the concurrency rules.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/kernel_cache.h"

#include "DynamicLibrary.h"
#include "flashprefill/runtime/embedded_headers.h"
#include "flashprefill/runtime/regular_file.h"
#include "flashprefill/runtime/sha256.h"
#include "fp/params.h"

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

namespace fp {
namespace rt {

namespace {

/// Bump when the key's composition or the fixed NVRTC options (-std,
/// -default-device) change, so old entries stop matching.
constexpr const char kKeyFormat[] = "flashprefill-kernel-key-v1";

/// Entry file layout, little-endian:
///   0  magic "FPKCACHE"        8 bytes
///   8  format version          u32
///  12  flags (bit 0: CUBIN)    u32
///  16  key (SHA-256)           32 bytes
///  48  binary size             u64
///  56  manifest size           u64
///  64  log size                u64
///  72  SHA-256 of the payload  32 bytes
/// 104  payload: binary, manifest, log
constexpr char kMagic[8] = {'F', 'P', 'K', 'C', 'A', 'C', 'H', 'E'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 104;
constexpr uint32_t kFlagCubin = 1;
/// Larger entries are rejected as corrupt before allocating (a CUBIN of the
/// largest kernels is a few MiB).
constexpr uint64_t kMaxSectionSize = uint64_t(1) << 30;

void putU32(std::string &out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(char(v >> (8 * i)));
}
void putU64(std::string &out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(char(v >> (8 * i)));
}
uint32_t getU32(const char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= uint32_t(uint8_t(p[i])) << (8 * i);
  return v;
}
uint64_t getU64(const char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t(uint8_t(p[i])) << (8 * i);
  return v;
}

Sha256Digest payloadChecksum(const CompiledKernel &kernel) {
  Sha256 hasher;
  hasher.update(kernel.binary);
  hasher.update(kernel.manifest);
  hasher.update(kernel.log);
  return hasher.finish();
}

bool hexToDigest(const std::string &hex, Sha256Digest *digest) {
  if (hex.size() != 64)
    return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < 32; ++i) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    (*digest)[i] = uint8_t(hi * 16 + lo);
  }
  return true;
}

std::string errnoText(int error) { return std::strerror(error); }

/// mkdir -p; returns "" or an error naming the path.
std::string makeDirectories(const std::string &path) {
  if (path.empty())
    return "empty path";
  std::string prefix;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    prefix = path.substr(0, pos);
    if (prefix.empty())
      continue;
    if (mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST)
      return "cannot create '" + prefix + "': " + errnoText(errno);
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    return "cannot stat '" + path + "': " + errnoText(errno);
  if (!S_ISDIR(st.st_mode))
    return "'" + path + "' is not a directory";
  return "";
}

bool writeAll(int fd, const char *data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    data += n;
    size -= size_t(n);
  }
  return true;
}

/// A temp-file name no other thread or process uses at the same time: the
/// pid separates processes, the counter separates threads and calls, and the
/// random part guards against pid reuse across containers sharing the
/// directory.
std::string uniqueTempName(const std::string &key) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(
      std::random_device{}() ^
      uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()));
  char name[128];
  std::snprintf(name, sizeof(name), ".tmp-%.16s-%ld-%016llx-%llu", key.c_str(),
                long(getpid()), static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return name;
}

/// Removes temp files ('.tmp-*') older than kStaleTempSeconds from `dir`:
/// what writers killed between open() and rename() left behind. A live
/// writer's temp file is seconds old (another process, container or host
/// may be writing it), so only old ones go. Best effort, errors ignored.
constexpr time_t kStaleTempSeconds = 600;

void removeStaleTempFiles(const std::string &dir) {
  DIR *d = opendir(dir.c_str());
  if (!d)
    return;
  time_t now = time(nullptr);
  while (dirent *entry = readdir(d)) {
    if (std::strncmp(entry->d_name, ".tmp-", 5) != 0)
      continue;
    std::string path = dir + "/" + entry->d_name;
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        now - st.st_mtime > kStaleTempSeconds)
      ::unlink(path.c_str());
  }
  closedir(d);
}

bool isOffValue(std::string value) {
  for (char &c : value)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  return value == "off" || value == "0" || value == "false" || value == "no";
}

} // namespace

//===----------------------------------------------------------------------===//
// Configuration
//===----------------------------------------------------------------------===//

CacheConfig CacheConfig::fromEnvironment(
    const std::function<std::string(const char *)> &lookup) {
  auto env = [&](const char *name) {
    return lookup ? lookup(name) : detail::getEnv(name);
  };
  CacheConfig config;
  if (isOffValue(env("FLASHPREFILL_CACHE")))
    return config;
  if (std::string dir = env("FLASHPREFILL_CACHE_DIR"); !dir.empty())
    config.directory = dir;
  else if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty())
    config.directory = xdg + "/flashprefill";
  else if (std::string home = env("HOME"); !home.empty())
    config.directory = home + "/.cache/flashprefill";
  return config;
}

//===----------------------------------------------------------------------===//
// KernelCache
//===----------------------------------------------------------------------===//

struct KernelCache::LoadResult {
  enum Kind { kAbsent, kCorrupt, kValid } kind = kAbsent;
  CompiledKernel kernel;
};

KernelCache::KernelCache(CacheConfig config) : config_(std::move(config)) {
  while (config_.directory.size() > 1 && config_.directory.back() == '/')
    config_.directory.pop_back();
  diskEnabled_ = !config_.directory.empty();
  if (!config_.warn)
    config_.warn = [](const std::string &message) {
      std::fprintf(stderr, "flashprefill: warning: %s\n", message.c_str());
    };
}

KernelCache::~KernelCache() = default;

KernelCache &KernelCache::global() {
  // Leaked on purpose: kernels may be requested during static destruction.
  static KernelCache *cache = new KernelCache(CacheConfig::fromEnvironment());
  return *cache;
}

std::string KernelCache::computeKey(const CompileRequest &request) {
  Sha256 hasher;
  // Every field is length-prefixed, so no two requests hash the same bytes.
  hasher.updateField(kKeyFormat);
  hasher.updateField(request.source);
  hasher.updateField(request.programName);
  hasher.updateField(embeddedHeadersHash());
  hasher.updateField(request.toolchainVersion);
  hasher.updateField(request.arch);
  hasher.updateField(std::to_string(request.options.size()));
  for (const std::string &option : request.options)
    hasher.updateField(option);
  hasher.updateField(request.codegenVersion);
  hasher.updateField(std::to_string(FP_PARAMS_ABI_VERSION));
  hasher.updateField(request.manifest);
  return toHex(hasher.finish());
}

std::string KernelCache::directory() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return diskEnabled_ ? config_.directory : std::string();
}

std::string KernelCache::entryPath(const std::string &key) const {
  std::string dir = directory();
  return dir.empty() ? dir : dir + "/" + key + ".fpk";
}

CacheStats KernelCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void KernelCache::clearMemory() {
  std::lock_guard<std::mutex> lock(mutex_);
  memory_.clear();
}

void KernelCache::disableDisk(const std::string &why) {
  bool warn = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    diskEnabled_ = false;
    warn = !warned_;
    warned_ = true;
  }
  // Outside the lock: the callback may log through slow or reentrant paths.
  if (warn)
    config_.warn("kernel cache directory '" + config_.directory +
                 "' is not usable (" + why +
                 "); compiled kernels are cached in memory only for this "
                 "process (set FLASHPREFILL_CACHE_DIR to a writable "
                 "directory, or FLASHPREFILL_CACHE=off to silence this)");
}

KernelCache::LoadResult KernelCache::loadFromDisk(const std::string &key,
                                                  const std::string &dir) {
  LoadResult result;
  std::string path = dir + "/" + key + ".fpk";
  // Regular files only, never blocking: a FIFO under an entry's name would
  // block open() forever, and with it every thread waiting for this key. An
  // entry larger than the format allows is corrupt and is not read (a stray
  // multi-GiB file must not cost the allocation).
  RegularFile file = readRegularFile(path, kHeaderSize + 3 * kMaxSectionSize);
  if (file.outcome == RegularFile::Outcome::kMissing ||
      file.outcome == RegularFile::Outcome::kUnreadable)
    return result; // absent (or unreadable: treated the same, a miss)
  if (file.outcome == RegularFile::Outcome::kNotRegular)
    config_.warn("kernel cache entry '" + path + "' " + file.problem +
                 "; treated as a corrupt entry and recompiled");
  const bool readOk = file.outcome == RegularFile::Outcome::kRead;
  const std::string &bytes = file.bytes;

  result.kind = LoadResult::kCorrupt;
  if (!readOk || bytes.size() < kHeaderSize ||
      std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0 ||
      getU32(&bytes[8]) != kFormatVersion)
    return result;
  Sha256Digest expectedKey;
  if (!hexToDigest(key, &expectedKey) ||
      std::memcmp(&bytes[16], expectedKey.data(), 32) != 0)
    return result;
  uint64_t binarySize = getU64(&bytes[48]);
  uint64_t manifestSize = getU64(&bytes[56]);
  uint64_t logSize = getU64(&bytes[64]);
  if (binarySize > kMaxSectionSize || manifestSize > kMaxSectionSize ||
      logSize > kMaxSectionSize ||
      kHeaderSize + binarySize + manifestSize + logSize != bytes.size())
    return result;
  CompiledKernel &kernel = result.kernel;
  kernel.isCubin = (getU32(&bytes[12]) & kFlagCubin) != 0;
  kernel.binary = bytes.substr(kHeaderSize, binarySize);
  kernel.manifest = bytes.substr(kHeaderSize + binarySize, manifestSize);
  kernel.log = bytes.substr(kHeaderSize + binarySize + manifestSize, logSize);
  Sha256Digest checksum = payloadChecksum(kernel);
  if (std::memcmp(&bytes[72], checksum.data(), 32) != 0)
    return result;
  if (kernel.binary.empty())
    return result;
  kernel.key = key;
  kernel.resources = parsePtxasReport(kernel.log);
  result.kind = LoadResult::kValid;
  return result;
}

bool KernelCache::storeToDisk(const std::string &key, const std::string &dir,
                              const CompiledKernel &kernel,
                              std::string *error) {
  if (std::string why = makeDirectories(dir); !why.empty()) {
    *error = why;
    return false;
  }
  std::string header(kMagic, sizeof(kMagic));
  putU32(header, kFormatVersion);
  putU32(header, kernel.isCubin ? kFlagCubin : 0);
  Sha256Digest keyDigest;
  if (!hexToDigest(key, &keyDigest)) {
    *error = "malformed key '" + key + "'";
    return false;
  }
  header.append(reinterpret_cast<const char *>(keyDigest.data()), 32);
  putU64(header, kernel.binary.size());
  putU64(header, kernel.manifest.size());
  putU64(header, kernel.log.size());
  Sha256Digest checksum = payloadChecksum(kernel);
  header.append(reinterpret_cast<const char *>(checksum.data()), 32);

  std::string tempPath = dir + "/" + uniqueTempName(key);
  int fd =
      ::open(tempPath.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    *error = "cannot create '" + tempPath + "': " + errnoText(errno);
    return false;
  }
  // fsync before rename: after a crash the entry is then either absent or
  // complete (a torn entry would only cost a recompile, but why pay it).
  bool ok = writeAll(fd, header.data(), header.size()) &&
            writeAll(fd, kernel.binary.data(), kernel.binary.size()) &&
            writeAll(fd, kernel.manifest.data(), kernel.manifest.size()) &&
            writeAll(fd, kernel.log.data(), kernel.log.size()) &&
            ::fsync(fd) == 0;
  int writeErrno = errno;
  ok = (::close(fd) == 0) && ok;
  std::string finalPath = dir + "/" + key + ".fpk";
  if (ok && ::rename(tempPath.c_str(), finalPath.c_str()) == 0) {
    removeStaleTempFiles(dir);
    return true;
  }
  *error =
      "cannot write '" + finalPath + "': " + errnoText(ok ? errno : writeErrno);
  ::unlink(tempPath.c_str());
  return false;
}

StatusOr<CompiledKernel>
KernelCache::getOrCompile(const CompileRequest &request,
                          const CompileFn &compile) {
  FP_RETURN_IF_ERROR(validateArch(request.arch));
  if (!compile)
    return invalidArgument("compile: expected a compile function, got an "
                           "empty std::function");
  std::string key = computeKey(request);

  std::promise<StatusOr<CompiledKernel>> promise;
  std::string dir;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (auto it = memory_.find(key); it != memory_.end()) {
      ++stats_.memoryHits;
      CompiledKernel kernel = *it->second;
      kernel.origin = CacheOrigin::kMemory;
      kernel.compileSeconds = 0;
      return kernel;
    }
    if (auto it = inFlight_.find(key); it != inFlight_.end()) {
      // Another thread is producing this key: wait for its result.
      std::shared_future<StatusOr<CompiledKernel>> pending = it->second;
      lock.unlock();
      StatusOr<CompiledKernel> shared = pending.get();
      if (!shared)
        return shared.status();
      std::lock_guard<std::mutex> relock(mutex_);
      ++stats_.memoryHits;
      CompiledKernel kernel = *shared;
      kernel.origin = CacheOrigin::kMemory;
      kernel.compileSeconds = 0;
      return kernel;
    }
    inFlight_.emplace(key, promise.get_future().share());
    if (diskEnabled_)
      dir = config_.directory;
  }

  // This thread owns `key` until it publishes the result below.
  StatusOr<CompiledKernel> result = Status(StatusCode::kInternal, "unset");
  bool corrupt = false, diskHit = false;
  if (!dir.empty()) {
    LoadResult loaded = loadFromDisk(key, dir);
    if (loaded.kind == LoadResult::kValid) {
      loaded.kernel.origin = CacheOrigin::kDisk;
      result = std::move(loaded.kernel);
      diskHit = true;
    }
    corrupt = loaded.kind == LoadResult::kCorrupt;
  }
  bool compiled = false, written = false, writeFailed = false;
  if (!diskHit) {
    compiled = true;
    // A throwing compile function (std::bad_alloc) must not leave `key` in
    // inFlight_ with a promise that is never set: every later request for
    // it would wait on a broken future.
    StatusOr<CompileOutput> output =
        Status(StatusCode::kInternal, "compile function threw an exception");
    try {
      output = compile(request);
    } catch (...) {
    }
    if (!output) {
      result = output.status();
    } else if (output->binary.empty()) {
      result =
          Status(StatusCode::kInternal,
                 "compile function returned an empty binary for key " + key);
    } else {
      CompiledKernel kernel;
      kernel.binary = std::move(output->binary);
      kernel.isCubin = output->isCubin;
      kernel.manifest = request.manifest;
      kernel.log = std::move(output->log);
      kernel.resources = parsePtxasReport(kernel.log);
      kernel.key = key;
      kernel.origin = CacheOrigin::kCompiled;
      kernel.compileSeconds = output->compileSeconds;
      if (!dir.empty()) {
        std::string error;
        written = storeToDisk(key, dir, kernel, &error);
        if (!written) {
          writeFailed = true;
          disableDisk(error);
        }
      }
      result = std::move(kernel);
    }
  }

  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (result)
      memory_[key] = std::make_shared<const CompiledKernel>(*result);
    inFlight_.erase(key);
    stats_.diskHits += diskHit;
    stats_.misses += compiled;
    stats_.compileFailures += compiled && !result;
    stats_.corruptEntries += corrupt;
    stats_.diskWrites += written;
    stats_.diskWriteFailures += writeFailed;
  }
  promise.set_value(result);
  return result;
}

StatusOr<CompiledKernel> KernelCache::getOrCompile(CompileRequest request) {
  StatusOr<const Nvrtc *> nvrtc = Nvrtc::get();
  if (!nvrtc)
    return nvrtc.status();
  const Nvrtc *compiler = *nvrtc;
  request.toolchainVersion = compiler->versionString();
  return getOrCompile(
      request, [compiler](const CompileRequest &r) -> StatusOr<CompileOutput> {
        NvrtcOptions options;
        options.arch = r.arch;
        options.extraOptions = r.options;
        StatusOr<NvrtcOutput> out =
            compiler->compile(r.source, r.programName, options);
        if (!out)
          return out.status();
        CompileOutput result;
        result.binary = std::move(out->binary);
        result.isCubin = out->isCubin;
        result.log = std::move(out->log);
        result.compileSeconds = out->compileSeconds;
        return result;
      });
}

} // namespace rt
} // namespace fp
