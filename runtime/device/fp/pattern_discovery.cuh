//===- fp/pattern_discovery.cuh - Fused block score, threshold, compaction -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// pattern_discovery (docs/semantics.md section 1, steps 2-3, mask format):
/// one CTA per (batch, q head, query block I) scores the key blocks j <= I
/// against the pooled keys, thresholds the scores and writes the compacted,
/// ascending kept-block list. Scores live in shared memory only; nothing of
/// size nb x nb reaches global memory unless debug_scores is requested.
///
/// Scoring, per CTA:
///   s[r,j] = (q_r . kbar_j) * scale          tensor cores, fp32 accumulate
///   visible(r,j): r < L and r >= min((j+1)B, L) - 1, j <= I
///   M = max over visible (r,j);  E[j] = sum_r visible exp(s[r,j] - M)
///   score[j] = E[j] / (sum_j E[j] + 1e-9)
/// computed over chunks of kKeyChunk key blocks: chunk c stores
/// E_c[j] = sum exp(s - m_c) with m_c the maximum within chunk c (each warp
/// sums relative to its own maximum, then the warps' sums are rescaled to
/// m_c), and the end rescales by exp(m_c - M). One GEMM pass; the
/// exponentials run in base 2 on log2(e)-prescaled scores (same values,
/// cheaper instruction).
///
/// Threshold (keep j <= I iff any): score >= t with t = alpha * max
/// (relative_max) or alpha * max + (1 - alpha) * min (min_max, over the
/// scored row); j < sink; I - j < window; I >= nb - last_n; with
/// min_budget k > 0, score >= the k-th largest score among the non-forced
/// blocks (ties kept), found by an MSB-first radix select over the float bits
/// (scores are >= 0, so their bit patterns order like the values).
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_PATTERN_DISCOVERY_CUH
#define FP_DEVICE_PATTERN_DISCOVERY_CUH

#include "fp/arch/mma_sm80.cuh"
#include "fp/common.cuh"
#include "fp/varlen.cuh"

namespace fp {
namespace dev {

/// Shared-memory layout of pattern_discovery; the compiler mirrors the two
/// sizes in its manifest and the runtime launches with
///   dynamic smem = kSmemBaseBytes + kSmemPerKeyBlockBytes * num_blocks
/// where
///   kSmemBaseBytes = kBlockSize * kHeadDim * 2        query tile
///                  + 2 * kKeyChunk * kHeadDim * 2     double-buffered kbar chunk
///                  + kNumWarps * kKeyChunk * 4        per-warp column sums
///                  + 32 * 4 + 256 * 4 + 16 * 4        reduction scratch, radix histogram, misc
///   kSmemPerKeyBlockBytes = 8                         E / score (fp32) + chunk max slot (fp32)
template <typename Element, int kHeadDim, int kBlockSize, int kKeyChunk, int kNumWarps>
struct DiscoveryTraits {
  static constexpr int kNumThreads = 32 * kNumWarps;
  static constexpr int kQBytes = kBlockSize * kHeadDim * 2;
  static constexpr int kChunkBytes = kKeyChunk * kHeadDim * 2;
  static constexpr int kPartialOffset = kQBytes + 2 * kChunkBytes;
  static constexpr int kScratchOffset = kPartialOffset + kNumWarps * kKeyChunk * 4;
  static constexpr int kHistOffset = kScratchOffset + 32 * 4;
  static constexpr int kMiscOffset = kHistOffset + 256 * 4;
  static constexpr int kSmemBaseBytes = kMiscOffset + 16 * 4;
  static constexpr int kSmemPerKeyBlockBytes = 8;
};

namespace detail {

/// k-th largest (1-based) of the candidate scores, by radix select over the
/// fp32 bit patterns, 8 bits per pass from the top. Every thread returns the
/// same value. Requires 1 <= k <= number of candidates.
template <int kNumWarps, typename IsCandidate>
FP_DEVICE float kth_largest(const float *scores, int n, int k, IsCandidate is_candidate, int *hist,
                            int *misc) {
  constexpr int kNumThreads = 32 * kNumWarps;
  unsigned prefix = 0, prefix_mask = 0;
  int remaining = k;
#pragma unroll 1
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += kNumThreads)
      hist[i] = 0;
    __syncthreads();
    for (int j = threadIdx.x; j < n; j += kNumThreads) {
      const unsigned bits = __float_as_uint(scores[j]);
      if (is_candidate(j) && (bits & prefix_mask) == prefix)
        atomicAdd(&hist[(bits >> shift) & 255], 1);
    }
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane l owns bins [8l, 8l + 8); a suffix sum over lanes counts the
      // candidates in bins >= 8l; the highest lane whose suffix reaches
      // `remaining` holds the digit.
      const int lane = threadIdx.x;
      int own = 0;
#pragma unroll
      for (int b = 0; b < 8; ++b)
        own += hist[lane * 8 + b];
      int suffix = own;
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const int v = __shfl_down_sync(0xffffffffu, suffix, off);
        if (lane + off < 32)
          suffix += v;
      }
      const unsigned hit = __ballot_sync(0xffffffffu, suffix >= remaining);
      const int owner = 31 - __clz(hit);
      if (lane == owner) {
        int above = suffix - own; // candidates in bins above this lane's
        int digit = lane * 8;
#pragma unroll 1
        for (int b = 7; b >= 0; --b) {
          const int c = hist[lane * 8 + b];
          if (above + c >= remaining) {
            digit = lane * 8 + b;
            break;
          }
          above += c;
        }
        misc[0] = digit;
        misc[1] = remaining - above;
      }
    }
    __syncthreads();
    prefix |= static_cast<unsigned>(misc[0]) << shift;
    prefix_mask |= 255u << shift;
    remaining = misc[1];
    __syncthreads();
  }
  return __uint_as_float(prefix);
}

} // namespace detail

/// One discovery CTA's query block, resolved from its grid position by a
/// problem policy (DenseDiscovery, VarlenDiscovery). Positions are absolute
/// key positions: with s_q == s_k a row's position is its index; in a varlen
/// call local row r of a sequence with prefix p is position p + r.
template <typename Element> struct DiscoveryCta {
  int qblock;     ///< query block I (local to the sequence)
  int kv_head;
  int last_block; ///< J(I): the highest key block any row of I sees (I when s_q == s_k)
  int first_pos;  ///< position of I's first row
  int num_rows;   ///< valid rows of I
  int k_len;      ///< keys of the sequence (key block j ends at min((j+1)B, k_len))
  bool dense_tail;      ///< I is among the last last_n query blocks (and last_n applies)
  const Element *rows;  ///< I's first query row (full queries) or qbar_I (pooled)
  fp_i64 row_stride;    ///< between query rows
  const Element *kbar;  ///< pooled key block 0 of the kv head
  fp_i32 *count;        ///< this mask row's count
  fp_i32 *ids;          ///< this mask row's ids
  float *debug_scores;  ///< optional row of normalised scores (dense only)
  int row_len;          ///< mask row length: nb, or max_key_blocks (sizes shared memory)
};

/// Discovery of s_q == s_k prefill (FpDiscoveryParams): grid (nb, h_q, b),
/// padded-rows mask [b, h_q, nb(, nb)].
struct DenseDiscovery {
  using Params = FpDiscoveryParams;

  FP_DEVICE static bool pooled(const Params &p) {
    return p.score_query == FP_SCORE_POOLED_QUERIES;
  }

  template <typename Element, int kHeadDim, int kBlockSize>
  FP_DEVICE static bool locate(const Params &p, uint3 block, DiscoveryCta<Element> &c) {
    const int nb = p.num_blocks;
    // Heavy (late) query blocks first, as in masked_attention.
    const int qb = static_cast<int>(gridDim.x) - 1 - static_cast<int>(block.x);
    const int head = block.y;
    const int batch = block.z;
    const fp_i64 mask_row = (static_cast<fp_i64>(batch) * p.num_q_heads + head) * nb + qb;
    const int row0 = qb * kBlockSize;
    c.qblock = qb;
    c.kv_head = head / (p.num_q_heads / p.num_kv_heads);
    c.last_block = qb;
    c.first_pos = row0;
    c.num_rows = const_min(row0 + kBlockSize, p.seq_q) - row0;
    c.k_len = p.seq_q;
    c.dense_tail = qb >= nb - p.last_n;
    if (pooled(p)) {
      c.rows = static_cast<const Element *>(p.qbar) + mask_row * kHeadDim;
      c.row_stride = kHeadDim;
    } else {
      c.rows = static_cast<const Element *>(p.q) + batch * p.q_batch_stride +
               head * p.q_head_stride + row0 * p.q_seq_stride;
      c.row_stride = p.q_seq_stride;
    }
    c.kbar = static_cast<const Element *>(p.kbar) +
             (static_cast<fp_i64>(batch) * p.num_kv_heads + c.kv_head) * nb * kHeadDim;
    c.count = p.counts + mask_row;
    c.ids = p.ids + mask_row * nb;
    c.debug_scores = p.debug_scores == nullptr ? nullptr : p.debug_scores + mask_row * nb;
    c.row_len = nb;
    return true;
  }
};

/// Discovery of a varlen call (FpVarlenDiscoveryParams): grid
/// (ceil(max_seqlen_q / B), h_q, b); a CTA past its sequence's query blocks,
/// or of a sequence whose lengths break the bounds, has nothing to do.
/// Candidates are the key blocks j <= J(I) = (p + last row of I) / B;
/// window and last_n count from J(I) and from the sequence's own query
/// blocks; the compact mask row is floor(cu_seqlens_q[i] / B) + i + I.
/// Pooled queries: qbar of that row (varlen_query_pool), the one probe of
/// block I, scores every candidate j <= J(I) (as the reference does).
struct VarlenDiscovery {
  using Params = FpVarlenDiscoveryParams;

  FP_DEVICE static bool pooled(const Params &p) {
    return p.score_query == FP_SCORE_POOLED_QUERIES;
  }

  template <typename Element, int kHeadDim, int kBlockSize>
  FP_DEVICE static bool locate(const Params &p, uint3 block, DiscoveryCta<Element> &c) {
    const int seq = block.z;
    VarlenSequence s;
    if (!load_varlen_sequence(p.seqs, seq, s))
      return false;
    const int qb = static_cast<int>(gridDim.x) - 1 - static_cast<int>(block.x);
    const int row0 = qb * kBlockSize;
    if (row0 >= s.q_len)
      return false;
    const int head = block.y;
    const int num_rows = const_min(kBlockSize, s.q_len - row0);
    const int num_qblocks = (s.q_len + kBlockSize - 1) / kBlockSize;
    const bool last_n_applies = p.seqs.apply_last_n == nullptr || p.seqs.apply_last_n[seq] != 0;
    const int max_key_blocks = p.max_key_blocks;
    const fp_i64 mask_row =
        static_cast<fp_i64>(varlen_mask_row<kBlockSize>(s.q_start, seq, qb)) * p.num_q_heads +
        head;
    c.qblock = qb;
    c.kv_head = head / (p.num_q_heads / p.num_kv_heads);
    c.first_pos = s.prefix + row0;
    c.last_block = (c.first_pos + num_rows - 1) / kBlockSize;
    c.num_rows = num_rows;
    c.k_len = s.k_len;
    c.dense_tail = last_n_applies && qb >= num_qblocks - p.last_n;
    if (pooled(p)) { // qbar [num_rows, h_q, d]: the mask row's own probe
      c.rows = static_cast<const Element *>(p.qbar) + mask_row * kHeadDim;
      c.row_stride = kHeadDim;
    } else {
      c.rows = static_cast<const Element *>(p.q) +
               static_cast<fp_i64>(s.q_start + row0) * p.q_seq_stride + head * p.q_head_stride;
      c.row_stride = p.q_seq_stride;
    }
    c.kbar = static_cast<const Element *>(p.kbar) +
             (static_cast<fp_i64>(seq) * p.num_kv_heads + c.kv_head) * max_key_blocks * kHeadDim;
    c.count = p.counts + mask_row;
    c.ids = p.ids + mask_row * max_key_blocks;
    c.debug_scores = nullptr;
    c.row_len = max_key_blocks;
    return true;
  }
};

/// Scores, thresholds and compacts the key blocks of one query block; the
/// Problem policy says which query block, where its rows, pooled keys and
/// mask row are, and which key blocks it may see.
template <typename Element, int kHeadDim, int kBlockSize, int kKeyChunk, int kNumWarps,
          typename Problem>
FP_DEVICE void discover_blocks(const typename Problem::Params &params) {
  static_assert(IsSame<Element, __nv_bfloat16>::value || IsSame<Element, __half>::value,
                "pattern_discovery: Element must be __nv_bfloat16 or __half");
  static_assert(kHeadDim % 16 == 0 && kHeadDim >= 16 && kHeadDim <= 256,
                "pattern_discovery: head dim must be a multiple of 16 in [16, 256]");
  static_assert(kBlockSize % 16 == 0 && kBlockSize >= 16 && kBlockSize <= 256,
                "pattern_discovery: block size must be a multiple of 16 in [16, 256]");
  static_assert(kNumWarps >= 1 && kNumWarps <= 16, "pattern_discovery: 1..16 warps");
  static_assert(kBlockSize % (16 * kNumWarps) == 0,
                "pattern_discovery: each warp needs a whole number of 16-row tiles");
  static_assert(kKeyChunk % 16 == 0 && kKeyChunk >= 16 && kKeyChunk <= 256,
                "pattern_discovery: key chunk must be a multiple of 16 in [16, 256]");

  using Traits = DiscoveryTraits<Element, kHeadDim, kBlockSize, kKeyChunk, kNumWarps>;
  constexpr int kNumThreads = Traits::kNumThreads;
  constexpr int kWarpRows = kBlockSize / kNumWarps;
  constexpr int kMTiles = kWarpRows / 16;
  constexpr int kNTiles = kKeyChunk / 8;
  constexpr int kKSteps = kHeadDim / 16;
  using QTile = SwizzledTile<kBlockSize, kHeadDim>;
  using KTile = SwizzledTile<kKeyChunk, kHeadDim>;

  DiscoveryCta<Element> cta;
  if (!Problem::template locate<Element, kHeadDim, kBlockSize>(params, blockIdx, cta))
    return;
  const int num_scored = cta.last_block + 1; // key blocks 0..J(I)

  // Every block forced (dense tail, or sink and window cover 0..J), or
  // alpha <= 0 (the threshold is then <= min score): all kept, no scoring
  // needed unless the caller wants the scores.
  const bool all_forced = cta.dense_tail || params.sink + params.window >= num_scored;
  if ((all_forced || params.alpha <= 0.f) && cta.debug_scores == nullptr) {
    for (int j = threadIdx.x; j < num_scored; j += kNumThreads)
      cta.ids[j] = j;
    if (threadIdx.x == 0) {
      *cta.count = num_scored;
      if (params.kept_counter != nullptr)
        atomicAdd(reinterpret_cast<unsigned long long *>(params.kept_counter),
                  static_cast<unsigned long long>(num_scored));
    }
    return;
  }

  unsigned char *smem = dynamic_smem();
  unsigned char *s_q = smem;
  unsigned char *s_kbar = smem + Traits::kQBytes; // two chunk buffers
  float *s_partial = reinterpret_cast<float *>(smem + Traits::kPartialOffset);
  float *s_scratch = reinterpret_cast<float *>(smem + Traits::kScratchOffset);
  int *s_hist = reinterpret_cast<int *>(smem + Traits::kHistOffset);
  int *s_misc = reinterpret_cast<int *>(smem + Traits::kMiscOffset);
  float *s_score = reinterpret_cast<float *>(smem + Traits::kSmemBaseBytes);
  // row_len slots of scores (J < row_len), then one max per key chunk.
  float *s_chunk_max = s_score + cta.row_len;

  // Probe rows. Full queries: the valid rows of block I. Pooled queries: one
  // row, qbar_I, positioned at block I's last valid row.
  const bool pooled = Problem::pooled(params);
  const int num_probes = pooled ? 1 : cta.num_rows;
  const int k_len = cta.k_len;

  // Query tile; rows >= num_probes are zero and never counted.
  sm80::cp_async_tile<kBlockSize, kHeadDim, kNumThreads>(s_q, cta.rows, cta.row_stride, 0,
                                                         num_probes);
  sm80::cp_async_commit();
  // kbar rows of chunk c; blocks > J are zero-filled (and masked anyway).
  const Element *kbar = cta.kbar;
  auto load_chunk = [&](int chunk, int buf) {
    sm80::cp_async_tile<kKeyChunk, kHeadDim, kNumThreads>(s_kbar + buf * Traits::kChunkBytes, kbar,
                                                          kHeadDim, chunk * kKeyChunk, num_scored);
  };
  load_chunk(0, 0);
  sm80::cp_async_commit();

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int quad_row = lane / 4, quad_col = lane % 4;
  const float scale_log2 = params.scale * kLog2e;
  const int last_block = cta.last_block;
  const int num_chunks = last_block / kKeyChunk + 1;
  // Key blocks below this one end at or before I's first row: every row
  // sees them, so only chunks that reach it need the per-row test (with
  // s_q == s_k: the last chunk, which holds the diagonal).
  const int first_partial = (cta.first_pos + 1) / kBlockSize;
  const int first_pos = cta.first_pos;

  const LaneOffsets<QTile, false> q_off(warp * kWarpRows + (lane & 15), lane >> 4);
  const LaneOffsets<KTile, false> k_off((lane & 7) + ((lane >> 4) << 3), (lane >> 3) & 1);
  const unsigned s_q_addr = sm80::smem_addr(s_q);
  const unsigned s_kbar_addr = sm80::smem_addr(s_kbar);

  float run_max = neg_inf(); // running max of the log2-scaled scores
#pragma unroll 1
  for (int chunk = 0; chunk < num_chunks; ++chunk) {
    sm80::cp_async_wait<0>();
    __syncthreads(); // chunk landed everywhere; the other buffer is free
    if (chunk + 1 < num_chunks)
      load_chunk(chunk + 1, (chunk + 1) & 1);
    sm80::cp_async_commit();
    const unsigned s_k_addr = s_kbar_addr + (chunk & 1) * Traits::kChunkBytes;

    float acc[kMTiles][kNTiles][4];
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i)
          acc[mt][nt][i] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      unsigned a[kMTiles][4];
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt)
        sm80::ldmatrix_x4(a[mt], q_off.template at<true>(s_q_addr, mt * 16, kk));
#pragma unroll
      for (int np = 0; np < kNTiles / 2; ++np) {
        unsigned b[4];
        sm80::ldmatrix_x4(b, k_off.at(s_k_addr, np * 16, kk));
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          sm80::mma_16816<Element>(acc[mt][2 * np], a[mt], b[0], b[1]);
          sm80::mma_16816<Element>(acc[mt][2 * np + 1], a[mt], b[2], b[3]);
        }
      }
    }

    // Visibility: probe row r valid, j <= J, and the row's position at or
    // past block j's last key (with s_q == s_k: the diagonal j == I only
    // for I's last row). The pooled probe sees every j <= J, block J
    // included even where a prefix not aligned to B puts J's last key past
    // I's last row (the reference's rule). Invisible -> -inf.
    float local_max = neg_inf();
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int r = warp * kWarpRows + mt * 16 + quad_row + (i >> 1) * 8;
          bool visible = r < num_probes;
          // Only chunks that reach first_partial hold blocks some row cannot
          // see; earlier ones need the row test alone, which keeps this loop
          // off the GEMM's critical path.
          if ((chunk + 1) * kKeyChunk > first_partial) {
            const int j = chunk * kKeyChunk + nt * 8 + quad_col * 2 + (i & 1);
            const int last_key = const_min((j + 1) * kBlockSize, k_len) - 1;
            visible = visible && j <= last_block && (pooled || last_key <= first_pos + r);
          }
          const float v = visible ? acc[mt][nt][i] * scale_log2 : neg_inf();
          acc[mt][nt][i] = v;
          local_max = fmaxf(local_max, v);
        }
    // Each warp sums exp2(s - m_w) with m_w its own maximum over this chunk
    // (a warp reduction, no CTA barrier); the combine below rescales the
    // warps' partial sums to the chunk maximum. A CTA-wide max before the
    // exponentials cost two extra barriers per chunk; ncu at 64K showed the
    // loop latency-bound on them (issue slots 53%, 7.4 cycles per issue).
    float warp_max = local_max;
#pragma unroll
    for (int m = 16; m >= 1; m >>= 1)
      warp_max = fmaxf(warp_max, __shfl_xor_sync(0xffffffffu, warp_max, m));
    // A warp that sees no visible score in this chunk contributes 0; never
    // let -inf - -inf produce NaN.
    const float offset = warp_max == neg_inf() ? 0.f : warp_max;

    // Column sums of exp2(s - m_w): this lane's rows, then the 8 lanes that
    // share a column (xor over the row bits of the lane id).
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        float e = 0.f;
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt)
          e += fast_exp2(acc[mt][nt][c] - offset) + fast_exp2(acc[mt][nt][2 + c] - offset);
        e += __shfl_xor_sync(0xffffffffu, e, 4);
        e += __shfl_xor_sync(0xffffffffu, e, 8);
        e += __shfl_xor_sync(0xffffffffu, e, 16);
        if (quad_row == 0)
          s_partial[warp * kKeyChunk + nt * 8 + quad_col * 2 + c] = e;
      }
    if (lane == 0)
      s_scratch[warp] = warp_max;
    __syncthreads();
    // Chunk maximum and the warps' rescale factors (every thread, from
    // shared memory: the next writes to s_partial / s_scratch come after the
    // next chunk's barrier).
    float chunk_max = neg_inf();
#pragma unroll
    for (int w = 0; w < kNumWarps; ++w)
      chunk_max = fmaxf(chunk_max, s_scratch[w]);
    for (int col = threadIdx.x; col < kKeyChunk; col += kNumThreads) {
      const int j = chunk * kKeyChunk + col;
      if (j < num_scored) {
        float e = 0.f;
#pragma unroll
        for (int w = 0; w < kNumWarps; ++w) {
          const float m_w = s_scratch[w];
          if (m_w != neg_inf())
            e += s_partial[w * kKeyChunk + col] * fast_exp2(m_w - chunk_max);
        }
        s_score[j] = e;
      }
    }
    // E of this chunk is relative to its own maximum; the tail rescales
    // every chunk to the final maximum.
    if (threadIdx.x == 0)
      s_chunk_max[chunk] = chunk_max;
    run_max = fmaxf(run_max, chunk_max);
  }
  __syncthreads();

  // Threshold and compaction. The grid coordinates and the mask-row
  // addresses are rebuilt here rather than kept alive across the scoring
  // loop (ptxas otherwise spills them to reach its occupancy target).
  DiscoveryCta<Element> tail;
  Problem::template locate<Element, kHeadDim, kBlockSize>(params, opaque_block_index(), tail);
  fp_i32 *ids_row = tail.ids;
  const int last_t = tail.last_block;
  const int scored_t = last_t + 1;
  const bool dense_t = tail.dense_tail;

  // Rescale each chunk's energies to the final max, normalise.
  float part_sum = 0.f;
  for (int j = threadIdx.x; j < scored_t; j += kNumThreads) {
    const float cm = s_chunk_max[j / kKeyChunk];
    const float e = run_max == neg_inf() ? 0.f : s_score[j] * fast_exp2(cm - run_max);
    s_score[j] = e;
    part_sum += e;
  }
  const float total = block_reduce<kNumWarps>(part_sum, s_scratch, SumOp());
  const float inv_denom = fast_rcp(total + kScoreEpsilon);
  float part_max = neg_inf(), part_min = pos_inf();
  for (int j = threadIdx.x; j < scored_t; j += kNumThreads) {
    const float s = s_score[j] * inv_denom;
    s_score[j] = s;
    part_max = fmaxf(part_max, s);
    part_min = fminf(part_min, s);
  }
  const float score_max = block_reduce<kNumWarps>(part_max, s_scratch, MaxOp());
  const float score_min = block_reduce<kNumWarps>(part_min, s_scratch, MinOp());
  const float alpha = params.alpha;
  const float threshold = params.threshold_kind == FP_THRESHOLD_MIN_MAX
                              ? alpha * score_max + (1.f - alpha) * score_min
                              : alpha * score_max;

  auto forced = [&](int j) {
    return j < params.sink || last_t - j < params.window || dense_t;
  };
  // min_budget: the k-th largest non-forced score joins the threshold. With
  // k or fewer candidates every candidate is kept (budget 0.0 passes all).
  float budget = pos_inf();
  const int k = params.min_budget;
  if (k > 0) {
    int cand = 0;
    for (int j = threadIdx.x; j < scored_t; j += kNumThreads)
      cand += forced(j) ? 0 : 1;
    cand = block_reduce<kNumWarps>(cand, reinterpret_cast<int *>(s_scratch), SumOp());
    if (cand <= k)
      budget = 0.f;
    else
      budget = detail::kth_largest<kNumWarps>(
          s_score, scored_t, k, [&](int j) { return !forced(j); }, s_hist, s_misc);
  }

  // Compaction: block-wide exclusive prefix sum of the keep flags, in
  // ascending j, kNumThreads blocks per round.
  int written = 0;
  fp_i32 *s_warp_count = reinterpret_cast<fp_i32 *>(s_hist); // histogram is free now
#pragma unroll 1
  for (int base = 0; base < scored_t; base += kNumThreads) {
    const int j = base + threadIdx.x;
    bool keep = false;
    if (j < scored_t) {
      const float s = s_score[j];
      // alpha <= 0: every block, NaN scores included, as in the shortcut
      // above (taken unless debug_scores asks for the scores).
      keep = forced(j) || alpha <= 0.f || s >= threshold || s >= budget;
    }
    const unsigned ballot = __ballot_sync(0xffffffffu, keep);
    if (lane == 0)
      s_warp_count[warp] = __popc(ballot);
    __syncthreads();
    int before = 0, round_total = 0;
#pragma unroll
    for (int w = 0; w < kNumWarps; ++w) {
      const int c = s_warp_count[w];
      before += w < warp ? c : 0;
      round_total += c;
    }
    if (keep)
      ids_row[written + before + __popc(ballot & ((1u << lane) - 1u))] = j;
    written += round_total;
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    *tail.count = written;
    if (params.kept_counter != nullptr)
      atomicAdd(reinterpret_cast<unsigned long long *>(params.kept_counter),
                static_cast<unsigned long long>(written));
  }
  if (tail.debug_scores != nullptr) {
    for (int j = threadIdx.x; j < tail.row_len; j += kNumThreads)
      tail.debug_scores[j] = j < scored_t ? s_score[j] : 0.f;
  }
}

/// Scores, thresholds and compacts the key blocks of one query block.
/// Launch: grid (num_blocks, h_q, b), 32 * kNumWarps threads,
/// DiscoveryTraits<...>::kSmemBaseBytes + kSmemPerKeyBlockBytes * num_blocks
/// dynamic shared memory.
template <typename Element, int kHeadDim, int kBlockSize, int kKeyChunk, int kNumWarps>
__device__ void pattern_discovery(const FpDiscoveryParams &params) {
  discover_blocks<Element, kHeadDim, kBlockSize, kKeyChunk, kNumWarps, DenseDiscovery>(params);
}

/// Varlen discovery (docs/semantics.md section 2) into the compact mask.
/// Launch: grid (ceil(max_seqlen_q / B), h_q, b), 32 * kNumWarps threads,
/// kSmemBaseBytes + kSmemPerKeyBlockBytes * max_key_blocks dynamic shared
/// memory.
template <typename Element, int kHeadDim, int kBlockSize, int kKeyChunk, int kNumWarps>
__device__ void varlen_pattern_discovery(const FpVarlenDiscoveryParams &params) {
  discover_blocks<Element, kHeadDim, kBlockSize, kKeyChunk, kNumWarps, VarlenDiscovery>(params);
}

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_PATTERN_DISCOVERY_CUH
