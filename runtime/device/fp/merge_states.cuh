//===- fp/merge_states.cuh - Merging two attention states -------*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// fp_merge_states on the GPU: out = merge(a, b) by LSE, row by row, as
/// ref::mergeRow defines it (docs/merge-states.md). Compiled by NVRTC as its
/// own program ("#include "fp/merge_states.cuh"", entry fp_merge_states),
/// not generated: it has no tiles and no per-spec constants.
///
/// One warp per row (b, s, h), grid-stride over rows; lanes stride over d
/// with scalar loads (any element-aligned view works; the kernel is
/// memory-bound and tiny next to attention). Every lane reads the row's two
/// LSEs before any lane writes, and each element is read and written by the
/// same lane, so merging in place (out == a or b) is exact.
///
/// Numerics: the reference's operations in its order, each rounded
/// separately (__fmul_rn / __fadd_rn / __fdiv_rn: no FMA contraction);
/// expf and logf are CUDA's (within 2 ulp and 1 ulp), so weights, LSE and
/// hence O can differ from the reference's std::exp / std::log in the last
/// bits. Copies of an empty side's partner and the NaN / zero rows are
/// exact, bit for bit.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_MERGE_STATES_CUH
#define FP_DEVICE_MERGE_STATES_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "fp/merge_states.h"

namespace fp {
namespace dev {
namespace merge {

__device__ __forceinline__ float load(const void *base, fp_i64 i, int type) {
  if (type == FP_MERGE_F32)
    return static_cast<const float *>(base)[i];
  const unsigned short bits = static_cast<const unsigned short *>(base)[i];
  if (type == FP_MERGE_BF16)
    return __uint_as_float(static_cast<unsigned>(bits) << 16); // exact
  return __half2float(__ushort_as_half(bits));
}

__device__ __forceinline__ void store(void *base, fp_i64 i, int type,
                                      float x) {
  if (type == FP_MERGE_F32)
    static_cast<float *>(base)[i] = x;
  else if (type == FP_MERGE_BF16)
    static_cast<unsigned short *>(base)[i] =
        __bfloat16_as_ushort(__float2bfloat16_rn(x));
  else
    static_cast<unsigned short *>(base)[i] =
        __half_as_ushort(__float2half_rn(x));
}

/// The quiet NaN the reference stores for a NaN row (its float->16-bit
/// conversions of the canonical NaN 0x7fc00000).
__device__ __forceinline__ void store_nan(void *base, fp_i64 i, int type) {
  if (type == FP_MERGE_F32)
    static_cast<unsigned *>(base)[i] = 0x7fc00000u;
  else
    static_cast<unsigned short *>(base)[i] =
        type == FP_MERGE_BF16 ? 0x7fc0 : 0x7e00;
}

/// An empty side's partner: the raw bits when the types agree.
__device__ __forceinline__ void copy(const void *src, fp_i64 si, int srcType,
                                     void *dst, fp_i64 di, int dstType) {
  if (srcType != dstType)
    store(dst, di, dstType, load(src, si, srcType));
  else if (srcType == FP_MERGE_F32)
    static_cast<unsigned *>(dst)[di] = static_cast<const unsigned *>(src)[si];
  else
    static_cast<unsigned short *>(dst)[di] =
        static_cast<const unsigned short *>(src)[si];
}

enum RowKind { kBoth, kOnlyA, kOnlyB, kEmpty, kNaN };

} // namespace merge
} // namespace dev
} // namespace fp

extern "C" __device__ const int fp_merge_states_params_bytes =
    sizeof(FpMergeStatesParams);

extern "C" __global__ void __launch_bounds__(FP_MERGE_THREADS)
    fp_merge_states(const FpMergeStatesParams p) {
  using namespace fp::dev::merge;
  const int lane = threadIdx.x & 31;
  const fp_i64 warps = static_cast<fp_i64>(gridDim.x) * (FP_MERGE_THREADS / 32);
  const fp_i64 rows = p.batch * p.seq * p.heads;
  for (fp_i64 r = static_cast<fp_i64>(blockIdx.x) * (FP_MERGE_THREADS / 32) +
                  (threadIdx.x >> 5);
       r < rows; r += warps) { // warp-uniform
    const fp_i64 h = r % p.heads, bs = r / p.heads;
    const fp_i64 s = bs % p.seq, b = bs / p.seq;
    const float la = p.lse_a[b * p.lse_a_strides[0] + h * p.lse_a_strides[1] +
                             s * p.lse_a_strides[2]];
    const float lb = p.lse_b[b * p.lse_b_strides[0] + h * p.lse_b_strides[1] +
                             s * p.lse_b_strides[2]];
    // ref::mergeRow: NaN first; +-inf is an empty side.
    RowKind kind;
    float wa = 0.f, wb = 0.f, sum = 1.f, lse;
    if (isnan(la) || isnan(lb)) {
      kind = kNaN;
      lse = __uint_as_float(0x7fc00000u);
    } else if (isinf(la) && isinf(lb)) {
      kind = kEmpty;
      lse = __uint_as_float(0xff800000u);
    } else if (isinf(lb)) {
      kind = kOnlyA;
      lse = la;
    } else if (isinf(la)) {
      kind = kOnlyB;
      lse = lb;
    } else {
      kind = kBoth;
      const float m = fmaxf(la, lb);
      wa = expf(__fsub_rn(la, m));
      wb = expf(__fsub_rn(lb, m));
      sum = __fadd_rn(wa, wb);
      lse = __fadd_rn(m, logf(sum));
    }
    const fp_i64 ia = b * p.o_a_strides[0] + s * p.o_a_strides[1] +
                      h * p.o_a_strides[2];
    const fp_i64 ib = b * p.o_b_strides[0] + s * p.o_b_strides[1] +
                      h * p.o_b_strides[2];
    const fp_i64 io =
        b * p.o_strides[0] + s * p.o_strides[1] + h * p.o_strides[2];
    for (fp_i64 c = lane; c < p.dim; c += 32) {
      if (kind == kBoth) {
        const float va = load(p.o_a, ia + c, p.type_a);
        const float vb = load(p.o_b, ib + c, p.type_b);
        store(p.o, io + c, p.type_o,
              __fdiv_rn(__fadd_rn(__fmul_rn(wa, va), __fmul_rn(wb, vb)), sum));
      } else if (kind == kOnlyA) {
        copy(p.o_a, ia + c, p.type_a, p.o, io + c, p.type_o);
      } else if (kind == kOnlyB) {
        copy(p.o_b, ib + c, p.type_b, p.o, io + c, p.type_o);
      } else if (kind == kEmpty) {
        store(p.o, io + c, p.type_o, 0.f);
      } else {
        store_nan(p.o, io + c, p.type_o);
      }
    }
    // Every lane has read la / lb (an in-place out.lse aliases them).
    __syncwarp();
    if (lane == 0 && p.lse)
      p.lse[b * p.lse_strides[0] + h * p.lse_strides[1] +
            s * p.lse_strides[2]] = lse;
  }
}

#endif // FP_DEVICE_MERGE_STATES_CUH
