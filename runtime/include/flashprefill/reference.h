//===- flashprefill/reference.h - CPU reference of the operator -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The oracle: a plain C++17 implementation of every op of the operator,
// written to follow docs/semantics.md section 1 ("rule v1") to the letter.
// Every GPU test compares against it, so it favours obviousness over speed;
// it is multithreaded only to keep long-context tests in seconds.
// docs/reference.md restates the definition; the numerics are spelled out on
// each op below.
//
// Shared numerics (all ops):
//   * inputs are bf16 or fp16 bit patterns (fp::DType), converted exactly to
//     float before any arithmetic;
//   * every dot product is dotF32(): fp32 products accumulated in 8 lanes
//     (lane l takes the elements c with c % 8 == l, in ascending c), then the
//     lanes combined as ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7));
//   * exp is std::exp on float (natural base); no FMA contraction
//     (-ffp-contract=off), so results do not depend on the build machine or
//     on the thread count.
// Inputs are assumed finite; non-finite values propagate as IEEE arithmetic
// makes them, except where an op says otherwise.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_REFERENCE_H
#define FLASHPREFILL_REFERENCE_H

#include "flashprefill/defaults.h"
#include "flashprefill/dtype.h"
#include "flashprefill/npy.h"
#include "flashprefill/status.h"
#include "fp/params.h" // FP_THRESHOLD_*, FP_SCORE_* values

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace fp::ref {

//===----------------------------------------------------------------------===//
// Host tensors
//===----------------------------------------------------------------------===//

/// Non-owning view of a host tensor with logical shape [batch, seq, heads,
/// dim] of 16-bit elements (bf16 or fp16 bit patterns). Strides are in
/// elements for the first three dimensions; `dim` is contiguous. Any strides
/// work, so packed QKV ([b, s, 3h, d]) and head-major ([b, h, s, d]) buffers
/// are viewed without copies. `Elem` is `const uint16_t` (TensorView) or
/// `uint16_t` (MutableTensorView).
template <typename Elem> struct StridedTensor {
  Elem *data = nullptr;
  DType dtype = DType::kBF16;
  int64_t batch = 0, seq = 0, heads = 0, dim = 0;
  int64_t batchStride = 0, seqStride = 0, headStride = 0;

  /// Pointer to the `dim` contiguous elements at (b, s, h).
  Elem *row(int64_t b, int64_t s, int64_t h) const {
    return data + b * batchStride + s * seqStride + h * headStride;
  }
  /// The float value of element (b, s, h, c).
  float at(int64_t b, int64_t s, int64_t h, int64_t c) const {
    return bitsToFloat(dtype, row(b, s, h)[c]);
  }
  /// A read-only view of the same memory.
  StridedTensor<const uint16_t> asConst() const {
    return {data, dtype,       batch,     seq,       heads,
            dim,  batchStride, seqStride, headStride};
  }
};
using TensorView = StridedTensor<const uint16_t>;
using MutableTensorView = StridedTensor<uint16_t>;

/// Memory order of an owning Tensor. The logical shape is always [batch, seq,
/// heads, dim]; kBHSD stores it head-major, which is the [b, h, nb, d] layout
/// of pooled K and Q (fp/params.h), with `seq` counting blocks.
enum class Layout : uint8_t {
  kBSHD, ///< [batch, seq, heads, dim] contiguous (Q, K, V, O)
  kBHSD, ///< [batch, heads, seq, dim] contiguous (kbar, qbar)
};

/// Owning, contiguous host tensor of 16-bit elements.
class Tensor {
public:
  Tensor() = default;
  /// A zero-filled tensor of logical shape [batch, seq, heads, dim].
  static Tensor zeros(DType dtype, int64_t batch, int64_t seq, int64_t heads,
                      int64_t dim, Layout layout = Layout::kBSHD);
  /// A contiguous copy of `view` in `layout`.
  static Tensor copyOf(const TensorView &view, Layout layout = Layout::kBSHD);

  DType dtype() const { return dtype_; }
  Layout layout() const { return layout_; }
  int64_t batch() const { return batch_; }
  int64_t seq() const { return seq_; }
  int64_t heads() const { return heads_; }
  int64_t dim() const { return dim_; }
  int64_t numElements() const { return batch_ * seq_ * heads_ * dim_; }

  TensorView view() const;
  MutableTensorView mutableView();
  /// The elements in memory order (see Layout).
  const std::vector<uint16_t> &storage() const { return data_; }
  std::vector<uint16_t> &storage() { return data_; }

  /// Element (b, s, h, c) as float / stored from float (rounded to dtype).
  float at(int64_t b, int64_t s, int64_t h, int64_t c) const;
  void set(int64_t b, int64_t s, int64_t h, int64_t c, float value);
  /// The storage shape in memory order, e.g. [b, h, s, d] for kBHSD.
  std::vector<int64_t> storageShape() const;

private:
  int64_t offset(int64_t b, int64_t s, int64_t h, int64_t c) const;

  DType dtype_ = DType::kBF16;
  Layout layout_ = Layout::kBSHD;
  int64_t batch_ = 0, seq_ = 0, heads_ = 0, dim_ = 0;
  std::vector<uint16_t> data_;
};

/// A uint16 .npy array of `tensor`'s storage (shape = storageShape()).
NpyArray tensorToNpy(const Tensor &tensor);
/// A kBSHD tensor from a 4-d .npy array: uint16 arrays are taken as `dtype`
/// bit patterns, float32 arrays are rounded to `dtype`; `what` names the
/// array in errors.
StatusOr<Tensor> tensorFromNpy(const NpyArray &array, DType dtype,
                               const std::string &what = "array");

//===----------------------------------------------------------------------===//
// Options
//===----------------------------------------------------------------------===//

/// How thresholdMask() turns a row of scores into a threshold t.
enum class ThresholdKind : uint8_t {
  kRelativeMax = FP_THRESHOLD_RELATIVE_MAX, ///< t = alpha * max (default)
  kMinMax = FP_THRESHOLD_MIN_MAX, ///< t = alpha * max + (1 - alpha) * min
};

/// Which probes blockScore() uses.
enum class ScoreQuery : uint8_t {
  kFull = FP_SCORE_FULL_QUERIES,     ///< every valid row of the block (default)
  kPooled = FP_SCORE_POOLED_QUERIES, ///< one probe: the block-mean query qbar
};

/// Operator parameters; defaults come from flashprefill/defaults.h.
struct Options {
  /// Tokens per block. The operator's kernels use 128; the reference accepts
  /// any power of two >= 1 so hand-built test cases stay small.
  int blockSize = FP_DEFAULT_BLOCK_SIZE;
  /// Relative threshold in [0, 1]: 0 keeps every block, 1 the argmax.
  float alpha = FP_DEFAULT_ALPHA;
  int sink = FP_DEFAULT_SINK;            ///< key blocks [0, sink) are kept
  int window = FP_DEFAULT_WINDOW;        ///< blocks with I - j < window kept
  int lastN = FP_DEFAULT_LAST_N;         ///< query blocks I >= nb - lastN dense
  int minBudget = FP_DEFAULT_MIN_BUDGET; ///< k > 0: keep the k best non-forced
  ThresholdKind thresholdKind = ThresholdKind::kRelativeMax;
  ScoreQuery scoreQuery = ScoreQuery::kFull;
  /// Softmax scale; <= 0 or NaN means 1 / sqrt(head dim).
  float scale = 0.0f;
  /// Only causal attention is implemented; false returns kUnsupported.
  bool causal = true;
  /// Mean correction (docs/semantics.md section 3): every key block that is
  /// not kept and whose keys are all visible to a row adds n_j copies of its
  /// mean key / mean value to that row's softmax. Off by default.
  bool meanCorrection = false;
  /// Worker threads; 0 = std::thread::hardware_concurrency(). Results do not
  /// depend on it.
  int numThreads = 0;
};

/// Checks every field of `options`; the message names the field and the
/// expected value, e.g. "alpha: expected a value in [0, 1], got 1.5".
Status validateOptions(const Options &options);

/// The scale actually used for head dimension `headDim`.
float resolveScale(const Options &options, int64_t headDim);

/// ceil(seqLen / blockSize): the number of blocks nb.
int64_t numBlocks(int64_t seqLen, int64_t blockSize);

/// Checks q [b, s_q, h_q, d], k [b, s_k, h_kv, d], v [b, s_k, h_kv, d_v]
/// against each other and `options` (dtypes equal, h_q % h_kv == 0, non-null
/// data, ...). s_k != s_q and non-causal return kUnsupported.
Status validateProblem(const TensorView &q, const TensorView &k,
                       const TensorView &v, const Options &options);

//===----------------------------------------------------------------------===//
// Causal geometry: who sees what (docs/semantics.md sections 1 and 2)
//===----------------------------------------------------------------------===//

/// Where a call's `queryLen` queries sit among its `keyLen >= queryLen`
/// keys: they are the LAST queryLen positions, so the first prefix() =
/// keyLen - queryLen keys are a cached prefix and the causal diagonal is
/// aligned bottom-right. Query blocks are numbered locally (block I covers
/// local rows [IB, min((I+1)B, queryLen))), key blocks absolutely (block j
/// covers keys [jB, min((j+1)B, keyLen))); local row r is absolute position
/// prefix() + r. Every op takes its visibility from here, so the rule has
/// one definition; prefix 0 is section 1's whole prompt (J(I) = I).
struct CausalGeometry {
  int64_t queryLen = 0, keyLen = 0, blockSize = 1;

  int64_t prefix() const { return keyLen - queryLen; }
  int64_t numQueryBlocks() const {
    return (queryLen + blockSize - 1) / blockSize;
  }
  int64_t numKeyBlocks() const { return (keyLen + blockSize - 1) / blockSize; }
  /// Last local row of query block I.
  int64_t lastRow(int64_t i) const {
    return std::min((i + 1) * blockSize, queryLen) - 1;
  }
  /// Last key of key block j.
  int64_t lastKey(int64_t j) const {
    return std::min((j + 1) * blockSize, keyLen) - 1;
  }
  /// J(I) = (prefix + last row of I) div B: the last key block that query
  /// block I reaches; its candidates are j in [0, J(I)].
  int64_t lastKeyBlock(int64_t i) const {
    return (prefix() + lastRow(i)) / blockSize;
  }
  /// Step 2: local row r scores key block j iff it sees j's last key.
  bool rowScoresBlock(int64_t r, int64_t j) const {
    return lastKey(j) <= prefix() + r;
  }
  /// Step 4: local row r sees keys [jB, jB + visibleKeys(r, j)) of block j
  /// (causal: key position <= prefix + r; valid: < keyLen).
  int64_t visibleKeys(int64_t r, int64_t j) const {
    const int64_t first = j * blockSize;
    const int64_t n =
        std::min({blockSize, keyLen - first, prefix() + r - first + 1});
    return std::max<int64_t>(n, 0);
  }
  /// A kept block j of query block I needs per-token (causal) masking iff
  /// its last key lies beyond the first row of I.
  bool needsTokenMask(int64_t i, int64_t j) const {
    return lastKey(j) > prefix() + i * blockSize;
  }
  /// The whole prompt of section 1: `seqLen` queries over the same keys.
  static CausalGeometry wholePrompt(int64_t seqLen, int64_t blockSize) {
    return {seqLen, seqLen, blockSize};
  }
};

//===----------------------------------------------------------------------===//
// Block scores and masks
//===----------------------------------------------------------------------===//

/// Normalised block scores [batch, heads, nb, nb] (fp32). Row (b, h, I) holds
/// score[I, j] for j <= I; entries with j > I are 0 and never read.
struct BlockScores {
  int64_t batch = 0, heads = 0, numBlocks = 0;
  std::vector<float> values;

  const float *row(int64_t b, int64_t h, int64_t i) const {
    return values.data() + ((b * heads + h) * numBlocks + i) * numBlocks;
  }
  float *row(int64_t b, int64_t h, int64_t i) {
    return values.data() + ((b * heads + h) * numBlocks + i) * numBlocks;
  }
  float at(int64_t b, int64_t h, int64_t i, int64_t j) const {
    return row(b, h, i)[j];
  }
};

/// The padded-rows block mask (fp/params.h): counts [b, h_q, nb] and ids
/// [b, h_q, nb, nb], ids ascending. The reference fills entries past the
/// count with -1 so masks compare deterministically. Block j of query block
/// I needs causal masking iff j == I.
struct BlockMask {
  int64_t batch = 0, heads = 0, numBlocks = 0;
  std::vector<int32_t> counts;
  std::vector<int32_t> ids;

  /// An all-empty mask (counts 0, ids -1).
  static BlockMask empty(int64_t batch, int64_t heads, int64_t numBlocks);
  /// The dense causal mask: every j <= I.
  static BlockMask denseCausal(int64_t batch, int64_t heads, int64_t numBlocks);

  int32_t count(int64_t b, int64_t h, int64_t i) const {
    return counts[(b * heads + h) * numBlocks + i];
  }
  const int32_t *rowIds(int64_t b, int64_t h, int64_t i) const {
    return ids.data() + ((b * heads + h) * numBlocks + i) * numBlocks;
  }
  /// The kept ids of row (b, h, I), ascending.
  std::vector<int32_t> kept(int64_t b, int64_t h, int64_t i) const;
  /// Whether block j is kept in row (b, h, I).
  bool contains(int64_t b, int64_t h, int64_t i, int64_t j) const;
  /// Kept blocks over all rows.
  int64_t keptBlocks() const;
  /// keptBlocks() / causal blocks (b * h * nb * (nb + 1) / 2); 0 if none.
  double density() const;
  /// Checks shapes, counts in [0, I + 1] and ids strictly ascending in
  /// [0, I]; `batch`, `heads`, `numBlocks` are the expected dimensions.
  Status validate(int64_t batch, int64_t heads, int64_t numBlocks) const;
};

//===----------------------------------------------------------------------===//
// Ops (docs/semantics.md section 1)
//===----------------------------------------------------------------------===//

/// The dot product used everywhere (see the file comment for the order).
float dotF32(const float *a, const float *b, int64_t n);

/// 1. block_pool. For every (b, h, block j): out[b, h, j, :] = mean of x's
/// valid rows jB .. min((j+1)B, s) - 1, computed as an fp32 sum in ascending
/// row order divided by the row count (fp32 division), then rounded to x's
/// dtype. Returns a kBHSD tensor of logical shape [b, nb, h, d] (storage
/// [b, h, nb, d], as params.h). Used for K (kbar) and, for pooled queries, Q
/// (qbar).
StatusOr<Tensor> blockPool(const TensorView &x, const Options &options);

/// 2. block_score. For every (b, query head h, query block I), with kv head
/// h / g, L = s_q and rows r in [IB, min((I+1)B, L)) (padded rows never
/// count):
///   s[r, j]  = dotF32(q_r, kbar_j) * scale     for j <= I and r >= last_j,
///              last_j = min((j+1)B, L) - 1 (block j's last token visible);
///   M_I      = max of those s (every j <= I has at least row r = last_I);
///   E[I, j]  = sum over those r, ascending, of exp(s[r, j] - M_I);
///   score    = E[I, j] / (sum_{j' <= I, ascending} E[I, j'] + 1e-9).
/// If M_I = -inf (every logit -inf) all E are 0, hence all scores 0.
/// Pooled queries (options.scoreQuery == kPooled): the only probe of block I
/// is qbar_I (blockPool of Q, rounded to the dtype), placed at the block's
/// last valid row, so it sees every j <= I:
///   s[j] = dotF32(qbar_I, kbar_j) * scale, E = exp(s[j] - max_j s).
/// `kbar` is blockPool(k) ([b, nb, h_kv, d] logical, any layout); `qbar`
/// (pooled only) may be given, else it is computed from `q`.
StatusOr<BlockScores> blockScore(const TensorView &q, const TensorView &kbar,
                                 const Options &options,
                                 const TensorView *qbar = nullptr);

/// One row of blockScore: scores[0..i] of query block `i` of (batch b, query
/// head h), bit-identical to blockScore's. For checks at lengths where the
/// nb x nb matrix is too big to compute (sampled query blocks).
Status blockScoreRow(const TensorView &q, const TensorView &kbar,
                     const Options &options, int64_t b, int64_t h, int64_t i,
                     float *scores, const TensorView *qbar = nullptr);

/// blockScoreRow for any geometry (a chunk after a cached prefix, section
/// 2): q [b, s_q, h_q, d] with s_q = geometry.queryLen, kbar the pooled keys
/// of all geometry.keyLen keys ([b, ceil(s_k / B), h_kv, d]); writes
/// scores[0..J(I)]. The overload above is this one with the whole prompt.
Status blockScoreRow(const TensorView &q, const TensorView &kbar,
                     const Options &options, const CausalGeometry &geometry,
                     int64_t b, int64_t h, int64_t i, float *scores,
                     const TensorView *qbar = nullptr);

/// One row of thresholdMask: writes the kept ids of scored row `row`
/// (query block `i` of `nb`) ascending into ids[0..i] and returns how many.
int32_t thresholdRow(const float *row, int64_t i, int64_t nb,
                     const Options &options, int32_t *ids);
/// The same for query block `i` of any geometry (a chunk after a prefix):
/// `row` holds score[I, 0..J(I)]; the kept ids go to ids[0..J(I)]. Forced:
/// j < sink, J(I) - j < window, I >= numQueryBlocks - lastN (pass lastN 0
/// where the dense tail does not apply). The overload above is this one
/// with the whole-prompt geometry.
int32_t thresholdRow(const float *row, const CausalGeometry &geometry,
                     int64_t i, const Options &options, int32_t *ids);


/// 3. threshold_mask. For every row (b, h, I), scores over j in [0, I]:
///   t = alpha * max_j score                      (kRelativeMax), or
///   t = alpha * max_j score + (1 - alpha) * min_j score      (kMinMax),
/// evaluated in fp32 as written. Block j <= I is kept iff
///   score[I, j] >= t, or j < sink, or I - j < window, or I >= nb - lastN,
///   or (minBudget = k > 0) score[I, j] >= the k-th largest score among the
///   non-forced blocks of the row (forced: j < sink or I - j < window; all
///   non-forced blocks pass when there are at most k; ties all pass).
/// All-zero scores give t = 0, so every block passes. NaN scores never pass.
StatusOr<BlockMask> thresholdMask(const BlockScores &scores,
                                  const Options &options);

/// Output of the attention ops.
struct AttentionOutput {
  Tensor out;             ///< [b, s_q, h_q, d_v] (kBSHD), q's dtype
  std::vector<float> lse; ///< [b, h_q, s_q] natural log; -inf: no key seen
};

/// 4. masked_attention. For every query row r of head h (kv head h / g), the
/// visible keys are c <= r (causal) in the kept blocks of r's block I,
/// visited in ascending order. In fp32:
///   s_c = dotF32(q_r, k_c) * scale;  m = max_c s_c;
///   p_c = exp(s_c - m);  l = sum_c p_c (ascending, p unrounded);
///   o = sum_c round(p_c) * v_c  (ascending; round = to q's dtype, as a flash
///       kernel rounds P before the PV product);
///   O_r = round(o / l),  LSE_r = m + log(l).
/// This equals a flash kernel's online softmax whose running max already is
/// the final max; a tiled kernel differs only in where P is rounded (same
/// relative size). A row with no visible key gives O = 0, LSE = -inf.
/// `mask` must pass BlockMask::validate (ids ascending in [0, I]).
StatusOr<AttentionOutput>
maskedAttention(const TensorView &q, const TensorView &k, const TensorView &v,
                const BlockMask &mask, const Options &options);

/// maskedAttention() with BlockMask::denseCausal: plain causal attention with
/// the same numerics.
StatusOr<AttentionOutput> denseCausalAttention(const TensorView &q,
                                               const TensorView &k,
                                               const TensorView &v,
                                               const Options &options);

/// Everything prefill() produced, for inspection by tests.
struct PrefillOutput {
  Tensor kbar;        ///< blockPool(k), storage [b, h_kv, nb, d]
  Tensor qbar;        ///< blockPool(q) when pooled queries, else empty
  BlockScores scores; ///< blockScore
  BlockMask mask;     ///< thresholdMask
  AttentionOutput attention;
};

/// 5. The whole operator: blockPool, blockScore, thresholdMask,
/// maskedAttention.
StatusOr<PrefillOutput> prefill(const TensorView &q, const TensorView &k,
                                const TensorView &v, const Options &options);

/// Output of naiveAttention(), in double.
struct NaiveAttentionOutput {
  std::vector<double> out; ///< [b, s_q, h_q, d_v]
  std::vector<double> lse; ///< [b, h_q, s_q]
};

/// The "truth" for error bounds: causal softmax attention in fp64 (double
/// dot products in ascending order, double exp, P never rounded), over the
/// keys of `mask`'s kept blocks when a mask is given, else all causal keys.
/// Rows without a visible key give 0 and LSE -inf. Single-threaded and
/// O(s^2); meant for small tests and sampled rows. With a mask and
/// options.meanCorrection, the mean terms of the pruned blocks (section 3)
/// are added in double too (block means rounded to the dtype, as step 1).
StatusOr<NaiveAttentionOutput>
naiveAttention(const TensorView &q, const TensorView &k, const TensorView &v,
               const Options &options, const BlockMask *mask = nullptr);

//===----------------------------------------------------------------------===//
// Engine shapes (docs/semantics.md section 2; layouts in docs/varlen.md)
//===----------------------------------------------------------------------===//

/// One variable-length call: b sequences, sequence i bringing q_len_i new
/// queries after a cached prefix (its keys number k_len_i >= q_len_i and its
/// queries are the last q_len_i of them). The fields mirror fp_varlen_t.
struct VarlenProblem {
  TensorView q; ///< [1, total_q, h_q, d]: the rows of every sequence
  /// Packed: [1, total_k, h_kv, d] with cuSeqlensK. Paged: [num_pages,
  /// page_size, h_kv, d] (batch = pages, seq = slots) with pageTable, kLens.
  TensorView k, v;
  std::vector<int32_t> cuSeqlensQ; ///< [b+1], [0] = 0, non-decreasing
  std::vector<int32_t> cuSeqlensK; ///< [b+1] when packed; empty when paged
  /// [b, maxPages] row-major when paged: key t of sequence i is slot
  /// t % page_size of page pageTable[i * maxPages + t / page_size].
  std::vector<int32_t> pageTable;
  int64_t maxPages = 0;
  std::vector<int32_t> kLens; ///< [b] when paged
  /// [b]: nonzero = options.lastN applies to sequence i (a prompt's final
  /// chunk); empty = it applies to every sequence.
  std::vector<int32_t> applyLastN;
  /// Host-side maxima (>= every q_len_i / k_len_i); 0 = the actual maximum.
  /// maxSeqlenK sizes the mask (maxKeyBlocks).
  int64_t maxSeqlenQ = 0, maxSeqlenK = 0;
  /// Optional pooled keys (fp_varlen_t.pooled_k): logical [b,
  /// ceil(resolvedMaxSeqlenK() / B), h_kv, d] in q's dtype, any strides
  /// (poolKeysVarlen returns them head-major, [b, h_kv, blocks, d]).
  /// selectVarlen scores against block j < ceil(k_len_i / B) of sequence i
  /// here instead of pooling K. data == nullptr: pool K.
  TensorView pooledK;

  // Accessors; meaningful after validateVarlen().
  int64_t batch() const {
    return cuSeqlensQ.empty() ? 0 : int64_t(cuSeqlensQ.size()) - 1;
  }
  bool paged() const { return cuSeqlensK.empty(); }
  int64_t totalQ() const { return q.seq; }
  int64_t queryStart(int64_t i) const { return cuSeqlensQ[size_t(i)]; }
  int64_t queryLen(int64_t i) const {
    return cuSeqlensQ[size_t(i) + 1] - cuSeqlensQ[size_t(i)];
  }
  int64_t keyLen(int64_t i) const {
    return paged() ? kLens[size_t(i)]
                   : cuSeqlensK[size_t(i) + 1] - cuSeqlensK[size_t(i)];
  }
  bool lastNApplies(int64_t i) const {
    return applyLastN.empty() || applyLastN[size_t(i)] != 0;
  }
  CausalGeometry geometry(int64_t i, int64_t blockSize) const {
    return {queryLen(i), keyLen(i), blockSize};
  }
  /// maxSeqlenQ / maxSeqlenK, or the actual maxima where they are 0.
  int64_t resolvedMaxSeqlenQ() const;
  int64_t resolvedMaxSeqlenK() const;
};

/// The compact mask of a varlen call (fp_varlen_mask_t). Query block I of
/// sequence i is row rowOf(cuSeqlensQ, i, I, B) = floor(cuSeqlensQ[i] / B)
/// + i + I; rows of different sequences never overlap and numRows =
/// floor(total_q / B) + b bounds them all.
///   counts [numRows, heads]: kept blocks of (row, head);
///   ids [numRows, heads, maxKeyBlocks]: ascending ABSOLUTE key-block ids in
///   [0, J_i(I)]; -1 past the count (and in rows of no query block, whose
///   counts are 0) so that masks compare deterministically.
/// maxKeyBlocks = ceil(max_seqlen_k / B). Kept block j of (i, I) needs
/// token masking iff CausalGeometry::needsTokenMask(I, j).
struct VarlenMask {
  int64_t numRows = 0, heads = 0, maxKeyBlocks = 0, blockSize = 0;
  std::vector<int32_t> counts;
  std::vector<int32_t> ids;

  static int64_t rowOf(const std::vector<int32_t> &cuSeqlensQ, int64_t i,
                       int64_t queryBlock, int64_t blockSize) {
    return cuSeqlensQ[size_t(i)] / blockSize + i + queryBlock;
  }
  static int64_t numRowsFor(int64_t totalQ, int64_t batch, int64_t blockSize) {
    return totalQ / blockSize + batch;
  }
  /// An all-empty mask (counts 0, ids -1).
  static VarlenMask empty(int64_t numRows, int64_t heads, int64_t maxKeyBlocks,
                          int64_t blockSize);

  int32_t count(int64_t row, int64_t h) const {
    return counts[size_t(row * heads + h)];
  }
  const int32_t *rowIds(int64_t row, int64_t h) const {
    return ids.data() + (row * heads + h) * maxKeyBlocks;
  }
  int32_t *rowIds(int64_t row, int64_t h) {
    return ids.data() + (row * heads + h) * maxKeyBlocks;
  }
  /// The kept ids of (sequence i, head h, query block I), ascending.
  std::vector<int32_t> kept(const std::vector<int32_t> &cuSeqlensQ, int64_t i,
                            int64_t h, int64_t queryBlock) const;
  /// Whether key block j is kept for (sequence i, head h, query block I).
  bool contains(const std::vector<int32_t> &cuSeqlensQ, int64_t i, int64_t h,
                int64_t queryBlock, int64_t j) const;
  /// Kept blocks over all rows.
  int64_t keptBlocks() const;
  /// Checks the shape against a validated `problem` and every row of every
  /// sequence: counts in [0, J(I) + 1], ids strictly ascending in [0, J(I)].
  Status validate(const VarlenProblem &problem, int64_t blockSize) const;
};

/// Checks every input of `problem` against each other and `options`; the
/// message names the field (with the C API's names: cu_seqlens_q[2],
/// k_lens[0], page_table[1][3], max_seqlen_k, ...) and the expected value.
/// Covers: cu_seqlens not starting at 0, decreasing or beyond total, k_len <
/// q_len, page ids out of range, a page table too narrow for k_len, lengths
/// above the maxima, page size not a power of two in [1, 256], packed and
/// paged K/V both or neither given, applyLastN of the wrong size, shapes and
/// dtypes of q, k, v.
Status validateVarlen(const VarlenProblem &problem, const Options &options);

/// Step 1 for every sequence: the pooled keys of each of its
/// ceil(k_len_i / B) key blocks (blockPool of its keys), as a kBHSD tensor
/// of logical shape [b, ceil(resolvedMaxSeqlenK() / B), h_kv, d] (storage
/// [b, h_kv, blocks, d], fp_pool_keys_varlen's layout); blocks past a
/// sequence's keys are 0. `problem.pooledK` must be empty.
StatusOr<Tensor> poolKeysVarlen(const VarlenProblem &problem,
                                const Options &options);

/// Steps 1-3 for every sequence (pool its keys, or take problem.pooledK, score with its geometry,
/// threshold, with lastN only where applyLastN says), written to the
/// compact mask of numRowsFor(total_q, b, B) rows and
/// ceil(resolvedMaxSeqlenK() / B) key blocks. Per sequence this is
/// blockPool / blockScore / thresholdMask with the prefix: with prefix 0 it
/// equals prefill()'s mask bit for bit.
StatusOr<VarlenMask> selectVarlen(const VarlenProblem &problem,
                                  const Options &options);

/// Output of the varlen attention ops.
struct VarlenOutput {
  Tensor out;             ///< [1, total_q, h_q, d_v] (kBSHD), q's dtype
  std::vector<float> lse; ///< [h_q, total_q] natural log (FlashAttention's
                          ///< varlen layout); -inf: no key seen
  VarlenMask mask;        ///< the mask attended over
};

/// Step 4 for every sequence over `mask`, with maskedAttention's numerics
/// and the bottom-right causal visibility. Rows of total_q that belong to no
/// sequence (cuSeqlensQ[b] < total_q) stay 0 with LSE -inf here; the C API
/// leaves the caller's memory there untouched.
StatusOr<VarlenOutput> attendVarlen(const VarlenProblem &problem,
                                    const VarlenMask &mask,
                                    const Options &options);

/// selectVarlen then attendVarlen.
StatusOr<VarlenOutput> prefillVarlen(const VarlenProblem &problem,
                                     const Options &options);

/// naiveAttention for a varlen call: fp64 truth over the keys of `mask`'s
/// kept blocks (or every causal key), bottom-right causal. out is
/// [total_q, h_q, d_v], lse [h_q, total_q]; rows of no sequence 0 / -inf.
StatusOr<NaiveAttentionOutput>
naiveAttentionVarlen(const VarlenProblem &problem, const Options &options,
                     const VarlenMask *mask = nullptr);

//===----------------------------------------------------------------------===//
// Merging attention states (docs/merge-states.md; the C API's fp_merge_states)
//===----------------------------------------------------------------------===//

/// Element type of an output in mergeStates: the operator's 16-bit types,
/// or fp32 (engines often keep the partial outputs of split passes in fp32).
enum class StateType : uint8_t { kBF16, kF16, kF32 };

/// "bf16", "f16" or "f32".
const char *stateTypeName(StateType type);

/// One attention state as fp_merge_states takes it (fp_attn_state_t): an
/// output O, logical [batch, seq, heads, dim] with element strides (dim
/// contiguous), and its log-sum-exp LSE, logical [batch, heads, seq], fp32,
/// natural log, with element strides. Varlen calls give batch 1, O [1,
/// total_q, h, d] and LSE [h, total_q] (lseStrides {0, total_q, 1});
/// whole-prompt calls O [b, s, h, d] and LSE [b, h, s]. The states merged
/// are only read through these pointers.
struct AttentionState {
  void *o = nullptr;
  StateType type = StateType::kBF16;
  int64_t shape[4] = {0, 0, 0, 0};   ///< batch, seq, heads, dim
  int64_t strides[4] = {0, 0, 0, 1}; ///< elements; strides[3] must be 1
  float *lse = nullptr; ///< the merged state's may be null: not written
  int64_t lseStrides[3] = {0, 0, 0}; ///< elements: batch, head, seq
};

/// How one row (b, s, h) merges, given its two LSE values:
///   kNaN    either LSE is NaN: O = NaN, LSE = NaN (never hidden);
///   kEmpty  both are -inf or +inf (no key on either side; FlashAttention-2
///           writes +inf for a row without keys): O = 0, LSE = -inf;
///   kOnlyA  only b is empty: O = O_a (rounded to out's type; copied bit
///           for bit when the types agree), LSE = lse_a bit for bit, and
///           O_b is never read (it may hold anything, NaN included);
///   kOnlyB  the same with a and b swapped;
///   kBoth   m = max(lse_a, lse_b), wA = exp(lse_a - m), wB = exp(lse_b -
///           m), sum = wA + wB, LSE = m + log(sum), and per element
///           O = (wA * O_a + wB * O_b) / sum, all in fp32 (std::exp,
///           std::log, no FMA), rounded once to out's type.
struct MergeRow {
  enum Kind : uint8_t { kBoth, kOnlyA, kOnlyB, kEmpty, kNaN };
  Kind kind = kEmpty;
  float wA = 0.0f, wB = 0.0f, sum = 0.0f; ///< kBoth only
  float lse = 0.0f;                       ///< the merged LSE
};
MergeRow mergeRow(float lseA, float lseB);

/// Checks three states for mergeStates; messages use the C API's names
/// (a.o.shape[1], b.lse, out.lse_strides[2], ...). Rules: a, b and out have
/// the same shape (every dimension >= 0); O and LSE pointers non-null
/// (out.lse may be null), aligned to their element size; strides >= 0 and
/// o strides[3] == 1; out's O and LSE views never overlap themselves
/// (each dimension's stride at least the extent of those inside it); out.o
/// is either exactly a.o or b.o (same data, type and strides: merging in
/// place) or shares no byte with them, and likewise out.lse with a.lse and
/// b.lse; out's O and LSE share no byte with any other view. Overlap is
/// judged by address ranges (first to last byte a view can touch).
Status validateMergeStates(const AttentionState &a, const AttentionState &b,
                           const AttentionState &out);

/// out = merge(a, b), row by row as mergeRow says (docs/merge-states.md).
/// Each row reads its inputs before writing, so in-place merging (out.o ==
/// a.o, out.lse == a.lse) is exact. Validates first; nothing is written on
/// error. Results do not depend on numThreads (0 = one per hardware thread).
Status mergeStates(const AttentionState &a, const AttentionState &b,
                   const AttentionState &out, int numThreads = 0);

} // namespace fp::ref

#endif // FLASHPREFILL_REFERENCE_H
