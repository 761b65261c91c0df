//===- fp/varlen.cuh - Sequences and key rows of a varlen call -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// What the three varlen kernels share (docs/semantics.md section 2): where
/// sequence i of a packed batch lives, whether its device-side lengths can be
/// trusted, and where key t of it is in memory (packed or paged K/V).
///
/// Lengths live in device memory, so the host cannot check them. Each CTA
/// checks its own sequence against the host-given bounds (total_q, total_k or
/// the page count, the maxima, the page-table width) and skips a sequence
/// that breaks them: nothing of it is read or written. Page ids are checked
/// where they are read; a row in a page id out of range reads as zeros. No
/// length or id, however wrong, makes a kernel read or write out of bounds.
///
//===----------------------------------------------------------------------===//
#ifndef FP_DEVICE_VARLEN_CUH
#define FP_DEVICE_VARLEN_CUH

#include "fp/arch/mma_sm80.cuh"
#include "fp/common.cuh"

namespace fp {
namespace dev {

/// One sequence of a varlen call, resolved and checked.
struct VarlenSequence {
  int q_start; ///< first row of the sequence in the packed q / out
  int q_len;   ///< its queries (the last q_len of its k_len positions)
  int k_start; ///< packed K/V: first row in the packed k / v; paged: 0
  int k_len;   ///< its keys
  int prefix;  ///< k_len - q_len: local query row r is position prefix + r
};

/// Resolves sequence `i` of `seqs`; false when its lengths break the bounds
/// the host gave (the caller then skips the sequence).
FP_DEVICE bool load_varlen_sequence(const FpVarlenSequences &seqs, int i, VarlenSequence &s) {
  const int q0 = seqs.cu_seqlens_q[i];
  const int q1 = seqs.cu_seqlens_q[i + 1];
  if (q0 < 0 || q1 < q0 || q1 > seqs.total_q || q1 - q0 > seqs.max_seqlen_q)
    return false;
  int k0 = 0, k_len;
  if (seqs.page_table == nullptr) {
    k0 = seqs.cu_seqlens_k[i];
    const int k1 = seqs.cu_seqlens_k[i + 1];
    if (k0 < 0 || k1 < k0 || k1 > seqs.total_k)
      return false;
    k_len = k1 - k0;
  } else {
    k_len = seqs.k_lens[i];
    // Pages needed, in unsigned arithmetic: k_len + page size - 1 may pass
    // 2^31 - 1 when k_len is near it.
    if (k_len < 0 ||
        ((static_cast<unsigned>(k_len) + (1u << seqs.page_size_log2) - 1u) >>
         seqs.page_size_log2) > static_cast<unsigned>(seqs.max_pages))
      return false;
  }
  if (k_len > seqs.max_seqlen_k || q1 - q0 > k_len)
    return false;
  s.q_start = q0;
  s.q_len = q1 - q0;
  s.k_start = k0;
  s.k_len = k_len;
  s.prefix = k_len - (q1 - q0);
  return true;
}

/// Row of the compact mask that holds query block I of sequence i
/// (fp_varlen_mask_t): floor(cu_seqlens_q[i] / B) + i + I.
template <int kBlockSize> FP_DEVICE int varlen_mask_row(int q_start, int seq, int qblock) {
  return q_start / kBlockSize + seq + qblock;
}

/// K/V layouts a VarlenKeyRows serves: one known at compile time (the
/// attention kernels, which sit at the register limit), or either, read
/// from the parameters (the pooling kernel).
enum VarlenKeyLayout { kPackedKeys, kPagedKeys, kAnyKeys };

/// Where the keys (or values) of one kv head of one sequence are. Packed:
/// rows k_start + t of a [total_k, h_kv, d] tensor. Paged: key t in page
/// page_table[seq][t >> log2(page size)], slot t & (page size - 1), of a
/// [num_pages, page_size, h_kv, d] tensor.
template <typename Element, int kLayout> struct VarlenKeyRows {
  const Element *base;  ///< packed: row k_start of the head; paged: page 0, slot 0 of the head
  fp_i64 page_stride;   ///< paged only
  fp_i64 row_stride;    ///< between consecutive keys (slots)
  const fp_i32 *pages;  ///< paged: this sequence's page-table row; null when packed
  int num_pages;        ///< paged: page ids must be below this
  int page_size_log2;   ///< paged

  FP_DEVICE static VarlenKeyRows make(const FpVarlenSequences &seqs, const void *data,
                                      fp_i64 page_stride, fp_i64 row_stride, fp_i64 head_stride,
                                      int seq, int k_start, int kv_head) {
    VarlenKeyRows r;
    const Element *head = static_cast<const Element *>(data) + kv_head * head_stride;
    r.page_stride = page_stride;
    r.row_stride = row_stride;
    r.page_size_log2 = seqs.page_size_log2;
    r.num_pages = seqs.num_pages;
    if (kLayout == kPackedKeys || (kLayout == kAnyKeys && seqs.page_table == nullptr)) {
      r.base = head + static_cast<fp_i64>(k_start) * row_stride;
      r.pages = nullptr;
    } else {
      r.base = head;
      r.pages = seqs.page_table + static_cast<fp_i64>(seq) * seqs.max_pages;
    }
    return r;
  }

  /// Key t (0 <= t < k_len, which the sequence check keeps inside the page
  /// table) or null when its page id is out of range.
  FP_DEVICE const Element *row(int t) const {
    if (packed())
      return base + static_cast<fp_i64>(t) * row_stride;
    const int page = pages[t >> page_size_log2];
    if (static_cast<unsigned>(page) >= static_cast<unsigned>(num_pages))
      return nullptr;
    return base + static_cast<fp_i64>(page) * page_stride +
           static_cast<fp_i64>(t & ((1 << page_size_log2) - 1)) * row_stride;
  }

  /// True when the kRows keys from a multiple of kRows lie in one page (or
  /// are packed): one base address for the whole tile.
  template <int kRows> FP_DEVICE bool whole_tiles() const {
    return packed() || (1 << page_size_log2) >= kRows;
  }

  FP_DEVICE bool packed() const {
    return kLayout == kPackedKeys || (kLayout == kAnyKeys && pages == nullptr);
  }

  /// cp.async of keys [row0, row0 + kRows) (row0 a multiple of kRows) into
  /// a SwizzledTile<kRows, kCols>; keys outside [0, k_len) and keys in
  /// pages out of range are zero-filled, never read. A page that holds the
  /// whole tile gives one base per tile; smaller pages, one address per row.
  template <int kRows, int kCols, int kNumThreads>
  FP_DEVICE void load_tile(unsigned char *tile, int row0, int k_len) const {
    if (whole_tiles<kRows>()) {
      const bool any = static_cast<unsigned>(row0) < static_cast<unsigned>(k_len);
      const Element *first = any ? row(row0) : nullptr;
      sm80::cp_async_tile<kRows, kCols, kNumThreads>(tile, first != nullptr ? first : base,
                                                     row_stride, 0,
                                                     first != nullptr ? k_len - row0 : 0);
    } else {
      sm80::cp_async_tile_rows<kRows, kCols, kNumThreads>(tile, base, [&](int r) -> const Element * {
        const int t = row0 + r;
        return static_cast<unsigned>(t) < static_cast<unsigned>(k_len) ? row(t) : nullptr;
      });
    }
  }
};

} // namespace dev
} // namespace fp

#endif // FP_DEVICE_VARLEN_CUH
