//===- AttentionTmaTest.cpp - Tensor-map geometry of the sm_90a kernel ----===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
//
// encodeAttentionTensorMaps is the host half of the contract with
// attention_mainloop_sm90.cuh (box of 64 columns x rows, 128-byte swizzle,
// zero fill out of bounds, coordinates (col, seq, head, batch)). A fake
// cuTensorMapEncodeTiled records what the runtime asks for, so the geometry
// is checked without a GPU.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/attention_tma.h"

#include <gtest/gtest.h>

#include <vector>

namespace {

struct EncodeCall {
  CUtensorMapDataType dtype;
  cuuint32_t rank;
  void *base;
  std::vector<cuuint64_t> dims, strides;
  std::vector<cuuint32_t> box, elementStrides;
  CUtensorMapInterleave interleave;
  CUtensorMapSwizzle swizzle;
  CUtensorMapFloatOOBfill oobFill;
};

std::vector<EncodeCall> calls;
int failOnCall = -1; // index of the call that returns an error

CUresult fakeEncode(CUtensorMap *map, CUtensorMapDataType dtype, cuuint32_t rank, void *base,
                    const cuuint64_t *dims, const cuuint64_t *strides, const cuuint32_t *box,
                    const cuuint32_t *elementStrides, CUtensorMapInterleave interleave,
                    CUtensorMapSwizzle swizzle, CUtensorMapL2promotion,
                    CUtensorMapFloatOOBfill oobFill) {
  EncodeCall call{dtype,
                  rank,
                  base,
                  {dims, dims + rank},
                  {strides, strides + rank - 1},
                  {box, box + rank},
                  {elementStrides, elementStrides + rank},
                  interleave,
                  swizzle,
                  oobFill};
  const int index = int(calls.size());
  calls.push_back(call);
  if (index == failOnCall)
    return CUDA_ERROR_INVALID_VALUE;
  std::memset(map, 0x40 + index, sizeof *map); // marks which call wrote the map
  return CUDA_SUCCESS;
}

FpAttentionParams problem() {
  FpAttentionParams p{};
  static char q[16], k[16], v[16];
  p.q = q;
  p.k = k;
  p.v = v;
  p.batch = 2;
  p.seq_q = p.seq_k = 1000;
  p.num_q_heads = 32;
  p.num_kv_heads = 8;
  // [b, s, h, d] with d = 128, q packed, k/v with padded rows.
  p.q_seq_stride = 32 * 128, p.q_head_stride = 128, p.q_batch_stride = 1000 * 32 * 128;
  p.k_seq_stride = 8 * 136, p.k_head_stride = 136, p.k_batch_stride = 1000 * 8 * 136;
  p.v_seq_stride = 8 * 128, p.v_head_stride = 128, p.v_batch_stride = 1000 * 8 * 128;
  return p;
}

TEST(AttentionTmaTest, MapsDescribeTheKernelsBoxes) {
  calls.clear();
  failOnCall = -1;
  FpAttentionParams p = problem();
  ASSERT_EQ(fp::rt::encodeAttentionTensorMaps(fakeEncode, p, /*bf16=*/true, 128, 128, 64),
            CUDA_SUCCESS);
  ASSERT_EQ(calls.size(), 3u);
  const void *bases[3] = {p.q, p.k, p.v};
  const cuuint64_t heads[3] = {32, 8, 8};
  const cuuint32_t rows[3] = {128, 64, 64};
  const cuuint64_t seqStrides[3] = {32 * 128, 8 * 136, 8 * 128};
  const cuuint64_t headStrides[3] = {128, 136, 128};
  const cuuint64_t batchStrides[3] = {1000 * 32 * 128, 1000 * 8 * 136, 1000 * 8 * 128};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const EncodeCall &c = calls[i];
    EXPECT_EQ(c.dtype, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16);
    EXPECT_EQ(c.rank, 4u);
    EXPECT_EQ(c.base, bases[i]);
    EXPECT_EQ(c.dims, (std::vector<cuuint64_t>{128, 1000, heads[i], 2}));
    // Byte strides of dims 1..3 (16-bit elements).
    EXPECT_EQ(c.strides, (std::vector<cuuint64_t>{seqStrides[i] * 2, headStrides[i] * 2,
                                                  batchStrides[i] * 2}));
    // 64 columns = 128 bytes: the 128-byte swizzle span the descriptors use.
    EXPECT_EQ(c.box, (std::vector<cuuint32_t>{64, rows[i], 1, 1}));
    EXPECT_EQ(c.elementStrides, (std::vector<cuuint32_t>{1, 1, 1, 1}));
    EXPECT_EQ(c.interleave, CU_TENSOR_MAP_INTERLEAVE_NONE);
    EXPECT_EQ(c.swizzle, CU_TENSOR_MAP_SWIZZLE_128B);
    // Rows past the sequence read as zeros (the kernel masks them causally).
    EXPECT_EQ(c.oobFill, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  }
  // Each map landed in its own field.
  EXPECT_EQ(reinterpret_cast<const unsigned char *>(&p.tma_q)[0], 0x40);
  EXPECT_EQ(reinterpret_cast<const unsigned char *>(&p.tma_k)[0], 0x41);
  EXPECT_EQ(reinterpret_cast<const unsigned char *>(&p.tma_v)[0], 0x42);
}

TEST(AttentionTmaTest, Fp16AndErrorsPropagate) {
  calls.clear();
  failOnCall = 1; // the K map
  FpAttentionParams p = problem();
  std::memset(&p.tma_v, 0, sizeof p.tma_v);
  EXPECT_EQ(fp::rt::encodeAttentionTensorMaps(fakeEncode, p, /*bf16=*/false, 128, 64, 64),
            CUDA_ERROR_INVALID_VALUE);
  ASSERT_EQ(calls.size(), 2u); // V is not attempted after K failed
  EXPECT_EQ(calls[0].dtype, CU_TENSOR_MAP_DATA_TYPE_FLOAT16);
  EXPECT_EQ(reinterpret_cast<const unsigned char *>(&p.tma_v)[0], 0);
  failOnCall = -1;
}

TEST(AttentionTmaTest, ParamsLayoutPutsTheMapsFirstAndAligned) {
  static_assert(offsetof(FpAttentionParams, tma_q) == 0, "maps first");
  static_assert(offsetof(FpAttentionParams, tma_k) == 128 && offsetof(FpAttentionParams, tma_v) == 256,
                "one 128-byte map after another");
  static_assert(alignof(FpAttentionParams) == 128, "CUtensorMap alignment");
  EXPECT_EQ(sizeof(FpAttentionParams) % 128, 0u);
}

} // namespace
