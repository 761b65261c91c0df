//===- fuzz_cache_entry.cpp - Kernel-cache entry files on arbitrary bytes -===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The bytes become the entry file of a fixed request in a scratch cache
// directory; a fresh KernelCache (as a new process would) then serves the
// request. Invariants: getOrCompile succeeds; a disk hit returns exactly the
// payload sections of the file; a rejected entry counts as corrupt, is
// recompiled and rewritten so that the next process gets a disk hit; no
// temp file is left behind.
//
// Input: byte 0 selects the mode.
//   even: the rest is the entry file, verbatim (the loader's checks).
//   odd:  the rest is split into flags, binary, manifest and log sections
//         and wrapped in a well-formed header with the right key and
//         payload checksum, then optionally one header field is replaced,
//         so the fuzzer gets past the checksum to the section parsing and
//         the ptxas-report parser (the compile log is stored in the entry).
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"

#include "flashprefill/runtime/kernel_cache.h"
#include "flashprefill/runtime/sha256.h"

#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <unistd.h>

using namespace fp;
using namespace fp::rt;
using fp::fuzz::FuzzInput;

namespace {

const std::string &cacheDir() {
  // Leaked: CleanupAtExit's destructor runs after other statics are gone.
  static const std::string *dir = [] {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp && *tmp ? tmp : "/tmp") + "/fp-fuzz-cache-XXXXXX";
    if (!mkdtemp(&pattern[0]))
      fp::fuzz::fail("mkdtemp failed");
    return new std::string(pattern);
  }();
  return *dir;
}

void removeAll(const std::string &dir) {
  if (DIR *d = opendir(dir.c_str())) {
    while (dirent *e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..")
        unlink((dir + "/" + name).c_str());
    }
    closedir(d);
  }
}

struct CleanupAtExit {
  ~CleanupAtExit() {
    removeAll(cacheDir());
    rmdir(cacheDir().c_str());
  }
};

CompileRequest request() {
  CompileRequest r;
  r.source = "extern \"C\" __global__ void fp_fuzz() {}\n";
  r.programName = "fp_fuzz.cu";
  r.arch = "sm_90a";
  r.options = {"-Xptxas", "-v"};
  r.codegenVersion = "fuzz-1";
  r.toolchainVersion = "fake-1";
  r.manifest = "params_abi 1\n";
  return r;
}

const char kBinary[] = "FAKE-CUBIN";

CompileFn fakeCompiler(int *calls) {
  return [calls](const CompileRequest &) -> StatusOr<CompileOutput> {
    ++*calls;
    CompileOutput out;
    out.binary = kBinary;
    out.isCubin = true;
    out.log = "ptxas info    : Used 8 registers\n";
    return out;
  };
}

CacheConfig config() {
  CacheConfig c;
  c.directory = cacheDir();
  c.warn = [](const std::string &message) {
    fp::fuzz::fail("cache warned (scratch dir must stay usable)", message);
  };
  return c;
}

void putU32(std::string &out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(char(v >> (8 * i)));
}
void putU64(std::string &out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out.push_back(char(v >> (8 * i)));
}

/// A header + payload in the documented format (kernel_cache.h), built from
/// fuzzer-chosen sections, with one field optionally overridden.
std::string wellFormedEntry(FuzzInput &in, const std::string &key) {
  uint32_t flags = in.raw<uint32_t>();
  uint8_t override = in.byte();
  uint64_t overrideValue = in.raw<uint64_t>();
  size_t binarySize = in.range(0, 4096), manifestSize = in.range(0, 4096);
  std::string binary = in.bytes(binarySize);
  std::string manifest = in.bytes(manifestSize);
  std::string log = in.rest();

  Sha256 payload;
  payload.update(binary);
  payload.update(manifest);
  payload.update(log);
  Sha256Digest checksum = payload.finish();

  std::string header = "FPKCACHE";
  putU32(header, override == 1 ? uint32_t(overrideValue) : 1u);
  putU32(header, flags);
  std::string keyBytes;
  for (size_t i = 0; i < 32; ++i)
    keyBytes.push_back(char(std::stoi(key.substr(2 * i, 2), nullptr, 16)));
  header += override == 2 ? std::string(32, char(overrideValue)) : keyBytes;
  putU64(header, override == 3 ? overrideValue : binary.size());
  putU64(header, override == 4 ? overrideValue : manifest.size());
  putU64(header, override == 5 ? overrideValue : log.size());
  header.append(reinterpret_cast<const char *>(checksum.data()), 32);
  if (header.size() != 104)
    fp::fuzz::fail("harness: header size");
  return header + binary + manifest + log;
}

void writeFile(const std::string &path, const std::string &bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    fp::fuzz::fail("harness: cannot write the entry file", path);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0)
      fp::fuzz::fail("harness: short write");
    done += size_t(n);
  }
  ::close(fd);
}

bool hasTempFiles(const std::string &dir) {
  bool found = false;
  if (DIR *d = opendir(dir.c_str())) {
    while (dirent *e = readdir(d))
      found |= std::string(e->d_name).rfind(".tmp-", 0) == 0;
    closedir(d);
  }
  return found;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static CleanupAtExit cleanup;
  static const std::string key = KernelCache::computeKey(request());
  FuzzInput in(data, size);
  bool wellFormed = in.byte() & 1;
  std::string entry = wellFormed ? wellFormedEntry(in, key) : in.rest();

  removeAll(cacheDir());
  std::string path = cacheDir() + "/" + key + ".fpk";
  writeFile(path, entry);

  int calls = 0;
  StatusOr<CompiledKernel> first = [&] {
    KernelCache cache(config());
    return cache.getOrCompile(request(), fakeCompiler(&calls));
  }();
  FP_FUZZ_CHECK(first.isOk(), first.status().toString());
  if (first->origin == CacheOrigin::kDisk) {
    // Served from the file: its sections, and no compile.
    FP_FUZZ_CHECK(calls == 0, "");
    FP_FUZZ_CHECK(!first->binary.empty(), "empty binary served");
    FP_FUZZ_CHECK(104 + first->binary.size() + first->manifest.size() +
                          first->log.size() ==
                      entry.size(),
                  "sections do not add up to the file");
    FP_FUZZ_CHECK(entry.compare(104, first->binary.size(), first->binary) == 0,
                  "binary differs from the file");
  } else {
    FP_FUZZ_CHECK(first->origin == CacheOrigin::kCompiled, "");
    FP_FUZZ_CHECK(calls == 1, "");
    FP_FUZZ_CHECK(first->binary == kBinary, "");
    // The rewritten entry serves the next process.
    KernelCache cache(config());
    StatusOr<CompiledKernel> second =
        cache.getOrCompile(request(), fakeCompiler(&calls));
    FP_FUZZ_CHECK(second.isOk(), second.status().toString());
    FP_FUZZ_CHECK(second->origin == CacheOrigin::kDisk,
                  "the recompiled entry was not rewritten");
    FP_FUZZ_CHECK(second->binary == kBinary, "");
    FP_FUZZ_CHECK(calls == 1, "");
  }
  FP_FUZZ_CHECK(!hasTempFiles(cacheDir()), "temp file left behind");
  return 0;
}
