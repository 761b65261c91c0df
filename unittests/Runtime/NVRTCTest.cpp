//===- NVRTCTest.cpp - NVRTC wrapper --------------------------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Needs libnvrtc (not a GPU); tests skip with a message when it is missing.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/nvrtc.h"
#include "flashprefill/runtime/embedded_headers.h"

#include <algorithm>
#include <cstdio>
#include <gtest/gtest.h>

using namespace fp;
using namespace fp::rt;

namespace {

#define REQUIRE_NVRTC(var)                                                     \
  StatusOr<const Nvrtc *> var##OrError = Nvrtc::get();                         \
  if (!var##OrError)                                                           \
    GTEST_SKIP() << "NVRTC unavailable: " << var##OrError.status().toString(); \
  const Nvrtc *var = *var##OrError

/// A small kernel that reads the shared params contract and uses bf16.
const char kTinyKernel[] = R"(
#include "fp/params.h"
#include <cuda_bf16.h>
extern "C" __global__ void fp_tiny(FpPoolParams p) {
  const __nv_bfloat16 *src = static_cast<const __nv_bfloat16 *>(p.src);
  __nv_bfloat16 *dst = static_cast<__nv_bfloat16 *>(p.dst);
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < p.num_blocks)
    dst[i] = __float2bfloat16(__bfloat162float(src[i]) * 2.0f);
}
)";

// A library that does not exist gives kNotFound listing what was tried.
TEST(NVRTCTest, MissingLibraryIsNotFound) {
  StatusOr<std::unique_ptr<Nvrtc>> nvrtc = Nvrtc::load(
      {"libnvrtc-does-not-exist.so.99", "/nonexistent/libnvrtc.so"});
  ASSERT_FALSE(nvrtc);
  EXPECT_EQ(nvrtc.status().code(), StatusCode::kNotFound);
  EXPECT_NE(nvrtc.status().message().find("NVRTC not found: tried "
                                          "libnvrtc-does-not-exist.so.99"),
            std::string::npos)
      << nvrtc.status().message();
  EXPECT_NE(nvrtc.status().message().find("/nonexistent/libnvrtc.so"),
            std::string::npos);
}

// Arch strings are checked before NVRTC sees them, naming the argument.
TEST(NVRTCTest, ValidateArch) {
  for (const char *good :
       {"sm_80", "sm_90a", "sm_100a", "sm_120f", "compute_80", "compute_90a"})
    EXPECT_TRUE(validateArch(good).isOk()) << good;
  for (const char *bad :
       {"", "sm_", "sm90", "sm_9", "sm_90b", "compute_", "gfx90a", "sm_90a "}) {
    Status status = validateArch(bad);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("arch: expected"), std::string::npos);
  }
}

// NVRTC's version is reported and the library path resolved.
TEST(NVRTCTest, ReportsVersionAndLocation) {
  REQUIRE_NVRTC(nvrtc);
  EXPECT_GE(nvrtc->version().first, 11);
  EXPECT_EQ(nvrtc->versionString().substr(0, 6), "nvrtc-");
  EXPECT_FALSE(nvrtc->libraryPath().empty());
  std::printf("[          ] %s from %s; CUDA include dir: '%s'\n",
              nvrtc->versionString().c_str(), nvrtc->libraryPath().c_str(),
              nvrtc->cudaIncludeDir().c_str());
}

// An sm_90a compile yields an ELF CUBIN, with embedded "fp/params.h" and
// cuda_bf16.h both resolving; -Xptxas -v fills the resource report.
TEST(NVRTCTest, CompilesCubinForExactArch) {
  REQUIRE_NVRTC(nvrtc);
  NvrtcOptions options;
  options.arch = "sm_90a";
  options.ptxasVerbose = true;
  StatusOr<NvrtcOutput> out = nvrtc->compile(kTinyKernel, "tiny.cu", options);
  ASSERT_TRUE(out) << out.status().toString();
  EXPECT_TRUE(out->isCubin);
  ASSERT_GE(out->binary.size(), 4u);
  EXPECT_EQ(out->binary.substr(0, 4), "\x7f"
                                      "ELF");
  ASSERT_EQ(out->resources.size(), 1u) << out->log;
  EXPECT_EQ(out->resources[0].kernel, "fp_tiny");
  EXPECT_EQ(out->resources[0].arch, "sm_90a");
  EXPECT_GT(out->resources[0].registers, 0);
  EXPECT_EQ(out->resources[0].spillStoreBytes, 0);
  EXPECT_NE(std::find(out->options.begin(), out->options.end(), "-arch=sm_90a"),
            out->options.end());
  // NVRTC 12.9+ would serve a second compile of this program from its own
  // cache without running ptxas (an empty report): a ptxas report request
  // turns that cache off, and NVRTC accepts the option (the compile above).
  auto [major, minor] = nvrtc->version();
  const bool hasNvrtcCache = major > 12 || (major == 12 && minor >= 9);
  EXPECT_EQ(std::find(out->options.begin(), out->options.end(), "--no-cache") !=
                out->options.end(),
            hasNvrtcCache);
  StatusOr<NvrtcOutput> again = nvrtc->compile(kTinyKernel, "tiny.cu", options);
  ASSERT_TRUE(again) << again.status().toString();
  EXPECT_EQ(again->resources.size(), 1u) << again->log;
  NvrtcOptions quiet = options;
  quiet.ptxasVerbose = false;
  StatusOr<NvrtcOutput> noReport = nvrtc->compile(kTinyKernel, "tiny.cu", quiet);
  ASSERT_TRUE(noReport) << noReport.status().toString();
  EXPECT_EQ(std::find(noReport->options.begin(), noReport->options.end(),
                      "--no-cache"),
            noReport->options.end());
}

// A compute_80 compile yields portable PTX for that virtual arch.
TEST(NVRTCTest, CompilesPtxForVirtualArch) {
  REQUIRE_NVRTC(nvrtc);
  NvrtcOptions options;
  options.arch = "compute_80";
  StatusOr<NvrtcOutput> out = nvrtc->compile(kTinyKernel, "tiny.cu", options);
  ASSERT_TRUE(out) << out.status().toString();
  EXPECT_FALSE(out->isCubin);
  EXPECT_NE(out->binary.find(".target sm_80"), std::string::npos);
  EXPECT_NE(out->binary.find(".entry fp_tiny"), std::string::npos);
  EXPECT_TRUE(out->resources.empty()); // ptxas does not run for PTX
  // NVRTC's PTX size counts a terminating NUL; written to a file it made
  // ptxas fail with "Unexpected EOF".
  EXPECT_EQ(out->binary.find('\0'), std::string::npos);
}

// The real archs this NVRTC compiles for are reported (the runtime compiles
// for a newer GPU's exact arch only when NVRTC lists it).
TEST(NVRTCTest, ReportsSupportedArchs) {
  REQUIRE_NVRTC(nvrtc);
  const std::vector<int> &archs = nvrtc->supportedArchs();
  ASSERT_FALSE(archs.empty());
  EXPECT_NE(std::find(archs.begin(), archs.end(), 80), archs.end());
  EXPECT_NE(std::find(archs.begin(), archs.end(), 90), archs.end());
}

// A syntax error is kCompileError carrying NVRTC's log with file and line.
TEST(NVRTCTest, SyntaxErrorReturnsLogWithLine) {
  REQUIRE_NVRTC(nvrtc);
  NvrtcOptions options;
  options.arch = "sm_80";
  StatusOr<NvrtcOutput> out =
      nvrtc->compile("#include \"fp/params.h\"\n"
                     "extern \"C\" __global__ void k(int *p) {\n"
                     "  p[0] = 1 +;\n"
                     "}\n",
                     "broken_kernel.cu", options);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.status().code(), StatusCode::kCompileError);
  const std::string &message = out.status().message();
  EXPECT_NE(message.find("broken_kernel.cu(3)"), std::string::npos) << message;
  EXPECT_NE(message.find("error"), std::string::npos) << message;
  EXPECT_NE(message.find("for sm_80"), std::string::npos) << message;
}

// A bad arch is rejected with kInvalidArgument before compiling.
TEST(NVRTCTest, BadArchIsInvalidArgument) {
  REQUIRE_NVRTC(nvrtc);
  NvrtcOptions options;
  options.arch = "sm90";
  StatusOr<NvrtcOutput> out = nvrtc->compile(kTinyKernel, "tiny.cu", options);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
}

// Every embedded header compiles on its own under NVRTC, which also checks
// that their relative includes ("../common.cuh", "arch/mma_sm80.cuh")
// resolve from memory: an sm_80 CUBIN, except the sm90 (wgmma/TMA) headers,
// which compile for sm_90a and #error for sm_80 (see
// Sm90CodeForAnotherTargetIsACompileError).
TEST(NVRTCTest, EveryEmbeddedHeaderCompilesAlone) {
  REQUIRE_NVRTC(nvrtc);
  for (size_t i = 0; i < embeddedHeaderCount(); ++i) {
    std::string name = embeddedHeader(i).name;
    NvrtcOptions options;
    options.arch = name.find("sm90") != std::string::npos ? "sm_90a" : "sm_80";
    StatusOr<NvrtcOutput> out =
        nvrtc->compile("#include \"" + name + "\"\n",
                       "include_" + std::to_string(i) + ".cu", options);
    EXPECT_TRUE(out) << name << ": " << out.status().toString();
  }
}

// The Hopper device code (wgmma, setmaxnreg, TMA, mbarrier tx) compiled for
// a target without those features is a compile error naming the needed
// arch. Before the guard NVRTC accepted its inline asm for compute_80 and
// the PTX failed later, in ptxas or the driver.
TEST(NVRTCTest, Sm90CodeForAnotherTargetIsACompileError) {
  REQUIRE_NVRTC(nvrtc);
  // Each sm90 header included directly.
  int sm90Headers = 0;
  for (size_t i = 0; i < embeddedHeaderCount(); ++i) {
    std::string name = embeddedHeader(i).name;
    if (name.find("sm90") == std::string::npos)
      continue;
    ++sm90Headers;
    for (const char *arch : {"sm_80", "compute_80", "sm_90", "compute_90"}) {
      NvrtcOptions options;
      options.arch = arch;
      StatusOr<NvrtcOutput> out =
          nvrtc->compile("#include \"" + name + "\"\n", "sm90.cu", options);
      ASSERT_FALSE(out) << name << " compiled for " << arch;
      EXPECT_EQ(out.status().code(), StatusCode::kCompileError);
      EXPECT_NE(out.status().message().find(
                    name + ": wgmma, setmaxnreg, TMA and mbarrier tx need "
                           "-arch=sm_90a or compute_90a"),
                std::string::npos)
          << out.status().message();
    }
  }
  EXPECT_EQ(sm90Headers, 3);

  // The sm90 attention kernel (kArch 90) through the umbrella header, as the
  // generated glue writes it: compiles for sm_90a, static_asserts elsewhere.
  const std::string kernel =
      "#include \"fp/kernels.cuh\"\n"
      "extern \"C\" __global__ void __launch_bounds__(384, 1)\n"
      "fp_attention(const __grid_constant__ FpAttentionParams params) {\n"
      "  fp::dev::masked_attention<__nv_bfloat16, 128, 128, 128, 128, 12, 2, "
      "90>(params);\n"
      "}\n";
  NvrtcOptions hopper;
  hopper.arch = "sm_90a";
  StatusOr<NvrtcOutput> ok = nvrtc->compile(kernel, "attention.cu", hopper);
  EXPECT_TRUE(ok) << ok.status().toString();
  for (const char *arch : {"sm_80", "compute_80", "sm_90", "sm_100"}) {
    NvrtcOptions options;
    options.arch = arch;
    StatusOr<NvrtcOutput> out = nvrtc->compile(kernel, "attention.cu", options);
    ASSERT_FALSE(out) << "kArch 90 compiled for " << arch;
    EXPECT_NE(out.status().message().find(
                  "masked_attention: kArch 90 (the wgmma/TMA mainloop) needs "
                  "-arch=sm_90a or compute_90a"),
              std::string::npos)
        << out.status().message();
  }
}

// Name expressions give the mangled names of template kernels.
TEST(NVRTCTest, LowersTemplateNameExpressions) {
  REQUIRE_NVRTC(nvrtc);
  NvrtcOptions options;
  options.arch = "sm_80";
  options.nameExpressions = {"fp_scale<4>"};
  StatusOr<NvrtcOutput> out = nvrtc->compile(
      "template <int N> __global__ void fp_scale(float *p) { p[0] *= N; }\n",
      "tmpl.cu", options);
  ASSERT_TRUE(out) << out.status().toString();
  ASSERT_EQ(out->loweredNames.size(), 1u);
  EXPECT_EQ(out->loweredNames[0].first, "fp_scale<4>");
  EXPECT_EQ(out->loweredNames[0].second, "_Z8fp_scaleILi4EEvPf");
}

// Measures (and prints) the NVRTC time of a small kernel: first compile in
// the process and the median of later ones; not a pass/fail threshold.
TEST(NVRTCTest, MeasureSmallKernelCompileTime) {
  REQUIRE_NVRTC(nvrtc);
  NvrtcOptions options;
  options.arch = "sm_90a";
  std::vector<double> seconds;
  for (int i = 0; i < 4; ++i) {
    // A distinct source each time, so nothing inside NVRTC can reuse work.
    std::string source =
        std::string(kTinyKernel) + "// variant " + std::to_string(i) + "\n";
    StatusOr<NvrtcOutput> out = nvrtc->compile(source, "tiny.cu", options);
    ASSERT_TRUE(out) << out.status().toString();
    seconds.push_back(out->compileSeconds);
  }
  std::vector<double> later(seconds.begin() + 1, seconds.end());
  std::sort(later.begin(), later.end());
  std::printf("[          ] NVRTC %s small-kernel compile (sm_90a CUBIN, "
              "fp/params.h + cuda_bf16.h): first %.1f ms, median of next "
              "3 %.1f ms\n",
              nvrtc->versionString().c_str(), seconds[0] * 1e3, later[1] * 1e3);
  RecordProperty("nvrtc_small_kernel_ms", std::to_string(later[1] * 1e3));
}

} // namespace
