//===- KernelCompileTest.cpp - Every default kernel compiles ----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// For head dims 64 / 128 / 256, blocks 64 / 128 and bf16 / f16, the kernels
// codegen emits (s_q == s_k and varlen) compile with NVRTC for sm_80 and
// sm_90a without a single byte of register spill. The ptxas figures are printed in the test log.
// GPUs the kernels are not tuned for get portable kernels that compile too.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/device_target.h"
#include "flashprefill/runtime/nvrtc.h"
#include "fp/Compiler/Codegen.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <ostream>
#include <tuple>

namespace {

using fp::codegen::KernelSpec;

struct CompileCase {
  int headDim;
  int blockSize;
  const char *dtype;
  const char *arch;
};

/// Readable parameter in failure messages.
void PrintTo(const CompileCase &c, std::ostream *os) {
  *os << "d" << c.headDim << " B" << c.blockSize << " " << c.dtype << " "
      << c.arch;
}

std::string caseName(const testing::TestParamInfo<CompileCase> &info) {
  const CompileCase &c = info.param;
  return "d" + std::to_string(c.headDim) + "_b" + std::to_string(c.blockSize) +
         "_" + c.dtype + "_" + c.arch;
}

class KernelCompileTest : public testing::TestWithParam<CompileCase> {};

// The default kernels of this configuration compile and never spill.
TEST_P(KernelCompileTest, CompilesWithoutSpills) {
  const CompileCase &c = GetParam();
  auto nvrtc = fp::rt::Nvrtc::get();
  if (!nvrtc.isOk())
    GTEST_SKIP() << nvrtc.status().toString();
  KernelSpec spec;
  spec.headDim = c.headDim;
  spec.blockSize = c.blockSize;
  spec.dtype = c.dtype;
  spec.arch = c.arch;
  spec.numQHeads = 8;
  spec.numKvHeads = 2;
  auto kernels = fp::codegen::generateKernels(spec);
  ASSERT_TRUE(kernels.isOk()) << kernels.status().toString();

  fp::rt::NvrtcOptions options;
  options.arch = c.arch;
  options.ptxasVerbose = true;
  auto output = (*nvrtc)->compile(kernels->source, "fp_kernels.cu", options);
  ASSERT_TRUE(output.isOk()) << output.status().toString();
  int entries = 0;
  for (const auto &report : output->resources) {
    if (!report.isEntry)
      continue;
    ++entries;
    std::printf("  %-60s %s: %3d registers, %6ld B static smem, spill "
                "stores %ld B, spill loads %ld B\n",
                report.kernel.c_str(), c.arch, report.registers,
                report.sharedMemBytes, report.spillStoreBytes,
                report.spillLoadBytes);
    EXPECT_EQ(report.spillStoreBytes, 0) << report.kernel;
    EXPECT_EQ(report.spillLoadBytes, 0) << report.kernel;
  }
  EXPECT_EQ(entries, 7) << "expected pool, discovery and attention kernels "
                           "for s_q == s_k, and varlen pool, discovery and "
                           "attention (packed and paged K/V)";
  std::printf("  compile time %.2f s\n", output->compileSeconds);
}

std::vector<CompileCase> allCases() {
  std::vector<CompileCase> cases;
  for (int d : {64, 128, 256})
    for (int b : {64, 128})
      for (const char *dtype : {"bf16", "f16"})
        for (const char *arch : {"sm_80", "sm_90a"})
          cases.push_back({d, b, dtype, arch});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(DefaultTiles, KernelCompileTest,
                         testing::ValuesIn(allCases()), caseName);

// Plans with pooled queries add the query-pooling kernels (s_q == s_k pool
// shares the key pool's kernel; varlen has its own, one row per compact-mask
// row); they compile without spills too.
TEST(PooledQueryKernelsTest, CompileWithoutSpills) {
  auto nvrtc = fp::rt::Nvrtc::get();
  if (!nvrtc.isOk())
    GTEST_SKIP() << nvrtc.status().toString();
  for (const char *arch : {"sm_80", "sm_90a"}) {
    SCOPED_TRACE(arch);
    KernelSpec spec;
    spec.arch = arch;
    spec.pooledQueries = true;
    auto kernels = fp::codegen::generateKernels(spec);
    ASSERT_TRUE(kernels.isOk()) << kernels.status().toString();
    EXPECT_NE(kernels->source.find("fp::dev::varlen_query_pool"), std::string::npos);
    fp::rt::NvrtcOptions options;
    options.arch = arch;
    options.ptxasVerbose = true;
    auto output = (*nvrtc)->compile(kernels->source, "fp_kernels.cu", options);
    ASSERT_TRUE(output.isOk()) << output.status().toString();
    int entries = 0;
    for (const auto &report : output->resources) {
      if (!report.isEntry)
        continue;
      ++entries;
      EXPECT_EQ(report.spillStoreBytes, 0) << report.kernel;
      EXPECT_EQ(report.spillLoadBytes, 0) << report.kernel;
    }
    EXPECT_EQ(entries, 8) << "the 7 kernels of a plan plus the varlen query pool";
  }
}

} // namespace

namespace {

// A GPU the kernels are not tuned for (faked capabilities: Blackwell 10.0
// and 12.0, a future 15.0 NVRTC does not know) gets kernels that codegen
// builds and NVRTC compiles for the chosen target. Before, 10.x and 12.x
// became sm_100a / sm_120a, which codegen rejected: every plan failed.
TEST(NewerGpuTest, PortableKernelsBuildForFakedCapabilities) {
  auto nvrtc = fp::rt::Nvrtc::get();
  if (!nvrtc.isOk())
    GTEST_SKIP() << nvrtc.status().toString();
  struct Faked {
    int major, minor;
    long smem;
    const char *compileArch;
  } devices[] = {{10, 0, 227 * 1024, "sm_100"},
                 {12, 0, 99 * 1024, "sm_120"},
                 {15, 0, 227 * 1024, "compute_80"}};
  for (const Faked &device : devices) {
    SCOPED_TRACE(std::to_string(device.major) + "." +
                 std::to_string(device.minor));
    auto target = fp::rt::deviceTargetFor(device.major, device.minor,
                                          device.smem,
                                          (*nvrtc)->supportedArchs());
    ASSERT_TRUE(target.isOk()) << target.status().toString();
    EXPECT_EQ(target->compileArch, device.compileArch);
    KernelSpec spec; // d 128, B 128, bf16, 32/8 heads
    spec.arch = target->kernelArch;
    auto kernels = fp::codegen::generateKernels(spec);
    ASSERT_TRUE(kernels.isOk()) << kernels.status().toString();
    EXPECT_NE(kernels->source.find(", 80>("), std::string::npos)
        << "expected the mma.sync (kArch 80) attention mainloop";
    fp::rt::NvrtcOptions options;
    options.arch = target->compileArch;
    auto output = (*nvrtc)->compile(kernels->source, "fp_kernels.cu", options);
    ASSERT_TRUE(output.isOk()) << output.status().toString();
  }
}

// Every kernel arch the runtime may choose is one codegen accepts.
TEST(NewerGpuTest, EveryDeviceTargetArchIsACodegenArch) {
  for (const std::string &arch : fp::rt::deviceTargetKernelArchs()) {
    KernelSpec spec;
    spec.arch = arch;
    auto kernels = fp::codegen::generateKernels(spec);
    EXPECT_TRUE(kernels.isOk()) << arch << ": " << kernels.status().toString();
  }
}

} // namespace
