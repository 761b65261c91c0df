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

#include "fp/common.cuh"

namespace fp {
namespace dev {

/// One CTA's coordinates, resolved once. Tensor pointers are not stored:
/// they are rebuilt from the kernel parameters (constant bank) where they are
/// used, so that a pointer needed only in the epilogue does not pin two
/// registers through the whole key loop.
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
};

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_ATTENTION_WORK_CUH
