//===- fp/kernels.cuh - Umbrella header for generated fp kernels -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The one header generated kernel sources include. It pulls in the
/// parameter structs (params.h) and the kernel templates:
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
/// and, for varlen calls (docs/semantics.md section 2: packed sequences after
/// cached prefixes, packed or paged K/V; fp/varlen.cuh), on every arch:
///
///   fp::dev::varlen_block_pool<Element, kHeadDim, kBlockSize, kNumThreads>
///       grid (ceil(max_seqlen_k / B), h_kv, b); no dynamic shared memory
///   fp::dev::varlen_query_pool<Element, kHeadDim, kBlockSize, kNumThreads>
///       (pooled queries) grid (ceil(max_seqlen_q / B), h_q, b); likewise
///   fp::dev::varlen_pattern_discovery<Element, kHeadDim, kBlockSize, kKeyChunk, kNumWarps>
///       grid (ceil(max_seqlen_q / B), h_q, b); DiscoveryTraits shared memory
///       with max_key_blocks in place of num_blocks
///   fp::dev::varlen_masked_attention<Element, kHeadDim, kBlockSize, kBlockM, kBlockN,
///                                    kNumWarps, kNumStages, kPaged>
///       grid (ceil(max_seqlen_q / kBlockM), h_q, b); the mma.sync mainloop
///       (AttentionTraits<..., 80>) with the sm_80 tiles of the table below
///
/// Element is __nv_bfloat16 or __half. Generated glue looks like
///
///   #include "fp/kernels.cuh"
///   extern "C" __global__ void __launch_bounds__(384, 1)
///   fp_masked_attention_bf16_d128_b128(const __grid_constant__ FpAttentionParams params) {
///     fp::dev::masked_attention<__nv_bfloat16, 128, 128, 128, 128, 12, 2, 90>(params);
///   }
///
/// (__grid_constant__: the sm_90a mainloop hands TMA the address of the
/// tensor maps inside the parameter struct.)
///
/// Prefer __launch_bounds__(threads, 1) in the glue: with a bare
/// __launch_bounds__(threads) ptxas may trade a few spill bytes for
/// occupancy (it did for some discovery configs during development; none of
/// the defaults below spills in either form today).
///
/// NVRTC: NVRTC 13.0 has no built-in cuda_bf16.h / cuda_fp16.h. Pass
/// -I<cuda>/include, or hand NVRTC the four headers cuda_bf16.h,
/// cuda_bf16.hpp, cuda_fp16.h and cuda_fp16.hpp as in-memory headers (they
/// need nothing else that NVRTC lacks). All fp headers include each other as
/// "fp/<name>", so in-memory headers must be named that way (NVRTC does not
/// resolve quoted includes relative to the including header). No CCCL, no
/// host standard library. -std=c++17 (NVRTC's default) is required.
///
/// Default tile configurations, one per (head dim d, block size B), for both
/// element types. Each compiles spill-free through NVRTC for sm_80
/// (kArch 80) and sm_90a (kArch 90) and fits sm_80's 163 KB opt-in shared
/// memory (so also sm_90's 227 KB); bench/dev/compile_check.py re-checks
/// them. Registers are bf16, sm_80 / sm_90a.
///
///   d    B   | pool    | discovery         | attention                  | attention
///            | threads | chunk warps regs  | BlockM BlockN warps stages | smem B   regs
///   ---------+---------+-------------------+----------------------------+--------------
///   64   64  | 128     | 64    4     100   | 64     64     4     2      | 40960  142/142
///   64   128 | 128     | 64    4     147   | 128    64     4     2      | 49152  222/227
///   128  64  | 128     | 64    4     112   | 64     64     4     2      | 81920  180/186
///   128  128 | 128     | 64    4     153   | 128    32     4     2      | 65536  245/245
///   256  64  | 128     | 32    4     100   | 64     32     4     2      | 98304  246/255
///   256  128 | 128     | 32    4     128   | 64     32     4     2      | 98304  246/255
///
/// sm_90a (kArch 90, the wgmma/TMA mainloop) uses its own attention tiles:
/// BlockM = B, BlockN = B (64 at d = 256, B = 128), warps 4 * (BlockM / 64 + 1),
/// 2 stages; shared memory 1024 + (BlockM + 4 BlockN) d 2 + 8 (1 + 4 stages)
/// (165 KB at d = 128, B = 128); 168 registers at entry (setmaxnreg gives the
/// consumers 240), no spills (KernelCompileTest checks every one).
///
/// Pool: 32-34 registers, 4 KB static shared memory. Discovery dynamic smem =
/// kSmemBaseBytes + 8 * num_blocks (DiscoveryTraits), e.g. 67776 + 8 nb at
/// d = 128, B = 128. Dense causal attention on one H100 (bf16, h_q 32,
/// h_kv 8, 16K tokens, sm_90a build of these sm80 mainloops): 318-332
/// TFLOP/s at d = 128 with the default, 352 with 128x64x4x2, which spills
/// 8-16 bytes and so is not a default.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_KERNELS_CUH
#define FP_DEVICE_KERNELS_CUH

#include "fp/params.h"

#include "fp/block_pool.cuh"
#include "fp/common.cuh"
#include "fp/masked_attention.cuh"
#include "fp/pattern_discovery.cuh"
#include "fp/varlen.cuh"

#endif // FP_DEVICE_KERNELS_CUH
