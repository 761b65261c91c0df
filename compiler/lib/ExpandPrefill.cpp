//===- ExpandPrefill.cpp - Split fp.prefill into its steps ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/Passes.h"
#include "fp/Compiler/Shapes.h"
#include "fp/Dialect/FPDialect.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::fp {
#define GEN_PASS_DEF_FPEXPANDPREFILL
#include "fp/Compiler/Passes.h.inc"
} // namespace mlir::fp

using namespace mlir;
using namespace mlir::fp;

namespace {

struct ExpandPrefillPattern : OpRewritePattern<PrefillOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(PrefillOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    int64_t blockSize = op.getBlockSize();
    auto qType = cast<RankedTensorType>(op.getQ().getType());
    auto kType = cast<RankedTensorType>(op.getK().getType());

    // 1. Pool keys (and queries for the pooled-query estimator).
    auto kbar = BlockPoolOp::create(rewriter, loc, pooledType(kType, blockSize),
                                    op.getK(), blockSize,
                                    /*tile=*/nullptr);
    Value query = op.getQ();
    if (op.getQueryKind() == QueryKind::Pooled)
      query = BlockPoolOp::create(rewriter, loc, pooledType(qType, blockSize),
                                  op.getQ(), blockSize,
                                  /*tile=*/nullptr);

    // 2. Score every key block for every query block.
    MaskTypes mask = maskTypes(qType, blockSize);
    auto scores = BlockScoreOp::create(rewriter, loc, mask.scores, query, kbar,
                                       blockSize, op.getQueryKind(),
                                       op.getCausal(), op.getScaleAttr());

    // 3. Keep blocks and compact them into the padded-rows mask.
    auto keep = ThresholdMaskOp::create(rewriter, loc, mask.counts, mask.ids,
                                        scores, op.getThreshold());

    // 4. Attend over the kept blocks.
    rewriter.replaceOpWithNewOp<MaskedAttentionOp>(
        op, op.getOut().getType(), op.getLse().getType(), op.getQ(), op.getK(),
        op.getV(), keep.getCounts(), keep.getIds(), blockSize, op.getCausal(),
        op.getScaleAttr(), /*tile=*/nullptr);
    return success();
  }
};

/// fp.prefill_varlen -> varlen pool, fused discovery, varlen attention.
/// Varlen scoring has no unfused form: the compact mask is written by
/// discovery directly (scores would be [num_rows, h_q, max_key_blocks]).
struct ExpandPrefillVarlenPattern : OpRewritePattern<PrefillVarlenOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(PrefillVarlenOp op,
                                PatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    int64_t blockSize = op.getBlockSize();
    auto qType = cast<RankedTensorType>(op.getQ().getType());
    auto kType = cast<RankedTensorType>(op.getK().getType());
    ValueRange sequences = op.getSequences();
    auto kbar = VarlenBlockPoolOp::create(
        rewriter, loc,
        varlenPooledType(kType,
                         cast<RankedTensorType>(sequences[0].getType())),
        op.getK(), sequences, blockSize, /*tile=*/nullptr);
    // Pooled queries: one mean per compact-mask row, [num_rows, h_q, d].
    Value query = op.getQ();
    if (op.getQueryKind() == QueryKind::Pooled)
      query = VarlenQueryPoolOp::create(
          rewriter, loc,
          RankedTensorType::get(
              {ShapedType::kDynamic, qType.getDimSize(1), qType.getDimSize(2)},
              qType.getElementType()),
          op.getQ(), sequences, blockSize, /*tile=*/nullptr);
    VarlenMaskTypes mask = varlenMaskTypes(qType);
    auto discovery = VarlenPatternDiscoveryOp::create(
        rewriter, loc, mask.counts, mask.ids, query, kbar, sequences,
        blockSize, op.getThreshold(), op.getQueryKind(), op.getCausal(),
        op.getScaleAttr(), /*tile=*/nullptr);
    rewriter.replaceOpWithNewOp<VarlenMaskedAttentionOp>(
        op, op.getOut().getType(), op.getLse().getType(), op.getQ(), op.getK(),
        op.getV(), discovery.getCounts(), discovery.getIds(), sequences,
        blockSize, op.getCausal(), op.getScaleAttr(), /*tile=*/nullptr);
    return success();
  }
};

struct FPExpandPrefillPass
    : mlir::fp::impl::FPExpandPrefillBase<FPExpandPrefillPass> {
  void runOnOperation() final {
    RewritePatternSet patterns(&getContext());
    patterns.add<ExpandPrefillPattern, ExpandPrefillVarlenPattern>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
