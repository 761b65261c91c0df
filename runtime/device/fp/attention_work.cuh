//===- fp/attention_work.cuh - One masked_attention CTA's work -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The arch-independent description of what one masked_attention CTA
/// computes. masked_attention (the kernel template) resolves the grid
/// position, GQA head mapping and mask row into this struct; an arch mainloop
/// (fp/arch/attention_mainloop_*.cuh) consumes it. Keeping the split here is
/// what lets a Hopper mainloop replace the sm80 one without touching the
/// kernel template or its signature.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_ATTENTION_WORK_CUH
#define FP_DEVICE_ATTENTION_WORK_CUH

#include "fp/arch/mma_sm80.cuh"
#include "fp/common.cuh"
#include "fp/varlen.cuh"

namespace fp {
namespace dev {

/// One CTA's coordinates, resolved once. Tensor pointers are not stored:
/// they are rebuilt from the kernel parameters (constant bank) where they are
/// used, so that a pointer needed only in the epilogue does not pin two
/// registers through the whole key loop.
///
/// What a mainloop asks of a work description (this one, s_q == s_k, and
/// VarlenAttentionWork below): q(p) / o(p) / lse(p), the Q, O and LSE of the
/// CTA's sequence and head at local row 0; load_k / load_v, a cp.async of
/// key rows [k0, k0 + kRows) (zero-filled past the keys); prefix(), the
/// position of local row 0 (row r sees keys <= prefix() + r).
template <typename Element> struct AttentionWork {
  int batch;
  int head;    ///< query head
  int kv_head; ///< head / (h_q / h_kv)
  int row_begin; ///< first query row of the CTA tile
  int row_end;   ///< one past the last row to compute and store (<= s_q)
  int num_tiles; ///< key sub-tiles to visit (kept blocks x sub-tiles, trimmed)
  const fp_i32 *block_ids; ///< kept key blocks of this query block, ascending
  float scale_log2;        ///< softmax scale * log2(e), for exp2

  FP_DEVICE const Element *q(const FpAttentionParams &p) const {
    return static_cast<const Element *>(p.q) + batch * p.q_batch_stride + head * p.q_head_stride;
  }
  FP_DEVICE const Element *k(const FpAttentionParams &p) const {
    return static_cast<const Element *>(p.k) + batch * p.k_batch_stride + kv_head * p.k_head_stride;
  }
  FP_DEVICE const Element *v(const FpAttentionParams &p) const {
    return static_cast<const Element *>(p.v) + batch * p.v_batch_stride + kv_head * p.v_head_stride;
  }
  FP_DEVICE Element *o(const FpAttentionParams &p) const {
    return static_cast<Element *>(p.o) + batch * p.o_batch_stride + head * p.o_head_stride;
  }
  /// lse + r is row r's LSE; null when not requested.
  FP_DEVICE float *lse(const FpAttentionParams &p) const {
    return p.lse == nullptr
               ? nullptr
               : p.lse + (static_cast<fp_i64>(batch) * p.num_q_heads + head) * p.seq_q;
  }
  /// Query rows are key positions: the causal diagonal is the main one.
  FP_DEVICE static constexpr int prefix() { return 0; }
  template <int kRows, int kCols, int kNumThreads>
  FP_DEVICE void load_k(const FpAttentionParams &p, unsigned char *tile, int k0) const {
    sm80::cp_async_tile<kRows, kCols, kNumThreads>(tile, k(p), p.k_seq_stride, k0, p.seq_k);
  }
  template <int kRows, int kCols, int kNumThreads>
  FP_DEVICE void load_v(const FpAttentionParams &p, unsigned char *tile, int k0) const {
    sm80::cp_async_tile<kRows, kCols, kNumThreads>(tile, v(p), p.v_seq_stride, k0, p.seq_k);
  }
};

/// The part of a varlen attention CTA's description that the key loop
/// needs only once per sub-tile (addresses of K/V rows) or in the
/// epilogue. It lives in shared memory, written once per CTA: in registers
/// it pushed the d = 128 mainloop past 255 registers on sm_90a (the mainloop
/// reloads it per sub-tile, after each cp.async's memory clobber).
struct VarlenCtaShared {
  int seq, kv_head;
  int q_start; ///< the sequence's first row in the packed q / out
  int k_start; ///< packed: its first row in the packed k / v
  int k_len;
};

FP_DEVICE VarlenCtaShared &varlen_cta_shared() {
  __shared__ VarlenCtaShared cta;
  return cta;
}

/// A varlen attention CTA (docs/semantics.md section 2): kBlockM local
/// query rows of one sequence, whose keys are packed or paged
/// (fp/varlen.cuh). Rows are local to the sequence; local row r is position
/// prefix + r, so the causal diagonal is aligned to the bottom right.
/// kLayout (VarlenKeyLayout): kPackedKeys or kPagedKeys.
template <typename Element, int kLayout> struct VarlenAttentionWork {
  int head;
  int row_begin; ///< first local query row of the CTA tile
  int row_end;   ///< one past the last row to compute and store (<= q_len)
  int num_tiles;
  const fp_i32 *block_ids; ///< kept absolute key blocks, ascending
  float scale_log2;
  int prefix_len; ///< k_len - q_len

  FP_DEVICE const Element *q(const FpVarlenAttentionParams &p) const {
    return static_cast<const Element *>(p.q) +
           static_cast<fp_i64>(varlen_cta_shared().q_start) * p.q_seq_stride +
           head * p.q_head_stride;
  }
  FP_DEVICE Element *o(const FpVarlenAttentionParams &p) const {
    return static_cast<Element *>(p.o) +
           static_cast<fp_i64>(varlen_cta_shared().q_start) * p.o_seq_stride +
           head * p.o_head_stride;
  }
  /// lse + r is local row r's LSE in the [h_q, total_q] layout.
  FP_DEVICE float *lse(const FpVarlenAttentionParams &p) const {
    return p.lse == nullptr
               ? nullptr
               : p.lse + static_cast<fp_i64>(head) * p.seqs.total_q + varlen_cta_shared().q_start;
  }
  FP_DEVICE int prefix() const { return prefix_len; }
  template <int kRows, int kCols, int kNumThreads>
  FP_DEVICE void load_k(const FpVarlenAttentionParams &p, unsigned char *tile, int k0) const {
    load<kRows, kCols, kNumThreads>(p, p.k, p.k_page_stride, p.k_seq_stride, p.k_head_stride,
                                    tile, k0);
  }
  template <int kRows, int kCols, int kNumThreads>
  FP_DEVICE void load_v(const FpVarlenAttentionParams &p, unsigned char *tile, int k0) const {
    load<kRows, kCols, kNumThreads>(p, p.v, p.v_page_stride, p.v_seq_stride, p.v_head_stride,
                                    tile, k0);
  }

private:
  template <int kRows, int kCols, int kNumThreads>
  FP_DEVICE static void load(const FpVarlenAttentionParams &p, const void *data,
                             fp_i64 page_stride, fp_i64 row_stride, fp_i64 head_stride,
                             unsigned char *tile, int k0) {
    const VarlenCtaShared &cta = varlen_cta_shared();
    VarlenKeyRows<Element, kLayout>::make(p.seqs, data, page_stride, row_stride, head_stride, cta.seq,
                                 cta.k_start, cta.kv_head)
        .template load_tile<kRows, kCols, kNumThreads>(tile, k0, cta.k_len);
  }
};

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_ATTENTION_WORK_CUH
