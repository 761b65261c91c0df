//===- flashprefill/runtime/attention_tma.h - TMA maps for attention -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Fills the three tensor maps of FpAttentionParams that the sm_90a
/// masked_attention mainloop reads with TMA. Header-only and parameterised
/// on the encode entry point (cuTensorMapEncodeTiled), so the runtime (which
/// dlopens the driver) and the nvcc harness (which links it) share one
/// definition of the map geometry the kernel assumes:
///   rank 4 over (d, seq, head, batch), box (64, rows, 1, 1), 128-byte
///   swizzle, out-of-bounds elements read as zero,
///   rows = blockM for Q and blockN for K and V.
///
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_ATTENTION_TMA_H
#define FLASHPREFILL_RUNTIME_ATTENTION_TMA_H

#include "fp/params.h"

#include <cuda.h>
#include <cstdint>
#include <cstring>

namespace fp {
namespace rt {

static_assert(sizeof(FpTensorMap) == sizeof(CUtensorMap) &&
                  alignof(FpTensorMap) == alignof(CUtensorMap),
              "FpTensorMap must mirror CUtensorMap");

/// Encodes one map; `encode` has cuTensorMapEncodeTiled's signature.
template <typename EncodeFn>
CUresult encodeAttentionTensorMap(EncodeFn encode, FpTensorMap *map, CUtensorMapDataType dtype,
                                  const void *base, int headDim, int seqLen, int heads, int batch,
                                  int64_t seqStride, int64_t headStride, int64_t batchStride,
                                  int boxRows) {
  const cuuint64_t dims[4] = {cuuint64_t(headDim), cuuint64_t(seqLen), cuuint64_t(heads),
                              cuuint64_t(batch)};
  const cuuint64_t strides[3] = {cuuint64_t(seqStride) * 2, cuuint64_t(headStride) * 2,
                                 cuuint64_t(batchStride) * 2};
  const cuuint32_t box[4] = {64, cuuint32_t(boxRows), 1, 1};
  const cuuint32_t elementStrides[4] = {1, 1, 1, 1};
  CUtensorMap out;
  const CUresult result =
      encode(&out, dtype, 4, const_cast<void *>(base), dims, strides, box, elementStrides,
             CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (result == CUDA_SUCCESS)
    std::memcpy(map, &out, sizeof out);
  return result;
}

/// Fills params.tma_q/k/v from the pointers, shapes and strides already in
/// `params`. `bf16` selects the element type (else fp16).
template <typename EncodeFn>
CUresult encodeAttentionTensorMaps(EncodeFn encode, FpAttentionParams &params, bool bf16,
                                   int headDim, int blockM, int blockN) {
  const CUtensorMapDataType dtype =
      bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  CUresult r = encodeAttentionTensorMap(encode, &params.tma_q, dtype, params.q, headDim,
                                        params.seq_q, params.num_q_heads, params.batch,
                                        params.q_seq_stride, params.q_head_stride,
                                        params.q_batch_stride, blockM);
  if (r != CUDA_SUCCESS)
    return r;
  r = encodeAttentionTensorMap(encode, &params.tma_k, dtype, params.k, headDim, params.seq_k,
                               params.num_kv_heads, params.batch, params.k_seq_stride,
                               params.k_head_stride, params.k_batch_stride, blockN);
  if (r != CUDA_SUCCESS)
    return r;
  return encodeAttentionTensorMap(encode, &params.tma_v, dtype, params.v, headDim, params.seq_k,
                                  params.num_kv_heads, params.batch, params.v_seq_stride,
                                  params.v_head_stride, params.v_batch_stride, blockN);
}

} // namespace rt
} // namespace fp

#endif // FLASHPREFILL_RUNTIME_ATTENTION_TMA_H
