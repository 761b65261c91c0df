//===- fp/arch/mma_sm80.cuh - Ampere-class warp MMA and copies -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The sm_80 instruction layer: warp-level mma.sync m16n8k16 with fp32
/// accumulation, ldmatrix (plain and transposed) and cp.async with zero fill.
/// These run on every arch >= 80 (Hopper included: discovery uses them
/// there too); the Hopper wgmma/TMA layer is sm90_primitives.cuh and
/// wgmma_sm90.cuh, picked through the mainloop selector.
///
/// Fragment layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"), with
/// g = lane / 4 and t = lane % 4:
///   A (16x16, row):  a0 = (g, 2t..2t+1)     a1 = (g+8, 2t..2t+1)
///                    a2 = (g, 2t+8..2t+9)   a3 = (g+8, 2t+8..2t+9)
///   B (16x8, col):   b0 = (k 2t..2t+1, n g) b1 = (k 2t+8..2t+9, n g)
///   C (16x8, fp32):  c0,c1 = (g, 2t..2t+1)  c2,c3 = (g+8, 2t..2t+1)
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_ARCH_MMA_SM80_CUH
#define FP_DEVICE_ARCH_MMA_SM80_CUH

#include "fp/common.cuh"

namespace fp {
namespace dev {
namespace sm80 {

/// Shared-memory address (32-bit, .shared window) of a generic pointer, the
/// operand form ldmatrix and cp.async take.
FP_DEVICE unsigned smem_addr(const void *p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

/// D = A * B + D, 16x8x16, fp32 accumulate. Element picks the bf16 or f16
/// variant; both read the same fragment layout. Not volatile: a pure
/// register op, which the compiler may schedule freely.
template <typename Element>
FP_DEVICE void mma_16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  if (ElementTraits<Element>::kIsBf16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

/// Four 8x8 b16 matrices; lane i supplies the row address of matrix i / 8,
/// row i % 8.
FP_DEVICE void ldmatrix_x4(unsigned (&r)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

/// As ldmatrix_x4, each 8x8 matrix transposed (used for V, stored key-major
/// but consumed as the column-major B operand).
FP_DEVICE void ldmatrix_x4_trans(unsigned (&r)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr)
               : "memory");
}

/// 16-byte global -> shared copy that bypasses L1 (.cg). When `valid` is
/// false the source size is 0 and the hardware zero-fills the destination, so
/// tiles past the sequence end hold zeros instead of stale data and no
/// out-of-bounds address is dereferenced.
FP_DEVICE void cp_async_16(unsigned dst, const void *src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes)
               : "memory");
}

FP_DEVICE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

/// Waits until at most kPending committed groups are still in flight.
template <int kPending> FP_DEVICE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

/// Cooperative cp.async of rows [row0, row0 + kRows) of a row-major slice
/// (16-bit elements, kCols per row, rows row_stride elements apart) into a
/// SwizzledTile<kRows, kCols>; rows >= row_limit are zero-filled and their
/// addresses never dereferenced. When the thread count allows, each thread
/// keeps one column chunk and walks rows kNumThreads / chunks apart, so its
/// shared-memory offsets differ by immediates (the swizzle repeats every
/// kGroup rows) and its global address by one stride per step: few live
/// registers and no per-copy index math.
template <int kRows, int kCols, int kNumThreads, typename Element>
FP_DEVICE void cp_async_tile(unsigned char *tile, const Element *base, fp_i64 row_stride, int row0,
                             int row_limit) {
  using Tile = SwizzledTile<kRows, kCols>;
  constexpr int kChunks = Tile::kChunks;
  constexpr int kTotal = kRows * kChunks;
  if constexpr (kNumThreads % kChunks == 0 && (kNumThreads / kChunks) % Tile::kGroup == 0 &&
                kTotal % kNumThreads == 0) {
    constexpr int kRowStep = kNumThreads / kChunks;
    const int c = threadIdx.x % kChunks;
    const int r0 = threadIdx.x / kChunks;
    const unsigned dst = smem_addr(tile + Tile::chunk_offset(r0, c));
    const Element *src = base + static_cast<fp_i64>(row0 + r0) * row_stride + c * 8;
    const fp_i64 src_step = kRowStep * row_stride;
#pragma unroll
    for (int i = 0; i < kTotal / kNumThreads; ++i) {
      const bool valid = row0 + r0 + i * kRowStep < row_limit;
      cp_async_16(dst + i * kRowStep * kChunks * 16, valid ? src + i * src_step : base, valid);
    }
  } else {
#pragma unroll
    for (int i = 0; i < ceil_div(kTotal, kNumThreads); ++i) {
      const int idx = i * kNumThreads + threadIdx.x;
      if (kTotal % kNumThreads == 0 || idx < kTotal) {
        const int r = idx / kChunks;
        const int c = idx % kChunks;
        const bool valid = row0 + r < row_limit;
        const Element *src = base + static_cast<fp_i64>(valid ? row0 + r : 0) * row_stride + c * 8;
        cp_async_16(smem_addr(tile + Tile::chunk_offset(r, c)), src, valid);
      }
    }
  }
}

/// cp_async_tile for rows that are not evenly spaced (paged K/V with pages
/// smaller than the tile): `row_ptr(r)` gives tile row r's first element, or
/// null to zero-fill the row (the copy then names `fallback`, a valid
/// address it never reads). Same thread-to-chunk mapping as cp_async_tile.
template <int kRows, int kCols, int kNumThreads, typename Element, typename RowPtr>
FP_DEVICE void cp_async_tile_rows(unsigned char *tile, const Element *fallback, RowPtr row_ptr) {
  using Tile = SwizzledTile<kRows, kCols>;
  constexpr int kChunks = Tile::kChunks;
  constexpr int kTotal = kRows * kChunks;
  if constexpr (kNumThreads % kChunks == 0 && (kNumThreads / kChunks) % Tile::kGroup == 0 &&
                kTotal % kNumThreads == 0) {
    constexpr int kRowStep = kNumThreads / kChunks;
    const int c = threadIdx.x % kChunks;
    const int r0 = threadIdx.x / kChunks;
    const unsigned dst = smem_addr(tile + Tile::chunk_offset(r0, c));
#pragma unroll
    for (int i = 0; i < kTotal / kNumThreads; ++i) {
      const Element *src = row_ptr(r0 + i * kRowStep);
      cp_async_16(dst + i * kRowStep * kChunks * 16, src != nullptr ? src + c * 8 : fallback,
                  src != nullptr);
    }
  } else {
#pragma unroll
    for (int i = 0; i < ceil_div(kTotal, kNumThreads); ++i) {
      const int idx = i * kNumThreads + threadIdx.x;
      if (kTotal % kNumThreads == 0 || idx < kTotal) {
        const int r = idx / kChunks;
        const int c = idx % kChunks;
        const Element *src = row_ptr(r);
        cp_async_16(smem_addr(tile + Tile::chunk_offset(r, c)),
                    src != nullptr ? src + c * 8 : fallback, src != nullptr);
      }
    }
  }
}

} // namespace sm80
} // namespace dev
} // namespace fp

#endif // FP_DEVICE_ARCH_MMA_SM80_CUH
