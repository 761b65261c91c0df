//===- FPOps.cpp - fp dialect operation verifiers ---------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Every diagnostic names the operand or attribute and the expected value,
// because users read them to fix shapes coming from an engine.
//
//===----------------------------------------------------------------------===//
#include "fp/Dialect/FPDialect.h"
#include "fp/Dialect/TileRules.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>
#include <cstdint>
#include <limits>

using namespace mlir;
using namespace mlir::fp;

//===----------------------------------------------------------------------===//
// Shape helpers
//===----------------------------------------------------------------------===//

namespace {

/// True when two dims may be equal at run time.
bool compatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

std::string dimText(int64_t dim) {
  return ShapedType::isDynamic(dim) ? std::string("?") : std::to_string(dim);
}

/// Kernels index heads with 32-bit integers.
constexpr int64_t kMaxHeads = std::numeric_limits<int32_t>::max();

/// Verifies a static head count (dim `dim` of operand `name`).
LogicalResult checkHeadCount(Operation *op, StringRef name, int64_t heads,
                             int dim) {
  if (heads < 1 || heads > kMaxHeads)
    return op->emitOpError()
           << "'" << name << "': expected a head count (dim " << dim
           << ") in [1, " << kMaxHeads << "], got " << heads;
  return success();
}

/// Static facts of a `[b, s, h, d]` token tensor (queries, keys, values).
struct TokenShape {
  int64_t batch, seq, heads, headDim;
  Type elementType;
};

/// Static facts of a `[b, h, nb, d]` pooled tensor.
struct PooledShape {
  int64_t batch, heads, numBlocks, headDim;
  Type elementType;
};

/// Verifies that `value` (operand or result `name` of `op`) is a rank-4
/// token tensor with static heads and head dim and a bf16/f16 element type.
FailureOr<TokenShape> getTokenShape(Operation *op, StringRef name,
                                    Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getRank() != 4)
    return op->emitOpError()
           << "'" << name << "': expected rank 4 [b, s, h, d], got " << type;
  TokenShape shape{type.getDimSize(0), type.getDimSize(1), type.getDimSize(2),
                   type.getDimSize(3), type.getElementType()};
  if (ShapedType::isDynamic(shape.heads))
    return op->emitOpError() << "'" << name
                             << "': expected a static head count (dim 2), "
                                "got ?";
  if (failed(checkHeadCount(op, name, shape.heads, 2)))
    return failure();
  if (ShapedType::isDynamic(shape.headDim))
    return op->emitOpError()
           << "'" << name << "': expected a static head dim (dim 3), got ?";
  if (shape.headDim % 16 != 0 || shape.headDim < 16 || shape.headDim > 256)
    return op->emitOpError() << "'" << name
                             << "': expected a head dim that is a multiple "
                                "of 16 in [16, 256], got "
                             << shape.headDim;
  if (!shape.elementType.isBF16() && !shape.elementType.isF16())
    return op->emitOpError()
           << "'" << name << "': expected element type bf16 or f16, got "
           << shape.elementType;
  return shape;
}

/// Verifies a rank-4 `[b, h, nb, d]` pooled tensor.
FailureOr<PooledShape> getPooledShape(Operation *op, StringRef name,
                                      Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getRank() != 4)
    return op->emitOpError()
           << "'" << name << "': expected rank 4 [b, h, nb, d], got " << type;
  PooledShape shape{type.getDimSize(0), type.getDimSize(1), type.getDimSize(2),
                    type.getDimSize(3), type.getElementType()};
  if (ShapedType::isDynamic(shape.heads) ||
      ShapedType::isDynamic(shape.headDim))
    return op->emitOpError() << "'" << name
                             << "': expected static heads (dim 1) and head "
                                "dim (dim 3), got "
                             << type;
  if (failed(checkHeadCount(op, name, shape.heads, 1)))
    return failure();
  if (!shape.elementType.isBF16() && !shape.elementType.isF16())
    return op->emitOpError()
           << "'" << name << "': expected element type bf16 or f16, got "
           << shape.elementType;
  return shape;
}

/// Verifies that `value` is a rank-`rank` tensor of `elementType` whose dims
/// are compatible with `dims` (`?` in `dims` accepts anything).
LogicalResult checkTensor(Operation *op, StringRef name, Value value,
                          ArrayRef<int64_t> dims, Type elementType,
                          StringRef layout) {
  auto type = cast<RankedTensorType>(value.getType());
  auto expected = [&]() {
    std::string text = "tensor<";
    for (int64_t dim : dims)
      text += dimText(dim) + "x";
    llvm::raw_string_ostream os(text);
    os << elementType << ">";
    return text;
  };
  if (type.getRank() != static_cast<int64_t>(dims.size()) ||
      type.getElementType() != elementType ||
      !llvm::all_of(llvm::zip(type.getShape(), dims), [](auto pair) {
        return compatible(std::get<0>(pair), std::get<1>(pair));
      }))
    return op->emitOpError() << "'" << name << "': expected " << expected()
                             << " " << layout << ", got " << type;
  return success();
}

LogicalResult checkBlockSize(Operation *op, int64_t blockSize) {
  if (blockSize < 16 || blockSize > 256 || !llvm::isPowerOf2_64(blockSize))
    return op->emitOpError() << "block_size: expected a power of two in "
                                "[16, 256], got "
                             << blockSize;
  return success();
}

/// The softmax scale, when given, must be a number the kernels can use.
LogicalResult checkScale(Operation *op, FloatAttr scale) {
  if (scale && !std::isfinite(scale.getValueAsDouble()))
    return op->emitOpError()
           << "scale: expected a finite value, got "
           << formatFloat(static_cast<float>(scale.getValueAsDouble()));
  return success();
}

/// Reports a tile rule (fp/Dialect/TileRules.h) that fails for this op.
LogicalResult checkTileRule(Operation *op, StringRef attribute,
                            const std::string &problem) {
  if (problem.empty())
    return success();
  return op->emitOpError() << attribute << " " << problem;
}

/// Blocks of `blockSize` tokens covering `seq` tokens (`?` when dynamic).
int64_t numBlocks(int64_t seq, int64_t blockSize) {
  return ShapedType::isDynamic(seq) ? ShapedType::kDynamic
                                    : llvm::divideCeil(seq, blockSize);
}

LogicalResult checkGroup(Operation *op, int64_t qHeads, int64_t kvHeads) {
  if (kvHeads <= 0 || qHeads % kvHeads != 0)
    return op->emitOpError()
           << "expected query heads (" << qHeads
           << ") to be a multiple of key/value heads (" << kvHeads << ")";
  return success();
}

LogicalResult checkSameElementType(Operation *op, StringRef name, Type actual,
                                   Type expected) {
  if (actual != expected)
    return op->emitOpError() << "'" << name << "': expected element type "
                             << expected << " (same as 'q'), got " << actual;
  return success();
}

/// Checks the mask pair `counts [b, h_q, nb]`, `ids [b, h_q, nb, nb]`.
LogicalResult checkMask(Operation *op, Value counts, Value ids, int64_t batch,
                        int64_t qHeads, int64_t nb) {
  auto i32 = IntegerType::get(op->getContext(), 32);
  if (failed(checkTensor(op, "counts", counts, {batch, qHeads, nb}, i32,
                         "[b, h_q, nb]")) ||
      failed(checkTensor(op, "ids", ids, {batch, qHeads, nb, nb}, i32,
                         "[b, h_q, nb, nb]")))
    return failure();
  return success();
}

/// Checks q, k, v of the attention-shaped ops (prefill, masked_attention) and
/// their `out`/`lse` results; returns the query shape.
FailureOr<TokenShape> checkAttentionOperands(Operation *op, Value q, Value k,
                                             Value v, Value out, Value lse) {
  FailureOr<TokenShape> qs = getTokenShape(op, "q", q);
  if (failed(qs))
    return failure();
  FailureOr<TokenShape> ks = getTokenShape(op, "k", k);
  if (failed(ks))
    return failure();
  FailureOr<TokenShape> vs = getTokenShape(op, "v", v);
  if (failed(vs))
    return failure();
  if (failed(checkSameElementType(op, "k", ks->elementType, qs->elementType)) ||
      failed(checkSameElementType(op, "v", vs->elementType, qs->elementType)))
    return failure();
  if (ks->headDim != qs->headDim)
    return op->emitOpError() << "'k': expected head dim " << qs->headDim
                             << " (same as 'q'), got " << ks->headDim;
  if (vs->headDim != qs->headDim)
    return op->emitOpError() << "'v': expected head dim " << qs->headDim
                             << " (same as 'q'; d_v != d is not supported "
                                "yet), got "
                             << vs->headDim;
  if (vs->heads != ks->heads)
    return op->emitOpError() << "'v': expected " << ks->heads
                             << " heads (same as 'k'), got " << vs->heads;
  if (!compatible(ks->batch, qs->batch) || !compatible(vs->batch, qs->batch))
    return op->emitOpError() << "'k' and 'v': expected batch "
                             << dimText(qs->batch) << " (same as 'q')";
  if (!compatible(vs->seq, ks->seq))
    return op->emitOpError()
           << "'v': expected " << dimText(ks->seq)
           << " tokens (same as 'k'), got " << dimText(vs->seq);
  if (failed(checkGroup(op, qs->heads, ks->heads)))
    return failure();
  if (failed(checkTensor(op, "out", out,
                         {qs->batch, qs->seq, qs->heads, qs->headDim},
                         qs->elementType, "[b, s_q, h_q, d] (like 'q')")) ||
      failed(checkTensor(op, "lse", lse, {qs->batch, qs->heads, qs->seq},
                         Float32Type::get(op->getContext()), "[b, h_q, s_q]")))
    return failure();
  return *qs;
}

/// Checks the operands and result of the scoring ops (block_score and
/// pattern_discovery); returns {batch, h_q, nb}.
FailureOr<std::array<int64_t, 3>> checkScoreOperands(Operation *op, Value query,
                                                     Value kbar, QueryKind kind,
                                                     int64_t blockSize) {
  FailureOr<PooledShape> ks = getPooledShape(op, "kbar", kbar);
  if (failed(ks))
    return failure();
  int64_t batch, qHeads, nb, headDim;
  Type elementType;
  if (kind == QueryKind::Full) {
    FailureOr<TokenShape> qs = getTokenShape(op, "query", query);
    if (failed(qs))
      return failure();
    batch = qs->batch, qHeads = qs->heads, headDim = qs->headDim;
    nb = numBlocks(qs->seq, blockSize), elementType = qs->elementType;
  } else {
    FailureOr<PooledShape> qs = getPooledShape(op, "query", query);
    if (failed(qs))
      return failure();
    batch = qs->batch, qHeads = qs->heads, headDim = qs->headDim;
    nb = qs->numBlocks, elementType = qs->elementType;
  }
  if (ks->elementType != elementType)
    return op->emitOpError() << "'kbar': expected element type " << elementType
                             << " (same as 'query'), got " << ks->elementType;
  if (ks->headDim != headDim)
    return op->emitOpError() << "'kbar': expected head dim " << headDim
                             << " (same as 'query'), got " << ks->headDim;
  if (!compatible(ks->batch, batch))
    return op->emitOpError()
           << "'kbar': expected batch " << dimText(batch)
           << " (same as 'query'), got " << dimText(ks->batch);
  if (!compatible(ks->numBlocks, nb))
    return op->emitOpError() << "'kbar': expected " << dimText(nb)
                             << " blocks (ceil(s / block_size) of 'query'), "
                                "got "
                             << dimText(ks->numBlocks);
  if (failed(checkGroup(op, qHeads, ks->heads)))
    return failure();
  if (ShapedType::isDynamic(nb))
    nb = ks->numBlocks;
  return std::array<int64_t, 3>{batch, qHeads, nb};
}

//===----------------------------------------------------------------------===//
// Varlen shape helpers (docs/semantics.md section 2)
//===----------------------------------------------------------------------===//

/// Static facts of a varlen token tensor: q / out `[total_q, h, d]`, packed
/// K/V `[total_k, h, d]` or paged K/V `[num_pages, page_size, h, d]`.
struct VarlenTokens {
  bool paged;
  int64_t rows, pageSize, heads, headDim; ///< rows: total or pages
  Type elementType;
};

/// Verifies a varlen token tensor; `allowPaged` for K and V.
FailureOr<VarlenTokens> getVarlenTokens(Operation *op, StringRef name,
                                        Value value, bool allowPaged) {
  auto type = cast<RankedTensorType>(value.getType());
  int64_t rank = type.getRank();
  if (rank != 3 && !(allowPaged && rank == 4))
    return op->emitOpError()
           << "'" << name << "': expected "
           << (allowPaged ? "rank 3 [total_k, h, d] (packed) or rank 4 "
                            "[num_pages, page_size, h, d] (paged)"
                          : "rank 3 [total_q, h, d]")
           << ", got " << type;
  VarlenTokens t{rank == 4, type.getDimSize(0),
                 rank == 4 ? type.getDimSize(1) : 1,
                 type.getDimSize(rank - 2), type.getDimSize(rank - 1),
                 type.getElementType()};
  int headsDim = int(rank - 2), dimDim = int(rank - 1);
  if (ShapedType::isDynamic(t.heads))
    return op->emitOpError() << "'" << name
                             << "': expected a static head count (dim "
                             << headsDim << "), got ?";
  if (failed(checkHeadCount(op, name, t.heads, headsDim)))
    return failure();
  if (ShapedType::isDynamic(t.headDim))
    return op->emitOpError() << "'" << name
                             << "': expected a static head dim (dim " << dimDim
                             << "), got ?";
  if (t.headDim % 16 != 0 || t.headDim < 16 || t.headDim > 256)
    return op->emitOpError() << "'" << name
                             << "': expected a head dim that is a multiple "
                                "of 16 in [16, 256], got "
                             << t.headDim;
  if (t.paged && !ShapedType::isDynamic(t.pageSize) &&
      (t.pageSize < 1 || t.pageSize > 256 ||
       !llvm::isPowerOf2_64(t.pageSize)))
    return op->emitOpError() << "'" << name
                             << "': expected a page size (dim 1) that is a "
                                "power of two in [1, 256], got "
                             << t.pageSize;
  if (!t.elementType.isBF16() && !t.elementType.isF16())
    return op->emitOpError()
           << "'" << name << "': expected element type bf16 or f16, got "
           << t.elementType;
  return t;
}

/// Verifies the trailing `sequences` operands for the K/V layout (packed:
/// cu_seqlens_q, cu_seqlens_k; paged: cu_seqlens_q, page_table, k_lens);
/// returns the batch b (`?` when dynamic).
FailureOr<int64_t> checkSequences(Operation *op, bool paged,
                                  ValueRange sequences) {
  const size_t expected = paged ? 3 : 2;
  if (sequences.size() != expected)
    return op->emitOpError()
           << "'sequences': expected " << expected << " operands ("
           << (paged ? "cu_seqlens_q, page_table, k_lens for paged K/V"
                     : "cu_seqlens_q, cu_seqlens_k for packed K/V")
           << "), got " << sequences.size();
  auto i32 = IntegerType::get(op->getContext(), 32);
  if (failed(checkTensor(op, "cu_seqlens_q", sequences[0],
                         {ShapedType::kDynamic}, i32, "[b + 1]")))
    return failure();
  int64_t offsets =
      cast<RankedTensorType>(sequences[0].getType()).getDimSize(0);
  if (!ShapedType::isDynamic(offsets) && offsets < 2)
    return op->emitOpError() << "'cu_seqlens_q': expected b + 1 >= 2 "
                                "offsets (at least one sequence), got "
                             << offsets;
  int64_t batch = ShapedType::isDynamic(offsets) ? offsets : offsets - 1;
  if (!paged) {
    if (failed(checkTensor(op, "cu_seqlens_k", sequences[1], {offsets}, i32,
                           "[b + 1] (like 'cu_seqlens_q')")))
      return failure();
    return batch;
  }
  if (failed(checkTensor(op, "page_table", sequences[1],
                         {batch, ShapedType::kDynamic}, i32,
                         "[b, max_pages]")) ||
      failed(checkTensor(op, "k_lens", sequences[2], {batch}, i32, "[b]")))
    return failure();
  return batch;
}

/// Checks q, k, v of the varlen attention-shaped ops (prefill_varlen,
/// varlen_masked_attention) and their `out`/`lse` results; returns q's
/// shape and sets `paged` from k's layout.
FailureOr<VarlenTokens> checkVarlenAttentionOperands(Operation *op, Value q,
                                                     Value k, Value v,
                                                     Value out, Value lse,
                                                     bool &paged) {
  FailureOr<VarlenTokens> qs = getVarlenTokens(op, "q", q, false);
  if (failed(qs))
    return failure();
  FailureOr<VarlenTokens> ks = getVarlenTokens(op, "k", k, true);
  if (failed(ks))
    return failure();
  FailureOr<VarlenTokens> vs = getVarlenTokens(op, "v", v, true);
  if (failed(vs))
    return failure();
  if (failed(checkSameElementType(op, "k", ks->elementType, qs->elementType)) ||
      failed(checkSameElementType(op, "v", vs->elementType, qs->elementType)))
    return failure();
  if (ks->headDim != qs->headDim)
    return op->emitOpError() << "'k': expected head dim " << qs->headDim
                             << " (same as 'q'), got " << ks->headDim;
  if (vs->headDim != qs->headDim)
    return op->emitOpError() << "'v': expected head dim " << qs->headDim
                             << " (same as 'q'; d_v != d is not supported "
                                "yet), got "
                             << vs->headDim;
  if (vs->heads != ks->heads)
    return op->emitOpError() << "'v': expected " << ks->heads
                             << " heads (same as 'k'), got " << vs->heads;
  if (vs->paged != ks->paged)
    return op->emitOpError() << "'v': expected the layout of 'k' ("
                             << (ks->paged ? "paged, rank 4" : "packed, rank 3")
                             << "), got "
                             << (vs->paged ? "paged, rank 4" : "packed, rank 3");
  if (!compatible(vs->rows, ks->rows) ||
      !compatible(vs->pageSize, ks->pageSize))
    return op->emitOpError() << "'v': expected the "
                             << (ks->paged ? "pages and page size" : "rows")
                             << " of 'k'";
  if (failed(checkGroup(op, qs->heads, ks->heads)))
    return failure();
  if (failed(checkTensor(op, "out", out, {qs->rows, qs->heads, qs->headDim},
                         qs->elementType, "[total_q, h_q, d] (like 'q')")) ||
      failed(checkTensor(op, "lse", lse, {qs->heads, qs->rows},
                         Float32Type::get(op->getContext()),
                         "[h_q, total_q]")))
    return failure();
  paged = ks->paged;
  return *qs;
}

/// Checks the compact mask pair `counts [num_rows, h_q]`,
/// `ids [num_rows, h_q, max_key_blocks]`.
LogicalResult checkVarlenMask(Operation *op, Value counts, Value ids,
                              int64_t qHeads, int64_t maxKeyBlocks) {
  auto i32 = IntegerType::get(op->getContext(), 32);
  int64_t rows = cast<RankedTensorType>(counts.getType()).getRank() == 2
                     ? cast<RankedTensorType>(counts.getType()).getDimSize(0)
                     : ShapedType::kDynamic;
  if (failed(checkTensor(op, "counts", counts,
                         {ShapedType::kDynamic, qHeads}, i32,
                         "[num_rows, h_q]")) ||
      failed(checkTensor(op, "ids", ids, {rows, qHeads, maxKeyBlocks}, i32,
                         "[num_rows, h_q, max_key_blocks] (rows of "
                         "'counts')")))
    return failure();
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//
// Verifiers
//===----------------------------------------------------------------------===//

LogicalResult PrefillOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())) ||
      failed(checkScale(*this, getScaleAttr())))
    return failure();
  FailureOr<TokenShape> qs =
      checkAttentionOperands(*this, getQ(), getK(), getV(), getOut(), getLse());
  if (failed(qs))
    return failure();
  // Checked here rather than left to the expanded ops, whose square
  // [nb, nb] score matrix cannot express it: the user sees it on the op
  // they wrote.
  int64_t sk = cast<RankedTensorType>(getK().getType()).getDimSize(1);
  if (!ShapedType::isDynamic(qs->seq) && !ShapedType::isDynamic(sk) &&
      qs->seq != sk)
    return emitOpError() << "s_q = " << qs->seq << " and s_k = " << sk
                         << " is unsupported: only s_q == s_k (prefill) is "
                            "implemented";
  return success();
}

LogicalResult BlockPoolOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())))
    return failure();
  FailureOr<TokenShape> in = getTokenShape(*this, "input", getInput());
  if (failed(in))
    return failure();
  return checkTensor(
      *this, "pooled", getPooled(),
      {in->batch, in->heads, numBlocks(in->seq, getBlockSize()), in->headDim},
      in->elementType, "[b, h, ceil(s / block_size), d]");
}

LogicalResult BlockScoreOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())) ||
      failed(checkScale(*this, getScaleAttr())))
    return failure();
  auto dims = checkScoreOperands(*this, getQuery(), getKbar(), getQueryKind(),
                                 getBlockSize());
  if (failed(dims))
    return failure();
  auto [batch, qHeads, nb] = *dims;
  return checkTensor(*this, "scores", getScores(), {batch, qHeads, nb, nb},
                     Float32Type::get(getContext()), "[b, h_q, nb, nb]");
}

LogicalResult ThresholdMaskOp::verify() {
  auto type = cast<RankedTensorType>(getScores().getType());
  if (type.getRank() != 4 || !type.getElementType().isF32() ||
      !compatible(type.getDimSize(2), type.getDimSize(3)))
    return emitOpError() << "'scores': expected tensor<?x?x?x?xf32> "
                            "[b, h_q, nb, nb], got "
                         << type;
  int64_t nb = ShapedType::isDynamic(type.getDimSize(2)) ? type.getDimSize(3)
                                                         : type.getDimSize(2);
  return checkMask(*this, getCounts(), getIds(), type.getDimSize(0),
                   type.getDimSize(1), nb);
}

LogicalResult PatternDiscoveryOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())) ||
      failed(checkScale(*this, getScaleAttr())))
    return failure();
  if (DiscoveryTileAttr tile = getTileAttr())
    if (failed(checkTileRule(
            *this, "#fp.discovery_tile",
            discoveryTileBlockProblem(getBlockSize(), tile.getWarps()))))
      return failure();
  auto dims = checkScoreOperands(*this, getQuery(), getKbar(), getQueryKind(),
                                 getBlockSize());
  if (failed(dims))
    return failure();
  auto [batch, qHeads, nb] = *dims;
  if (failed(checkMask(*this, getCounts(), getIds(), batch, qHeads, nb)))
    return failure();
  if (Value scores = getScores())
    return checkTensor(*this, "scores", scores, {batch, qHeads, nb, nb},
                       Float32Type::get(getContext()), "[b, h_q, nb, nb]");
  return success();
}

LogicalResult MaskedAttentionOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())) ||
      failed(checkScale(*this, getScaleAttr())))
    return failure();
  if (AttentionTileAttr tile = getTileAttr())
    if (failed(checkTileRule(*this, "#fp.attention_tile",
                             attentionTileBlockProblem(getBlockSize(),
                                                       tile.getBlockM(),
                                                       tile.getBlockN()))))
      return failure();
  FailureOr<TokenShape> qs =
      checkAttentionOperands(*this, getQ(), getK(), getV(), getOut(), getLse());
  if (failed(qs))
    return failure();
  return checkMask(*this, getCounts(), getIds(), qs->batch, qs->heads,
                   numBlocks(qs->seq, getBlockSize()));
}

LogicalResult PrefillVarlenOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())) ||
      failed(checkScale(*this, getScaleAttr())))
    return failure();
  bool paged = false;
  if (failed(checkVarlenAttentionOperands(*this, getQ(), getK(), getV(),
                                          getOut(), getLse(), paged)))
    return failure();
  return checkSequences(*this, paged, getSequences());
}

LogicalResult VarlenBlockPoolOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())))
    return failure();
  FailureOr<VarlenTokens> ks = getVarlenTokens(*this, "k", getK(), true);
  if (failed(ks))
    return failure();
  FailureOr<int64_t> batch = checkSequences(*this, ks->paged, getSequences());
  if (failed(batch))
    return failure();
  return checkTensor(*this, "pooled", getPooled(),
                     {*batch, ks->heads, ShapedType::kDynamic, ks->headDim},
                     ks->elementType, "[b, h_kv, max_key_blocks, d]");
}

LogicalResult VarlenQueryPoolOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())))
    return failure();
  FailureOr<VarlenTokens> qs = getVarlenTokens(*this, "q", getQ(), false);
  if (failed(qs))
    return failure();
  // No K operand here: the operand count says the layout.
  if (failed(checkSequences(*this, getSequences().size() == 3, getSequences())))
    return failure();
  return checkTensor(*this, "pooled", getPooled(),
                     {ShapedType::kDynamic, qs->heads, qs->headDim},
                     qs->elementType, "[num_rows, h_q, d]");
}

LogicalResult VarlenPatternDiscoveryOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())) ||
      failed(checkScale(*this, getScaleAttr())))
    return failure();
  if (DiscoveryTileAttr tile = getTileAttr())
    if (failed(checkTileRule(
            *this, "#fp.discovery_tile",
            discoveryTileBlockProblem(getBlockSize(), tile.getWarps()))))
      return failure();
  FailureOr<VarlenTokens> qs = getVarlenTokens(*this, "query", getQuery(),
                                               false);
  if (failed(qs))
    return failure();
  FailureOr<PooledShape> ks = getPooledShape(*this, "kbar", getKbar());
  if (failed(ks))
    return failure();
  if (ks->elementType != qs->elementType)
    return emitOpError() << "'kbar': expected element type "
                         << qs->elementType << " (same as 'query'), got "
                         << ks->elementType;
  if (ks->headDim != qs->headDim)
    return emitOpError() << "'kbar': expected head dim " << qs->headDim
                         << " (same as 'query'), got " << ks->headDim;
  if (failed(checkGroup(*this, qs->heads, ks->heads)))
    return failure();
  // No K operand here: the operand count says the layout.
  FailureOr<int64_t> batch =
      checkSequences(*this, getSequences().size() == 3, getSequences());
  if (failed(batch))
    return failure();
  if (!compatible(ks->batch, *batch))
    return emitOpError() << "'kbar': expected batch " << dimText(*batch)
                         << " (from 'cu_seqlens_q'), got "
                         << dimText(ks->batch);
  return checkVarlenMask(*this, getCounts(), getIds(), qs->heads,
                         ks->numBlocks);
}

LogicalResult VarlenMaskedAttentionOp::verify() {
  if (failed(checkBlockSize(*this, getBlockSize())) ||
      failed(checkScale(*this, getScaleAttr())))
    return failure();
  if (AttentionTileAttr tile = getTileAttr())
    if (failed(checkTileRule(*this, "#fp.attention_tile",
                             attentionTileBlockProblem(getBlockSize(),
                                                       tile.getBlockM(),
                                                       tile.getBlockN()))))
      return failure();
  bool paged = false;
  FailureOr<VarlenTokens> qs = checkVarlenAttentionOperands(
      *this, getQ(), getK(), getV(), getOut(), getLse(), paged);
  if (failed(qs) || failed(checkSequences(*this, paged, getSequences())))
    return failure();
  return checkVarlenMask(*this, getCounts(), getIds(), qs->heads,
                         ShapedType::kDynamic);
}

#define GET_OP_CLASSES
#include "fp/Dialect/FPOps.cpp.inc"
