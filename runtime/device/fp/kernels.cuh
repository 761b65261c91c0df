//===- fp/kernels.cuh - Umbrella header for generated fp kernels -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The one header generated kernel sources include. It pulls in the
/// parameter structs (params.h) and the three kernel templates:
///
///   fp::dev::block_pool<Element, kHeadDim, kBlockSize, kNumThreads>
///       grid (nb, h, b); no dynamic shared memory
///   fp::dev::pattern_discovery<Element, kHeadDim, kBlockSize, kKeyChunk, kNumWarps>
///       grid (nb, h_q, b); 32 * kNumWarps threads; dynamic shared memory
///       DiscoveryTraits<...>::kSmemBaseBytes
///         + DiscoveryTraits<...>::kSmemPerKeyBlockBytes * num_blocks
///   fp::dev::masked_attention<Element, kHeadDim, kBlockSize, kBlockM, kBlockN,
///                             kNumWarps, kNumStages, kArch>
///       grid (ceil(s_q / kBlockM), h_q, b); 32 * kNumWarps threads; dynamic
///       shared memory AttentionTraits<...>::kSmemBytes
///
/// Element is __nv_bfloat16 or __half. Generated glue looks like
///
///   #include "fp/kernels.cuh"
///   extern "C" __global__ void __launch_bounds__(128)
///   fp_masked_attention_bf16_d128_b128(FpAttentionParams params) {
///     fp::dev::masked_attention<__nv_bfloat16, 128, 128, 128, 64, 4, 2, 80>(params);
///   }
///
/// NVRTC: NVRTC 13.0 has no built-in cuda_bf16.h / cuda_fp16.h. Pass
/// -I<cuda>/include, or hand NVRTC the four headers cuda_bf16.h,
/// cuda_bf16.hpp, cuda_fp16.h and cuda_fp16.hpp as in-memory headers (they
/// need nothing else that NVRTC lacks). Nothing else outside runtime/device
/// is included.
///
/// Default tile configurations, one per (head dim d, block size B), for both
/// element types. Each compiles spill-free for sm_80 (kArch 80) and sm_90a
/// (kArch 90) and fits the sm_80 opt-in shared memory (163 KB), hence also
/// sm_90's 227 KB; bench/dev/compile_check.py re-checks them through NVRTC.
///
///   d    B   | pool    | discovery    | attention                   | attention
///            | threads | chunk warps  | BlockM BlockN warps stages  | smem (bytes)
///   ---------+---------+--------------+-----------------------------+-------------
///   64   64  | 128     | 64    4      | 64     64     4     2       | 40960
///   64   128 | 128     | 64    4      | 128    64     4     2       | 49152
///   128  64  | 128     | 64    4      | 64     64     4     2       | 81920
///   128  128 | 128     | 64    4      | 128    64     8     2       | 98304
///   256  64  | 128     | 32    4      | 64     32     4     2       | 98304
///   256  128 | 128     | 32    4      | 128    32     8     2       | 131072
///
/// Discovery dynamic smem = kSmemBaseBytes + 8 * num_blocks (DiscoveryTraits).
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_KERNELS_CUH
#define FP_DEVICE_KERNELS_CUH

#include "fp/params.h"

#include "fp/block_pool.cuh"
#include "fp/common.cuh"
#include "fp/masked_attention.cuh"
#include "fp/pattern_discovery.cuh"

#endif // FP_DEVICE_KERNELS_CUH
