//===- GpuTestUtil.h - Device buffers and runs for GPU tests ----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#ifndef FP_UNITTESTS_GPU_GPUTESTUTIL_H
#define FP_UNITTESTS_GPU_GPUTESTUTIL_H

#include "flashprefill/flashprefill.hpp"
#include "flashprefill/gpu_testing.h"
#include "flashprefill/reference.h"
#include "flashprefill/runtime/cuda_driver.h"
#include "flashprefill/structured_inputs.h"

#include <gtest/gtest.h>

#include <vector>

namespace fp::gputest {

/// The driver with a current context, or null (the test should skip).
const rt::CudaDriver *driverOrNull(std::string *why);

/// Skips the calling test when there is no CUDA device.
#define FP_REQUIRE_GPU(drv)                                                    \
  std::string fpWhy_;                                                          \
  const ::fp::rt::CudaDriver *drv = ::fp::gputest::driverOrNull(&fpWhy_);      \
  if (!drv)                                                                    \
  GTEST_SKIP() << fpWhy_

using testing::DeviceBuffer;

/// A problem on the device: inputs, outputs poisoned with NaN, the mask.
struct GpuProblem {
  GpuProblem(const rt::CudaDriver *drv, const testing::StructuredInputs &in,
             int64_t batch, int64_t seqLen, int64_t qHeads, int64_t kvHeads,
             int64_t headDim, int64_t blockSize, size_t workspaceBytes);

  /// select + attend on `stream`; no synchronization.
  Status run(const Plan &plan, const fp_params_t &params, void *stream);
  /// Waits, then copies the outputs back.
  void download();

  const rt::CudaDriver *drv;
  int64_t batch, seqLen, qHeads, kvHeads, headDim, numBlocks;
  DeviceBuffer q, k, v, out, lse, counts, ids, kept, workspace;
  fp_tensor_t qt, kt, vt, ot;
  fp_mask_t mask;
  // Host copies after download().
  std::vector<uint16_t> hostOut;
  std::vector<float> hostLse;
  std::vector<int32_t> hostCounts, hostIds;
  uint64_t hostKept = 0;
  ref::BlockMask blockMask() const;
};

/// A structured-input config for the shape.
testing::StructuredConfig structuredConfig(fp_dtype_t dtype, int64_t batch,
                                           int64_t seqLen, int64_t qHeads,
                                           int64_t kvHeads, int64_t headDim,
                                           int64_t blockSize, uint64_t seed);

/// A GPU plan for the shape (device 0), failing the test on error.
std::unique_ptr<Plan> makePlan(fp_dtype_t dtype, int64_t headDim,
                               int64_t qHeads, int64_t kvHeads,
                               int64_t blockSize, int64_t maxBatch,
                               int64_t maxSeqLen);

/// A plan, structured inputs and their device problem for one shape.
struct GpuCase {
  std::unique_ptr<Plan> plan;
  testing::StructuredInputs inputs;
  std::unique_ptr<GpuProblem> problem;
};

/// Builds a GpuCase (plan for exactly this batch and length); the plan is
/// null (and the test failed) when plan creation failed.
GpuCase makeCase(const rt::CudaDriver *drv, fp_dtype_t dtype, int64_t batch,
                 int64_t seqLen, int64_t qHeads, int64_t kvHeads,
                 int64_t headDim, int64_t blockSize, uint64_t seed);

} // namespace fp::gputest

#endif // FP_UNITTESTS_GPU_GPUTESTUTIL_H
