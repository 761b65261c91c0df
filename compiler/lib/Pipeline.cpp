//===- Pipeline.cpp - The fp compile pipeline -------------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"
#include "mlir/Pass/PassRegistry.h"

using namespace mlir;
using namespace mlir::fp;

void mlir::fp::buildCompilePipeline(OpPassManager &pm,
                                    const CompilePipelineOptions &options) {
  // Order matters: tiles are chosen for the fused discovery kernel, and the
  // EmitC conversion needs every kernel op tiled.
  pm.addPass(createFPExpandPrefill());
  pm.addPass(createFPFusePatternDiscovery());
  FPSelectTilesOptions tiles;
  tiles.arch = options.arch;
  tiles.tuningDb = options.tuningDb;
  tiles.lengthBucket = options.lengthBucket;
  tiles.builtinTuning = options.builtinTuning;
  tiles.attentionTile = options.attentionTile;
  tiles.discoveryTile = options.discoveryTile;
  pm.addPass(createFPSelectTiles(tiles));
  pm.addPass(createConvertFPToEmitC());
}

namespace {
struct PipelineCLOptions : PassPipelineOptions<PipelineCLOptions> {
  Option<std::string> arch{*this, "arch",
                           llvm::cl::desc("Target GPU architecture: sm_80, "
                                          "sm_86, sm_89, sm_90 or sm_90a"),
                           llvm::cl::init("sm_90a")};
  Option<std::string> tuningDb{
      *this, "tuning-db",
      llvm::cl::desc("fp-tune database whose winners replace the heuristics"),
      llvm::cl::init("")};
  Option<int64_t> lengthBucket{
      *this, "length-bucket",
      llvm::cl::desc("Sequence-length bucket to look up in tuning-db"),
      llvm::cl::init(0)};
};
} // namespace

void mlir::fp::registerCompilerPasses() {
  registerFPPasses();
  PassPipelineRegistration<PipelineCLOptions>(
      "fp-compile-pipeline",
      "Lower fp.prefill to CUDA kernels: expand, fuse discovery, select "
      "tiles, convert to EmitC",
      [](OpPassManager &pm, const PipelineCLOptions &cl) {
        CompilePipelineOptions options;
        options.arch = cl.arch;
        options.tuningDb = cl.tuningDb;
        options.lengthBucket = cl.lengthBucket;
        buildCompilePipeline(pm, options);
      });
}
