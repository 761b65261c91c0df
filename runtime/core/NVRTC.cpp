//===- NVRTC.cpp - NVRTC, loaded at run time ------------------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// nvrtc.h is included for its types only; every entry point is dlsym'ed so
// the library has no link-time dependency on libnvrtc.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/nvrtc.h"

#include "DynamicLibrary.h"
#include "flashprefill/runtime/embedded_headers.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <dlfcn.h>
#include <mutex>
#include <nvrtc.h>
#include <sys/stat.h>

namespace fp {
namespace rt {

struct Nvrtc::Api {
  decltype(&::nvrtcVersion) version = nullptr;
  decltype(&::nvrtcGetErrorString) getErrorString = nullptr;
  decltype(&::nvrtcCreateProgram) createProgram = nullptr;
  decltype(&::nvrtcDestroyProgram) destroyProgram = nullptr;
  decltype(&::nvrtcCompileProgram) compileProgram = nullptr;
  decltype(&::nvrtcGetProgramLogSize) getProgramLogSize = nullptr;
  decltype(&::nvrtcGetProgramLog) getProgramLog = nullptr;
  decltype(&::nvrtcGetPTXSize) getPTXSize = nullptr;
  decltype(&::nvrtcGetPTX) getPTX = nullptr;
  decltype(&::nvrtcGetCUBINSize) getCUBINSize = nullptr;
  decltype(&::nvrtcGetCUBIN) getCUBIN = nullptr;
  decltype(&::nvrtcAddNameExpression) addNameExpression = nullptr;
  decltype(&::nvrtcGetLoweredName) getLoweredName = nullptr;
  // Optional (NVRTC 11.2+): the real archs this NVRTC can compile for.
  decltype(&::nvrtcGetNumSupportedArchs) getNumSupportedArchs = nullptr;
  decltype(&::nvrtcGetSupportedArchs) getSupportedArchs = nullptr;
};

namespace {

bool isFile(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool isDirectory(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string parentDir(const std::string &path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// Candidate include directories for cuda_fp16.h, in search order (see
/// nvrtc.h).
std::vector<std::string> includeCandidates(const std::string &libraryPath) {
  std::vector<std::string> dirs;
  if (std::string env = detail::getEnv("FLASHPREFILL_CUDA_INCLUDE");
      !env.empty())
    dirs.push_back(env);
  for (const char *var : {"CUDA_HOME", "CUDA_PATH"})
    if (std::string root = detail::getEnv(var); !root.empty())
      dirs.push_back(root + "/include");
  if (!libraryPath.empty()) {
    std::string libDir = parentDir(libraryPath);
    // <root>/lib64/libnvrtc.so and <root>/targets/<triple>/lib/libnvrtc.so.
    dirs.push_back(parentDir(libDir) + "/include");
    dirs.push_back(parentDir(parentDir(libDir)) + "/include");
  }
  dirs.push_back("/usr/local/cuda/include");
#ifdef FP_CUDA_TOOLKIT_INCLUDE_DIR
  dirs.push_back(FP_CUDA_TOOLKIT_INCLUDE_DIR);
#endif
  return dirs;
}

/// The embedded headers with relative includes rewritten to rooted "fp/..."
/// names (see embedded_headers.h), in table order; built once.
const std::vector<std::string> &nvrtcHeaderContents() {
  static const std::vector<std::string> *contents = [] {
    auto *out = new std::vector<std::string>();
    auto isEmbedded = [](const std::string &name) {
      return findEmbeddedHeader(name) != nullptr;
    };
    for (size_t i = 0; i < embeddedHeaderCount(); ++i) {
      const EmbeddedHeader &header = embeddedHeader(i);
      out->push_back(rewriteRelativeIncludes(
          std::string_view(header.contents, header.size), header.name,
          isEmbedded));
    }
    return out;
  }();
  return *contents;
}

} // namespace

Status validateArch(std::string_view arch) {
  std::string_view digits;
  if (arch.substr(0, 3) == "sm_")
    digits = arch.substr(3);
  else if (arch.substr(0, 8) == "compute_")
    digits = arch.substr(8);
  if (!digits.empty() && (digits.back() == 'a' || digits.back() == 'f'))
    digits.remove_suffix(1);
  bool ok = digits.size() >= 2;
  for (char c : digits)
    ok = ok && std::isdigit(static_cast<unsigned char>(c));
  if (ok)
    return Status::ok();
  return invalidArgument("arch: expected sm_<XY>[a|f] (CUBIN) or "
                         "compute_<XY>[a|f] (PTX), e.g. sm_90a, got '" +
                         std::string(arch) + "'");
}

Nvrtc::Nvrtc() : api_(std::make_unique<Api>()) {}

Nvrtc::~Nvrtc() {
  // The process-wide instance is never destroyed (see get()), so this only
  // closes libraries loaded by load() for tests and tools.
  if (handle_)
    dlclose(handle_);
}

std::vector<std::string> Nvrtc::defaultCandidates() {
  std::vector<std::string> candidates;
  if (std::string env = detail::getEnv("FLASHPREFILL_NVRTC_PATH"); !env.empty())
    candidates.push_back(env);
  candidates.push_back("libnvrtc.so.13");
  candidates.push_back("libnvrtc.so");
  if (std::string home = detail::getEnv("CUDA_HOME"); !home.empty()) {
    candidates.push_back(home + "/lib64/libnvrtc.so.13");
    candidates.push_back(home + "/lib64/libnvrtc.so");
  }
  candidates.push_back("/usr/local/cuda/lib64/libnvrtc.so.13");
  candidates.push_back("/usr/local/cuda/lib64/libnvrtc.so");
  return candidates;
}

StatusOr<std::unique_ptr<Nvrtc>>
Nvrtc::load(const std::vector<std::string> &candidates) {
  detail::OpenedLibrary opened = detail::openFirst(candidates);
  if (!opened.handle)
    return Status(StatusCode::kNotFound,
                  "NVRTC not found: tried " +
                      detail::join(opened.failures, ", ") +
                      "; install the CUDA 13 NVRTC library or set "
                      "FLASHPREFILL_NVRTC_PATH or CUDA_HOME");

  std::unique_ptr<Nvrtc> nvrtc(new Nvrtc());
  nvrtc->handle_ = opened.handle;
  Api &api = *nvrtc->api_;
  std::vector<std::string> missing;
  auto resolve = [&](auto &slot, const char *name) {
    void *symbol = dlsym(opened.handle, name);
    if (!symbol)
      missing.push_back(name);
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(symbol);
  };
  resolve(api.version, "nvrtcVersion");
  resolve(api.getErrorString, "nvrtcGetErrorString");
  resolve(api.createProgram, "nvrtcCreateProgram");
  resolve(api.destroyProgram, "nvrtcDestroyProgram");
  resolve(api.compileProgram, "nvrtcCompileProgram");
  resolve(api.getProgramLogSize, "nvrtcGetProgramLogSize");
  resolve(api.getProgramLog, "nvrtcGetProgramLog");
  resolve(api.getPTXSize, "nvrtcGetPTXSize");
  resolve(api.getPTX, "nvrtcGetPTX");
  resolve(api.getCUBINSize, "nvrtcGetCUBINSize");
  resolve(api.getCUBIN, "nvrtcGetCUBIN");
  resolve(api.addNameExpression, "nvrtcAddNameExpression");
  resolve(api.getLoweredName, "nvrtcGetLoweredName");
  api.getNumSupportedArchs = reinterpret_cast<decltype(
      api.getNumSupportedArchs)>(dlsym(opened.handle,
                                       "nvrtcGetNumSupportedArchs"));
  api.getSupportedArchs = reinterpret_cast<decltype(api.getSupportedArchs)>(
      dlsym(opened.handle, "nvrtcGetSupportedArchs"));
  if (!missing.empty())
    return Status(StatusCode::kNotFound,
                  "NVRTC at '" + opened.candidate +
                      "' lacks symbols: " + detail::join(missing, ", ") +
                      " (expected NVRTC 11.1 or newer)");

  if (api.version(&nvrtc->major_, &nvrtc->minor_) != NVRTC_SUCCESS)
    return Status(StatusCode::kInternal, "nvrtcVersion failed");
  int numArchs = 0;
  if (api.getNumSupportedArchs && api.getSupportedArchs &&
      api.getNumSupportedArchs(&numArchs) == NVRTC_SUCCESS && numArchs > 0 &&
      numArchs < 1024) {
    nvrtc->supportedArchs_.resize(size_t(numArchs));
    if (api.getSupportedArchs(nvrtc->supportedArchs_.data()) != NVRTC_SUCCESS)
      nvrtc->supportedArchs_.clear();
  }
  nvrtc->libraryPath_ =
      detail::libraryPathOf(reinterpret_cast<void *>(api.version));
  if (nvrtc->libraryPath_.empty())
    nvrtc->libraryPath_ = opened.candidate;

  for (const std::string &dir : includeCandidates(nvrtc->libraryPath_)) {
    nvrtc->searchedIncludeDirs_.push_back(dir);
    if (isFile(dir + "/cuda_fp16.h")) {
      nvrtc->cudaIncludeDir_ = dir;
      break;
    }
  }
  return nvrtc;
}

StatusOr<const Nvrtc *> Nvrtc::get() {
  // Loaded once; intentionally leaked so kernels compiled during static
  // destruction (or by other libraries' atexit handlers) still work.
  static std::once_flag once;
  static StatusOr<const Nvrtc *> *instance = nullptr;
  std::call_once(once, [] {
    StatusOr<std::unique_ptr<Nvrtc>> loaded = load(defaultCandidates());
    if (loaded)
      instance = new StatusOr<const Nvrtc *>(loaded->release());
    else
      instance = new StatusOr<const Nvrtc *>(loaded.status());
  });
  return *instance;
}

std::string Nvrtc::versionString() const {
  return "nvrtc-" + std::to_string(major_) + "." + std::to_string(minor_);
}

std::vector<std::string>
Nvrtc::buildOptions(const NvrtcOptions &options) const {
  std::vector<std::string> args;
  args.push_back("-arch=" + options.arch);
  args.push_back("-std=c++17");
  // Every function is device code: generated sources need no __device__ on
  // helpers, and host-only declarations cannot slip in.
  args.push_back("-default-device");
  if (options.fastMath)
    args.push_back("--use_fast_math");
  if (options.lineInfo)
    args.push_back("-lineinfo");
  if (options.ptxasVerbose) {
    args.push_back("-Xptxas");
    args.push_back("-v");
  }
  if (!cudaIncludeDir_.empty()) {
    args.push_back("-I" + cudaIncludeDir_);
    if (isDirectory(cudaIncludeDir_ + "/cccl"))
      args.push_back("-I" + cudaIncludeDir_ + "/cccl");
  }
  for (const std::string &extra : options.extraOptions)
    args.push_back(extra);
  // NVRTC 12.9+ keeps its own on-disk cache of compiled programs (where a
  // driver is present); a hit skips ptxas and so its -v report, which the
  // spill gate, fp-tune's spill pruning and the kernel cache's resource
  // report read. Seen on an H200: a second run of FPRuntimeTests on the same
  // machine got empty reports. Our kernel cache already caches the output,
  // so NVRTC's cache only hides the report.
  const bool wantsPtxasReport =
      std::find(args.begin(), args.end(), "-v") != args.end() ||
      std::find(args.begin(), args.end(), "--verbose") != args.end();
  if (wantsPtxasReport && (major_ > 12 || (major_ == 12 && minor_ >= 9)) &&
      std::find(args.begin(), args.end(), "--no-cache") == args.end())
    args.push_back("--no-cache");
  return args;
}

StatusOr<NvrtcOutput> Nvrtc::compile(std::string_view source,
                                     std::string_view programName,
                                     const NvrtcOptions &options) const {
  FP_RETURN_IF_ERROR(validateArch(options.arch));
  const Api &api = *api_;
  NvrtcOutput out;
  out.isCubin = options.arch.substr(0, 3) == "sm_";
  out.options = buildOptions(options);

  const std::vector<std::string> &headers = nvrtcHeaderContents();
  std::vector<const char *> headerData, headerNames;
  for (size_t i = 0; i < embeddedHeaderCount(); ++i) {
    headerData.push_back(headers[i].c_str());
    headerNames.push_back(embeddedHeader(i).name);
  }

  std::string sourceText(source), name(programName);
  nvrtcProgram program = nullptr;
  nvrtcResult rc = api.createProgram(&program, sourceText.c_str(), name.c_str(),
                                     int(headerData.size()), headerData.data(),
                                     headerNames.data());
  if (rc != NVRTC_SUCCESS)
    return Status(StatusCode::kInternal,
                  std::string("nvrtcCreateProgram failed: ") +
                      api.getErrorString(rc));
  // Destroy the program on every path out of this function.
  struct ProgramGuard {
    const Api &api;
    nvrtcProgram &program;
    ~ProgramGuard() { api.destroyProgram(&program); }
  } guard{api, program};

  for (const std::string &expr : options.nameExpressions)
    if ((rc = api.addNameExpression(program, expr.c_str())) != NVRTC_SUCCESS)
      return Status(StatusCode::kInternal,
                    "nvrtcAddNameExpression('" + expr +
                        "') failed: " + api.getErrorString(rc));

  std::vector<const char *> argv;
  for (const std::string &arg : out.options)
    argv.push_back(arg.c_str());
  auto start = std::chrono::steady_clock::now();
  nvrtcResult compiled =
      api.compileProgram(program, int(argv.size()), argv.data());
  out.compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  size_t logSize = 0;
  if (api.getProgramLogSize(program, &logSize) == NVRTC_SUCCESS &&
      logSize > 1) {
    out.log.resize(logSize);
    if (api.getProgramLog(program, &out.log[0]) != NVRTC_SUCCESS)
      out.log.clear();
    while (!out.log.empty() && out.log.back() == '\0')
      out.log.pop_back();
  }

  if (compiled != NVRTC_SUCCESS) {
    std::string message = "NVRTC failed to compile '" + name + "' for " +
                          options.arch + " (" + api.getErrorString(compiled) +
                          "):\n" + out.log;
    if (cudaIncludeDir_.empty())
      message += "\nnote: no CUDA include directory with cuda_fp16.h was "
                 "found (searched: " +
                 detail::join(searchedIncludeDirs_, ", ") +
                 "); set CUDA_HOME or FLASHPREFILL_CUDA_INCLUDE";
    return Status(StatusCode::kCompileError, message);
  }

  size_t size = 0;
  if (out.isCubin) {
    rc = api.getCUBINSize(program, &size);
    if (rc == NVRTC_SUCCESS) {
      out.binary.resize(size);
      rc = api.getCUBIN(program, &out.binary[0]);
    }
  } else {
    rc = api.getPTXSize(program, &size);
    if (rc == NVRTC_SUCCESS) {
      out.binary.resize(size);
      rc = api.getPTX(program, &out.binary[0]);
    }
    // NVRTC's PTX size counts the terminating NUL; ptxas rejects a file
    // holding it ("Unexpected EOF"). std::string still NUL-terminates
    // data(), which is what cuModuleLoadData needs.
    while (!out.binary.empty() && out.binary.back() == '\0')
      out.binary.pop_back();
  }
  if (rc != NVRTC_SUCCESS)
    return Status(StatusCode::kInternal,
                  std::string("retrieving the ") +
                      (out.isCubin ? "CUBIN" : "PTX") +
                      " failed: " + api.getErrorString(rc));
  if (out.binary.empty())
    return Status(StatusCode::kInternal,
                  "NVRTC produced an empty " +
                      std::string(out.isCubin ? "CUBIN" : "PTX") + " for " +
                      options.arch);

  for (const std::string &expr : options.nameExpressions) {
    const char *lowered = nullptr;
    if ((rc = api.getLoweredName(program, expr.c_str(), &lowered)) !=
        NVRTC_SUCCESS)
      return Status(StatusCode::kInternal,
                    "nvrtcGetLoweredName('" + expr +
                        "') failed: " + api.getErrorString(rc));
    out.loweredNames.emplace_back(expr, lowered);
  }
  out.resources = parsePtxasReport(out.log);
  return out;
}

} // namespace rt
} // namespace fp
