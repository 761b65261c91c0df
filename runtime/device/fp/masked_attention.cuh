//===- fp/masked_attention.cuh - Flash attention over kept blocks -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// masked_attention (docs/semantics.md section 1, step 4): flash attention
/// (online softmax in fp32, P rounded to Element for the PV product) over the
/// kept key blocks of each query block, causal masking only where a sub-tile
/// crosses the diagonal. Rows with no visible key get O = 0 and LSE = -inf.
///
/// This file holds the arch-independent part: grid mapping (longest-first),
/// GQA head mapping, reading the mask row, trimming the diagonal block to the
/// sub-tiles the CTA's rows can see, the static_assert wall, the shared-memory
/// traits, and the choice of mainloop by kArch.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_MASKED_ATTENTION_CUH
#define FP_DEVICE_MASKED_ATTENTION_CUH

#include "fp/arch/attention_mainloop_sm80.cuh"
#include "fp/attention_work.cuh"
#include "fp/common.cuh"

#if FP_TARGET_HAS_SM90A
#include "fp/arch/attention_mainloop_sm90.cuh"
#endif

namespace fp {
namespace dev {

#if !FP_TARGET_HAS_SM90A
/// Compiling for a target without wgmma/TMA: asking for the sm90 mainloop
/// (kArch 90) is a compile error here, not PTX that ptxas or the driver
/// rejects later (or a kernel that silently does something else).
template <typename Element, int kHeadDim, int kBlockSize, int kBlockM, int kBlockN,
          int kNumWarps, int kNumStages>
struct AttentionMainloopSm90 {
  static_assert(sizeof(Element) == 0,
                "masked_attention: kArch 90 (the wgmma/TMA mainloop) needs -arch=sm_90a or "
                "compute_90a; use kArch 80 (the mma.sync mainloop) for this target");
  static constexpr int kSmemBytes = 0;
};
#endif

/// Largest dynamic shared memory a CTA may opt into, per compute capability
/// (CUDA programming guide, "Technical Specifications per Compute
/// Capability"): 163 KB on sm_80/87, 99 KB on sm_86/89, 227 KB on sm_90+.
FP_HOST_DEVICE constexpr int max_smem_optin(int arch) {
  return (arch == 86 || arch == 89) ? 99 * 1024 : arch >= 90 ? 227 * 1024 : 163 * 1024;
}

/// Picks the mainloop for an arch tag: 80 (sm_80 .. sm_89 and plain sm_90)
/// is the mma.sync/cp.async mainloop; 90 (sm_90a only: wgmma and setmaxnreg
/// are sm_90a features) is the wgmma/TMA warp-specialised one, which also
/// needs the host to fill the tensor maps in FpAttentionParams.
template <int kArch, typename Element, int kHeadDim, int kBlockSize, int kBlockM, int kBlockN,
          int kNumWarps, int kNumStages>
struct AttentionMainloopSelector {
  using Type = AttentionMainloopSm80<Element, kHeadDim, kBlockSize, kBlockM, kBlockN, kNumWarps,
                                     kNumStages>;
};
template <typename Element, int kHeadDim, int kBlockSize, int kBlockM, int kBlockN, int kNumWarps,
          int kNumStages>
struct AttentionMainloopSelector<90, Element, kHeadDim, kBlockSize, kBlockM, kBlockN, kNumWarps,
                                 kNumStages> {
  using Type = AttentionMainloopSm90<Element, kHeadDim, kBlockSize, kBlockM, kBlockN, kNumWarps,
                                     kNumStages>;
};

/// Compile-time facts about a masked_attention instantiation; the compiler
/// mirrors kSmemBytes in its kernel manifest.
template <typename Element, int kHeadDim, int kBlockSize, int kBlockM, int kBlockN, int kNumWarps,
          int kNumStages, int kArch>
struct AttentionTraits {
  using Mainloop = typename AttentionMainloopSelector<kArch, Element, kHeadDim, kBlockSize, kBlockM,
                                                      kBlockN, kNumWarps, kNumStages>::Type;
  static constexpr int kNumThreads = 32 * kNumWarps;
  /// Dynamic shared memory in bytes (sizeof(Element) == 2):
  ///   sm80: (kBlockM + 2 * kNumStages * kBlockN) * kHeadDim * 2
  ///   sm90: 1024 + (kBlockM + 2 * kNumStages * kBlockN) * kHeadDim * 2
  ///         + 8 * (1 + 4 * kNumStages)
  static constexpr int kSmemBytes = Mainloop::kSmemBytes;
};

/// One CTA computes kBlockM query rows of one (batch, q head).
/// Launch: grid (ceil(s_q / kBlockM), h_q, b), 32 * kNumWarps threads,
/// AttentionTraits<...>::kSmemBytes dynamic shared memory.
template <typename Element, int kHeadDim, int kBlockSize, int kBlockM, int kBlockN, int kNumWarps,
          int kNumStages, int kArch>
__device__ void masked_attention(const FpAttentionParams &params) {
  static_assert(IsSame<Element, __nv_bfloat16>::value || IsSame<Element, __half>::value,
                "masked_attention: Element must be __nv_bfloat16 or __half");
  static_assert(kHeadDim % 16 == 0 && kHeadDim >= 16 && kHeadDim <= 256,
                "masked_attention: head dim must be a multiple of 16 in [16, 256]");
  static_assert(kBlockSize % kBlockM == 0, "masked_attention: kBlockSize % kBlockM != 0");
  static_assert(kBlockSize % kBlockN == 0, "masked_attention: kBlockSize % kBlockN != 0");
  static_assert(kBlockM % 16 == 0 && kBlockN % 16 == 0,
                "masked_attention: kBlockM and kBlockN must be multiples of 16");
  static_assert(kNumWarps >= 1 && kNumWarps <= 16, "masked_attention: 1..16 warps");
  static_assert(kArch == 90 || kBlockM % (16 * kNumWarps) == 0,
                "masked_attention: each warp needs a whole number of 16-row tiles");
  static_assert(kNumStages >= 2 && kNumStages <= 8, "masked_attention: 2..8 stages");
  static_assert(kArch == 80 || kArch == 90,
                "masked_attention: kArch is 80 (mma.sync mainloop) or 90 (sm_90a wgmma/TMA)");
  using Traits = AttentionTraits<Element, kHeadDim, kBlockSize, kBlockM, kBlockN, kNumWarps,
                                 kNumStages, kArch>;
  static_assert(Traits::kSmemBytes <= max_smem_optin(kArch),
                "masked_attention: tile config exceeds this arch's shared memory");

  // Longest-first: the mask is causal, so late query blocks keep the most key
  // blocks. Handing them the first CTA slots keeps the tail of the grid made
  // of short CTAs instead of one long straggler.
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const int head = blockIdx.y;
  const int batch = blockIdx.z;
  const int row_begin = m_block * kBlockM;
  if (row_begin >= params.seq_q)
    return;
  const int row_end = const_min(row_begin + kBlockM, params.seq_q);
  const int qblock = row_begin / kBlockSize;
  const int kv_head = head / (params.num_q_heads / params.num_kv_heads);

  const fp_i64 mask_row =
      (static_cast<fp_i64>(batch) * params.num_q_heads + head) * params.num_blocks + qblock;
  const int count = params.counts[mask_row];

  AttentionWork<Element> w;
  w.batch = batch;
  w.head = head;
  w.kv_head = kv_head;
  w.row_begin = row_begin;
  w.row_end = row_end;
  w.block_ids = params.ids + mask_row * params.num_blocks;
  w.scale_log2 = params.scale * kLog2e;

  // Sub-tiles: every kept block contributes kBlockSize / kBlockN of them,
  // except that the last (highest) kept block, the diagonal in a valid mask,
  // is cut after the last sub-tile that holds a key <= the CTA's last row.
  constexpr int kSub = kBlockSize / kBlockN;
  int num_tiles = 0;
  if (count > 0) {
    const int last = w.block_ids[count - 1];
    const int visible = row_end - 1 - last * kBlockSize + 1; // keys of `last` up to the last row
    const int last_tiles = visible <= 0 ? 0 : const_min(kSub, ceil_div(visible, kBlockN));
    num_tiles = (count - 1) * kSub + last_tiles;
  }
  w.num_tiles = num_tiles;

  Traits::Mainloop::run(params, w);
}

/// Varlen attention (docs/semantics.md section 2) over the compact mask: one
/// CTA computes kBlockM local query rows of one (sequence, q head), with the
/// bottom-right causal mask (local row r sees keys <= p + r). It runs the
/// mma.sync mainloop on every arch, sm_90a included (the wgmma/TMA mainloop
/// reads dense [b, s, h, d] tensors through tensor maps; paged and packed
/// K/V are gathered with cp.async here). kPaged 1: K/V paged (0: packed), a
/// template argument because each layout's address code alone fits the
/// mainloop's 255 registers. Launch: grid (ceil(max_seqlen_q / kBlockM),
/// h_q, b), 32 * kNumWarps threads, AttentionTraits<..., 80>::kSmemBytes
/// dynamic shared memory.
template <typename Element, int kHeadDim, int kBlockSize, int kBlockM, int kBlockN, int kNumWarps,
          int kNumStages, int kPaged>
__device__ void varlen_masked_attention(const FpVarlenAttentionParams &params) {
  static_assert(IsSame<Element, __nv_bfloat16>::value || IsSame<Element, __half>::value,
                "varlen_masked_attention: Element must be __nv_bfloat16 or __half");
  static_assert(kHeadDim % 16 == 0 && kHeadDim >= 16 && kHeadDim <= 256,
                "varlen_masked_attention: head dim must be a multiple of 16 in [16, 256]");
  static_assert(kBlockSize % kBlockM == 0 && kBlockSize % kBlockN == 0,
                "varlen_masked_attention: kBlockM and kBlockN must divide kBlockSize");
  static_assert(kBlockM % (16 * kNumWarps) == 0 && kBlockN % 16 == 0,
                "varlen_masked_attention: each warp needs a whole number of 16-row tiles");
  static_assert(kNumStages >= 2 && kNumStages <= 8, "varlen_masked_attention: 2..8 stages");
  using Traits = AttentionTraits<Element, kHeadDim, kBlockSize, kBlockM, kBlockN, kNumWarps,
                                 kNumStages, 80>;

  const int seq = blockIdx.z;
  VarlenSequence s;
  if (!load_varlen_sequence(params.seqs, seq, s))
    return;
  const int row_begin = (static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x)) * kBlockM;
  if (row_begin >= s.q_len)
    return;
  const int head = blockIdx.y;
  const int qblock = row_begin / kBlockSize;
  const fp_i64 mask_row =
      static_cast<fp_i64>(varlen_mask_row<kBlockSize>(s.q_start, seq, qblock)) *
          params.num_q_heads +
      head;
  // A hand-made mask may hold any count: never read past the row.
  const int count = const_min(const_max(params.counts[mask_row], 0), params.max_key_blocks);

  if (threadIdx.x == 0) {
    VarlenCtaShared &cta = varlen_cta_shared();
    cta.seq = seq;
    cta.kv_head = head / (params.num_q_heads / params.num_kv_heads);
    cta.q_start = s.q_start;
    cta.k_start = s.k_start;
    cta.k_len = s.k_len;
  }
  __syncthreads();

  VarlenAttentionWork<Element, kPaged ? kPagedKeys : kPackedKeys> w;
  w.head = head;
  w.row_begin = row_begin;
  w.row_end = const_min(row_begin + kBlockM, s.q_len);
  w.block_ids = params.ids + mask_row * params.max_key_blocks;
  w.scale_log2 = params.scale * kLog2e;
  w.prefix_len = s.prefix;

  // As in masked_attention: the last kept block is cut after the last
  // sub-tile holding a key at or before the position of the CTA's last row.
  constexpr int kSub = kBlockSize / kBlockN;
  int num_tiles = 0;
  if (count > 0) {
    const int last = w.block_ids[count - 1];
    const int visible = s.prefix + w.row_end - 1 - last * kBlockSize + 1;
    const int last_tiles = visible <= 0 ? 0 : const_min(kSub, ceil_div(visible, kBlockN));
    num_tiles = (count - 1) * kSub + last_tiles;
  }
  w.num_tiles = num_tiles;

  Traits::Mainloop::run(params, w);
}

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_MASKED_ATTENTION_CUH
