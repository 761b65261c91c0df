//===- CodegenTest.cpp - Spec to CUDA source and manifest -------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/Codegen.h"

#include <gtest/gtest.h>

namespace {

using fp::StatusCode;
using fp::codegen::generateKernels;
using fp::codegen::KernelSpec;

// The default spec produces the three kernels and a manifest naming them in
// launch order.
TEST(CodegenTest, DefaultSpecProducesThreeKernels) {
  auto kernels = generateKernels(KernelSpec{});
  ASSERT_TRUE(kernels.isOk()) << kernels.status().toString();
  EXPECT_NE(kernels->source.find("#include \"fp/kernels.cuh\""),
            std::string::npos);
  EXPECT_NE(kernels->source.find("fp::dev::block_pool<__nv_bfloat16, 128, "
                                 "128,"),
            std::string::npos);
  EXPECT_NE(kernels->manifest.find("launch prefill pool_keys "),
            std::string::npos);
  EXPECT_NE(kernels->manifest.find("launch prefill discovery "),
            std::string::npos);
  EXPECT_NE(kernels->manifest.find("launch prefill attention "),
            std::string::npos);
  EXPECT_NE(kernels->manifest.find("arch sm_90a"), std::string::npos);
}

// A tuning database that cannot be read does not fail codegen, but its
// warning reaches the caller (the runtime prints it), so a serving process
// learns that its database is ignored; a clean run has no warnings.
TEST(CodegenTest, UnreadableTuningDatabaseIsAWarningForTheCaller) {
  KernelSpec spec;
  spec.tuningDb = "/dev/zero";
  auto kernels = generateKernels(spec);
  ASSERT_TRUE(kernels.isOk()) << kernels.status().toString();
  ASSERT_FALSE(kernels->warnings.empty());
  EXPECT_NE(kernels->warnings.front().find("/dev/zero"), std::string::npos)
      << kernels->warnings.front();
  auto clean = generateKernels(KernelSpec{});
  ASSERT_TRUE(clean.isOk());
  EXPECT_TRUE(clean->warnings.empty());
}

// Pooled queries add a second pool launch that reuses the pool kernel.
TEST(CodegenTest, PooledQueriesPoolQueriesToo) {
  KernelSpec spec;
  spec.pooledQueries = true;
  auto kernels = generateKernels(spec);
  ASSERT_TRUE(kernels.isOk()) << kernels.status().toString();
  EXPECT_NE(kernels->manifest.find("launch prefill pool_queries "),
            std::string::npos);
}

// The arch changes the source (the mainloop template argument), so it can
// never share a cache entry with another arch's kernels by accident.
TEST(CodegenTest, ArchIsPartOfTheSource) {
  KernelSpec sm80, sm90;
  sm80.arch = "sm_80";
  auto a = generateKernels(sm80), b = generateKernels(sm90);
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_NE(a->source, b->source);
}

// A head dim the verifier accepts but codegen cannot build is "unsupported"
// and the message names it and the supported values.
TEST(CodegenTest, UnsupportedHeadDimIsNamed) {
  KernelSpec spec;
  spec.headDim = 96;
  auto kernels = generateKernels(spec);
  ASSERT_FALSE(kernels.isOk());
  EXPECT_EQ(kernels.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(kernels.status().message().find(
                "head dim 96 is unsupported by codegen: expected one of 64, "
                "128, 256"),
            std::string::npos)
      << kernels.status().message();
}

// An invalid spec is an invalid argument naming the field.
TEST(CodegenTest, InvalidSpecsAreNamed) {
  KernelSpec badGroup;
  badGroup.numQHeads = 6;
  badGroup.numKvHeads = 4;
  auto a = generateKernels(badGroup);
  ASSERT_FALSE(a.isOk());
  EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("multiple of key/value heads"),
            std::string::npos)
      << a.status().message();

  KernelSpec badDtype;
  badDtype.dtype = "f32";
  auto b = generateKernels(badDtype);
  ASSERT_FALSE(b.isOk());
  EXPECT_NE(b.status().message().find("dtype: expected \"bf16\" or \"f16\""),
            std::string::npos);

  KernelSpec badArch;
  badArch.arch = "sm_75";
  auto c = generateKernels(badArch);
  ASSERT_FALSE(c.isOk());
  EXPECT_NE(c.status().message().find("arch: expected one of"),
            std::string::npos)
      << c.status().message();

  KernelSpec badBlock;
  badBlock.blockSize = 100;
  auto d = generateKernels(badBlock);
  ASSERT_FALSE(d.isOk());
  EXPECT_NE(d.status().message().find("block_size: expected a power of two"),
            std::string::npos)
      << d.status().message();
}

} // namespace
