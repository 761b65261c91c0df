//===- SelectTiles.cpp - Choose kernel tiles for the target -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Last gate before code generation: everything the verifiers accept but the
// device templates cannot build is rejected here with a diagnostic naming
// the attribute or operand and the value codegen supports.
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/Passes.h"
#include "fp/Compiler/TileConfig.h"
#include "fp/Compiler/TuningDatabase.h"
#include "fp/Dialect/FPDialect.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::fp {
#define GEN_PASS_DEF_FPSELECTTILES
#include "fp/Compiler/Passes.h.inc"
} // namespace mlir::fp

using namespace mlir;
using namespace mlir::fp;

namespace {

std::string listText(ArrayRef<int64_t> values) {
  return llvm::join(
      llvm::map_range(values, [](int64_t v) { return std::to_string(v); }),
      ", ");
}

/// The kernel key of an op reading queries of type `query` (token or pooled
/// layout) and keys/pooled keys with `kvHeads` heads.
KernelKey makeKey(const TargetArch &arch, RankedTensorType query,
                  int64_t qHeads, int64_t kvHeads, int64_t blockSize) {
  return {arch.computeCapability, query.getDimSize(3), blockSize,
          query.getElementType().getIntOrFloatBitWidth() / 8, qHeads / kvHeads,
          arch.attentionMainloop};
}

/// The kernel key of a varlen op (docs/semantics.md section 2): its
/// kernels run the mma.sync mainloop on every arch. On sm_90a the varlen
/// path uses the mma.sync kernels for now: the wgmma/TMA mainloop reads
/// dense [b, s, h, d] tensors through tensor maps, and paged K/V would need
/// a gather there. So varlen ops get the sm_80-path tiles everywhere, and
/// tuning databases and forced tiles (measured for the s_q == s_k kernels)
/// do not apply to them.
KernelKey makeVarlenKey(const TargetArch &arch, RankedTensorType tokens,
                        int64_t qHeads, int64_t kvHeads, int64_t blockSize) {
  return {arch.computeCapability, tokens.getDimSize(tokens.getRank() - 1),
          blockSize, tokens.getElementType().getIntOrFloatBitWidth() / 8,
          qHeads / kvHeads, /*attentionMainloop=*/80};
}

/// Codegen limits shared by every kernel op.
LogicalResult checkBuildable(Operation *op, const KernelKey &key, bool causal) {
  if (!llvm::is_contained(supportedHeadDims(), key.headDim))
    return op->emitOpError() << "head dim " << key.headDim
                             << " is unsupported by codegen: expected one of "
                             << listText(supportedHeadDims());
  if (!llvm::is_contained(supportedBlockSizes(), key.blockSize))
    return op->emitOpError() << "block_size " << key.blockSize
                             << " is unsupported by codegen: expected one of "
                             << listText(supportedBlockSizes());
  if (!causal)
    return op->emitOpError()
           << "causal = false is unsupported: only causal prefill "
              "(s_q == s_k) is implemented";
  return success();
}

LogicalResult reportTile(Operation *op, StringRef kind,
                         const std::string &problem) {
  if (problem.empty())
    return success();
  return op->emitOpError() << "cannot build " << kind << ": " << problem;
}

struct FPSelectTilesPass
    : mlir::fp::impl::FPSelectTilesBase<FPSelectTilesPass> {
  using FPSelectTilesBase::FPSelectTilesBase;

  ::fp::tuning::TuningDatabase database;

  void runOnOperation() final {
    ModuleOp module = getOperation();
    std::optional<TargetArch> target = parseTargetArch(arch);
    if (!target) {
      module.emitError() << "arch: expected one of " << supportedArchList()
                         << ", got '" << arch << "'";
      return signalPassFailure();
    }
    module->setAttr("fp.arch", StringAttr::get(&getContext(), target->name));
    if (!tuningDb.empty()) {
      database = ::fp::tuning::TuningDatabase::load(
          tuningDb, ::fp::tuning::TuningDatabase::IfMissing::kWarn);
      if (!database.warning().empty())
        module.emitWarning() << database.warning();
    }
    for (auto [text, fields, name] :
         {std::tuple<const std::string &, size_t, const char *>{
              attentionTile, 4, "attention-tile"},
          {discoveryTile, 2, "discovery-tile"}})
      if (!text.empty() && !::fp::tuning::parseConfigText(text, fields)) {
        module.emitError() << name << ": expected " << fields
                           << " positive integers separated by 'x', got '"
                           << text << "'";
        return signalPassFailure();
      }

    WalkResult result = module.walk([&](Operation *op) -> WalkResult {
      return llvm::TypeSwitch<Operation *, LogicalResult>(op)
          .Case<PrefillOp, PrefillVarlenOp>([](Operation *op) {
            return op->emitOpError()
                   << "must be expanded before tile selection (run "
                      "fp-expand-prefill)";
          })
          .Case<BlockScoreOp, ThresholdMaskOp>([](Operation *op) {
            return op->emitOpError()
                   << "must be fused into fp.pattern_discovery before tile "
                      "selection (run fp-fuse-pattern-discovery)";
          })
          .Case<BlockPoolOp>(
              [&](BlockPoolOp op) { return selectPool(op, *target); })
          .Case<PatternDiscoveryOp>([&](PatternDiscoveryOp op) {
            return selectDiscovery(op, *target);
          })
          .Case<MaskedAttentionOp>([&](MaskedAttentionOp op) {
            return selectAttention(op, *target);
          })
          .Case<VarlenBlockPoolOp, VarlenQueryPoolOp>(
              [&](auto op) { return selectVarlenPool(op, *target); })
          .Case<VarlenPatternDiscoveryOp>([&](VarlenPatternDiscoveryOp op) {
            return selectVarlenDiscovery(op, *target);
          })
          .Case<VarlenMaskedAttentionOp>([&](VarlenMaskedAttentionOp op) {
            return selectVarlenAttention(op, *target);
          })
          .Default([](Operation *) { return success(); });
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }

  /// Whether a tunedConfig tile replaces the default: a forced tile always
  /// does (if it cannot build, the check after selection reports the error);
  /// a database tile that cannot build here (e.g. measured with another
  /// mainloop of this arch) is skipped with a warning naming why.
  static bool useTunedTile(Operation *op, const std::string &why, bool forced) {
    if (why.empty() || forced)
      return true;
    op->emitWarning() << "tuning database tile is not buildable here (" << why
                      << "): using the default tile";
    return false;
  }

  /// The tile values for `kernel`: the forced option, else the database's
  /// winner for this key and length bucket, else nullopt (heuristics).
  std::optional<std::vector<int64_t>> tunedConfig(const std::string &kernel,
                                                  const KernelKey &key,
                                                  const TargetArch &target,
                                                  Type element) {
    const std::string &forced =
        kernel == ::fp::tuning::kAttention ? attentionTile : discoveryTile;
    if (!forced.empty())
      return ::fp::tuning::parseConfigText(
          forced, ::fp::tuning::configFields(kernel).size());
    if (lengthBucket <= 0)
      return std::nullopt;
    ::fp::tuning::TuningKey tk{
        target.name,        int(key.headDim), element.isBF16() ? "bf16" : "f16",
        int(key.blockSize), int(key.group),   lengthBucket};
    // The user's measurements first, then the shipped ones.
    if (auto best = database.best(tk, kernel))
      return best->config;
    if (builtinTuning)
      if (auto best = ::fp::tuning::builtinDatabase().best(tk, kernel))
        return best->config;
    return std::nullopt;
  }

  LogicalResult selectPool(BlockPoolOp op, const TargetArch &target) {
    auto input = cast<RankedTensorType>(op.getInput().getType());
    KernelKey key = makeKey(target, input, 1, 1, op.getBlockSize());
    if (failed(checkBuildable(op, key, /*causal=*/true)))
      return failure();
    PoolTile tile = op.getTile() ? PoolTile{op.getTile()->getThreads()}
                                 : defaultPoolTile(key);
    if (failed(reportTile(op, "#fp.pool_tile", checkPoolTile(key, tile))))
      return failure();
    op.setTileAttr(PoolTileAttr::get(op.getContext(), tile.threads));
    return success();
  }

  LogicalResult selectDiscovery(PatternDiscoveryOp op,
                                const TargetArch &target) {
    auto query = cast<RankedTensorType>(op.getQuery().getType());
    auto kbar = cast<RankedTensorType>(op.getKbar().getType());
    int64_t qHeads =
        cast<RankedTensorType>(op.getCounts().getType()).getDimSize(1);
    KernelKey key =
        makeKey(target, query, qHeads, kbar.getDimSize(1), op.getBlockSize());
    if (failed(checkBuildable(op, key, op.getCausal())))
      return failure();
    // A preset attribute wins, then a forced option or tuned winner, then
    // the heuristics.
    DiscoveryTile tile = defaultDiscoveryTile(key);
    if (op.getTile())
      tile = {op.getTile()->getKeyChunk(), op.getTile()->getWarps()};
    else if (auto tuned = tunedConfig(::fp::tuning::kDiscovery, key, target,
                                      query.getElementType())) {
      DiscoveryTile candidate{(*tuned)[0], (*tuned)[1]};
      if (useTunedTile(op, checkDiscoveryTile(key, candidate, target),
                       !discoveryTile.empty()))
        tile = candidate;
    }
    if (failed(reportTile(op, "#fp.discovery_tile",
                          checkDiscoveryTile(key, tile, target))))
      return failure();
    op.setTileAttr(
        DiscoveryTileAttr::get(op.getContext(), tile.keyChunk, tile.warps));
    return success();
  }

  LogicalResult selectAttention(MaskedAttentionOp op,
                                const TargetArch &target) {
    auto q = cast<RankedTensorType>(op.getQ().getType());
    auto k = cast<RankedTensorType>(op.getK().getType());
    KernelKey key =
        makeKey(target, q, q.getDimSize(2), k.getDimSize(2), op.getBlockSize());
    if (failed(checkBuildable(op, key, op.getCausal())))
      return failure();
    int64_t sq = q.getDimSize(1), sk = k.getDimSize(1);
    if (!ShapedType::isDynamic(sq) && !ShapedType::isDynamic(sk) && sq != sk)
      return op.emitOpError() << "s_q = " << sq << " and s_k = " << sk
                              << " is unsupported: only s_q == s_k "
                                 "(prefill) is implemented";
    AttentionTile tile = defaultAttentionTile(key);
    if (op.getTile())
      tile = {op.getTile()->getBlockM(), op.getTile()->getBlockN(),
              op.getTile()->getWarps(), op.getTile()->getStages()};
    else if (auto tuned = tunedConfig(::fp::tuning::kAttention, key, target,
                                      q.getElementType())) {
      AttentionTile candidate{(*tuned)[0], (*tuned)[1], (*tuned)[2],
                              (*tuned)[3]};
      if (useTunedTile(op, checkAttentionTile(key, candidate, target),
                       !attentionTile.empty()))
        tile = candidate;
    }
    if (failed(reportTile(op, "#fp.attention_tile",
                          checkAttentionTile(key, tile, target))))
      return failure();
    op.setTileAttr(AttentionTileAttr::get(
        op.getContext(), tile.blockM, tile.blockN, tile.warps, tile.stages));
    return success();
  }

  // Varlen ops: a preset tile is validated, else the mma.sync default
  // (makeVarlenKey says why no tuning applies).
  /// Key (fp.varlen_block_pool) or query (fp.varlen_query_pool) pooling.
  template <typename PoolOp>
  LogicalResult selectVarlenPool(PoolOp op, const TargetArch &target) {
    auto input = cast<RankedTensorType>(op->getOperand(0).getType());
    KernelKey key = makeVarlenKey(target, input, 1, 1, op.getBlockSize());
    if (failed(checkBuildable(op, key, /*causal=*/true)))
      return failure();
    PoolTile tile = op.getTile() ? PoolTile{op.getTile()->getThreads()}
                                 : defaultPoolTile(key);
    if (failed(reportTile(op, "#fp.pool_tile", checkPoolTile(key, tile))))
      return failure();
    op.setTileAttr(PoolTileAttr::get(op.getContext(), tile.threads));
    return success();
  }

  LogicalResult selectVarlenDiscovery(VarlenPatternDiscoveryOp op,
                                      const TargetArch &target) {
    auto query = cast<RankedTensorType>(op.getQuery().getType());
    auto kbar = cast<RankedTensorType>(op.getKbar().getType());
    KernelKey key = makeVarlenKey(target, query, query.getDimSize(1),
                                  kbar.getDimSize(1), op.getBlockSize());
    if (failed(checkBuildable(op, key, op.getCausal())))
      return failure();
    DiscoveryTile tile = op.getTile()
                             ? DiscoveryTile{op.getTile()->getKeyChunk(),
                                             op.getTile()->getWarps()}
                             : defaultDiscoveryTile(key);
    if (failed(reportTile(op, "#fp.discovery_tile",
                          checkDiscoveryTile(key, tile, target))))
      return failure();
    op.setTileAttr(
        DiscoveryTileAttr::get(op.getContext(), tile.keyChunk, tile.warps));
    return success();
  }

  LogicalResult selectVarlenAttention(VarlenMaskedAttentionOp op,
                                      const TargetArch &target) {
    auto q = cast<RankedTensorType>(op.getQ().getType());
    auto k = cast<RankedTensorType>(op.getK().getType());
    KernelKey key =
        makeVarlenKey(target, q, q.getDimSize(1), k.getDimSize(k.getRank() - 2),
                      op.getBlockSize());
    if (failed(checkBuildable(op, key, op.getCausal())))
      return failure();
    AttentionTile tile = op.getTile()
                             ? AttentionTile{op.getTile()->getBlockM(),
                                             op.getTile()->getBlockN(),
                                             op.getTile()->getWarps(),
                                             op.getTile()->getStages()}
                             : defaultAttentionTile(key);
    if (failed(reportTile(op, "#fp.attention_tile",
                          checkAttentionTile(key, tile, target))))
      return failure();
    op.setTileAttr(AttentionTileAttr::get(
        op.getContext(), tile.blockM, tile.blockN, tile.warps, tile.stages));
    return success();
  }
};

} // namespace
