//===- fp/arch/sm90_primitives.cuh - mbarrier, TMA, wgmma plumbing -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The few Hopper PTX wrappers the sm90 mainloop needs, written directly
/// instead of pulling CUTLASS/CuTe into NVRTC (whose compile time for one
/// CuTe attention kernel is tens of seconds): shared-memory mbarriers, the
/// bulk tensor copy (TMA) global -> shared, wgmma fences and shared-memory
/// matrix descriptors for the 128-byte-swizzled layout TMA writes.
///
/// Layout contract (PTX ISA, "Matrix Descriptor Format" and the
/// tensor-map swizzle modes): a tile of R rows x 64 elements of a 16-bit
/// type, written by TMA with CU_TENSOR_MAP_SWIZZLE_128B into a 1024-byte
/// aligned buffer, holds row r at byte r * 128 with its 16-byte chunk c
/// stored at chunk c ^ (r % 8). A tile wider than 64 elements is stored as
/// consecutive such "panels" of R x 64. Both wgmma operand forms used here
/// read that layout:
///   K-major (A = Q rows, B = K rows; the reduction dim is contiguous):
///     stride byte offset = 1024 (8 rows x 128 B), leading offset unused;
///     k-step j of 16 elements starts 32 * j bytes into the panel.
///   MN-major (B = V rows [keys][d], used transposed):
///     stride byte offset = 1024 (the next 8 keys), leading byte offset =
///     the panel size (the next 64 columns of d); k-step j of 16 keys
///     starts 16 * 128 * j bytes into the tile.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_ARCH_SM90_PRIMITIVES_CUH
#define FP_DEVICE_ARCH_SM90_PRIMITIVES_CUH

#include "fp/common.cuh"
#include "fp/params.h"

#if !FP_TARGET_HAS_SM90A
#error "fp/arch/sm90_primitives.cuh: wgmma, setmaxnreg, TMA and mbarrier tx need -arch=sm_90a or compute_90a; other targets use the kArch 80 (mma.sync) mainloop"
#endif

namespace fp {
namespace dev {
namespace sm90 {

FP_DEVICE unsigned smem_addr(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

//===----------------------------------------------------------------------===//
// mbarrier (shared::cta)
//===----------------------------------------------------------------------===//

FP_DEVICE void mbar_init(unsigned bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}

/// Makes the initialised barriers visible to the async (TMA) proxy; follow
/// with a CTA barrier before any thread uses them.
FP_DEVICE void mbar_init_fence() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

/// One arrival that also tells the barrier to expect `bytes` more
/// transaction bytes (the TMA copies that complete on it).
FP_DEVICE void mbar_arrive_expect_tx(unsigned bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes)
               : "memory");
}

FP_DEVICE void mbar_arrive(unsigned bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}

/// Spins until the phase with the given parity has completed.
FP_DEVICE void mbar_wait(unsigned bar, unsigned parity) {
  unsigned done;
  do {
    asm volatile("{\n"
                 ".reg .pred p;\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                 "selp.u32 %0, 1, 0, p;\n"
                 "}\n"
                 : "=r"(done)
                 : "r"(bar), "r"(parity)
                 : "memory");
  } while (!done);
}

//===----------------------------------------------------------------------===//
// TMA
//===----------------------------------------------------------------------===//

FP_DEVICE void tma_prefetch_descriptor(const FpTensorMap *map) {
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<fp_u64>(map)) : "memory");
}

/// Copies the box at (c0, c1, c2, c3) of a rank-4 tensor map into shared
/// memory; completion (and its byte count) lands on `bar`. Out-of-bounds
/// box elements are written as zeros.
FP_DEVICE void tma_load_4d(unsigned dst, const FpTensorMap *map, unsigned bar, int c0, int c1,
                           int c2, int c3) {
  asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes"
               " [%0], [%1, {%3, %4, %5, %6}], [%2];" ::"r"(dst),
               "l"(reinterpret_cast<fp_u64>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
               : "memory");
}

//===----------------------------------------------------------------------===//
// wgmma
//===----------------------------------------------------------------------===//

FP_DEVICE void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
FP_DEVICE void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int kPending> FP_DEVICE void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(kPending) : "memory");
}

/// Pins accumulator registers in place around asynchronous wgmma: without it
/// the compiler may move reads of `x` above the wait (it cannot see that the
/// wgmma is still writing them).
template <int kN> FP_DEVICE void fence_registers(float (&x)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
    asm volatile("" : "+f"(x[i])::"memory");
}

/// Shared-memory matrix descriptor, 128-byte swizzle (PTX ISA, "Matrix
/// Descriptor Format"): start address, leading and stride byte offsets in
/// 16-byte units, base offset 0 (the tile is 1024-byte aligned), layout
/// type 1 = 128B swizzle in bits 62-63.
FP_DEVICE fp_u64 make_smem_desc(unsigned addr, unsigned leading_bytes, unsigned stride_bytes) {
  fp_u64 desc = 0;
  desc |= static_cast<fp_u64>((addr & 0x3FFFF) >> 4);
  desc |= static_cast<fp_u64>((leading_bytes >> 4) & 0x3FFF) << 16;
  desc |= static_cast<fp_u64>((stride_bytes >> 4) & 0x3FFF) << 32;
  desc |= static_cast<fp_u64>(1) << 62;
  return desc;
}

//===----------------------------------------------------------------------===//
// Warp-group register reallocation and named barriers
//===----------------------------------------------------------------------===//

template <int kRegs> FP_DEVICE void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kRegs));
}
template <int kRegs> FP_DEVICE void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kRegs));
}

/// bar.sync on a named barrier (1..15; 0 is __syncthreads) among `threads`.
FP_DEVICE void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(threads) : "memory");
}

} // namespace sm90
} // namespace dev
} // namespace fp

#endif // FP_DEVICE_ARCH_SM90_PRIMITIVES_CUH
