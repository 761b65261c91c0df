//===- CacheStressWorker.cpp - One process of the kernel-cache stress test ===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Started by CacheStressTest (several at once, some killed with SIGKILL):
//
//   fp-cache-stress-worker <cache-dir> <compiler> <action> <spec>...
//
// compiler: nvrtc  real NVRTC, as CudaPlan compiles (kNotFound: exit 77)
//           fake   a 1 s sleep, deterministic bytes
//           large  like fake, with a 96 MiB binary (a long write window)
//           A suffix ":<ms>" (nvrtc:500) first sleeps that long inside the
//           compile function, so a kill timed from "compile <spec>" lands
//           mid-compile however fast NVRTC is on the machine.
// action:   plan    for each spec: codegen (the plan's source and manifest)
//                   then KernelCache::getOrCompile in <cache-dir>
//           verify  for each spec: a disk hit, or an absent entry; never
//                   compiles
// spec:     0..3, small kernel specs (tiny heads; 0 and 2 share everything
//           but the arch, 1 and 3 differ in head dim / block / dtype).
//
// Protocol (stdout, one line each, flushed): "compile <spec>" when a
// compile starts, "done <spec> <origin> <key>" (plan) or "hit|miss|corrupt
// <spec> <key>" (verify). Exit 0: every spec served; 1: an error (printed
// on stderr); 3: the cache warned (it disabled its disk level).
//
// This is the CUDA plan's path minus the driver (CudaPlan::initialize steps
// 1-2), so it runs on machines without a GPU.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/kernel_cache.h"
#include "flashprefill/runtime/nvrtc.h"
#include "flashprefill/runtime/sha256.h"
#include "fp/Compiler/Codegen.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace fp;
using namespace fp::rt;

namespace {

codegen::KernelSpec specFor(int id) {
  codegen::KernelSpec spec;
  spec.numQHeads = 2;
  spec.numKvHeads = 1;
  spec.headDim = 64;
  spec.blockSize = 64;
  spec.arch = "sm_80";
  switch (id) {
  case 0:
    break;
  case 1:
    spec.blockSize = 128;
    break;
  case 2:
    spec.arch = "sm_86"; // same source as 0 on mma.sync: only the key differs
    break;
  default:
    spec.headDim = 128;
    spec.dtype = "f16";
    break;
  }
  return spec;
}

[[noreturn]] void fail(int code, const std::string &message) {
  std::fprintf(stderr, "fp-cache-stress-worker: %s\n", message.c_str());
  std::fflush(stdout);
  std::exit(code);
}

void say(const std::string &line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

StatusOr<CompileRequest> requestFor(int id, const std::string &compiler) {
  CompileRequest request;
  if (compiler == "large") {
    // No codegen: the point is the size of the entry.
    request.source = "// large entry " + std::to_string(id);
    request.arch = "sm_80";
    request.codegenVersion = "stress-large";
    request.toolchainVersion = "fake";
    return request;
  }
  auto generated = codegen::generateKernels(specFor(id));
  if (!generated.isOk())
    return generated.status();
  request.source = generated->source;
  request.programName = "fp_prefill.cu";
  request.arch = specFor(id).arch;
  request.codegenVersion = "fp-codegen-1";
  request.manifest = generated->manifest;
  request.toolchainVersion = "fake";
  return request;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 5)
    fail(2, "usage: fp-cache-stress-worker <dir> nvrtc|fake|large "
            "plan|verify <spec>...");
  // A hung worker must not hang the test.
  alarm(240);
  std::string dir = argv[1], compiler = argv[2], action = argv[3];
  int delayMs = 0;
  if (size_t colon = compiler.find(':'); colon != std::string::npos) {
    delayMs = std::atoi(compiler.c_str() + colon + 1);
    compiler.resize(colon);
  }
  std::vector<int> specs;
  for (int i = 4; i < argc; ++i)
    specs.push_back(std::atoi(argv[i]));

  const Nvrtc *nvrtc = nullptr;
  if (compiler == "nvrtc") {
    auto loaded = Nvrtc::get();
    if (!loaded.isOk())
      fail(77, loaded.status().toString());
    nvrtc = *loaded;
  }

  CacheConfig config;
  config.directory = dir;
  config.warn = [](const std::string &message) { fail(3, message); };
  KernelCache cache(config);

  for (int id : specs) {
    auto request = requestFor(id, compiler);
    if (!request.isOk())
      fail(1,
           "spec " + std::to_string(id) + ": " + request.status().toString());
    if (nvrtc)
      request->toolchainVersion = nvrtc->versionString();
    CompileFn compile;
    if (action == "verify") {
      compile = [](const CompileRequest &) -> StatusOr<CompileOutput> {
        return Status(StatusCode::kNotFound, "verify: not in the cache");
      };
    } else if (nvrtc) {
      compile = [id, nvrtc,
                 delayMs](const CompileRequest &r) -> StatusOr<CompileOutput> {
        say("compile " + std::to_string(id));
        std::this_thread::sleep_for(std::chrono::milliseconds(delayMs));
        NvrtcOptions options;
        options.arch = r.arch;
        options.extraOptions = r.options;
        auto out = nvrtc->compile(r.source, r.programName, options);
        if (!out.isOk())
          return out.status();
        CompileOutput result;
        result.binary = std::move(out->binary);
        result.isCubin = out->isCubin;
        result.log = std::move(out->log);
        return result;
      };
    } else {
      bool large = compiler == "large";
      compile = [id,
                 large](const CompileRequest &r) -> StatusOr<CompileOutput> {
        say("compile " + std::to_string(id));
        std::this_thread::sleep_for(std::chrono::seconds(1));
        CompileOutput result;
        result.binary = "FAKE[" + r.arch + "]" + toHex(sha256(r.source));
        if (large)
          result.binary.append(size_t(96) << 20, char('a' + id));
        result.isCubin = true;
        return result;
      };
    }
    uint64_t corruptBefore = cache.stats().corruptEntries;
    auto kernel = cache.getOrCompile(*request, compile);
    std::string key = KernelCache::computeKey(*request);
    if (action == "verify") {
      bool corrupt = cache.stats().corruptEntries > corruptBefore;
      say(std::string(kernel.isOk() ? "hit"
                      : corrupt     ? "corrupt"
                                    : "miss") +
          " " + std::to_string(id) + " " + key);
      continue;
    }
    if (!kernel.isOk())
      fail(1, "spec " + std::to_string(id) + ": " + kernel.status().toString());
    const char *origin = kernel->origin == CacheOrigin::kDisk     ? "disk"
                         : kernel->origin == CacheOrigin::kMemory ? "memory"
                                                                  : "compiled";
    say("done " + std::to_string(id) + " " + origin + " " + key);
  }
  return 0;
}
