//===- fp/common.cuh - Shared device helpers for the fp kernels -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Small helpers every fp kernel template uses: element conversions for the
/// two 16-bit input types, warp and block reductions, the swizzled
/// shared-memory tile layout, and the dynamic shared memory handle.
///
/// Everything here must compile under NVRTC, which has no host standard
/// library: only cuda_bf16.h / cuda_fp16.h are included, and limits such as
/// infinity are spelled with bit patterns instead of <limits>.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_COMMON_CUH
#define FP_DEVICE_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "fp/params.h"

#define FP_DEVICE __device__ __forceinline__
#define FP_HOST_DEVICE __host__ __device__ __forceinline__

/// 1 where device code may use the Hopper features of the sm90 mainloop:
/// wgmma and setmaxnreg (sm_90a only, __CUDA_ARCH_FEAT_SM90_ALL), TMA and
/// mbarrier transaction counts; also 1 in a host pass (no device code).
/// NVRTC accepts their inline asm for any target, and ptxas (or the driver's
/// JIT) rejects it only later, so the sm90 headers #error when this is 0.
#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define FP_TARGET_HAS_SM90A 1
#else
#define FP_TARGET_HAS_SM90A 0
#endif

namespace fp {
namespace dev {

//===----------------------------------------------------------------------===//
// Compile-time integer helpers (constexpr so that traits can use them).
//===----------------------------------------------------------------------===//

FP_HOST_DEVICE constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }
FP_HOST_DEVICE constexpr int const_min(int a, int b) { return a < b ? a : b; }
FP_HOST_DEVICE constexpr int const_max(int a, int b) { return a > b ? a : b; }

/// Minimal `is_same`, because NVRTC has no <type_traits> without CCCL and
/// pulling CCCL in for one trait would cost compile time.
template <typename A, typename B> struct IsSame {
  static constexpr bool value = false;
};
template <typename A> struct IsSame<A, A> {
  static constexpr bool value = true;
};

//===----------------------------------------------------------------------===//
// Floating-point constants. Bit patterns, not <limits>, so NVRTC needs no
// host library.
//===----------------------------------------------------------------------===//

FP_DEVICE float neg_inf() { return __int_as_float(0xff800000); }
FP_DEVICE float pos_inf() { return __int_as_float(0x7f800000); }
constexpr float kLog2e = 1.4426950408889634f;
/// Added to the energy sum before normalising block scores. Mirrors
/// FP_SCORE_EPSILON in flashprefill/defaults.h, which NVRTC builds do not
/// see; a build that includes both checks they agree.
constexpr float kScoreEpsilon = 1e-9f;
#ifdef FP_SCORE_EPSILON
static_assert(kScoreEpsilon == FP_SCORE_EPSILON, "kScoreEpsilon must match defaults.h");
#endif

/// exp2 with the hardware approximation (MUFU.EX2, relative error ~2^-22).
/// The plain exp2f() adds denormal handling we do not need: every caller
/// subtracts a running maximum first, so arguments are <= 0 and a flushed
/// tiny result is indistinguishable from the exact one after normalisation.
FP_DEVICE float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

/// threadIdx.x read through volatile asm, so the compiler cannot merge it
/// with earlier index math. Epilogues use it: otherwise per-thread offsets
/// computed before a long loop are kept alive (or spilled) across the loop
/// just to be reused after it, where recomputing costs a few instructions.
FP_DEVICE int opaque_thread_index() {
  int t;
  asm volatile("mov.u32 %0, %%tid.x;" : "=r"(t));
  return t;
}

/// 1 / x for normal, finite x > 0, within an ulp: MUFU.RCP plus one Newton
/// step. IEEE division (and __frcp_rn) compile to a subroutine call whose
/// calling convention forces live registers to the stack; the callers here
/// divide by sums >= 1e-9, far from the denormal and overflow corners the
/// slow path exists for.
FP_DEVICE float fast_rcp(float x) {
  const float r = __fdividef(1.f, x);
  return fmaf(fmaf(-x, r, 1.f), r, r);
}

/// blockIdx read through volatile asm (see opaque_thread_index): lets a
/// kernel tail recompute its grid coordinates instead of holding them, and
/// everything derived from them, in registers across a long loop.
FP_DEVICE uint3 opaque_block_index() {
  uint3 b;
  asm volatile("mov.u32 %0, %%ctaid.x;" : "=r"(b.x));
  asm volatile("mov.u32 %0, %%ctaid.y;" : "=r"(b.y));
  asm volatile("mov.u32 %0, %%ctaid.z;" : "=r"(b.z));
  return b;
}

//===----------------------------------------------------------------------===//
// Element (16-bit input type) traits: conversion to and from fp32 and the
// packed pair used as one 32-bit mma operand register.
//===----------------------------------------------------------------------===//

/// Per-type facts the kernels need. Specialised for the two supported input
/// types only; any other Element fails to compile with an incomplete type.
template <typename Element> struct ElementTraits;

template <> struct ElementTraits<__nv_bfloat16> {
  static constexpr bool kIsBf16 = true;
  FP_DEVICE static float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
  FP_DEVICE static __nv_bfloat16 from_float(float x) { return __float2bfloat16_rn(x); }
  /// Two floats rounded to nearest-even and packed low-first into one 32-bit
  /// register, the layout mma.sync expects for an A/B operand pair.
  FP_DEVICE static unsigned pack2(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned *>(&v);
  }
};

template <> struct ElementTraits<__half> {
  static constexpr bool kIsBf16 = false;
  FP_DEVICE static float to_float(__half x) { return __half2float(x); }
  FP_DEVICE static __half from_float(float x) { return __float2half_rn(x); }
  FP_DEVICE static unsigned pack2(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<unsigned *>(&v);
  }
};

/// Unpacks a 16-byte chunk (8 elements) into fp32.
template <typename Element>
FP_DEVICE void unpack8(const uint4 &chunk, float (&out)[8]) {
  const Element *e = reinterpret_cast<const Element *>(&chunk);
#pragma unroll
  for (int i = 0; i < 8; ++i)
    out[i] = ElementTraits<Element>::to_float(e[i]);
}

//===----------------------------------------------------------------------===//
// Block reductions.
//===----------------------------------------------------------------------===//

/// Reduction operators for block_reduce.
struct MaxOp {
  FP_DEVICE float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct MinOp {
  FP_DEVICE float operator()(float a, float b) const { return fminf(a, b); }
};
struct SumOp {
  FP_DEVICE float operator()(float a, float b) const { return a + b; }
  FP_DEVICE int operator()(int a, int b) const { return a + b; }
};

/// Block-wide reduction; every thread gets the result. `scratch` needs
/// kNumWarps slots. Deterministic: the order of combination is fixed, so a
/// rerun on the same input gives the same bits (the mask must not flicker).
/// Ends with a barrier so the scratch can be reused right away.
template <int kNumWarps, typename T, typename Op>
FP_DEVICE T block_reduce(T v, T *scratch, Op op) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1)
    v = op(v, __shfl_xor_sync(0xffffffffu, v, off));
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  T r = scratch[0];
#pragma unroll
  for (int w = 1; w < kNumWarps; ++w)
    r = op(r, scratch[w]);
  __syncthreads();
  return r;
}

//===----------------------------------------------------------------------===//
// Shared memory.
//===----------------------------------------------------------------------===//

/// The kernel's dynamic shared memory. One extern declaration for all fp
/// kernels: a translation unit may hold several instantiations and they must
/// agree on the declaration's type.
FP_DEVICE unsigned char *dynamic_smem() {
  extern __shared__ __align__(128) unsigned char fp_dynamic_smem[];
  return fp_dynamic_smem;
}

/// Row-major tile of kRows x kCols 16-bit elements in shared memory, stored
/// as 16-byte chunks with the chunk index XOR-swizzled by the row. ldmatrix
/// reads 8 rows at the same logical chunk; without the swizzle those rows sit
/// at the same bank offset whenever a row is a multiple of 128 bytes, an
/// 8-way conflict. The XOR mask is the largest power of two (at most 8)
/// dividing the chunks per row, so the swizzle never leaves the row; head
/// dims that are multiples of 64 get the full conflict-free pattern.
template <int kRows, int kCols> struct SwizzledTile {
  static_assert(kCols % 8 == 0, "tile columns must be whole 16-byte chunks");
  static constexpr int kChunks = kCols / 8;
  static constexpr int kMask = (kChunks % 8 == 0)   ? 7
                               : (kChunks % 4 == 0) ? 3
                               : (kChunks % 2 == 0) ? 1
                                                    : 0;
  static constexpr int kBytes = kRows * kCols * 2;
  /// Byte offset of 16-byte chunk `chunk` of row `row`.
  FP_DEVICE static int chunk_offset(int row, int chunk) {
    return (row * kChunks + (chunk ^ (row & kMask))) * 16;
  }
  /// Byte offset of element (row, col); col may be anywhere in its chunk.
  FP_DEVICE static int elem_offset(int row, int col) {
    return chunk_offset(row, col >> 3) + (col & 7) * 2;
  }

  /// Chunks that share one swizzle pattern.
  static constexpr int kGroup = kMask + 1;
};

/// XOR through volatile asm: the compiler can neither fold it into a
/// loop-invariant value nor hoist it out of a loop. Used for shared-memory
/// addresses that would otherwise each be precomputed into a register that
/// stays live across the whole key loop (the sm80 attention mainloop sits at
/// the 255-register limit).
FP_DEVICE unsigned opaque_xor(unsigned a, unsigned b) {
  unsigned r;
  asm volatile("xor.b32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
  return r;
}

/// Per-lane ldmatrix addressing for a SwizzledTile. A lane reads row
/// `row_const + lane_row` (row_const a multiple of 16) and chunk
/// `2 * step + lane_chunk` (lane_chunk 0 or 1). The swizzle only permutes
/// chunks inside aligned groups of kGroup, and inside a group
///   ((2v + lane_chunk) ^ x) * 16 == (32 v) ^ ((lane_chunk ^ x) * 16)
/// with x = lane_row & kMask and v = step % (kGroup / 2). So the address is
/// `tile + lane offset for v` plus a compile-time constant, in two flavours:
///  * kCompact = false: the kGroup / 2 lane offsets sit in registers; every
///    ldmatrix is one register plus an immediate (fastest, more registers);
///  * kCompact = true: one register, lane_base = row bytes + (lane_chunk ^ x)
///    * 16, and an XOR by 32 v per ldmatrix (for register-bound kernels).
/// Needs `tile` aligned to kGroup * 16 bytes.
template <typename Tile, bool kCompact> struct LaneOffsets;

template <typename Tile> struct LaneOffsets<Tile, false> {
  static constexpr int kVariants = Tile::kGroup / 2;
  unsigned offset[kVariants];

  FP_DEVICE LaneOffsets(int lane_row, int lane_chunk) {
#pragma unroll
    for (int v = 0; v < kVariants; ++v)
      offset[v] = static_cast<unsigned>(Tile::chunk_offset(lane_row, 2 * v + lane_chunk));
  }

  /// Address for 16-row-aligned `row_const` and k-step `step`, both
  /// compile-time constants after unrolling.
  template <bool kOpaque = false>
  FP_DEVICE unsigned at(unsigned tile, int row_const, int step) const {
    const int chunk_base = (2 * step) / Tile::kGroup * Tile::kGroup;
    return tile + offset[(2 * step % Tile::kGroup) / 2] +
           static_cast<unsigned>((row_const * Tile::kChunks + chunk_base) * 16);
  }
};

template <typename Tile> struct LaneOffsets<Tile, true> {
  unsigned lane_base;

  FP_DEVICE LaneOffsets(int lane_row, int lane_chunk)
      : lane_base(static_cast<unsigned>(lane_row * Tile::kChunks * 16 +
                                        ((lane_chunk ^ (lane_row & Tile::kMask)) * 16))) {}

  /// As above. kOpaque hides the XOR from the compiler: needed when `tile`
  /// is loop-invariant (the Q tile), whose XOR variants would otherwise be
  /// hoisted into registers live across the key loop, undoing the point.
  template <bool kOpaque = false>
  FP_DEVICE unsigned at(unsigned tile, int row_const, int step) const {
    const int chunk_base = (2 * step) / Tile::kGroup * Tile::kGroup;
    const unsigned variant = static_cast<unsigned>((2 * step % Tile::kGroup) / 2) * 32u;
    const unsigned base = tile + lane_base;
    const unsigned swizzled =
        variant == 0 ? base : (kOpaque ? opaque_xor(base, variant) : base ^ variant);
    return swizzled + static_cast<unsigned>((row_const * Tile::kChunks + chunk_base) * 16);
  }
};

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_COMMON_CUH
