//===- fp/arch/attention_mainloop_sm90.cuh - wgmma/TMA mainloop -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The Hopper (sm_90a) implementation of one masked_attention CTA.
///
/// Warp specialisation: warpgroup 0 is the producer. One of its threads
/// walks the kept-block list and issues TMA copies of the Q tile and of
/// every K and V sub-tile into a ring of kNumStages shared-memory slots; each
/// copy completes on an mbarrier ("full"). The other kBlockM / 64 warpgroups
/// are consumers: each owns 64 query rows, waits on the full barriers,
/// computes S = Q K^T with wgmma (both operands in shared memory), runs the
/// online softmax in registers, and accumulates O += P V with wgmma (P from
/// registers, V transposed from shared memory). One lane per consumer warp
/// then arrives on the slot's K or V "empty" barrier, which the producer
/// waits on before refilling it. setmaxnreg moves registers from the
/// producer (24) to the consumers (240).
///
/// At d = 128 the consumers issue tile t's QK^T together with tile t-1's PV
/// and run tile t's softmax while the PV product is in flight
/// (FlashAttention-3's intra-warpgroup overlap; kOverlapSoftmaxWithPV has
/// the measurements). Two consumer warpgroups share the K/V slots but not
/// their rows, so the warp schedulers also overlap one warpgroup's softmax
/// with the other's wgmma, without explicit ping-pong barriers.
///
/// Shared memory (1024-byte aligned tiles, 128-byte swizzle, panels of 64
/// columns; see sm90_primitives.cuh):
///   [Q: kBlockM x d][K slot 0..S-1: kBlockN x d][V slot 0..S-1][mbarriers]
/// The epilogue stages each warpgroup's O rows in its own Q rows for
/// coalesced 16-byte stores.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_ARCH_ATTENTION_MAINLOOP_SM90_CUH
#define FP_DEVICE_ARCH_ATTENTION_MAINLOOP_SM90_CUH

#include "fp/common.cuh"

#if !FP_TARGET_HAS_SM90A
#error "fp/arch/attention_mainloop_sm90.cuh: wgmma, setmaxnreg, TMA and mbarrier tx need -arch=sm_90a or compute_90a; other targets use the kArch 80 (mma.sync) mainloop"
#endif

#include "fp/arch/sm90_primitives.cuh"
#include "fp/arch/wgmma_sm90.cuh"
#include "fp/attention_work.cuh"

namespace fp {
namespace dev {

template <typename Element, int kHeadDim, int kBlockSize, int kBlockM, int kBlockN,
          int kNumWarps, int kNumStages>
struct AttentionMainloopSm90 {
  static constexpr int kConsumers = kBlockM / 64; // consumer warpgroups, 64 rows each
  static constexpr int kNumThreads = 128 * (kConsumers + 1);
  static constexpr int kPanels = kHeadDim / 64;    // 64-column (128-byte) panels
  static constexpr int kSubTiles = kBlockSize / kBlockN;
  static constexpr int kSAccum = kBlockN / 2;      // S accumulators per thread
  static constexpr int kOAccum = kHeadDim / 2;     // O accumulators per thread
  static constexpr int kSTiles = kBlockN / 8;      // n8 column groups of S
  static constexpr int kOTiles = kHeadDim / 8;     // n8 column groups of O
  static constexpr int kQPanelBytes = kBlockM * 128;
  static constexpr int kKVPanelBytes = kBlockN * 128;
  static constexpr int kQBytes = kBlockM * kHeadDim * 2;
  static constexpr int kKVBytes = kBlockN * kHeadDim * 2;
  static constexpr int kKOffset = kQBytes;
  static constexpr int kVOffset = kKOffset + kNumStages * kKVBytes;
  static constexpr int kBarrierOffset = kVOffset + kNumStages * kKVBytes;
  static constexpr int kNumBarriers = 1 + 4 * kNumStages; // q; k/v full; k/v empty
  /// Dynamic shared memory, including 1024 bytes of slack to align the base:
  ///   bytes = 1024 + (kBlockM + 2 * kNumStages * kBlockN) * kHeadDim * 2
  ///           + 8 * (1 + 4 * kNumStages)
  static constexpr int kSmemBytes = 1024 + kBarrierOffset + 8 * kNumBarriers;
  static constexpr int kProducerRegs = 24;
  /// Overlap measured on one H100 (bf16, h_q 32, h_kv 8, dense causal,
  /// bench/dev/NOTES.md): d 128 +6% (16K: 677 vs 638 TFLOP/s; 64K: 643-647
  /// vs 609); d 64 -10% (408 vs 452) and d 256 -6..-11% (627-662 vs 702),
  /// where the extra live registers cost more than the overlap gains.
  static constexpr bool kOverlapSoftmaxWithPV = kHeadDim == 128;
  static constexpr int kConsumerRegs = 240;

  static_assert(kBlockM == 64 || kBlockM == 128, "sm90 mainloop: kBlockM must be 64 or 128");
  static_assert(kNumWarps == 4 * (kConsumers + 1),
                "sm90 mainloop: kNumWarps must be 4 * (kBlockM / 64 + 1) (one producer "
                "warpgroup plus one consumer warpgroup per 64 rows)");
  static_assert(kBlockN == 64 || kBlockN == 128 || kBlockN == 256,
                "sm90 mainloop: kBlockN must be 64, 128 or 256 (a wgmma N)");
  static_assert(kHeadDim == 64 || kHeadDim == 128 || kHeadDim == 256,
                "sm90 mainloop: head dim must be 64, 128 or 256");
  static_assert(sizeof(Element) == 2, "sm90 mainloop: 16-bit elements only");
  static_assert(kNumStages >= 2, "sm90 mainloop: at least 2 stages");

  using MmaS = sm90::Wgmma<Element, kBlockN>;
  using MmaO = sm90::Wgmma<Element, kHeadDim>;

  FP_DEVICE static int tile_key_start(const AttentionWork<Element> &w, int t) {
    return w.block_ids[t / kSubTiles] * kBlockSize + (t % kSubTiles) * kBlockN;
  }

  /// Shared-memory mbarrier addresses; slot s of a ring is at base + 8 * s.
  struct Barriers {
    unsigned q_full;  ///< Q landed (TMA transaction bytes)
    unsigned k_full;  ///< K of a slot landed
    unsigned v_full;  ///< V of a slot landed
    unsigned k_empty; ///< every consumer warp is done with a slot's K
    unsigned v_empty; ///< every consumer warp is done with a slot's V
  };

  FP_DEVICE static void run(const FpAttentionParams &params, const AttentionWork<Element> &w) {
    // Align the tiles to 1024 bytes (the 128-byte swizzle repeats every 8
    // rows, and descriptors assume base offset 0).
    unsigned char *raw = dynamic_smem();
    const unsigned raw_addr = sm90::smem_addr(raw);
    const unsigned pad = (1024u - (raw_addr & 1023u)) & 1023u;
    unsigned char *smem = raw + pad;
    const unsigned base = raw_addr + pad;
    Barriers bars;
    bars.q_full = base + kBarrierOffset;
    bars.k_full = bars.q_full + 8;
    bars.v_full = bars.k_full + 8 * kNumStages;
    bars.k_empty = bars.v_full + 8 * kNumStages;
    bars.v_empty = bars.k_empty + 8 * kNumStages;

    const int warpgroup = threadIdx.x / 128;
    if (threadIdx.x == 0) {
      sm90::mbar_init(bars.q_full, 1);
      for (int s = 0; s < kNumStages; ++s) {
        sm90::mbar_init(bars.k_full + 8 * s, 1);
        sm90::mbar_init(bars.v_full + 8 * s, 1);
        sm90::mbar_init(bars.k_empty + 8 * s, 4 * kConsumers); // one arrival per consumer warp
        sm90::mbar_init(bars.v_empty + 8 * s, 4 * kConsumers);
      }
      sm90::mbar_init_fence();
    }
    __syncthreads();

    if (warpgroup == 0) {
      if (kConsumers > 1)
        sm90::setmaxnreg_dec<kProducerRegs>();
      if (threadIdx.x == 0)
        produce(params, w, base, bars);
    } else {
      if (kConsumers > 1)
        sm90::setmaxnreg_inc<kConsumerRegs>();
      consume(params, w, smem, base, warpgroup - 1, bars);
    }
  }

  /// TMA of one K or V sub-tile (kPanels boxes of 64 columns) into `tile`,
  /// completing on `full_bar` with its byte count.
  FP_DEVICE static void load_kv_tile(const FpTensorMap *map, unsigned tile, unsigned full_bar,
                                     int k0, const AttentionWork<Element> &w) {
    sm90::mbar_arrive_expect_tx(full_bar, kKVBytes);
#pragma unroll
    for (int p = 0; p < kPanels; ++p)
      sm90::tma_load_4d(tile + p * kKVPanelBytes, map, full_bar, p * 64, k0, w.kv_head, w.batch);
  }

  FP_DEVICE static void produce(const FpAttentionParams &params, const AttentionWork<Element> &w,
                                unsigned base, const Barriers &bars) {
    const FpTensorMap *map_q = &params.tma_q;
    const FpTensorMap *map_k = &params.tma_k;
    const FpTensorMap *map_v = &params.tma_v;
    sm90::mbar_arrive_expect_tx(bars.q_full, kQBytes);
#pragma unroll
    for (int p = 0; p < kPanels; ++p)
      sm90::tma_load_4d(base + p * kQPanelBytes, map_q, bars.q_full, p * 64, w.row_begin, w.head,
                        w.batch);
    int slot = 0;
    unsigned empty_parity = 1; // the first pass over the ring waits on nothing
    for (int t = 0; t < w.num_tiles; ++t) {
      const int k0 = tile_key_start(w, t);
      // With the overlap K and V have their own empty barriers: K of a slot
      // frees as soon as its QK^T is done, V only after the next tile's
      // QK^T (its PV runs one iteration later). Without it k_empty frees
      // the whole slot.
      if (t >= kNumStages)
        sm90::mbar_wait(bars.k_empty + 8 * slot, empty_parity);
      load_kv_tile(map_k, base + kKOffset + slot * kKVBytes, bars.k_full + 8 * slot, k0, w);
      if (kOverlapSoftmaxWithPV && t >= kNumStages)
        sm90::mbar_wait(bars.v_empty + 8 * slot, empty_parity);
      load_kv_tile(map_v, base + kVOffset + slot * kKVBytes, bars.v_full + 8 * slot, k0, w);
      if (++slot == kNumStages) {
        slot = 0;
        empty_parity ^= 1;
      }
    }
  }

  /// O += P V for the tile in `slot` (asynchronous: commits one wgmma group).
  FP_DEVICE static void issue_pv(float (&acc_o)[kOAccum], const unsigned (&p_frag)[kBlockN / 16][4],
                                 unsigned v_tile) {
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      const fp_u64 desc_v = sm90::make_smem_desc(v_tile + kk * 16 * 128, kKVPanelBytes, 1024);
      MmaO::rs(acc_o, p_frag[kk], desc_v, 1);
    }
    sm90::wgmma_commit();
  }

  /// S = Q K^T for one sub-tile: d / 16 k-steps, both operands K-major in
  /// shared memory (asynchronous: commits one wgmma group).
  FP_DEVICE static void issue_qk(float (&acc_s)[kSAccum], unsigned q_rows, unsigned k_tile) {
#pragma unroll
    for (int kk = 0; kk < kHeadDim / 16; ++kk) {
      const unsigned panel = (kk / 4), step = (kk % 4) * 32;
      const fp_u64 desc_q = sm90::make_smem_desc(q_rows + panel * kQPanelBytes + step, 16, 1024);
      const fp_u64 desc_k = sm90::make_smem_desc(k_tile + panel * kKVPanelBytes + step, 16, 1024);
      MmaS::ss(acc_s, desc_q, desc_k, kk > 0 ? 1 : 0);
    }
    sm90::wgmma_commit();
  }

  /// Causal mask (where the sub-tile starting at key k0 reaches past this
  /// warpgroup's first row: the diagonal block only, in a valid mask) and
  /// the online softmax of one sub-tile, in place: acc_s becomes P in fp32.
  /// Same arithmetic as the sm80 mainloop (see there for why the correction
  /// is taken in raw units).
  FP_DEVICE static void softmax(float (&acc_s)[kSAccum], float (&row_max)[2], float (&row_sum)[2],
                                float (&correction)[2], const AttentionWork<Element> &w, int k0,
                                int wg_row0, int warp_row0, int quad_row, int quad_col) {
    if (k0 + kBlockN - 1 > w.row_begin + wg_row0) {
#pragma unroll
      for (int i = 0; i < kSAccum; ++i) {
        const int row = w.row_begin + warp_row0 + quad_row + ((i >> 1) & 1) * 8;
        const int key = k0 + (i >> 2) * 8 + quad_col * 2 + (i & 1);
        if (key > row)
          acc_s[i] = neg_inf();
      }
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = row_max[h];
#pragma unroll
      for (int nt = 0; nt < kSTiles; ++nt)
        mx = fmaxf(mx, fmaxf(acc_s[nt * 4 + 2 * h], acc_s[nt * 4 + 2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_scaled = mx == neg_inf() ? 0.f : mx * w.scale_log2;
      correction[h] = mx == neg_inf() ? 1.f : fast_exp2((row_max[h] - mx) * w.scale_log2);
      row_max[h] = mx;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < kSTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          const float p = fast_exp2(fmaf(acc_s[nt * 4 + 2 * h + i], w.scale_log2, -m_scaled));
          acc_s[nt * 4 + 2 * h + i] = p;
          sum += p;
        }
      row_sum[h] = row_sum[h] * correction[h] + sum;
    }
  }

  /// O *= the rows' softmax corrections ([0]: row g, [1]: row g + 8).
  FP_DEVICE static void rescale_o(float (&acc_o)[kOAccum], const float (&correction)[2]) {
#pragma unroll
    for (int nt = 0; nt < kOTiles; ++nt) {
      acc_o[nt * 4 + 0] *= correction[0];
      acc_o[nt * 4 + 1] *= correction[0];
      acc_o[nt * 4 + 2] *= correction[1];
      acc_o[nt * 4 + 3] *= correction[1];
    }
  }

  /// P rounded to Element; two adjacent n8 groups of S are one k16 A
  /// fragment (the accumulator and A register layouts agree).
  FP_DEVICE static void pack_p(const float (&acc_s)[kSAccum], unsigned (&p_frag)[kBlockN / 16][4]) {
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      p_frag[kk][0] = ElementTraits<Element>::pack2(acc_s[8 * kk + 0], acc_s[8 * kk + 1]);
      p_frag[kk][1] = ElementTraits<Element>::pack2(acc_s[8 * kk + 2], acc_s[8 * kk + 3]);
      p_frag[kk][2] = ElementTraits<Element>::pack2(acc_s[8 * kk + 4], acc_s[8 * kk + 5]);
      p_frag[kk][3] = ElementTraits<Element>::pack2(acc_s[8 * kk + 6], acc_s[8 * kk + 7]);
    }
  }

  /// One arrival per warp on a ring barrier, after the warp's wgmma reads
  /// of that slot have completed.
  FP_DEVICE static void release(unsigned bar, int lane) {
    __syncwarp();
    if (lane == 0)
      sm90::mbar_arrive(bar);
  }

  /// Tile t's QK^T and the previous tile's PV are issued together, so the
  /// PV product runs while this tile's softmax does (FlashAttention-3's
  /// intra-warpgroup overlap); P of the previous tile waits in registers.
  FP_DEVICE static void mainloop_overlapped(const AttentionWork<Element> &w, const Barriers &bars,
                                            unsigned base, unsigned q_rows, int wg_row0,
                                            int warp_row0, int lane, float (&acc_o)[kOAccum],
                                            float (&row_max)[2], float (&row_sum)[2]) {
    const int quad_row = lane / 4, quad_col = lane % 4;
    unsigned p_frag[kBlockN / 16][4];
    // Tile 0 alone (no previous PV), then a uniform loop: a branch around
    // the PV issue inside the loop makes ptxas serialise every wgmma
    // (warning C7520).
    // Key starts come from the block-id list in global memory: each is
    // loaded one tile ahead so the load never sits between a wgmma wait and
    // the softmax (it did at first: d 64 ran 7% slower).
    int k0_next = w.num_tiles > 1 ? tile_key_start(w, 1) : 0;
    if (w.num_tiles > 0) {
      const int k0 = tile_key_start(w, 0);
      float acc_s[kSAccum];
      sm90::mbar_wait(bars.k_full, 0);
      sm90::wgmma_fence();
      issue_qk(acc_s, q_rows, base + kKOffset);
      sm90::wgmma_wait<0>();
      sm90::fence_registers(acc_s);
      release(bars.k_empty, lane);
      float correction[2];
      softmax(acc_s, row_max, row_sum, correction, w, k0, wg_row0, warp_row0,
              quad_row, quad_col);
      pack_p(acc_s, p_frag); // O is still 0: no rescale
    }
    int prev_slot = 0;
    unsigned prev_parity = 0;
    int slot = kNumStages > 1 ? 1 : 0;
    unsigned full_parity = kNumStages > 1 ? 0 : 1;
    for (int t = 1; t < w.num_tiles; ++t) {
      const int k0 = k0_next;
      if (t + 1 < w.num_tiles)
        k0_next = tile_key_start(w, t + 1);
      // Issue S = Q K^T, then O += P V of the previous tile; both run
      // while this warpgroup waits for S alone.
      float acc_s[kSAccum];
      sm90::mbar_wait(bars.k_full + 8 * slot, full_parity);
      sm90::mbar_wait(bars.v_full + 8 * prev_slot, prev_parity);
      sm90::wgmma_fence();
      issue_qk(acc_s, q_rows, base + kKOffset + slot * kKVBytes);
      issue_pv(acc_o, p_frag, base + kVOffset + prev_slot * kKVBytes);
      sm90::wgmma_wait<1>(); // S is ready; the PV group may still run
      sm90::fence_registers(acc_s);
      release(bars.k_empty + 8 * slot, lane);

      float correction[2];
      softmax(acc_s, row_max, row_sum, correction, w, k0, wg_row0, warp_row0,
              quad_row, quad_col);

      // The previous PV is done: O may be rescaled, its V slot released
      // and the P registers reused.
      sm90::wgmma_wait<0>();
      sm90::fence_registers(acc_o);
      release(bars.v_empty + 8 * prev_slot, lane);
      rescale_o(acc_o, correction);
      pack_p(acc_s, p_frag);

      prev_slot = slot;
      prev_parity = full_parity;
      if (++slot == kNumStages) {
        slot = 0;
        full_parity ^= 1;
      }
    }
    // The last tile's PV.
    if (w.num_tiles > 0) {
      sm90::mbar_wait(bars.v_full + 8 * prev_slot, prev_parity);
      sm90::wgmma_fence();
      issue_pv(acc_o, p_frag, base + kVOffset + prev_slot * kKVBytes);
      sm90::wgmma_wait<0>();
      sm90::fence_registers(acc_o);
      release(bars.v_empty + 8 * prev_slot, lane);
    }
  }

  /// One tile at a time: QK^T, softmax, PV.
  FP_DEVICE static void mainloop_sequential(const AttentionWork<Element> &w, const Barriers &bars,
                                            unsigned base, unsigned q_rows, int wg_row0,
                                            int warp_row0, int lane, float (&acc_o)[kOAccum],
                                            float (&row_max)[2], float (&row_sum)[2]) {
    const int quad_row = lane / 4, quad_col = lane % 4;
    int slot = 0;
    unsigned full_parity = 0;
    for (int t = 0; t < w.num_tiles; ++t) {
      // Loaded before the waits below, which hide its latency.
      const int k0 = tile_key_start(w, t);
      float acc_s[kSAccum];
      sm90::mbar_wait(bars.k_full + 8 * slot, full_parity);
      sm90::wgmma_fence();
      issue_qk(acc_s, q_rows, base + kKOffset + slot * kKVBytes);
      sm90::wgmma_wait<0>();
      sm90::fence_registers(acc_s);
      float correction[2];
      softmax(acc_s, row_max, row_sum, correction, w, k0, wg_row0, warp_row0,
              quad_row, quad_col);
      rescale_o(acc_o, correction);
      // Packed before the fence: a register written between two wgmma of
      // one group makes ptxas insert a warpgroup.arrive before each (C7519).
      unsigned p_frag[kBlockN / 16][4];
      pack_p(acc_s, p_frag);
      sm90::mbar_wait(bars.v_full + 8 * slot, full_parity);
      sm90::wgmma_fence();
      issue_pv(acc_o, p_frag, base + kVOffset + slot * kKVBytes);
      sm90::wgmma_wait<0>();
      sm90::fence_registers(acc_o);
      // The whole slot is released at once (k_empty): separate K and V
      // releases measured 7-11% slower at d 64 (dense 16K: 402-421 vs 452
      // TFLOP/s on one H100).
      release(bars.k_empty + 8 * slot, lane);
      if (++slot == kNumStages) {
        slot = 0;
        full_parity ^= 1;
      }
    }
  }

  FP_DEVICE static void consume(const FpAttentionParams &params, const AttentionWork<Element> &w,
                                unsigned char *smem, unsigned base, int consumer,
                                const Barriers &bars) {
    const int ctid = threadIdx.x - 128 * (consumer + 1);
    const int warp = ctid / 32;
    const int lane = ctid % 32;
    const int quad_row = lane / 4;
    const int quad_col = lane % 4;
    const int wg_row0 = consumer * 64;               // first CTA-local row of this warpgroup
    const int warp_row0 = wg_row0 + warp * 16;       // first CTA-local row of this warp
    const unsigned q_rows = base + wg_row0 * 128;    // this warpgroup's rows in panel 0

    float acc_o[kOAccum];
#pragma unroll
    for (int i = 0; i < kOAccum; ++i)
      acc_o[i] = 0.f;
    float row_max[2] = {neg_inf(), neg_inf()};
    float row_sum[2] = {0.f, 0.f}; // partial: this lane's columns only

    sm90::mbar_wait(bars.q_full, 0);
    if constexpr (kOverlapSoftmaxWithPV)
      mainloop_overlapped(w, bars, base, q_rows, wg_row0, warp_row0, lane, acc_o, row_max,
                          row_sum);
    else
      mainloop_sequential(w, bars, base, q_rows, wg_row0, warp_row0, lane, acc_o, row_max,
                          row_sum);

    // Epilogue: normalise, stage this warpgroup's rows of O in its own Q
    // rows (the Q reads finished with the last wait above), then 16-byte
    // coalesced stores.
    float *lse = w.lse(params);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = row_sum[h];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = l > 0.f ? fast_rcp(l) : 0.f;
      const int local_row = warp_row0 + quad_row + h * 8;
#pragma unroll
      for (int nt = 0; nt < kOTiles; ++nt) {
        const unsigned packed = ElementTraits<Element>::pack2(acc_o[nt * 4 + 2 * h] * inv,
                                                              acc_o[nt * 4 + 2 * h + 1] * inv);
        const int col = nt * 8 + quad_col * 2;
        const int offset = (col / 64) * kQPanelBytes + local_row * 128 +
                           ((((col % 64) / 8) ^ (local_row % 8)) * 16) + (col % 8) * 2;
        *reinterpret_cast<unsigned *>(smem + offset) = packed;
      }
      if (lse != nullptr && quad_col == 0 && w.row_begin + local_row < w.row_end)
        lse[w.row_begin + local_row] = l > 0.f ? row_max[h] * params.scale + logf(l) : neg_inf();
    }
    sm90::named_barrier_sync(1 + consumer, 128);
    constexpr int kChunks = kHeadDim / 8;
    constexpr int kTotal = 64 * kChunks;
    Element *o = w.o(params);
#pragma unroll
    for (int i = 0; i < kTotal / 128; ++i) {
      const int idx = i * 128 + ctid;
      const int r = wg_row0 + idx / kChunks;
      const int c = idx % kChunks;
      if (w.row_begin + r < w.row_end) {
        const int offset = (c / 8) * kQPanelBytes + r * 128 + (((c % 8) ^ (r % 8)) * 16);
        *reinterpret_cast<uint4 *>(o + static_cast<fp_i64>(w.row_begin + r) * params.o_seq_stride +
                                   c * 8) = *reinterpret_cast<const uint4 *>(smem + offset);
      }
    }
  }
};

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_ARCH_ATTENTION_MAINLOOP_SM90_CUH
