//===- FusePatternDiscovery.cpp - Fuse scoring and selection ----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/Passes.h"
#include "fp/Dialect/FPDialect.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::fp {
#define GEN_PASS_DEF_FPFUSEPATTERNDISCOVERY
#include "fp/Compiler/Passes.h.inc"
} // namespace mlir::fp

using namespace mlir;
using namespace mlir::fp;

namespace {

/// threshold_mask(block_score(q, kbar)) -> pattern_discovery(q, kbar).
struct FuseScoreAndThreshold : OpRewritePattern<ThresholdMaskOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(ThresholdMaskOp op,
                                PatternRewriter &rewriter) const override {
    auto score = op.getScores().getDefiningOp<BlockScoreOp>();
    if (!score)
      return rewriter.notifyMatchFailure(op, "scores not from fp.block_score");
    // Other users of the scores still need the matrix, so the fused kernel
    // must write it; otherwise it stays on chip.
    bool writeScores = !score.getScores().hasOneUse();
    Type scoresType = writeScores ? score.getScores().getType() : Type();
    auto fused = PatternDiscoveryOp::create(
        rewriter, op.getLoc(), op.getCounts().getType(), op.getIds().getType(),
        scoresType, score.getQuery(), score.getKbar(), score.getBlockSize(),
        op.getThreshold(), score.getQueryKind(), score.getCausal(),
        score.getScaleAttr(), /*tile=*/nullptr);
    rewriter.replaceOp(op, {fused.getCounts(), fused.getIds()});
    if (writeScores)
      rewriter.replaceAllUsesWith(score.getScores(), fused.getScores());
    if (score->use_empty())
      rewriter.eraseOp(score);
    return success();
  }
};

struct FPFusePatternDiscoveryPass
    : mlir::fp::impl::FPFusePatternDiscoveryBase<FPFusePatternDiscoveryPass> {
  using FPFusePatternDiscoveryBase::FPFusePatternDiscoveryBase;

  void runOnOperation() final {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseScoreAndThreshold>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
