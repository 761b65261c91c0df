//===- fp/block_pool.cuh - Mean of each block of keys (or queries) -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// block_pool (docs/semantics.md section 1, step 1): for each (batch, head,
/// block j) the mean of the valid rows [jB, min((j+1)B, L)) of `src`,
/// accumulated in fp32 and stored rounded to Element into dst[b, h, nb, d]
/// (contiguous), so the discovery kernel can feed it to tensor cores.
///
/// One CTA pools one block (grid (nb, h, b)). The kernel is a pure stream
/// over K: each thread owns one 16-byte column chunk and a strided subset of
/// the rows, keeps 8 fp32 partial sums, and the row groups are combined
/// through static shared memory. No dynamic shared memory.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_BLOCK_POOL_CUH
#define FP_DEVICE_BLOCK_POOL_CUH

#include "fp/common.cuh"

namespace fp {
namespace dev {

/// Mean-pools one block of `params.src` per CTA. Launch: grid
/// (num_blocks, num_heads, batch), kNumThreads threads, no dynamic smem.
template <typename Element, int kHeadDim, int kBlockSize, int kNumThreads>
__device__ void block_pool(const FpPoolParams &params) {
  static_assert(IsSame<Element, __nv_bfloat16>::value || IsSame<Element, __half>::value,
                "block_pool: Element must be __nv_bfloat16 or __half");
  static_assert(kHeadDim % 16 == 0 && kHeadDim >= 16 && kHeadDim <= 256,
                "block_pool: head dim must be a multiple of 16 in [16, 256]");
  static_assert(kBlockSize >= 16 && kBlockSize % 16 == 0, "block_pool: bad block size");
  constexpr int kChunks = kHeadDim / 8; // 16-byte chunks per row
  static_assert(kNumThreads % 32 == 0 && kNumThreads >= 32 && kNumThreads <= 1024,
                "block_pool: kNumThreads must be whole warps");
  static_assert(kNumThreads % kChunks == 0,
                "block_pool: kNumThreads must be a multiple of head_dim / 8");
  constexpr int kRowGroups = kNumThreads / kChunks;
  static_assert(kRowGroups * kHeadDim * 4 <= 48 * 1024, "block_pool: static smem too large");

  __shared__ float partial[kRowGroups][kHeadDim];

  const int j = blockIdx.x;
  const int head = blockIdx.y;
  const int batch = blockIdx.z;
  const int row0 = j * kBlockSize;
  const int valid = const_min(kBlockSize, params.seq_len - row0);

  const int chunk = threadIdx.x % kChunks;
  const int group = threadIdx.x / kChunks;
  const Element *src = static_cast<const Element *>(params.src) +
                       batch * params.src_batch_stride + head * params.src_head_stride +
                       chunk * 8;

  float acc[8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
    acc[i] = 0.f;
  // Unrolled by kBlockSize / kRowGroups so several 16-byte loads are in
  // flight per thread before the first add (the kernel is bandwidth-bound).
#pragma unroll
  for (int r = group; r < kBlockSize; r += kRowGroups) {
    if (r < valid) {
      const uint4 v =
          *reinterpret_cast<const uint4 *>(src + static_cast<fp_i64>(row0 + r) * params.src_seq_stride);
      float f[8];
      unpack8<Element>(v, f);
#pragma unroll
      for (int i = 0; i < 8; ++i)
        acc[i] += f[i];
    }
  }
#pragma unroll
  for (int i = 0; i < 8; ++i)
    partial[group][chunk * 8 + i] = acc[i];
  __syncthreads();

  // valid >= 1 always: block j exists only if jB < L. A true division (not a
  // multiply by the reciprocal) so the fp32 mean rounds like the reference's.
  const float count = static_cast<float>(valid);
  Element *dst = static_cast<Element *>(params.dst) +
                 ((static_cast<fp_i64>(batch) * params.num_heads + head) * params.num_blocks + j) *
                     kHeadDim;
  for (int c = threadIdx.x; c < kHeadDim; c += kNumThreads) {
    float s = 0.f;
#pragma unroll
    for (int g = 0; g < kRowGroups; ++g)
      s += partial[g][c];
    dst[c] = ElementTraits<Element>::from_float(s / count);
  }
}

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_BLOCK_POOL_CUH
