//===- PtxasReportTest.cpp - `ptxas -v` report parser ---------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The logs in Inputs/ were captured from NVRTC 13.0.88 compiling
// Inputs/ptxas-kernels.cu (see that file).
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/nvrtc.h"

#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

using namespace fp::rt;

namespace {

std::string readInput(const std::string &name) {
  std::ifstream in(std::string(FP_RUNTIME_TEST_INPUTS) + "/" + name,
                   std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const KernelResourceReport *find(const std::vector<KernelResourceReport> &rs,
                                 const std::string &name) {
  for (const KernelResourceReport &r : rs)
    if (r.kernel == name)
      return &r;
  return nullptr;
}

// sm_90a log with -maxrregcount=64: spills, stack, static smem, barriers and
// a non-inlined device function are all attributed to the right function.
TEST(PtxasReportTest, Sm90aLogWithSpills) {
  std::string log = readInput("ptxas-sm90a-maxrregcount64.log");
  ASSERT_FALSE(log.empty());
  std::vector<KernelResourceReport> reports = parsePtxasReport(log);
  ASSERT_EQ(reports.size(), 4u);
  // Entries first, in log order, then device functions.
  EXPECT_EQ(reports[0].kernel, "dyn_kernel");
  EXPECT_EQ(reports[1].kernel, "_Z11tmpl_kernelILi2048EEvP13__nv_bfloat16");
  EXPECT_EQ(reports[2].kernel, "spill_kernel");
  EXPECT_EQ(reports[3].kernel, "_Z6helperPfi");

  const KernelResourceReport &dyn = reports[0];
  EXPECT_TRUE(dyn.isEntry);
  EXPECT_EQ(dyn.arch, "sm_90a");
  EXPECT_EQ(dyn.registers, 12);
  EXPECT_EQ(dyn.barriers, 1);
  EXPECT_EQ(dyn.sharedMemBytes, 0); // dynamic smem is not in the report
  EXPECT_EQ(dyn.spillStoreBytes, 0);

  const KernelResourceReport &tmpl = reports[1];
  EXPECT_EQ(tmpl.registers, 12);
  EXPECT_EQ(tmpl.sharedMemBytes, 8192);

  const KernelResourceReport &spill = reports[2];
  EXPECT_TRUE(spill.isEntry);
  EXPECT_EQ(spill.arch, "sm_90a");
  EXPECT_EQ(spill.registers, 64);
  EXPECT_EQ(spill.barriers, 0);
  EXPECT_EQ(spill.stackFrameBytes, 1168);
  EXPECT_EQ(spill.spillStoreBytes, 1980);
  EXPECT_EQ(spill.spillLoadBytes, 1980);
  EXPECT_EQ(spill.cumulativeStackBytes, 1168);

  const KernelResourceReport &helper = reports[3];
  EXPECT_FALSE(helper.isEntry);
  EXPECT_EQ(helper.arch, "");
  EXPECT_EQ(helper.registers, -1);
  EXPECT_EQ(helper.stackFrameBytes, 0);
}

// sm_80 log: cmem[0] is parsed and the arch comes from the entry line.
TEST(PtxasReportTest, Sm80LogWithConstantBank) {
  std::vector<KernelResourceReport> reports =
      parsePtxasReport(readInput("ptxas-sm80.log"));
  const KernelResourceReport *spill = find(reports, "spill_kernel");
  ASSERT_NE(spill, nullptr);
  EXPECT_EQ(spill->arch, "sm_80");
  EXPECT_EQ(spill->registers, 255);
  EXPECT_EQ(spill->stackFrameBytes, 320);
  EXPECT_EQ(spill->spillStoreBytes, 112);
  EXPECT_EQ(spill->spillLoadBytes, 112);
  EXPECT_EQ(spill->constMemBytes, 372);
  const KernelResourceReport *tmpl =
      find(reports, "_Z11tmpl_kernelILi2048EEvP13__nv_bfloat16");
  ASSERT_NE(tmpl, nullptr);
  EXPECT_EQ(tmpl->registers, 10);
  EXPECT_EQ(tmpl->sharedMemBytes, 8192);
  EXPECT_EQ(tmpl->constMemBytes, 360);
}

// Logs without ptxas lines (PTX targets, front-end warnings) give no reports,
// and unknown items or malformed lines are skipped rather than misread.
TEST(PtxasReportTest, IgnoresNonPtxasText) {
  EXPECT_TRUE(parsePtxasReport("").empty());
  EXPECT_TRUE(parsePtxasReport("k.cu(3): warning #177-D: variable \"x\" was "
                               "declared but never referenced\n")
                  .empty());
  std::vector<KernelResourceReport> reports = parsePtxasReport(
      "ptxas info    : Used 3 registers\n" // before any entry: dropped
      "ptxas info    : Compiling entry function 'k' for 'sm_100a'\n"
      "ptxas info    : Used 40 registers, used 2 barriers, 16 bytes lmem, "
      "1024 bytes smem, 8 bytes cmem[2], foo\n"
      "ptxas         .     garbage\n");
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].arch, "sm_100a");
  EXPECT_EQ(reports[0].registers, 40);
  EXPECT_EQ(reports[0].barriers, 2);
  EXPECT_EQ(reports[0].sharedMemBytes, 1024);
  EXPECT_EQ(reports[0].constMemBytes, 0);
}

} // namespace
