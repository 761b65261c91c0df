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
/// over K (pool_rows). No dynamic shared memory. varlen_block_pool pools the
/// key blocks of each sequence of a varlen call, packed or paged.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_BLOCK_POOL_CUH
#define FP_DEVICE_BLOCK_POOL_CUH

#include "fp/common.cuh"
#include "fp/varlen.cuh"

namespace fp {
namespace dev {

/// The mean of `valid` (1..kBlockSize) rows into dst[0, kHeadDim), the
/// work of one pooling CTA. `row_ptr(r)` is row r's first element, or null
/// for a row that must count as zeros (a paged key in a page id out of
/// range). Each thread owns one 16-byte column chunk and a strided subset of
/// the rows, keeps 8 fp32 partial sums, and the row groups are combined
/// through static shared memory.
template <typename Element, int kHeadDim, int kBlockSize, int kNumThreads, typename RowPtr>
FP_DEVICE void pool_rows(RowPtr row_ptr, int valid, Element *dst) {
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

  const int chunk = threadIdx.x % kChunks;
  const int group = threadIdx.x / kChunks;

  float acc[8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
    acc[i] = 0.f;
  // Unrolled by kBlockSize / kRowGroups so several 16-byte loads are in
  // flight per thread before the first add (the kernel is bandwidth-bound).
#pragma unroll
  for (int r = group; r < kBlockSize; r += kRowGroups) {
    if (r < valid) {
      const Element *row = row_ptr(r);
      if (row != nullptr) {
        const uint4 v = *reinterpret_cast<const uint4 *>(row + chunk * 8);
        float f[8];
        unpack8<Element>(v, f);
#pragma unroll
        for (int i = 0; i < 8; ++i)
          acc[i] += f[i];
      }
    }
  }
#pragma unroll
  for (int i = 0; i < 8; ++i)
    partial[group][chunk * 8 + i] = acc[i];
  __syncthreads();

  // A true division (not a multiply by the reciprocal) so the fp32 mean
  // rounds like the reference's.
  const float count = static_cast<float>(valid);
  for (int c = threadIdx.x; c < kHeadDim; c += kNumThreads) {
    float s = 0.f;
#pragma unroll
    for (int g = 0; g < kRowGroups; ++g)
      s += partial[g][c];
    dst[c] = ElementTraits<Element>::from_float(s / count);
  }
}

/// Mean-pools one block of `params.src` per CTA. Launch: grid
/// (num_blocks, num_heads, batch), kNumThreads threads, no dynamic smem.
template <typename Element, int kHeadDim, int kBlockSize, int kNumThreads>
__device__ void block_pool(const FpPoolParams &params) {
  const int j = blockIdx.x;
  const int head = blockIdx.y;
  const int batch = blockIdx.z;
  const int row0 = j * kBlockSize;
  // valid >= 1 always: block j exists only if jB < L.
  const int valid = const_min(kBlockSize, params.seq_len - row0);
  const Element *src = static_cast<const Element *>(params.src) +
                       batch * params.src_batch_stride + head * params.src_head_stride +
                       static_cast<fp_i64>(row0) * params.src_seq_stride;
  const fp_i64 stride = params.src_seq_stride;
  Element *dst = static_cast<Element *>(params.dst) +
                 ((static_cast<fp_i64>(batch) * params.num_heads + head) * params.num_blocks + j) *
                     kHeadDim;
  pool_rows<Element, kHeadDim, kBlockSize, kNumThreads>(
      [&](int r) { return src + static_cast<fp_i64>(r) * stride; }, valid, dst);
}

/// Varlen key pooling (docs/semantics.md section 2): block j of sequence i
/// covers its keys [jB, min((j+1)B, k_len_i)), packed or paged; kbar is
/// [b, h_kv, max_key_blocks, d]. Launch: grid (max_key_blocks, h_kv, b),
/// kNumThreads threads, no dynamic smem; CTAs past the sequence's last block
/// (or of a sequence whose lengths break the bounds) exit.
template <typename Element, int kHeadDim, int kBlockSize, int kNumThreads>
__device__ void varlen_block_pool(const FpVarlenPoolParams &params) {
  const int j = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int seq = blockIdx.z;
  VarlenSequence s;
  if (!load_varlen_sequence(params.seqs, seq, s))
    return;
  const int row0 = j * kBlockSize;
  if (row0 >= s.k_len)
    return;
  const int valid = const_min(kBlockSize, s.k_len - row0);
  const VarlenKeyRows<Element, kAnyKeys> keys = VarlenKeyRows<Element, kAnyKeys>::make(
      params.seqs, params.src, params.src_page_stride, params.src_seq_stride,
      params.src_head_stride, seq, s.k_start, kv_head);
  Element *dst = static_cast<Element *>(params.dst) +
                 ((static_cast<fp_i64>(seq) * params.num_heads + kv_head) * params.max_key_blocks +
                  j) *
                     kHeadDim;
  // A block that lies in one page (or packed keys): one page-table read
  // for the whole block; smaller pages, one per row. One pool_rows call
  // either way: each instantiation has its own shared-memory array.
  const bool whole = keys.template whole_tiles<kBlockSize>();
  const Element *first = whole ? keys.row(row0) : nullptr;
  pool_rows<Element, kHeadDim, kBlockSize, kNumThreads>(
      [&](int r) -> const Element * {
        if (whole)
          return first == nullptr ? first : first + static_cast<fp_i64>(r) * keys.row_stride;
        return keys.row(row0 + r);
      },
      valid, dst);
}

/// Varlen query pooling (pooled queries): the mean of local query block I
/// of sequence i into qbar [num_rows, h_q, d] at its compact-mask row, the
/// probe the pooled-query discovery reads. Launch: grid
/// (ceil(max_seqlen_q / B), h_q, b), kNumThreads threads, no dynamic smem;
/// CTAs past the sequence's query blocks (or of a sequence whose lengths
/// break the bounds) exit.
template <typename Element, int kHeadDim, int kBlockSize, int kNumThreads>
__device__ void varlen_query_pool(const FpVarlenPoolParams &params) {
  const int qblock = blockIdx.x;
  const int head = blockIdx.y;
  const int seq = blockIdx.z;
  VarlenSequence s;
  if (!load_varlen_sequence(params.seqs, seq, s))
    return;
  const int row0 = qblock * kBlockSize;
  if (row0 >= s.q_len)
    return;
  const Element *src = static_cast<const Element *>(params.src) +
                       static_cast<fp_i64>(s.q_start + row0) * params.src_seq_stride +
                       head * params.src_head_stride;
  const fp_i64 stride = params.src_seq_stride;
  Element *dst = static_cast<Element *>(params.dst) +
                 (static_cast<fp_i64>(varlen_mask_row<kBlockSize>(s.q_start, seq, qblock)) *
                      params.num_heads +
                  head) *
                     kHeadDim;
  pool_rows<Element, kHeadDim, kBlockSize, kNumThreads>(
      [&](int r) { return src + static_cast<fp_i64>(r) * stride; },
      const_min(kBlockSize, s.q_len - row0), dst);
}

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_BLOCK_POOL_CUH
