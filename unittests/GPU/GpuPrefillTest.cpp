//===- GpuPrefillTest.cpp - The operator on the GPU vs the oracle -*- C++
//-*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// DESIGN.md section 4 checks through the public API on structured inputs:
// selection parity with the CPU reference (disagreements allowed only within
// 1e-4 * max of the threshold, counted and printed), output error against
// an fp64 reference on the GPU's own mask bounded by 2x the error of a
// naive fp32-accumulating kernel with P rounded to the input dtype (plus an
// absolute floor), every output element written (poisoned first), no NaN,
// LSE, the kept-block counter, planted needles, determinism.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/flashprefill.hpp"
#include "flashprefill/reference.h"
#include "flashprefill/runtime/cuda_driver.h"
#include "flashprefill/structured_inputs.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>

namespace {

using fp::rt::CudaDriver;

/// A device buffer freed on scope exit.
class DeviceBuffer {
public:
  DeviceBuffer(const CudaDriver *driver, size_t bytes) : driver_(driver) {
    if (bytes)
      driver_->api().memAlloc(&ptr_, bytes);
    bytes_ = bytes;
  }
  ~DeviceBuffer() {
    if (ptr_)
      driver_->api().memFree(ptr_);
  }
  void *get() const { return reinterpret_cast<void *>(ptr_); }
  void upload(const void *host) {
    driver_->api().memcpyHtoD(ptr_, host, bytes_);
  }
  void download(void *host) const {
    driver_->api().memcpyDtoH(host, ptr_, bytes_);
  }
  void fill(unsigned char byte) { driver_->api().memsetD8(ptr_, byte, bytes_); }

private:
  const CudaDriver *driver_;
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
};

fp_tensor_t tensorOf(void *data, int64_t b, int64_t s, int64_t h, int64_t d) {
  return {data, {b, s, h, d}, {s * h * d, h * d, d, 1}};
}

struct Case {
  int headDim, blockSize;
  fp_dtype_t dtype;
  int qHeads, kvHeads;
  int64_t batch, seqLen;
};

/// Readable parameter in test listings and failures.
void PrintTo(const Case &c, std::ostream *os) {
  *os << "d" << c.headDim << " B" << c.blockSize << " "
      << (c.dtype == FP_DTYPE_BF16 ? "bf16" : "f16") << " h_q " << c.qHeads
      << " h_kv " << c.kvHeads << " batch " << c.batch << " s " << c.seqLen;
}

std::string caseName(const testing::TestParamInfo<Case> &info) {
  const Case &c = info.param;
  return "d" + std::to_string(c.headDim) + "_b" + std::to_string(c.blockSize) +
         (c.dtype == FP_DTYPE_BF16 ? "_bf16" : "_f16") + "_g" +
         std::to_string(c.qHeads / c.kvHeads) + "_batch" +
         std::to_string(c.batch) + "_s" + std::to_string(c.seqLen);
}

class GpuPrefillTest : public testing::TestWithParam<Case> {};

// The GPU mask matches the reference's up to near-threshold ties, and the
// output meets the section-4 error bound on the GPU's own mask.
TEST_P(GpuPrefillTest, MatchesReference) {
  const Case c = GetParam();
  auto driver = CudaDriver::get();
  if (!driver.isOk() || (*driver)->deviceCount() == 0)
    GTEST_SKIP() << "no CUDA device: "
                 << (driver.isOk() ? "0 devices" : driver.status().message());
  const CudaDriver *drv = *driver;
  ASSERT_TRUE(drv->makePrimaryContextCurrent(0).isOk());

  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.dtype = c.dtype;
  spec.head_dim = c.headDim;
  spec.num_q_heads = c.qHeads;
  spec.num_kv_heads = c.kvHeads;
  spec.block_size = c.blockSize;
  spec.max_batch = c.batch;
  spec.max_seq_len = c.seqLen;
  auto plan = fp::Plan::create(spec);
  ASSERT_TRUE(plan.isOk()) << plan.status().toString();
  std::printf("  plan: %s %s, kernels %s, codegen %.1f ms, compile %.1f ms, "
              "total %.1f ms\n",
              (*plan)->info().device.c_str(), (*plan)->info().arch.c_str(),
              (*plan)->info().kernelOrigin.c_str(),
              1e3 * (*plan)->info().codegenSeconds,
              1e3 * (*plan)->info().compileSeconds,
              1e3 * (*plan)->info().totalSeconds);

  fp::testing::StructuredConfig config;
  config.dtype = c.dtype == FP_DTYPE_BF16 ? fp::DType::kBF16 : fp::DType::kF16;
  config.batch = c.batch;
  config.seqLen = c.seqLen;
  config.numQHeads = c.qHeads;
  config.numKvHeads = c.kvHeads;
  config.headDim = c.headDim;
  config.blockSize = c.blockSize;
  config.seed = 7 + c.seqLen;
  auto inputs = fp::testing::makeStructuredInputs(config);

  const int64_t b = c.batch, s = c.seqLen, d = c.headDim;
  const int64_t nb = (s + c.blockSize - 1) / c.blockSize;
  DeviceBuffer q(drv, inputs.q.size() * 2), k(drv, inputs.k.size() * 2),
      v(drv, inputs.v.size() * 2), out(drv, inputs.q.size() * 2),
      lse(drv, size_t(b * c.qHeads * s) * 4),
      counts(drv, size_t(b * c.qHeads * nb) * 4),
      ids(drv, size_t(b * c.qHeads * nb * nb) * 4), kept(drv, 8);
  q.upload(inputs.q.data());
  k.upload(inputs.k.data());
  v.upload(inputs.v.data());
  size_t wsBytes = *(*plan)->selectWorkspaceBytes(b, s);
  DeviceBuffer workspace(drv, wsBytes);

  fp_tensor_t qt = tensorOf(q.get(), b, s, c.qHeads, d);
  fp_tensor_t kt = tensorOf(k.get(), b, s, c.kvHeads, d);
  fp_tensor_t vt = tensorOf(v.get(), b, s, c.kvHeads, d);
  fp_tensor_t ot = tensorOf(out.get(), b, s, c.qHeads, d);
  fp_mask_t mask{static_cast<int32_t *>(counts.get()),
                 static_cast<int32_t *>(ids.get()), b, c.qHeads, nb};
  fp_params_t params;
  fp_params_init(&params);
  params.lse = static_cast<float *>(lse.get());
  params.kept_counter = static_cast<unsigned long long *>(kept.get());

  auto runOnce = [&](std::vector<uint16_t> &o, std::vector<int32_t> &cnt,
                     std::vector<int32_t> &idv, std::vector<float> &l,
                     uint64_t &keptBlocks) {
    out.fill(0xFF); // NaN in bf16 and f16: unwritten elements show up
    lse.fill(0xFF);
    kept.fill(0);
    ASSERT_TRUE((*plan)
                    ->select(&qt, &kt, &params, &mask, workspace.get(), wsBytes,
                             nullptr)
                    .isOk());
    auto attended =
        (*plan)->attend(&qt, &kt, &vt, &mask, &ot, &params, nullptr);
    ASSERT_TRUE(attended.isOk()) << attended.toString();
    ASSERT_EQ(drv->api().ctxSynchronize(), CUDA_SUCCESS);
    o.resize(inputs.q.size());
    cnt.resize(size_t(b * c.qHeads * nb));
    idv.resize(size_t(b * c.qHeads * nb * nb));
    l.resize(size_t(b * c.qHeads * s));
    out.download(o.data());
    counts.download(cnt.data());
    ids.download(idv.data());
    lse.download(l.data());
    kept.download(&keptBlocks);
  };
  std::vector<uint16_t> gpuOut, gpuOut2;
  std::vector<int32_t> gpuCounts, gpuIds, gpuCounts2, gpuIds2;
  std::vector<float> gpuLse, gpuLse2;
  uint64_t keptBlocks = 0, keptBlocks2 = 0;
  runOnce(gpuOut, gpuCounts, gpuIds, gpuLse, keptBlocks);
  runOnce(gpuOut2, gpuCounts2, gpuIds2, gpuLse2, keptBlocks2);

  // Determinism: bit-identical outputs and masks.
  EXPECT_EQ(gpuOut, gpuOut2);
  EXPECT_EQ(gpuCounts, gpuCounts2);

  // The CPU reference on the same inputs.
  fp::ref::Tensor qh, kh, vh;
  fp::DType dt = config.dtype;
  auto hostView = [&](const std::vector<uint16_t> &data, int64_t heads) {
    return fp::ref::TensorView{data.data(),   dt,        b, s, heads, d,
                               s * heads * d, heads * d, d};
  };
  fp::ref::TensorView qv = hostView(inputs.q, c.qHeads),
                      kv = hostView(inputs.k, c.kvHeads),
                      vv = hostView(inputs.v, c.kvHeads);
  fp::ref::Options options;
  options.blockSize = c.blockSize;
  auto reference = fp::ref::prefill(qv, kv, vv, options);
  ASSERT_TRUE(reference.isOk()) << reference.status().toString();

  // 1. Selection parity with the tolerance rule.
  fp::ref::BlockMask gpuMask;
  gpuMask.batch = b;
  gpuMask.heads = c.qHeads;
  gpuMask.numBlocks = nb;
  gpuMask.counts = gpuCounts;
  gpuMask.ids = gpuIds;
  ASSERT_TRUE(gpuMask.validate(b, c.qHeads, nb).isOk());
  int64_t nearThreshold = 0, hardMismatch = 0;
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t h = 0; h < c.qHeads; ++h)
      for (int64_t i = 0; i < nb; ++i) {
        const float *row = reference->scores.row(bi, h, i);
        float maxScore = 0;
        for (int64_t j = 0; j <= i; ++j)
          maxScore = std::max(maxScore, row[j]);
        float threshold = options.alpha * maxScore;
        for (int64_t j = 0; j <= i; ++j) {
          bool want = reference->mask.contains(bi, h, i, j);
          bool got = gpuMask.contains(bi, h, i, j);
          if (want == got)
            continue;
          if (std::fabs(row[j] - threshold) <= 1e-4f * maxScore)
            ++nearThreshold;
          else
            ++hardMismatch;
        }
      }
  double density = gpuMask.density();
  std::printf("  density %.4f (reference %.4f), near-threshold "
              "disagreements %lld, other disagreements %lld\n",
              density, reference->mask.density(), (long long)nearThreshold,
              (long long)hardMismatch);
  EXPECT_EQ(hardMismatch, 0);
  EXPECT_EQ(int64_t(keptBlocks), gpuMask.keptBlocks());

  // 2. Planted needles are kept.
  for (const auto &n : inputs.needles)
    EXPECT_TRUE(gpuMask.contains(n.batch, n.head, n.queryBlock, n.keyBlock))
        << "needle key block " << n.keyBlock << " of query block "
        << n.queryBlock << " head " << n.head;

  // 3. Output error on the GPU's mask vs fp64, bounded by 2x a naive
  // fp32/P-rounded kernel's error plus a floor.
  auto truth = fp::ref::naiveAttention(qv, kv, vv, options, &gpuMask);
  auto naive = fp::ref::maskedAttention(qv, kv, vv, gpuMask, options);
  ASSERT_TRUE(truth.isOk() && naive.isOk());
  std::vector<double> gpuValues(gpuOut.size()), naiveValues(gpuOut.size());
  int64_t nonFinite = 0;
  for (size_t i = 0; i < gpuOut.size(); ++i) {
    gpuValues[i] = fp::bitsToFloat(dt, gpuOut[i]);
    naiveValues[i] = fp::bitsToFloat(dt, naive->out.storage()[i]);
    nonFinite += !std::isfinite(gpuValues[i]);
  }
  EXPECT_EQ(nonFinite, 0) << "unwritten (NaN-poisoned) or non-finite outputs";
  double gpuError = fp::testing::relativeL2(gpuValues, truth->out);
  double naiveError = fp::testing::relativeL2(naiveValues, truth->out);
  double bound = std::max(2.0 * naiveError, 1e-3);
  std::printf("  rel L2 vs fp64: gpu %.3e, naive fp32/P-rounded %.3e, bound "
              "%.3e\n",
              gpuError, naiveError, bound);
  EXPECT_LE(gpuError, bound);

  // 4. LSE (natural log) against the fp64 reference.
  double maxLseError = 0;
  for (size_t i = 0; i < gpuLse.size(); ++i) {
    if (std::isinf(truth->lse[i])) {
      EXPECT_TRUE(std::isinf(gpuLse[i]) && gpuLse[i] < 0) << "row " << i;
      continue;
    }
    maxLseError = std::max(maxLseError, std::fabs(gpuLse[i] - truth->lse[i]));
  }
  std::printf("  max |LSE error| %.3e\n", maxLseError);
  EXPECT_LE(maxLseError, 1e-3);
}

INSTANTIATE_TEST_SUITE_P(
    Smoke, GpuPrefillTest,
    testing::Values(
        // Issue 5's smoke configuration.
        Case{128, 128, FP_DTYPE_BF16, 8, 2, 1, 4096},
        // Edges: one token, B - 1, B + 1, a non-multiple of B.
        Case{128, 128, FP_DTYPE_BF16, 8, 2, 1, 1},
        Case{64, 64, FP_DTYPE_F16, 4, 4, 2, 63},
        Case{64, 128, FP_DTYPE_BF16, 8, 1, 1, 129},
        Case{256, 64, FP_DTYPE_F16, 8, 2, 1, 1000},
        Case{128, 64, FP_DTYPE_F16, 8, 1, 2, 2500},
        Case{256, 128, FP_DTYPE_BF16, 4, 1, 1, 3000}),
    caseName);

} // namespace
