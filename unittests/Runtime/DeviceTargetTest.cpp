//===- DeviceTargetTest.cpp - Which kernels a GPU gets --------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// deviceTargetFor with faked compute capabilities: no GPU needed. Blackwell
// (10.x, 12.x) used to become sm_100a / sm_120a, which codegen rejects, so
// every plan failed there.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/device_target.h"

#include <gtest/gtest.h>

using namespace fp;
using namespace fp::rt;

namespace {

/// What CUDA 13's NVRTC lists (nvrtcGetSupportedArchs).
const std::vector<int> kNvrtc13 = {75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121};
constexpr long kKB = 1024;

DeviceTarget targetOf(int major, int minor, long smem,
                      const std::vector<int> &archs = kNvrtc13) {
  StatusOr<DeviceTarget> target = deviceTargetFor(major, minor, smem, archs);
  EXPECT_TRUE(target) << major << "." << minor << ": "
                      << target.status().toString();
  return target ? *target : DeviceTarget{};
}

// The tuned GPUs get their own arch and no notice.
TEST(DeviceTargetTest, TunedGpusGetTheirArch) {
  struct Case {
    int major, minor;
    long smem;
    const char *arch;
  } cases[] = {{8, 0, 163 * kKB, "sm_80"},
               {8, 6, 99 * kKB, "sm_86"},
               {8, 9, 99 * kKB, "sm_89"},
               {9, 0, 227 * kKB, "sm_90a"}};
  for (const Case &c : cases) {
    DeviceTarget t = targetOf(c.major, c.minor, c.smem);
    EXPECT_EQ(t.kernelArch, c.arch);
    EXPECT_EQ(t.compileArch, c.arch);
    EXPECT_EQ(t.notice, "") << c.arch;
  }
}

// Blackwell: the portable mma.sync kernels for NVRTC's exact arch, never an
// arch-specific ('a') target, with a one-line notice.
TEST(DeviceTargetTest, BlackwellRunsThePortableKernels) {
  DeviceTarget b200 = targetOf(10, 0, 227 * kKB);
  EXPECT_EQ(b200.kernelArch, "sm_80");
  EXPECT_EQ(b200.compileArch, "sm_100");
  EXPECT_EQ(b200.notice,
            "flashprefill: compute capability 10.0 is not one the kernels are "
            "tuned for (8.0, 8.6, 8.9, 9.0); running the portable mma.sync "
            "kernels (sm_80 tiles) compiled for sm_100");
  EXPECT_EQ(b200.notice.find('\n'), std::string::npos);

  // RTX 50xx: 99 KB of shared memory, so the tiles that fit it.
  DeviceTarget rtx = targetOf(12, 0, 99 * kKB);
  EXPECT_EQ(rtx.kernelArch, "sm_86");
  EXPECT_EQ(rtx.compileArch, "sm_120");
  EXPECT_NE(rtx.notice.find("compute capability 12.0"), std::string::npos);
}

// A GPU this NVRTC does not know (or an NVRTC that lists nothing) gets
// compute_80 PTX, which the driver compiles for whatever it is.
TEST(DeviceTargetTest, UnknownToNvrtcGetsCompute80Ptx) {
  DeviceTarget future = targetOf(15, 0, 227 * kKB);
  EXPECT_EQ(future.kernelArch, "sm_80");
  EXPECT_EQ(future.compileArch, "compute_80");
  EXPECT_NE(future.notice.find("as compute_80 PTX for the driver to compile "
                               "(this NVRTC does not know sm_150)"),
            std::string::npos)
      << future.notice;

  DeviceTarget oldNvrtc = targetOf(10, 0, 227 * kKB, /*archs=*/{});
  EXPECT_EQ(oldNvrtc.compileArch, "compute_80");
}

// Other untuned capabilities of 8.0 or later (Orin 8.7) take the portable
// path too, never the sm_90a kernels.
TEST(DeviceTargetTest, OtherUntunedCapabilities) {
  DeviceTarget orin = targetOf(8, 7, 163 * kKB);
  EXPECT_EQ(orin.kernelArch, "sm_80");
  EXPECT_EQ(orin.compileArch, "sm_87");
  EXPECT_FALSE(orin.notice.empty());
  for (int major : {9, 10, 11, 12, 13})
    for (int minor = 0; minor <= 9; ++minor) {
      if (major == 9 && minor == 0)
        continue;
      DeviceTarget t = targetOf(major, minor, 227 * kKB);
      EXPECT_EQ(t.kernelArch, "sm_80") << major << "." << minor;
      EXPECT_FALSE(t.notice.empty());
    }
}

// Below 8.0 there is no kernel to run: kUnsupported naming the capability
// and the minimum.
TEST(DeviceTargetTest, OlderThanAmpereIsUnsupported) {
  for (auto [major, minor] : {std::pair{7, 5}, {7, 0}, {6, 1}, {0, 0}}) {
    StatusOr<DeviceTarget> t = deviceTargetFor(major, minor, 64 * kKB, kNvrtc13);
    ASSERT_FALSE(t) << major << "." << minor;
    EXPECT_EQ(t.status().code(), StatusCode::kUnsupported);
    EXPECT_NE(t.status().message().find(
                  "compute capability " + std::to_string(major) + "." +
                  std::to_string(minor) + ": expected 8.0 or newer"),
              std::string::npos)
        << t.status().message();
  }
  StatusOr<DeviceTarget> bad = deviceTargetFor(9, 12, 0, kNvrtc13);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

} // namespace
