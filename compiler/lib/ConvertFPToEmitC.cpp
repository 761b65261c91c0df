//===- ConvertFPToEmitC.cpp - Lower tiled fp ops to CUDA kernels -*- C++
//-*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Each tiled kernel op becomes an `emitc.func` CUDA kernel whose body calls
// one device template (runtime/device/fp/kernels.cuh) with the compile-time
// configuration as template arguments. The generated code is glue only; the
// algorithms live in the reviewed device headers.
//
// Host-side facts the runtime needs (parameter struct, threads, grid rule,
// shared memory, launch order) are attached as `fp.kernel` on every kernel
// and `fp.launches` on the module; KernelManifest.cpp prints them.
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/KernelManifest.h"
#include "fp/Compiler/Passes.h"
#include "fp/Compiler/TileConfig.h"
#include "fp/Dialect/FPDialect.h"

#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <type_traits>

namespace mlir::fp {
#define GEN_PASS_DEF_CONVERTFPTOEMITC
#include "fp/Compiler/Passes.h.inc"
} // namespace mlir::fp

using namespace mlir;
using namespace mlir::fp;

namespace {

/// One kernel to emit: its entry name, the template it instantiates and the
/// launch facts for the manifest.
struct KernelPlan {
  std::string entry;
  std::string templateName; ///< e.g. "fp::dev::block_pool"
  std::string elementType;  ///< "__nv_bfloat16" or "__half"
  SmallVector<int64_t> templateInts;
  KernelInfo info;
};

std::string dtypeName(Type type) { return type.isBF16() ? "bf16" : "f16"; }
std::string cudaElementType(Type type) {
  return type.isBF16() ? "__nv_bfloat16" : "__half";
}

/// The module's target from its fp.arch attribute. Diagnostics go to
/// `anchor` (an fp op): the module itself often has no location.
FailureOr<TargetArch> targetOf(ModuleOp module, Operation *anchor) {
  Attribute attr = module->getAttr("fp.arch");
  if (!attr)
    return anchor->emitError() << "expected an 'fp.arch' module attribute "
                                  "(run fp-select-tiles first)";
  auto arch = dyn_cast<StringAttr>(attr);
  if (!arch)
    return anchor->emitError() << "fp.arch: expected a string naming the "
                                  "arch (one of "
                               << supportedArchList() << "), got " << attr;
  std::optional<TargetArch> target = parseTargetArch(arch.getValue());
  if (!target)
    return anchor->emitError()
           << "fp.arch: unsupported arch \"" << arch.getValue()
           << "\", expected one of " << supportedArchList();
  return *target;
}

/// The convert pass may run on IR the verifiers never saw (built in C++, or
/// tiles valid in general but not on this arch): the full buildability check
/// of fp-select-tiles, before the tile reaches names, launch bounds and the
/// manifest.
LogicalResult checkTileBeforeLowering(Operation *op, StringRef attribute,
                                      const std::string &problem) {
  if (problem.empty())
    return success();
  return op->emitOpError() << "cannot lower " << attribute << ": " << problem;
}

KernelKey keyOf(Type element, int64_t headDim, int64_t blockSize, int64_t group,
                const TargetArch &target) {
  return {target.computeCapability, headDim, blockSize,
          element.getIntOrFloatBitWidth() / 8, group, target.attentionMainloop};
}

FailureOr<KernelPlan> planPool(BlockPoolOp op, const TargetArch &target) {
  if (!op.getTile())
    return op.emitOpError() << "has no #fp.pool_tile (run fp-select-tiles)";
  auto input = cast<RankedTensorType>(op.getInput().getType());
  Type element = input.getElementType();
  int64_t d = input.getDimSize(3), b = op.getBlockSize();
  int64_t threads = op.getTile()->getThreads();
  KernelKey key = keyOf(element, d, b, 1, target);
  if (failed(checkTileBeforeLowering(op, "#fp.pool_tile",
                                     checkPoolTile(key, PoolTile{threads}))))
    return failure();
  KernelPlan plan;
  plan.entry = llvm::formatv("fp_block_pool_{0}_d{1}_b{2}_t{3}",
                             dtypeName(element), d, b, threads);
  plan.templateName = "fp::dev::block_pool";
  plan.elementType = cudaElementType(element);
  plan.templateInts = {d, b, threads};
  plan.info = {plan.entry, "FpPoolParams", threads, "blocks,heads,batch", 0, 0,
               ""};
  return plan;
}

FailureOr<KernelPlan> planDiscovery(PatternDiscoveryOp op,
                                     const TargetArch &target) {
  if (!op.getTile())
    return op.emitOpError()
           << "has no #fp.discovery_tile (run fp-select-tiles)";
  auto query = cast<RankedTensorType>(op.getQuery().getType());
  auto kbar = cast<RankedTensorType>(op.getKbar().getType());
  auto counts = cast<RankedTensorType>(op.getCounts().getType());
  Type element = query.getElementType();
  int64_t d = query.getDimSize(3), b = op.getBlockSize();
  DiscoveryTile tile{op.getTile()->getKeyChunk(), op.getTile()->getWarps()};
  KernelKey key =
      keyOf(element, d, b, counts.getDimSize(1) / kbar.getDimSize(1), target);
  if (failed(checkTileBeforeLowering(op, "#fp.discovery_tile",
                                     checkDiscoveryTile(key, tile, target))))
    return failure();
  KernelPlan plan;
  plan.entry =
      llvm::formatv("fp_pattern_discovery_{0}_d{1}_b{2}_c{3}w{4}",
                    dtypeName(element), d, b, tile.keyChunk, tile.warps);
  plan.templateName = "fp::dev::pattern_discovery";
  plan.elementType = cudaElementType(element);
  plan.templateInts = {d, b, tile.keyChunk, tile.warps};
  std::string traits =
      llvm::formatv("fp::dev::DiscoveryTraits<{0}, {1}, {2}, {3}, {4}>",
                    plan.elementType, d, b, tile.keyChunk, tile.warps);
  plan.info = {plan.entry,
               "FpDiscoveryParams",
               32 * tile.warps,
               "blocks,q_heads,batch",
               discoverySmemBaseBytes(key, tile),
               discoverySmemPerKeyBlockBytes(key, tile),
               traits};
  return plan;
}

FailureOr<KernelPlan> planAttention(MaskedAttentionOp op,
                                     const TargetArch &target) {
  if (!op.getTile())
    return op.emitOpError()
           << "has no #fp.attention_tile (run fp-select-tiles)";
  auto q = cast<RankedTensorType>(op.getQ().getType());
  auto k = cast<RankedTensorType>(op.getK().getType());
  Type element = q.getElementType();
  int64_t d = q.getDimSize(3), b = op.getBlockSize();
  AttentionTileAttr t = op.getTileAttr();
  AttentionTile tile{t.getBlockM(), t.getBlockN(), t.getWarps(), t.getStages()};
  KernelKey key =
      keyOf(element, d, b, q.getDimSize(2) / k.getDimSize(2), target);
  if (failed(checkTileBeforeLowering(op, "#fp.attention_tile",
                                     checkAttentionTile(key, tile, target))))
    return failure();
  // The arch selects the device mainloop: 90 (wgmma/TMA) on sm_90a only.
  int64_t archTag = key.attentionMainloop;
  KernelPlan plan;
  plan.entry =
      llvm::formatv("fp_masked_attention_{0}_d{1}_b{2}_m{3}n{4}w{5}s{6}_sm{7}",
                    dtypeName(element), d, b, tile.blockM, tile.blockN,
                    tile.warps, tile.stages, archTag);
  plan.templateName = "fp::dev::masked_attention";
  plan.elementType = cudaElementType(element);
  plan.templateInts = {d,          b,           tile.blockM, tile.blockN,
                       tile.warps, tile.stages, archTag};
  std::string traits = llvm::formatv(
      "fp::dev::AttentionTraits<{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}>",
      plan.elementType, d, b, tile.blockM, tile.blockN, tile.warps, tile.stages,
      archTag);
  plan.info = {plan.entry,
               "FpAttentionParams",
               32 * tile.warps,
               llvm::formatv("q_tiles:{0},q_heads,batch", tile.blockM),
               attentionSmemBytes(key, tile),
               0,
               traits};
  if (archTag == 90) { // the sm_90a mainloop reads Q, K and V through TMA
    plan.info.tmaQRows = tile.blockM;
    plan.info.tmaKVRows = tile.blockN;
  }
  return plan;
}

// Varlen kernels (docs/semantics.md section 2). Pooling and discovery serve
// packed and paged K/V alike (the parameters say which); attention has one
// kernel per layout, whose address code is compiled in (the mainloop sits at
// the register limit). Attention runs the mma.sync mainloop (kArch 80) on
// every arch, sm_90a included: fp-select-tiles gave these ops sm_80-path
// tiles.

KernelKey varlenKeyOf(Type element, int64_t headDim, int64_t blockSize,
                      int64_t group, const TargetArch &target) {
  KernelKey key = keyOf(element, headDim, blockSize, group, target);
  key.attentionMainloop = 80;
  return key;
}

int64_t lastDim(Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  return type.getDimSize(type.getRank() - 1);
}

/// Key pooling (fp.varlen_block_pool, grid over key blocks and kv heads) or
/// query pooling (fp.varlen_query_pool, over query blocks and q heads).
template <typename PoolOp>
FailureOr<KernelPlan> planVarlenPool(PoolOp op, const TargetArch &target) {
  if (!op.getTile())
    return op.emitOpError() << "has no #fp.pool_tile (run fp-select-tiles)";
  const bool queries = std::is_same_v<PoolOp, VarlenQueryPoolOp>;
  Value input = op->getOperand(0);
  Type element = cast<RankedTensorType>(input.getType()).getElementType();
  int64_t d = lastDim(input), b = op.getBlockSize();
  int64_t threads = op.getTile()->getThreads();
  KernelKey key = varlenKeyOf(element, d, b, 1, target);
  if (failed(checkTileBeforeLowering(op, "#fp.pool_tile",
                                     checkPoolTile(key, PoolTile{threads}))))
    return failure();
  KernelPlan plan;
  plan.entry = llvm::formatv("fp_varlen_{0}_pool_{1}_d{2}_b{3}_t{4}",
                             queries ? "query" : "block", dtypeName(element),
                             d, b, threads);
  plan.templateName =
      queries ? "fp::dev::varlen_query_pool" : "fp::dev::varlen_block_pool";
  plan.elementType = cudaElementType(element);
  plan.templateInts = {d, b, threads};
  plan.info = {plan.entry, "FpVarlenPoolParams", threads,
               queries ? "q_blocks,q_heads,batch" : "key_blocks,kv_heads,batch",
               0, 0, ""};
  return plan;
}

FailureOr<KernelPlan> planVarlenDiscovery(VarlenPatternDiscoveryOp op,
                                          const TargetArch &target) {
  if (!op.getTile())
    return op.emitOpError()
           << "has no #fp.discovery_tile (run fp-select-tiles)";
  auto query = cast<RankedTensorType>(op.getQuery().getType());
  auto kbar = cast<RankedTensorType>(op.getKbar().getType());
  Type element = query.getElementType();
  int64_t d = lastDim(op.getQuery()), b = op.getBlockSize();
  DiscoveryTile tile{op.getTile()->getKeyChunk(), op.getTile()->getWarps()};
  KernelKey key = varlenKeyOf(element, d, b,
                              query.getDimSize(1) / kbar.getDimSize(1), target);
  if (failed(checkTileBeforeLowering(op, "#fp.discovery_tile",
                                     checkDiscoveryTile(key, tile, target))))
    return failure();
  KernelPlan plan;
  plan.entry =
      llvm::formatv("fp_varlen_pattern_discovery_{0}_d{1}_b{2}_c{3}w{4}",
                    dtypeName(element), d, b, tile.keyChunk, tile.warps);
  plan.templateName = "fp::dev::varlen_pattern_discovery";
  plan.elementType = cudaElementType(element);
  plan.templateInts = {d, b, tile.keyChunk, tile.warps};
  std::string traits =
      llvm::formatv("fp::dev::DiscoveryTraits<{0}, {1}, {2}, {3}, {4}>",
                    plan.elementType, d, b, tile.keyChunk, tile.warps);
  plan.info = {plan.entry,
               "FpVarlenDiscoveryParams",
               32 * tile.warps,
               "q_blocks,q_heads,batch",
               discoverySmemBaseBytes(key, tile),
               discoverySmemPerKeyBlockBytes(key, tile),
               traits};
  return plan;
}

FailureOr<KernelPlan> planVarlenAttention(VarlenMaskedAttentionOp op,
                                          const TargetArch &target) {
  if (!op.getTile())
    return op.emitOpError()
           << "has no #fp.attention_tile (run fp-select-tiles)";
  auto q = cast<RankedTensorType>(op.getQ().getType());
  auto k = cast<RankedTensorType>(op.getK().getType());
  Type element = q.getElementType();
  int64_t d = lastDim(op.getQ()), b = op.getBlockSize();
  AttentionTileAttr t = op.getTileAttr();
  AttentionTile tile{t.getBlockM(), t.getBlockN(), t.getWarps(), t.getStages()};
  KernelKey key = varlenKeyOf(element, d, b,
                              q.getDimSize(1) / k.getDimSize(k.getRank() - 2),
                              target);
  if (failed(checkTileBeforeLowering(op, "#fp.attention_tile",
                                     checkAttentionTile(key, tile, target))))
    return failure();
  const bool paged = k.getRank() == 4;
  KernelPlan plan;
  plan.entry = llvm::formatv(
      "fp_varlen_masked_attention_{0}_{1}_d{2}_b{3}_m{4}n{5}w{6}s{7}",
      paged ? "paged" : "packed", dtypeName(element), d, b, tile.blockM,
      tile.blockN, tile.warps, tile.stages);
  plan.templateName = "fp::dev::varlen_masked_attention";
  plan.elementType = cudaElementType(element);
  plan.templateInts = {d,          b,           tile.blockM, tile.blockN,
                       tile.warps, tile.stages, paged ? 1 : 0};
  std::string traits = llvm::formatv(
      "fp::dev::AttentionTraits<{0}, {1}, {2}, {3}, {4}, {5}, {6}, 80>",
      plan.elementType, d, b, tile.blockM, tile.blockN, tile.warps,
      tile.stages);
  plan.info = {plan.entry,
               "FpVarlenAttentionParams",
               32 * tile.warps,
               llvm::formatv("q_tiles:{0},q_heads,batch", tile.blockM),
               attentionSmemBytes(key, tile),
               0,
               traits};
  return plan;
}

/// Role of a pool op in the launch sequence, from how discovery uses it.
std::string poolRole(BlockPoolOp op) {
  for (OpOperand &use : op.getPooled().getUses())
    if (auto discovery = dyn_cast<PatternDiscoveryOp>(use.getOwner()))
      return use.get() == discovery.getKbar() ? "pool_keys" : "pool_queries";
  return "pool";
}

/// Emits `extern "C" __global__ __launch_bounds__(T, 1) void entry(Params p)`
/// calling the plan's template.
void emitKernel(OpBuilder &builder, Location loc, const KernelPlan &plan) {
  MLIRContext *ctx = builder.getContext();
  // Attention params are __grid_constant__: the sm_90a mainloop hands TMA
  // the address of the tensor maps inside them (a by-value copy would live
  // in local memory, which TMA cannot read).
  std::string paramsText = plan.info.paramsStruct == "FpAttentionParams"
                               ? "const __grid_constant__ FpAttentionParams"
                               : plan.info.paramsStruct;
  Type paramsType = emitc::OpaqueType::get(ctx, paramsText);
  auto funcType = builder.getFunctionType({paramsType}, {});
  auto func = emitc::FuncOp::create(builder, loc, plan.entry, funcType);
  func.setSpecifiersAttr(builder.getStrArrayAttr(
      {"extern \"C\"", "__global__",
       // Min 1 CTA per SM: a bare bound let ptxas cap some discovery
       // configs at 72-96 registers and spill.
       llvm::formatv("__launch_bounds__({0}, 1)", plan.info.threads).str()}));
  func->setAttr("fp.kernel", plan.info.toAttribute(ctx));
  Block *body = func.addEntryBlock();
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToStart(body);
  SmallVector<Attribute> templateArgs{
      emitc::OpaqueAttr::get(ctx, plan.elementType)};
  for (int64_t value : plan.templateInts)
    templateArgs.push_back(builder.getI32IntegerAttr(value));
  emitc::CallOpaqueOp::create(builder, loc, TypeRange{}, plan.templateName,
                              ValueRange{body->getArgument(0)},
                              /*args=*/ArrayAttr(),
                              builder.getArrayAttr(templateArgs));
  emitc::ReturnOp::create(builder, loc, Value());

  // Export the template's own shared-memory figures so the runtime can check
  // them against the manifest after loading the module.
  builder.setInsertionPointAfter(func);
  auto exportInt = [&](StringRef suffix, const std::string &value) {
    emitc::VerbatimOp::create(
        builder, loc,
        llvm::formatv("extern \"C\" __device__ const int {0}_{1} = {2};",
                      plan.entry, suffix, value)
            .str());
  };
  if (plan.info.traits.empty()) {
    exportInt("smem_base", "0");
    exportInt("smem_per_key_block", "0");
  } else if (plan.templateName == "fp::dev::pattern_discovery" ||
             plan.templateName == "fp::dev::varlen_pattern_discovery") {
    exportInt("smem_base", plan.info.traits + "::kSmemBaseBytes");
    exportInt("smem_per_key_block",
              plan.info.traits + "::kSmemPerKeyBlockBytes");
  } else {
    exportInt("smem_base", plan.info.traits + "::kSmemBytes");
    exportInt("smem_per_key_block", "0");
  }
}

struct ConvertFPToEmitCPass
    : mlir::fp::impl::ConvertFPToEmitCBase<ConvertFPToEmitCPass> {
  void runOnOperation() final {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    Operation *firstFPOp = nullptr;
    module.walk([&](Operation *op) {
      if (!isa<FPDialect>(op->getDialect()))
        return WalkResult::advance();
      firstFPOp = op;
      return WalkResult::interrupt();
    });
    if (!firstFPOp)
      return; // Nothing to lower.
    FailureOr<TargetArch> parsedTarget = targetOf(module, firstFPOp);
    if (failed(parsedTarget))
      return signalPassFailure();
    const TargetArch &target = *parsedTarget;

    // 1. Plan every kernel op; identical configurations share one kernel.
    llvm::MapVector<StringRef, KernelPlan> kernels;
    SmallVector<NamedAttribute> launches;
    SmallVector<func::FuncOp> lowered;
    for (func::FuncOp func : module.getOps<func::FuncOp>()) {
      SmallVector<Attribute> sequence;
      WalkResult result = func.walk([&](Operation *op) -> WalkResult {
        FailureOr<KernelPlan> plan = failure();
        std::string role;
        if (auto pool = dyn_cast<BlockPoolOp>(op)) {
          plan = planPool(pool, target);
          role = poolRole(pool);
        } else if (auto discovery = dyn_cast<PatternDiscoveryOp>(op)) {
          plan = planDiscovery(discovery, target);
          role = "discovery";
        } else if (auto attention = dyn_cast<MaskedAttentionOp>(op)) {
          plan = planAttention(attention, target);
          role = "attention";
        } else if (auto pool = dyn_cast<VarlenBlockPoolOp>(op)) {
          plan = planVarlenPool(pool, target);
          role = "varlen_pool_keys";
        } else if (auto pool = dyn_cast<VarlenQueryPoolOp>(op)) {
          plan = planVarlenPool(pool, target);
          role = "varlen_pool_queries";
        } else if (auto discovery = dyn_cast<VarlenPatternDiscoveryOp>(op)) {
          plan = planVarlenDiscovery(discovery, target);
          role = "varlen_discovery";
        } else if (auto attention = dyn_cast<VarlenMaskedAttentionOp>(op)) {
          plan = planVarlenAttention(attention, target);
          role = cast<RankedTensorType>(attention.getK().getType()).getRank() == 4
                     ? "varlen_attention_paged"
                     : "varlen_attention_packed";
        } else if (isa<FPDialect>(op->getDialect())) {
          return op->emitOpError()
                 << "cannot be lowered to EmitC (run fp-compile-pipeline)";
        } else {
          return WalkResult::advance();
        }
        if (failed(plan))
          return WalkResult::interrupt();
        sequence.push_back(Builder(ctx).getStrArrayAttr({role, plan->entry}));
        std::string entry = plan->entry;
        kernels.insert(
            {StringAttr::get(ctx, entry).getValue(), std::move(*plan)});
        return WalkResult::advance();
      });
      if (result.wasInterrupted())
        return signalPassFailure();
      if (sequence.empty())
        continue;
      launches.emplace_back(func.getSymNameAttr(),
                            ArrayAttr::get(ctx, sequence));
      lowered.push_back(func);
    }

    // 2. Replace the tensor-level functions by the kernels: the host side
    // of each function (buffers, launches) is the runtime's job, described
    // by the manifest.
    for (func::FuncOp func : lowered)
      func.erase();
    OpBuilder builder = OpBuilder::atBlockBegin(module.getBody());
    Location loc = module.getLoc();
    emitc::VerbatimOp::create(
        builder, loc,
        llvm::formatv("// Generated by fp-opt (convert-fp-to-emitc) "
                      "for {0}. Do not edit.",
                      module->getAttrOfType<StringAttr>("fp.arch").getValue())
            .str());
    emitc::IncludeOp::create(builder, loc, "fp/kernels.cuh");
    for (auto &entry : kernels)
      emitKernel(builder, loc, entry.second);
    module->setAttr("fp.launches", DictionaryAttr::get(ctx, launches));
  }
};

} // namespace
