//===- Passes.td - fp compiler passes ----------------------*- tablegen -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The pipeline, in order: fp-expand-prefill, fp-fuse-pattern-discovery,
// fp-select-tiles, convert-fp-to-emitc; `fp-compile-pipeline` chains them.
//
//===----------------------------------------------------------------------===//
#ifndef FP_COMPILER_PASSES_TD
#define FP_COMPILER_PASSES_TD

include "mlir/Pass/PassBase.td"

def FPExpandPrefill : Pass<"fp-expand-prefill", "::mlir::ModuleOp"> {
  let summary = "Split fp.prefill into pool, score, threshold and attention";
  let description = [{
    Rewrites every `fp.prefill` into the four step ops of docs/semantics.md
    section 1, carrying block size, threshold, query kind, causal flag and
    scale over.
    With `query_kind = pooled` the queries are pooled too.
    Every `fp.prefill_varlen` (docs/semantics.md section 2) becomes
    `fp.varlen_block_pool`, `fp.varlen_pattern_discovery` (already fused:
    varlen scoring has no unfused form) and `fp.varlen_masked_attention`,
    each taking the sequence operands.

    Before:
    ```mlir
    %o, %lse = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : ...
    ```
    After:
    ```mlir
    %kbar = fp.block_pool %k : (tensor<?x?x8x128xbf16>) -> tensor<?x8x?x128xbf16>
    %s = fp.block_score %q, %kbar : (...) -> tensor<?x32x?x?xf32>
    %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : ...
    %o, %lse = fp.masked_attention %q, %k, %v, %c, %i : ...
    ```
  }];
}

def FPFusePatternDiscovery : Pass<"fp-fuse-pattern-discovery", "::mlir::ModuleOp"> {
  let summary = "Fuse block_score and threshold_mask into one discovery kernel";
  let description = [{
    Replaces `fp.threshold_mask(fp.block_score(q, kbar))` by one
    `fp.pattern_discovery` so that block scores stay on chip (no
    `[b, h_q, nb, nb]` matrix in global memory). `fp.block_pool` stays a
    separate launch: fused, it would re-read K once per query block.

    When the scores have other users, the fused op also returns the score
    matrix.

    Before:
    ```mlir
    %s = fp.block_score %q, %kbar : (...) -> tensor<?x32x?x?xf32>
    %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : ...
    ```
    After:
    ```mlir
    %c, %i = fp.pattern_discovery %q, %kbar {threshold = #fp.threshold<>} : ...
    ```
  }];
}

def FPSelectTiles : Pass<"fp-select-tiles", "::mlir::ModuleOp"> {
  let summary = "Choose kernel tile configurations for the target GPU";
  let description = [{
    Attaches `#fp.pool_tile`, `#fp.discovery_tile` and `#fp.attention_tile`
    to the kernel ops from heuristics keyed by (arch, head dim, block size,
    dtype, GQA group) or, given `tuning-db` and `length-bucket`, from
    fp-tune's measured winners; records the arch on the module (`fp.arch`), and
    rejects with a named diagnostic what verifies but cannot be built:
    non-causal or `s_q != s_k`, unsupported head dims or block sizes,
    unfused scoring, shared memory beyond the arch limit. Tiles already
    present (from a tuning database) are validated, not replaced. The varlen
    ops get the mma.sync (sm_80-path) default tiles on every arch: on sm_90a
    the varlen kernels run the mma.sync mainloop for now (no wgmma/TMA
    varlen kernel yet), and tuning databases and forced tiles, measured for
    the s_q == s_k kernels, do not apply to them.

    Before:
    ```mlir
    %o, %lse = fp.masked_attention %q, %k, %v, %c, %i : ...
    ```
    After (`arch=sm_90a`, bf16, d = 128, B = 128):
    ```mlir
    module attributes {fp.arch = "sm_90a"} {
      %o, %lse = fp.masked_attention %q, %k, %v, %c, %i {
          tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 4, stages = 2>} : ...
    ```
  }];
  let options = [
    Option<"arch", "arch", "std::string", /*default=*/"\"sm_90a\"",
           "Target GPU architecture: sm_80, sm_86, sm_89, sm_90 or sm_90a">,
    Option<"tuningDb", "tuning-db", "std::string", /*default=*/"\"\"",
           "fp-tune database (JSON) whose winners replace the heuristics">,
    Option<"lengthBucket", "length-bucket", "int64_t", /*default=*/"0",
           "Sequence-length bucket (power of two) to look up in tuning-db">,
    Option<"builtinTuning", "builtin-tuning", "bool", /*default=*/"false",
           "Fall back to the tuning databases shipped with the library "
           "(bench/tuning/*.json) for keys tuning-db lacks">,
    Option<"attentionTile", "attention-tile", "std::string",
           /*default=*/"\"\"",
           "Force the attention tile: block_m x block_n x warps x stages "
           "(e.g. 128x32x4x2)">,
    Option<"discoveryTile", "discovery-tile", "std::string",
           /*default=*/"\"\"",
           "Force the discovery tile: key_chunk x warps (e.g. 64x4)">
  ];
}

def ConvertFPToEmitC : Pass<"convert-fp-to-emitc", "::mlir::ModuleOp"> {
  let summary = "Lower tiled fp kernel ops to EmitC CUDA kernels";
  let description = [{
    Turns each function of tiled fp ops into `emitc.func` CUDA kernels (one
    per distinct kernel; `extern "C" __global__ __launch_bounds__(threads, 1)`)
    whose bodies call the device templates of `runtime/device/fp/kernels.cuh`
    with the tile configuration as template arguments. Element types are the
    opaque `__nv_bfloat16` / `__half` (EmitC's own bf16 and f16 print as
    `__bf16` / `_Float16`, which NVRTC rejects). Runtime values (alpha, sink,
    window, last_n, min_budget, scale, lengths) are not in the output: kernels
    read them from their parameter struct. The kernel manifest is attached to
    the module as `fp.manifest`.

    Before:
    ```mlir
    %kbar = fp.block_pool %k {tile = #fp.pool_tile<threads = 128>} : ...
    ```
    After:
    ```mlir
    emitc.include "fp/kernels.cuh"
    emitc.func @fp_block_pool_bf16_d128_b128(%arg0: !emitc.opaque<"FpPoolParams">)
        attributes {specifiers = ["extern \"C\"", "__global__", "__launch_bounds__(128, 1)"]} {
      emitc.call_opaque "fp::dev::block_pool"(%arg0) {template_args = [...]} : ...
      emitc.return
    }
    ```
  }];
  let dependentDialects = ["::mlir::emitc::EmitCDialect"];
}

#endif // FP_COMPILER_PASSES_TD
