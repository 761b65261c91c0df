//===- MergeStatesKernelTest.cpp - The merge_states kernel compiles -------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// fp/merge_states.cuh is compiled by CUDA plans at creation (CudaPlan.cpp);
// here it is compiled by NVRTC exactly as there, without a GPU: CUBINs for
// sm_80 and sm_90a (one entry, no spills, no stack) and PTX for compute_80.
// Its results are checked on a GPU by GpuMergeStatesTest (FPGpuTests).
// Needs libnvrtc; skips with a message when it is missing.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/nvrtc.h"
#include "fp/merge_states.h"

#include <gtest/gtest.h>

using namespace fp;
using namespace fp::rt;

namespace {

TEST(MergeStatesKernelTest, CompilesWithoutSpillsForEveryTarget) {
  StatusOr<const Nvrtc *> nvrtc = Nvrtc::get();
  if (!nvrtc)
    GTEST_SKIP() << "NVRTC unavailable: " << nvrtc.status().toString();
  for (const char *arch : {"sm_80", "sm_90a"}) {
    NvrtcOptions options;
    options.arch = arch;
    options.ptxasVerbose = true;
    StatusOr<NvrtcOutput> out = (*nvrtc)->compile(
        FP_MERGE_STATES_SOURCE, "fp_merge_states.cu", options);
    ASSERT_TRUE(out) << arch << ": " << out.status().toString();
    EXPECT_TRUE(out->isCubin);
    ASSERT_EQ(out->resources.size(), 1u) << out->log;
    const KernelResourceReport &r = out->resources[0];
    EXPECT_EQ(r.kernel, FP_MERGE_STATES_ENTRY);
    EXPECT_GT(r.registers, 0);
    EXPECT_EQ(r.spillStoreBytes, 0) << arch;
    EXPECT_EQ(r.spillLoadBytes, 0) << arch;
    EXPECT_EQ(r.stackFrameBytes, 0) << arch;
    std::printf("[          ] %s: %d registers\n", arch, r.registers);
  }
  NvrtcOptions ptx;
  ptx.arch = "compute_80";
  StatusOr<NvrtcOutput> out =
      (*nvrtc)->compile(FP_MERGE_STATES_SOURCE, "fp_merge_states.cu", ptx);
  ASSERT_TRUE(out) << out.status().toString();
  EXPECT_NE(out->binary.find(std::string(".entry ") + FP_MERGE_STATES_ENTRY),
            std::string::npos);
  EXPECT_NE(out->binary.find(FP_MERGE_STATES_PARAMS_BYTES), std::string::npos);
}

} // namespace
