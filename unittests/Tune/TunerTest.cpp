//===- TunerTest.cpp - fp-tune's search -------------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "Tuner.h"

#include "flashprefill/runtime/cuda_driver.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace {

using namespace fp;

// The search space holds the heuristic choice exactly once per kernel, and
// static pruning names why (here: shared memory beyond sm_86's 99 KB at
// d 256).
TEST(TunerTest, EnumerationHoldsTheHeuristicAndPrunesStatically) {
  tune::TuneOptions o;
  o.headDim = 256;
  auto attention = tune::enumerate(o, tuning::kAttention, "sm_86");
  auto discovery = tune::enumerate(o, tuning::kDiscovery, "sm_86");
  ASSERT_FALSE(attention.empty());
  ASSERT_FALSE(discovery.empty());
  EXPECT_EQ(std::count_if(attention.begin(), attention.end(),
                          [](auto &c) { return c.heuristic; }),
            1);
  EXPECT_EQ(std::count_if(discovery.begin(), discovery.end(),
                          [](auto &c) { return c.heuristic; }),
            1);
  bool smemPruned =
      std::any_of(attention.begin(), attention.end(), [](auto &c) {
        return c.pruned.find("sm_86 allows at most") != std::string::npos;
      });
  EXPECT_TRUE(smemPruned);
  for (const auto &c : attention)
    if (c.heuristic)
      EXPECT_EQ(c.pruned, "") << "the heuristic tile must be buildable";
  EXPECT_TRUE(tune::enumerate(o, "nonsense", "sm_90a").empty());
  EXPECT_TRUE(tune::enumerate(o, tuning::kAttention, "sm_75").empty());
}

// A dry run compiles the survivors and drops those that spill; it needs no
// GPU and names a missing --arch.
TEST(TunerTest, DryRunPrunesBySpills) {
  tune::TuneOptions o;
  o.dryRun = true;
  auto noArch = tune::runTuning(o);
  ASSERT_FALSE(noArch.isOk());
  EXPECT_NE(noArch.status().message().find("--arch: required with --dry-run"),
            std::string::npos);
  o.arch = "sm_90a";
  o.kernels = {tuning::kDiscovery};
  auto report = tune::runTuning(o);
  ASSERT_TRUE(report.isOk()) << report.status().toString();
  int kept = 0, spilled = 0;
  for (const auto &c : report->candidates) {
    kept += c.pruned.empty();
    spilled += c.pruned.rfind("spills", 0) == 0;
    if (c.pruned.empty())
      EXPECT_GT(c.registers, 0);
  }
  EXPECT_GT(kept, 0);
  // 64 x 2 warps and 128 x 2 warps spill at d 128 (ptxas, NVRTC 13.0).
  EXPECT_GE(spilled, 1);
  EXPECT_TRUE(report->results.entries().empty()) << "a dry run times nothing";
}

// On the GPU a small tuning run completes, times the heuristic config, and
// its winner is at least as fast as the heuristic in the same run.
TEST(TunerTest, SmallRunBeatsOrTiesTheHeuristic) {
  auto driver = rt::CudaDriver::get();
  if (!driver.isOk() || (*driver)->deviceCount() == 0)
    GTEST_SKIP() << "no CUDA device";
  tune::TuneOptions o;
  o.headDim = 64;
  o.blockSize = 64;
  o.qHeads = 8;
  o.kvHeads = 2;
  o.buckets = {4096};
  o.kernels = {tuning::kAttention};
  o.warmup = 1;
  o.repeats = 5;
  auto report = tune::runTuning(o);
  ASSERT_TRUE(report.isOk()) << report.status().toString();
  const tune::Candidate *heuristic = nullptr;
  for (const auto &c : report->candidates)
    if (c.heuristic)
      heuristic = &c;
  ASSERT_TRUE(heuristic && heuristic->ms[0] > 0)
      << "the heuristic config must pass the checks and be timed";
  tuning::TuningKey key{report->arch, 64, "bf16", 64, 4, 4096};
  auto best = report->results.best(key, tuning::kAttention);
  ASSERT_TRUE(best);
  EXPECT_LE(best->ms, heuristic->ms[0]);
  std::printf("  heuristic %s %.4f ms, winner %s %.4f ms\n",
              tuning::configText(heuristic->config).c_str(), heuristic->ms[0],
              tuning::configText(best->config).c_str(), best->ms);
}

} // namespace
