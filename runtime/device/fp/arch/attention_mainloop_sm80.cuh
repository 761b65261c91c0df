//===- fp/arch/attention_mainloop_sm80.cuh - FA2-style mainloop -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The mma.sync (sm_80+) implementation of one masked_attention CTA: load the
/// query tile, stream the kept key/value sub-tiles through a cp.async ring of
/// kNumStages slots, run the online softmax in fp32 and write O (and LSE).
///
/// Work split (FlashAttention-2): the kNumWarps warps split the kBlockM query
/// rows, kWarpM = kBlockM / kNumWarps rows each (kWarpM / 16 MMA row tiles),
/// and every warp sweeps the whole key tile, so the softmax row statistics
/// never leave a warp (only a 4-lane quad shares a row). Q stays in shared
/// memory and is re-read with ldmatrix per k-step: holding it in registers
/// would cost kHeadDim / 2 registers per row tile and spill at d >= 128.
///
/// Pipeline: K and V of one sub-tile are separate cp.async groups, so the
/// QK^T product waits only for K while V is still landing, and the loads for
/// sub-tile t + kNumStages - 1 are issued right after the barrier that frees
/// their slot, overlapping all of sub-tile t's math.
///
/// The interface (AttentionWork in, O/LSE out) is what the Hopper mainloop
/// (attention_mainloop_sm90.cuh) implements too; masked_attention picks one
/// by kArch.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_ARCH_ATTENTION_MAINLOOP_SM80_CUH
#define FP_DEVICE_ARCH_ATTENTION_MAINLOOP_SM80_CUH

#include "fp/attention_work.cuh"
#include "fp/arch/mma_sm80.cuh"

namespace fp {
namespace dev {

template <typename Element, int kHeadDim, int kBlockSize, int kBlockM, int kBlockN,
          int kNumWarps, int kNumStages>
struct AttentionMainloopSm80 {
  static constexpr int kNumThreads = 32 * kNumWarps;
  static constexpr int kWarpM = kBlockM / kNumWarps;
  static constexpr int kMTiles = kWarpM / 16;       // 16-row MMA tiles per warp
  static constexpr int kSTiles = kBlockN / 8;       // n8 tiles of S per row tile
  static constexpr int kOTiles = kHeadDim / 8;      // n8 tiles of O per row tile
  static constexpr int kQKSteps = kHeadDim / 16;    // k16 steps of Q K^T
  static constexpr int kPVSteps = kBlockN / 16;     // k16 steps of P V
  static constexpr int kSubTiles = kBlockSize / kBlockN;
  static constexpr int kChunks = kHeadDim / 8;      // 16-byte chunks per row

  /// Register-bound tiles (accumulators alone > 160 of the 255 registers)
  /// trade one XOR per ldmatrix for ~9 address registers (LaneOffsets).
  static constexpr bool kCompactAddressing = kMTiles * (kOTiles + kSTiles) * 4 > 160;

  static_assert(kWarpM % 16 == 0, "kBlockM / kNumWarps must be a multiple of 16");
  static_assert(kBlockN % 16 == 0, "kBlockN must be a multiple of 16");
  static_assert(kNumStages >= 2, "the sm80 mainloop needs at least 2 stages");

  using QTile = SwizzledTile<kBlockM, kHeadDim>;
  using KVTile = SwizzledTile<kBlockN, kHeadDim>;

  /// Dynamic shared memory: the Q tile (reused to stage O for coalesced
  /// stores) plus kNumStages slots of one K and one V sub-tile.
  ///   bytes = (kBlockM + 2 * kNumStages * kBlockN) * kHeadDim * sizeof(Element)
  static constexpr int kSmemBytes = QTile::kBytes + 2 * kNumStages * KVTile::kBytes;

  template <int kRows>
  FP_DEVICE static void load_rows(unsigned char *tile, const Element *base, fp_i64 row_stride,
                                  int row0, int row_limit) {
    sm80::cp_async_tile<kRows, kHeadDim, kNumThreads>(tile, base, row_stride, row0, row_limit);
  }

  template <typename Work> FP_DEVICE static int tile_key_start(const Work &w, int t) {
    return w.block_ids[t / kSubTiles] * kBlockSize + (t % kSubTiles) * kBlockN;
  }

  /// Params/Work: FpAttentionParams with AttentionWork (s_q == s_k), or
  /// FpVarlenAttentionParams with VarlenAttentionWork (attention_work.cuh).
  template <typename Params, typename Work>
  FP_DEVICE static void run(const Params &params, const Work &w) {
    unsigned char *smem = dynamic_smem();
    unsigned char *s_q = smem;
    unsigned char *s_kv = smem + QTile::kBytes; // slot s: K at 2s, V at 2s + 1

    const int warp = threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const int quad_row = lane / 4; // g in the fragment layout
    const int quad_col = lane % 4; // t in the fragment layout
    const int warp_row0 = warp * kWarpM;

    // Prologue: Q, then the first kNumStages - 1 sub-tiles. Groups are
    // committed even when empty so the wait counts below stay uniform.
    load_rows<kBlockM>(s_q, w.q(params), params.q_seq_stride, w.row_begin, w.row_end);
    sm80::cp_async_commit();
#pragma unroll
    for (int s = 0; s < kNumStages - 1; ++s) {
      if (s < w.num_tiles)
        w.template load_k<kBlockN, kHeadDim, kNumThreads>(params, s_kv + (2 * s) * KVTile::kBytes,
                                                          tile_key_start(w, s));
      sm80::cp_async_commit();
      if (s < w.num_tiles)
        w.template load_v<kBlockN, kHeadDim, kNumThreads>(
            params, s_kv + (2 * s + 1) * KVTile::kBytes, tile_key_start(w, s));
      sm80::cp_async_commit();
    }

    float acc_o[kMTiles][kOTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kOTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          acc_o[mt][nt][i] = 0.f;
    // Row statistics in raw-score units: [mt][0] is row g, [mt][1] row g + 8.
    float row_max[kMTiles][2];
    float row_sum[kMTiles][2]; // partial: this lane's columns only
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) {
      row_max[mt][0] = row_max[mt][1] = neg_inf();
      row_sum[mt][0] = row_sum[mt][1] = 0.f;
    }

    // Per-lane ldmatrix offsets (see LaneOffsets): Q as the A operand, K
    // as the non-transposed B operand, V as the transposed B operand.
    const LaneOffsets<QTile, kCompactAddressing> q_off(warp_row0 + (lane & 15), lane >> 4);
    const LaneOffsets<KVTile, kCompactAddressing> k_off((lane & 7) + ((lane >> 4) << 3),
                                                        (lane >> 3) & 1);
    const LaneOffsets<KVTile, kCompactAddressing> v_off((lane & 7) + (((lane >> 3) & 1) << 3),
                                                        lane >> 4);
    const unsigned s_q_addr = sm80::smem_addr(s_q);
    const unsigned s_kv_addr = sm80::smem_addr(s_kv);

    // Key start of the next sub-tile to load, fetched one iteration ahead so
    // the block-id read (global memory) never stalls the cp.async issue.
    int load_k0 = kNumStages - 1 < w.num_tiles ? tile_key_start(w, kNumStages - 1) : 0;
    int slot = 0;
    for (int t = 0; t < w.num_tiles; ++t) {
      // K of sub-tile t has landed (V of t and the later sub-tiles may not).
      sm80::cp_async_wait<2 * kNumStages - 3>();
      __syncthreads(); // also: every warp is done with sub-tile t - 1's slot
      {
        const int tn = t + kNumStages - 1;
        int slot_n = slot + kNumStages - 1;
        if (slot_n >= kNumStages)
          slot_n -= kNumStages;
        if (tn < w.num_tiles)
          w.template load_k<kBlockN, kHeadDim, kNumThreads>(
              params, s_kv + (2 * slot_n) * KVTile::kBytes, load_k0);
        sm80::cp_async_commit();
        if (tn < w.num_tiles)
          w.template load_v<kBlockN, kHeadDim, kNumThreads>(
              params, s_kv + (2 * slot_n + 1) * KVTile::kBytes, load_k0);
        sm80::cp_async_commit();
        load_k0 = tn + 1 < w.num_tiles ? tile_key_start(w, tn + 1) : 0;
      }
      const unsigned s_k_addr = s_kv_addr + (2 * slot) * KVTile::kBytes;
      const unsigned s_v_addr = s_k_addr + KVTile::kBytes;
      const int k0 = tile_key_start(w, t);

      // S = Q K^T (raw dot products, fp32).
      float acc_s[kMTiles][kSTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
          for (int i = 0; i < 4; ++i)
            acc_s[mt][nt][i] = 0.f;
#pragma unroll
      for (int kk = 0; kk < kQKSteps; ++kk) {
        unsigned a[kMTiles][4];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt)
          sm80::ldmatrix_x4(a[mt], q_off.template at<true>(s_q_addr, mt * 16, kk));
#pragma unroll
        for (int np = 0; np < kSTiles / 2; ++np) {
          unsigned b[4];
          sm80::ldmatrix_x4(b, k_off.at(s_k_addr, np * 16, kk));
#pragma unroll
          for (int mt = 0; mt < kMTiles; ++mt) {
            sm80::mma_16816<Element>(acc_s[mt][2 * np], a[mt], b[0], b[1]);
            sm80::mma_16816<Element>(acc_s[mt][2 * np + 1], a[mt], b[2], b[3]);
          }
        }
      }

      // Causal mask, only where some key of the sub-tile lies after the
      // position of the CTA's first row (with s_q == s_k, in a valid mask:
      // the diagonal block only). Keys past the sequence lie after every
      // valid row's position, so this also hides their zero fill.
      if (k0 + kBlockN - 1 > w.row_begin + w.prefix()) {
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
          for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              const int row =
                  w.row_begin + w.prefix() + warp_row0 + mt * 16 + quad_row + (i >> 1) * 8;
              const int key = k0 + nt * 8 + quad_col * 2 + (i & 1);
              if (key > row)
                acc_s[mt][nt][i] = neg_inf();
            }
      }

      // Online softmax. p = 2^(s * scale * log2e - m * scale * log2e), one
      // FFMA + EX2 per element.
      float correction[kMTiles][2];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          float mx = row_max[mt][h];
#pragma unroll
          for (int nt = 0; nt < kSTiles; ++nt)
            mx = fmaxf(mx, fmaxf(acc_s[mt][nt][2 * h], acc_s[mt][nt][2 * h + 1]));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          // A row that has seen no visible key keeps max -inf; offset by 0
          // then so every exp2 below is exp2(-inf) = 0 and nothing is NaN.
          const float m_scaled = mx == neg_inf() ? 0.f : mx * w.scale_log2;
          // 2^((m_old - m_new) * scale * log2e): the difference is taken in
          // raw units so an unchanged max gives exactly 2^0 = 1. Written as
          // m_old * c - m_new * c instead, the compiler contracts it into an
          // FMA whose rounding residual (~1e-6) multiplies O and the row sum
          // on every sub-tile; the drift reached 2.5e-3 in LSE at 64K keys.
          correction[mt][h] =
              mx == neg_inf() ? 1.f : fast_exp2((row_max[mt][h] - mx) * w.scale_log2);
          row_max[mt][h] = mx;
          float sum = 0.f;
#pragma unroll
          for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
            for (int i = 0; i < 2; ++i) {
              const float p = fast_exp2(fmaf(acc_s[mt][nt][2 * h + i], w.scale_log2, -m_scaled));
              acc_s[mt][nt][2 * h + i] = p;
              sum += p;
            }
          row_sum[mt][h] = row_sum[mt][h] * correction[mt][h] + sum;
        }
      // Rescale O unconditionally. Skipping it when no row of the warp
      // raised its max (a warp vote and a branch) measured 5-20% slower on
      // H100: the branch splits the softmax/PV schedule.
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
        for (int nt = 0; nt < kOTiles; ++nt) {
          acc_o[mt][nt][0] *= correction[mt][0];
          acc_o[mt][nt][1] *= correction[mt][0];
          acc_o[mt][nt][2] *= correction[mt][1];
          acc_o[mt][nt][3] *= correction[mt][1];
        }

      // V of sub-tile t has landed.
      sm80::cp_async_wait<2 * kNumStages - 2>();
      __syncthreads();

      // O += P V, P rounded to Element. The C fragments of two adjacent n8
      // tiles of S are exactly the A fragment of one k16 step.
#pragma unroll
      for (int kk = 0; kk < kPVSteps; ++kk) {
        unsigned a[kMTiles][4];
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          a[mt][0] = ElementTraits<Element>::pack2(acc_s[mt][2 * kk][0], acc_s[mt][2 * kk][1]);
          a[mt][1] = ElementTraits<Element>::pack2(acc_s[mt][2 * kk][2], acc_s[mt][2 * kk][3]);
          a[mt][2] = ElementTraits<Element>::pack2(acc_s[mt][2 * kk + 1][0], acc_s[mt][2 * kk + 1][1]);
          a[mt][3] = ElementTraits<Element>::pack2(acc_s[mt][2 * kk + 1][2], acc_s[mt][2 * kk + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < kOTiles / 2; ++dp) {
          unsigned b[4];
          sm80::ldmatrix_x4_trans(b, v_off.at(s_v_addr, kk * 16, dp));
#pragma unroll
          for (int mt = 0; mt < kMTiles; ++mt) {
            sm80::mma_16816<Element>(acc_o[mt][2 * dp], a[mt], b[0], b[1]);
            sm80::mma_16816<Element>(acc_o[mt][2 * dp + 1], a[mt], b[2], b[3]);
          }
        }
      }

      if (++slot == kNumStages)
        slot = 0;
    }

    // Epilogue. Only empty cp.async groups can still be pending; the barrier
    // makes sure every warp is past its last shared-memory read before Q's
    // space is reused to stage O.
    sm80::cp_async_wait<0>();
    __syncthreads();
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float l = row_sum[mt][h];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        // l >= 1 whenever the row saw a visible key (the max term is
        // exp2(0)); l == 0 means none: O = 0 and LSE = -inf, never NaN.
        const float inv = l > 0.f ? fast_rcp(l) : 0.f;
        const int local_row = warp_row0 + mt * 16 + quad_row + h * 8;
#pragma unroll
        for (int nt = 0; nt < kOTiles; ++nt) {
          const unsigned packed = ElementTraits<Element>::pack2(acc_o[mt][nt][2 * h] * inv,
                                                                acc_o[mt][nt][2 * h + 1] * inv);
          *reinterpret_cast<unsigned *>(s_q + QTile::elem_offset(local_row, nt * 8 + quad_col * 2)) =
              packed;
        }
        float *lse = w.lse(params);
        if (lse != nullptr && quad_col == 0 && w.row_begin + local_row < w.row_end)
          lse[w.row_begin + local_row] =
              l > 0.f ? row_max[mt][h] * params.scale + logf(l) : neg_inf();
      }
    __syncthreads();
    // Coalesced 16-byte stores; rows >= s_q are never written.
    constexpr int kTotal = kBlockM * kChunks;
    Element *o = w.o(params);
    const int tid = opaque_thread_index();
#pragma unroll
    for (int i = 0; i < ceil_div(kTotal, kNumThreads); ++i) {
      const int idx = i * kNumThreads + tid;
      if (kTotal % kNumThreads == 0 || idx < kTotal) {
        const int r = idx / kChunks;
        const int c = idx % kChunks;
        if (w.row_begin + r < w.row_end)
          *reinterpret_cast<uint4 *>(o + static_cast<fp_i64>(w.row_begin + r) * params.o_seq_stride +
                                     c * 8) =
              *reinterpret_cast<const uint4 *>(s_q + QTile::chunk_offset(r, c));
      }
    }
  }
};

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_ARCH_ATTENTION_MAINLOOP_SM80_CUH
