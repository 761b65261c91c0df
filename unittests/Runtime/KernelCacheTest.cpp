//===- KernelCacheTest.cpp - Memory + disk kernel cache -------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Most tests use a fake compile function (deterministic bytes, counted
// calls) so they exercise the cache, not NVRTC; one end-to-end test uses
// NVRTC when it is present.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/kernel_cache.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <gtest/gtest.h>
#include <map>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace fp;
using namespace fp::rt;
namespace fs = std::filesystem;

namespace {

/// A fresh directory under the system temp dir, removed afterwards.
class TempDir {
public:
  TempDir() {
    std::string pattern =
        (fs::temp_directory_path() / "fp-cache-test-XXXXXX").string();
    path_ = mkdtemp(&pattern[0]) ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  const std::string &path() const { return path_; }

private:
  std::string path_;
};

CompileRequest makeRequest(const std::string &source = "kernel A") {
  CompileRequest request;
  request.source = source;
  request.arch = "sm_90a";
  request.options = {"-Xptxas", "-v"};
  request.codegenVersion = "test-codegen-1";
  request.toolchainVersion = "fake-1.0";
  request.manifest = "entry: fp_test\n";
  return request;
}

/// A compile function whose output depends only on the request, counting
/// its calls.
struct FakeCompiler {
  std::atomic<int> calls{0};
  int sleepMs = 0;
  CompileFn fn() {
    return [this](const CompileRequest &r) -> StatusOr<CompileOutput> {
      ++calls;
      if (sleepMs)
        std::this_thread::sleep_for(std::chrono::milliseconds(sleepMs));
      CompileOutput out;
      out.binary =
          "BINARY[" + r.arch + "|" + r.source + "]" + std::string(3000, 'x');
      out.isCubin = true;
      out.log = "ptxas info    : Compiling entry function 'fp_test' for '" +
                r.arch +
                "'\nptxas info    : Used 42 registers, used 1 barriers, "
                "2048 bytes smem\n";
      out.compileSeconds = 0.001;
      return out;
    };
  }
};

CacheConfig configFor(const std::string &dir,
                      std::vector<std::string> *warnings = nullptr) {
  CacheConfig config;
  config.directory = dir;
  config.warn = [warnings](const std::string &message) {
    if (warnings)
      warnings->push_back(message);
  };
  return config;
}

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::vector<std::string> listDir(const std::string &dir) {
  std::vector<std::string> names;
  for (const auto &entry : fs::directory_iterator(dir))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// First request compiles and writes an entry; the second is a memory hit
// with identical bytes, manifest, log and parsed resources.
TEST(KernelCacheTest, MissThenMemoryHit) {
  TempDir dir;
  FakeCompiler compiler;
  KernelCache cache(configFor(dir.path()));
  StatusOr<CompiledKernel> first =
      cache.getOrCompile(makeRequest(), compiler.fn());
  ASSERT_TRUE(first) << first.status().toString();
  EXPECT_EQ(first->origin, CacheOrigin::kCompiled);
  EXPECT_EQ(first->manifest, "entry: fp_test\n");
  ASSERT_EQ(first->resources.size(), 1u);
  EXPECT_EQ(first->resources[0].registers, 42);
  StatusOr<CompiledKernel> second =
      cache.getOrCompile(makeRequest(), compiler.fn());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->origin, CacheOrigin::kMemory);
  EXPECT_EQ(second->binary, first->binary);
  EXPECT_EQ(second->key, first->key);
  EXPECT_EQ(compiler.calls, 1);
  CacheStats stats = cache.stats();
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.memoryHits, 1u);
  EXPECT_EQ(stats.diskWrites, 1u);
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{first->key + ".fpk"});
}

// A second cache (a new process, in effect) on the same directory is served
// from disk without compiling, including manifest, log and resources.
TEST(KernelCacheTest, DiskHitAcrossInstances) {
  TempDir dir;
  FakeCompiler compiler;
  std::string binary;
  {
    KernelCache cache(configFor(dir.path()));
    StatusOr<CompiledKernel> k =
        cache.getOrCompile(makeRequest(), compiler.fn());
    ASSERT_TRUE(k);
    binary = k->binary;
  }
  KernelCache cache(configFor(dir.path()));
  StatusOr<CompiledKernel> k = cache.getOrCompile(makeRequest(), compiler.fn());
  ASSERT_TRUE(k) << k.status().toString();
  EXPECT_EQ(k->origin, CacheOrigin::kDisk);
  EXPECT_EQ(k->binary, binary);
  EXPECT_TRUE(k->isCubin);
  EXPECT_EQ(k->manifest, "entry: fp_test\n");
  ASSERT_EQ(k->resources.size(), 1u);
  EXPECT_EQ(k->resources[0].sharedMemBytes, 2048);
  EXPECT_EQ(compiler.calls, 1);
  EXPECT_EQ(cache.stats().diskHits, 1u);
}

/// Runs `damage` on the entry written for makeRequest(), then checks that a
/// fresh cache treats it as a miss, recompiles and rewrites a valid entry.
void expectDamagedEntryRecompiled(
    const std::function<void(const std::string &path)> &damage) {
  TempDir dir;
  FakeCompiler compiler;
  std::string path;
  {
    KernelCache cache(configFor(dir.path()));
    StatusOr<CompiledKernel> k =
        cache.getOrCompile(makeRequest(), compiler.fn());
    ASSERT_TRUE(k);
    path = cache.entryPath(k->key);
  }
  std::string original = readFile(path);
  damage(path);
  {
    KernelCache cache(configFor(dir.path()));
    StatusOr<CompiledKernel> k =
        cache.getOrCompile(makeRequest(), compiler.fn());
    ASSERT_TRUE(k) << k.status().toString();
    EXPECT_EQ(k->origin, CacheOrigin::kCompiled);
    EXPECT_EQ(compiler.calls, 2);
    EXPECT_EQ(cache.stats().corruptEntries, 1u);
    EXPECT_EQ(cache.stats().diskWrites, 1u);
  }
  EXPECT_EQ(readFile(path), original) << "entry was not rewritten";
  KernelCache cache(configFor(dir.path()));
  StatusOr<CompiledKernel> k = cache.getOrCompile(makeRequest(), compiler.fn());
  ASSERT_TRUE(k);
  EXPECT_EQ(k->origin, CacheOrigin::kDisk);
}

// A flipped payload byte fails the checksum: miss, recompile, rewrite.
TEST(KernelCacheTest, CorruptPayloadIsRecompiled) {
  expectDamagedEntryRecompiled([](const std::string &path) {
    std::string bytes = readFile(path);
    bytes[bytes.size() / 2] ^= 0x5a;
    writeFile(path, bytes);
  });
}

// A bad magic number is a miss.
TEST(KernelCacheTest, BadMagicIsRecompiled) {
  expectDamagedEntryRecompiled([](const std::string &path) {
    std::string bytes = readFile(path);
    bytes[0] = 'X';
    writeFile(path, bytes);
  });
}

// An entry cut short (as by a crash or full disk) fails the size check.
TEST(KernelCacheTest, TruncatedEntryIsRecompiled) {
  expectDamagedEntryRecompiled([](const std::string &path) {
    std::string bytes = readFile(path);
    writeFile(path, bytes.substr(0, bytes.size() - 100));
  });
}

// An entry shorter than its header (or empty) is a miss, not a crash.
TEST(KernelCacheTest, EntryShorterThanHeaderIsRecompiled) {
  expectDamagedEntryRecompiled(
      [](const std::string &path) { writeFile(path, "FPKC"); });
}

// A valid entry of another key copied under this key's name fails the key
// check.
TEST(KernelCacheTest, EntryWithWrongKeyIsRecompiled) {
  expectDamagedEntryRecompiled([](const std::string &path) {
    TempDir other;
    FakeCompiler compiler;
    KernelCache cache(configFor(other.path()));
    StatusOr<CompiledKernel> k =
        cache.getOrCompile(makeRequest("kernel B"), compiler.fn());
    ASSERT_TRUE(k);
    writeFile(path, readFile(cache.entryPath(k->key)));
  });
}

// A FIFO under an entry's name (left by a user or an attacker with access
// to the cache directory) used to block open() forever, and with it every
// thread asking for that key. Now it is a corrupt entry: named in a warning,
// recompiled, and the new entry replaces it. If the cache does block, the
// guard opens the FIFO for writing, which releases the reader, and fails.
TEST(KernelCacheTest, FifoAtEntryPathIsRecompiledWithoutBlocking) {
  TempDir dir;
  FakeCompiler compiler;
  std::string path =
      dir.path() + "/" + KernelCache::computeKey(makeRequest()) + ".fpk";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  std::vector<std::string> warnings;
  KernelCache cache(configFor(dir.path(), &warnings));
  std::vector<std::future<bool>> requests;
  for (int i = 0; i < 4; ++i)
    requests.push_back(std::async(std::launch::async, [&] {
      return bool(cache.getOrCompile(makeRequest(), compiler.fn()));
    }));
  bool blocked = false;
  for (std::future<bool> &request : requests)
    if (request.wait_for(std::chrono::seconds(10)) !=
        std::future_status::ready)
      blocked = true;
  if (blocked) {
    ADD_FAILURE() << "getOrCompile blocked on a FIFO at " << path;
    int writer = open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0)
      close(writer);
  }
  for (std::future<bool> &request : requests)
    EXPECT_TRUE(request.get());
  EXPECT_EQ(compiler.calls, 1);
  EXPECT_EQ(cache.stats().corruptEntries, 1u);
  EXPECT_EQ(cache.stats().diskWrites, 1u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(path + "' is a FIFO, not a regular file"),
            std::string::npos)
      << warnings[0];
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode)) << "the new entry replaces the FIFO";
}

// A directory under an entry's name cannot be replaced by rename(): the
// entry is corrupt, and the failed write degrades the cache to memory only;
// every request succeeds.
TEST(KernelCacheTest, DirectoryAtEntryPathIsNamedAndSkipped) {
  TempDir dir;
  FakeCompiler compiler;
  std::string path =
      dir.path() + "/" + KernelCache::computeKey(makeRequest()) + ".fpk";
  ASSERT_EQ(mkdir(path.c_str(), 0755), 0);
  std::vector<std::string> warnings;
  KernelCache cache(configFor(dir.path(), &warnings));
  StatusOr<CompiledKernel> k = cache.getOrCompile(makeRequest(), compiler.fn());
  ASSERT_TRUE(k) << k.status().toString();
  EXPECT_EQ(k->origin, CacheOrigin::kCompiled);
  EXPECT_EQ(cache.stats().corruptEntries, 1u);
  ASSERT_GE(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("is a directory, not a regular file"),
            std::string::npos)
      << warnings[0];
}

// Several processes compiling the same key into one directory at the same
// time all succeed, leave exactly one valid entry and no temp files.
TEST(KernelCacheTest, ConcurrentProcessesSameKey) {
  TempDir dir;
  constexpr int kChildren = 8;
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0) << "fork failed";
    if (pid == 0) {
      // Child: no gtest assertions, only an exit code.
      FakeCompiler compiler;
      compiler.sleepMs = 50; // widen the window in which writers overlap
      KernelCache cache(configFor(dir.path()));
      StatusOr<CompiledKernel> k =
          cache.getOrCompile(makeRequest(), compiler.fn());
      bool ok = k && k->binary.rfind("BINARY[sm_90a|kernel A]", 0) == 0 &&
                cache.stats().diskWriteFailures == 0;
      _exit(ok ? 0 : 1);
    }
    children.push_back(pid);
  }
  int failures = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    failures += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(failures, 0);
  std::string key = KernelCache::computeKey(makeRequest());
  EXPECT_EQ(listDir(dir.path()), std::vector<std::string>{key + ".fpk"});
  FakeCompiler compiler;
  KernelCache cache(configFor(dir.path()));
  StatusOr<CompiledKernel> k = cache.getOrCompile(makeRequest(), compiler.fn());
  ASSERT_TRUE(k);
  EXPECT_EQ(k->origin, CacheOrigin::kDisk);
  EXPECT_EQ(compiler.calls, 0);
}

// Threads asking for the same key at once share one compile.
TEST(KernelCacheTest, ConcurrentThreadsShareOneCompile) {
  TempDir dir;
  FakeCompiler compiler;
  compiler.sleepMs = 100;
  KernelCache cache(configFor(dir.path()));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      StatusOr<CompiledKernel> k =
          cache.getOrCompile(makeRequest(), compiler.fn());
      ok += bool(k);
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(compiler.calls, 1);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().memoryHits, 7u);
}

// An unusable directory degrades to memory-only with exactly one warning,
// and every request still succeeds. chmod 0555 does not stop root, so when
// the chmod'ed directory is still writable the cache dir is put below a
// regular file instead (mkdir fails with ENOTDIR for everyone).
TEST(KernelCacheTest, UnwritableDirectoryWarnsOnceAndUsesMemory) {
  TempDir dir;
  std::string cacheDir = dir.path() + "/ro";
  ASSERT_EQ(mkdir(cacheDir.c_str(), 0755), 0);
  ASSERT_EQ(chmod(cacheDir.c_str(), 0555), 0);
  std::string probe = cacheDir + "/probe";
  if (FILE *f = std::fopen(probe.c_str(), "w")) {
    std::fclose(f);
    std::remove(probe.c_str());
    writeFile(dir.path() + "/regular-file", "not a directory");
    cacheDir = dir.path() + "/regular-file/cache";
    std::printf("[          ] chmod 0555 does not block writes here (root?); "
                "using a path below a regular file\n");
  }
  std::vector<std::string> warnings;
  FakeCompiler compiler;
  KernelCache cache(configFor(cacheDir, &warnings));
  for (const char *source : {"k1", "k2", "k3", "k1"}) {
    StatusOr<CompiledKernel> k =
        cache.getOrCompile(makeRequest(source), compiler.fn());
    ASSERT_TRUE(k) << k.status().toString();
  }
  EXPECT_EQ(compiler.calls, 3);
  EXPECT_EQ(cache.stats().memoryHits, 1u);
  EXPECT_EQ(cache.stats().diskWriteFailures, 1u);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(cacheDir), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("memory only"), std::string::npos);
  EXPECT_EQ(cache.directory(), "");
}

// Arch changes the key even when the source is identical.
TEST(KernelCacheTest, ArchChangesKey) {
  CompileRequest a = makeRequest(), b = makeRequest();
  b.arch = "sm_80";
  EXPECT_NE(KernelCache::computeKey(a), KernelCache::computeKey(b));
  b.arch = "compute_90a";
  EXPECT_NE(KernelCache::computeKey(a), KernelCache::computeKey(b));
  // And through getOrCompile: two entries, two compiles.
  TempDir dir;
  FakeCompiler compiler;
  KernelCache cache(configFor(dir.path()));
  b.arch = "sm_80";
  ASSERT_TRUE(cache.getOrCompile(a, compiler.fn()));
  StatusOr<CompiledKernel> kb = cache.getOrCompile(b, compiler.fn());
  ASSERT_TRUE(kb);
  EXPECT_EQ(kb->origin, CacheOrigin::kCompiled);
  EXPECT_EQ(compiler.calls, 2);
  EXPECT_EQ(listDir(dir.path()).size(), 2u);
}

// Options (value, presence and order) change the key.
TEST(KernelCacheTest, OptionsChangeKey) {
  CompileRequest base = makeRequest();
  std::string key = KernelCache::computeKey(base);
  CompileRequest r = base;
  r.options.push_back("--use_fast_math");
  EXPECT_NE(KernelCache::computeKey(r), key);
  r = base;
  r.options = {"-v", "-Xptxas"};
  EXPECT_NE(KernelCache::computeKey(r), key);
  r = base;
  r.options = {"-Xptxas -v"}; // one option vs two: not the same bytes hashed
  EXPECT_NE(KernelCache::computeKey(r), key);
  r = base;
  r.options.clear();
  EXPECT_NE(KernelCache::computeKey(r), key);
}

// Every other key component matters too; an identical request is stable.
TEST(KernelCacheTest, OtherFieldsChangeKey) {
  CompileRequest base = makeRequest();
  std::string key = KernelCache::computeKey(base);
  EXPECT_EQ(KernelCache::computeKey(makeRequest()), key);
  EXPECT_EQ(key.size(), 64u);
  std::vector<std::function<void(CompileRequest &)>> edits = {
      [](CompileRequest &r) { r.source += " "; },
      [](CompileRequest &r) { r.programName = "other.cu"; },
      [](CompileRequest &r) { r.codegenVersion = "test-codegen-2"; },
      [](CompileRequest &r) { r.toolchainVersion = "fake-1.1"; },
      [](CompileRequest &r) { r.manifest += "x"; },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    CompileRequest r = base;
    edits[i](r);
    EXPECT_NE(KernelCache::computeKey(r), key) << "edit " << i;
  }
}

// A failed compile is returned and not cached: the next call compiles again.
TEST(KernelCacheTest, CompileErrorsAreNotCached) {
  TempDir dir;
  int calls = 0;
  CompileFn failing = [&](const CompileRequest &) -> StatusOr<CompileOutput> {
    ++calls;
    return Status(StatusCode::kCompileError, "k.cu(1): error: nope");
  };
  KernelCache cache(configFor(dir.path()));
  for (int i = 0; i < 2; ++i) {
    StatusOr<CompiledKernel> k = cache.getOrCompile(makeRequest(), failing);
    ASSERT_FALSE(k);
    EXPECT_EQ(k.status().code(), StatusCode::kCompileError);
  }
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(cache.stats().compileFailures, 2u);
  EXPECT_TRUE(listDir(dir.path()).empty());
}

// A bad arch is rejected before anything is compiled.
TEST(KernelCacheTest, BadArchIsInvalidArgument) {
  FakeCompiler compiler;
  KernelCache cache(configFor(""));
  CompileRequest r = makeRequest();
  r.arch = "90a";
  StatusOr<CompiledKernel> k = cache.getOrCompile(r, compiler.fn());
  ASSERT_FALSE(k);
  EXPECT_EQ(k.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(compiler.calls, 0);
}

// The directory comes from FLASHPREFILL_CACHE_DIR, then XDG_CACHE_HOME, then
// HOME; FLASHPREFILL_CACHE=off disables the disk level.
TEST(KernelCacheTest, ConfigFromEnvironment) {
  auto config = [](std::map<std::string, std::string> env) {
    return CacheConfig::fromEnvironment([env](const char *name) {
             auto it = env.find(name);
             return it == env.end() ? std::string() : it->second;
           })
        .directory;
  };
  EXPECT_EQ(config({{"HOME", "/h"}}), "/h/.cache/flashprefill");
  EXPECT_EQ(config({{"HOME", "/h"}, {"XDG_CACHE_HOME", "/x"}}),
            "/x/flashprefill");
  EXPECT_EQ(config({{"HOME", "/h"},
                    {"XDG_CACHE_HOME", "/x"},
                    {"FLASHPREFILL_CACHE_DIR", "/d"}}),
            "/d");
  EXPECT_EQ(config({{"HOME", "/h"}, {"FLASHPREFILL_CACHE", "off"}}), "");
  EXPECT_EQ(
      config({{"FLASHPREFILL_CACHE_DIR", "/d"}, {"FLASHPREFILL_CACHE", "OFF"}}),
      "");
  EXPECT_EQ(config({{"HOME", "/h"}, {"FLASHPREFILL_CACHE", "on"}}),
            "/h/.cache/flashprefill");
  EXPECT_EQ(config({}), "");
}

// With the disk level off nothing touches the file system and memory hits
// still work.
TEST(KernelCacheTest, MemoryOnlyWhenDiskOff) {
  FakeCompiler compiler;
  std::vector<std::string> warnings;
  KernelCache cache(configFor("", &warnings));
  ASSERT_TRUE(cache.getOrCompile(makeRequest(), compiler.fn()));
  StatusOr<CompiledKernel> k = cache.getOrCompile(makeRequest(), compiler.fn());
  ASSERT_TRUE(k);
  EXPECT_EQ(k->origin, CacheOrigin::kMemory);
  EXPECT_EQ(cache.entryPath(k->key), "");
  EXPECT_TRUE(warnings.empty());
}

// End to end with NVRTC: a cold compile, then a new cache instance served
// from disk; prints both times (the design target for a warm plan is 5 ms).
TEST(KernelCacheTest, NvrtcColdThenWarmDisk) {
  StatusOr<const Nvrtc *> nvrtc = Nvrtc::get();
  if (!nvrtc)
    GTEST_SKIP() << "NVRTC unavailable: " << nvrtc.status().toString();
  TempDir dir;
  CompileRequest request;
  request.source = "#include \"fp/params.h\"\n#include <cuda_bf16.h>\n"
                   "extern \"C\" __global__ void fp_k(FpPoolParams p) {\n"
                   "  if (p.src == p.dst) *(int *)p.dst = p.batch;\n}\n";
  request.arch = "sm_90a";
  request.options = {"-Xptxas", "-v"};
  request.codegenVersion = "test";
  auto t0 = std::chrono::steady_clock::now();
  {
    KernelCache cache(configFor(dir.path()));
    StatusOr<CompiledKernel> k = cache.getOrCompile(request);
    ASSERT_TRUE(k) << k.status().toString();
    EXPECT_EQ(k->origin, CacheOrigin::kCompiled);
    ASSERT_EQ(k->resources.size(), 1u) << k->log;
    EXPECT_EQ(k->resources[0].kernel, "fp_k");
  }
  auto t1 = std::chrono::steady_clock::now();
  KernelCache cache(configFor(dir.path()));
  StatusOr<CompiledKernel> k = cache.getOrCompile(request);
  auto t2 = std::chrono::steady_clock::now();
  ASSERT_TRUE(k) << k.status().toString();
  EXPECT_EQ(k->origin, CacheOrigin::kDisk);
  ASSERT_EQ(k->resources.size(), 1u);
  EXPECT_EQ(k->binary.substr(0, 4), "\x7f"
                                    "ELF");
  std::printf("[          ] cache: cold NVRTC compile + write %.1f ms, warm "
              "disk hit %.3f ms (%zu-byte CUBIN)\n",
              std::chrono::duration<double, std::milli>(t1 - t0).count(),
              std::chrono::duration<double, std::milli>(t2 - t1).count(),
              k->binary.size());
}

} // namespace
