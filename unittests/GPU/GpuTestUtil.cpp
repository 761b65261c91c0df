//===- GpuTestUtil.cpp - Device buffers and runs for GPU tests --*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "GpuTestUtil.h"

#include <cstdio>

namespace fp::gputest {

const rt::CudaDriver *driverOrNull(std::string *why) {
  auto driver = rt::CudaDriver::get();
  if (!driver.isOk()) {
    *why = driver.status().message();
    return nullptr;
  }
  if ((*driver)->deviceCount() == 0) {
    *why = "no CUDA device: 0 devices";
    return nullptr;
  }
  auto context = (*driver)->makePrimaryContextCurrent(0);
  if (!context.isOk()) {
    *why = context.status().message();
    return nullptr;
  }
  return *driver;
}

static fp_tensor_t tensorOf(void *data, int64_t b, int64_t s, int64_t h,
                            int64_t d) {
  return {data, {b, s, h, d}, {s * h * d, h * d, d, 1}};
}

GpuProblem::GpuProblem(const rt::CudaDriver *drv,
                       const testing::StructuredInputs &in, int64_t batch,
                       int64_t seqLen, int64_t qHeads, int64_t kvHeads,
                       int64_t headDim, int64_t blockSize,
                       size_t workspaceBytes)
    : drv(drv), batch(batch), seqLen(seqLen), qHeads(qHeads), kvHeads(kvHeads),
      headDim(headDim), numBlocks((seqLen + blockSize - 1) / blockSize),
      q(drv, in.q.size() * 2), k(drv, in.k.size() * 2), v(drv, in.v.size() * 2),
      out(drv, in.q.size() * 2), lse(drv, size_t(batch * qHeads * seqLen) * 4),
      counts(drv, size_t(batch * qHeads * numBlocks) * 4),
      ids(drv, size_t(batch * qHeads * numBlocks * numBlocks) * 4),
      kept(drv, 8), workspace(drv, workspaceBytes) {
  EXPECT_TRUE(q.upload(in.q.data()).isOk());
  EXPECT_TRUE(k.upload(in.k.data()).isOk());
  EXPECT_TRUE(v.upload(in.v.data()).isOk());
  // NaN in bf16 and f16: unwritten elements show up.
  EXPECT_TRUE(out.fill(0xFF).isOk() && lse.fill(0xFF).isOk());
  EXPECT_TRUE(kept.fill(0).isOk());
  qt = tensorOf(q.get(), batch, seqLen, qHeads, headDim);
  kt = tensorOf(k.get(), batch, seqLen, kvHeads, headDim);
  vt = tensorOf(v.get(), batch, seqLen, kvHeads, headDim);
  ot = tensorOf(out.get(), batch, seqLen, qHeads, headDim);
  mask = {static_cast<int32_t *>(counts.get()),
          static_cast<int32_t *>(ids.get()), batch, qHeads, numBlocks};
}

Status GpuProblem::run(const Plan &plan, const fp_params_t &params,
                       void *stream) {
  fp_params_t p = params;
  p.lse = static_cast<float *>(lse.get());
  p.kept_counter = static_cast<unsigned long long *>(kept.get());
  FP_RETURN_IF_ERROR(plan.select(&qt, &kt, &p, &mask, workspace.get(),
                                 workspace.size(), stream));
  return plan.attend(&qt, &kt, &vt, &mask, &ot, &p, stream);
}

void GpuProblem::download() {
  ASSERT_EQ(drv->api().ctxSynchronize(), CUDA_SUCCESS);
  hostOut.resize(out.size() / 2);
  hostLse.resize(lse.size() / 4);
  hostCounts.resize(counts.size() / 4);
  hostIds.resize(ids.size() / 4);
  ASSERT_TRUE(out.download(hostOut.data()).isOk());
  ASSERT_TRUE(lse.download(hostLse.data()).isOk());
  ASSERT_TRUE(counts.download(hostCounts.data()).isOk());
  ASSERT_TRUE(ids.download(hostIds.data()).isOk());
  ASSERT_TRUE(kept.download(&hostKept).isOk());
}

ref::BlockMask GpuProblem::blockMask() const {
  ref::BlockMask m;
  m.batch = batch;
  m.heads = qHeads;
  m.numBlocks = numBlocks;
  m.counts = hostCounts;
  m.ids = hostIds;
  return m;
}

testing::StructuredConfig structuredConfig(fp_dtype_t dtype, int64_t batch,
                                           int64_t seqLen, int64_t qHeads,
                                           int64_t kvHeads, int64_t headDim,
                                           int64_t blockSize, uint64_t seed) {
  testing::StructuredConfig c;
  c.dtype = dtype == FP_DTYPE_BF16 ? DType::kBF16 : DType::kF16;
  c.batch = batch;
  c.seqLen = seqLen;
  c.numQHeads = qHeads;
  c.numKvHeads = kvHeads;
  c.headDim = headDim;
  c.blockSize = int(blockSize);
  c.seed = seed;
  return c;
}

std::unique_ptr<Plan> makePlan(fp_dtype_t dtype, int64_t headDim,
                               int64_t qHeads, int64_t kvHeads,
                               int64_t blockSize, int64_t maxBatch,
                               int64_t maxSeqLen) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.dtype = dtype;
  spec.head_dim = int32_t(headDim);
  spec.num_q_heads = int32_t(qHeads);
  spec.num_kv_heads = int32_t(kvHeads);
  spec.block_size = int32_t(blockSize);
  spec.max_batch = maxBatch;
  spec.max_seq_len = maxSeqLen;
  auto plan = Plan::create(spec);
  EXPECT_TRUE(plan.isOk()) << plan.status().toString();
  if (!plan.isOk())
    return nullptr;
  std::printf("  plan: %s %s, kernels %s, codegen %.1f ms, compile %.1f ms, "
              "total %.1f ms\n",
              (*plan)->info().device.c_str(), (*plan)->info().arch.c_str(),
              (*plan)->info().kernelOrigin.c_str(),
              1e3 * (*plan)->info().codegenSeconds,
              1e3 * (*plan)->info().compileSeconds,
              1e3 * (*plan)->info().totalSeconds);
  return std::move(*plan);
}

GpuCase makeCase(const rt::CudaDriver *drv, fp_dtype_t dtype, int64_t batch,
                 int64_t seqLen, int64_t qHeads, int64_t kvHeads,
                 int64_t headDim, int64_t blockSize, uint64_t seed) {
  GpuCase c;
  c.plan = makePlan(dtype, headDim, qHeads, kvHeads, blockSize, batch, seqLen);
  if (!c.plan)
    return c;
  c.inputs = testing::makeStructuredInputs(structuredConfig(
      dtype, batch, seqLen, qHeads, kvHeads, headDim, blockSize, seed));
  c.problem = std::make_unique<GpuProblem>(
      drv, c.inputs, batch, seqLen, qHeads, kvHeads, headDim, blockSize,
      *c.plan->selectWorkspaceBytes(batch, seqLen));
  return c;
}

} // namespace fp::gputest
