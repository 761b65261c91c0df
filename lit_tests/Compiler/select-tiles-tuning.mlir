// fp-tune's database replaces the heuristics for its (arch, head dim, dtype,
// block, group, length bucket); other keys keep the heuristics; a corrupt or
// foreign-version file is ignored with a warning; forced tiles win.
//
// RUN: split-file %s %t
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a tuning-db=%t/db.json length-bucket=32768" | FileCheck %s --check-prefix=TUNED
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a tuning-db=%t/db.json length-bucket=4096" | FileCheck %s --check-prefix=HEURISTIC90
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_80 tuning-db=%t/db.json length-bucket=32768" | FileCheck %s --check-prefix=HEURISTIC
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a tuning-db=%t/corrupt.json length-bucket=32768" 2>&1 | FileCheck %s --check-prefix=CORRUPT
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a tuning-db=%t/v2.json length-bucket=32768" 2>&1 | FileCheck %s --check-prefix=VERSION
// A missing file, a directory or a device named as tuning-db: a warning
// naming the path and the reason, then the heuristics (/dev/zero used to
// hang, reading forever).
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a tuning-db=%t/missing.json length-bucket=32768" 2>&1 | FileCheck %s --check-prefixes=MISSING,HEURISTIC90
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a tuning-db=/dev/zero length-bucket=32768" 2>&1 | FileCheck %s --check-prefixes=DEVZERO,HEURISTIC90
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a tuning-db=%t length-bucket=32768" 2>&1 | FileCheck %s --check-prefixes=DIRECTORY,HEURISTIC90
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a attention-tile=64x64x8x3 discovery-tile=32x2" | FileCheck %s --check-prefix=FORCED
// A database tile measured with another mainloop (sm80 tiles under sm_90a)
// is skipped with a warning; forcing it is an error.
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a tuning-db=%t/stale.json length-bucket=32768" 2>&1 | FileCheck %s --check-prefix=STALE
// RUN: not fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a attention-tile=128x32x4x2" 2>&1 | FileCheck %s --check-prefix=BADHOPPER
// The H100 database shipped in bench/tuning/ is compiled in (re-tuning it
// may change these winners: update the BUILTIN lines with it).
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a length-bucket=65536 builtin-tuning=true" | FileCheck %s --check-prefix=BUILTIN
// RUN: fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_80 length-bucket=65536 builtin-tuning=true" | FileCheck %s --check-prefix=HEURISTIC
// RUN: not fp-opt %t/ops.mlir --fp-expand-prefill --fp-fuse-pattern-discovery --fp-select-tiles="arch=sm_90a attention-tile=64x64" 2>&1 | FileCheck %s --check-prefix=BADFORCE
// RUN: fp-opt %t/ops.mlir --fp-compile-pipeline="arch=sm_90a tuning-db=%t/db.json length-bucket=32768" --fp-emit=cuda | FileCheck %s --check-prefix=PIPELINE

// TUNED: fp.pattern_discovery {{.*}}tile = #fp.discovery_tile<key_chunk = 128, warps = 8>
// TUNED: fp.masked_attention {{.*}}tile = #fp.attention_tile<block_m = 64, block_n = 64, warps = 8, stages = 3>
// HEURISTIC: fp.pattern_discovery {{.*}}tile = #fp.discovery_tile<key_chunk = 64, warps = 4>
// HEURISTIC: fp.masked_attention {{.*}}tile = #fp.attention_tile<block_m = 128, block_n = 32, warps = 4, stages = 2>
// MISSING: warning: tuning database {{.*}}missing.json ignored: does not exist
// DEVZERO: warning: tuning database /dev/zero ignored: is a character device, not a regular file
// DIRECTORY: warning: tuning database {{.*}} ignored: is a directory, not a regular file
// HEURISTIC90: fp.pattern_discovery {{.*}}tile = #fp.discovery_tile<key_chunk = 64, warps = 4>
// HEURISTIC90: fp.masked_attention {{.*}}tile = #fp.attention_tile<block_m = 128, block_n = 128, warps = 12, stages = 2>
// CORRUPT: warning: tuning database {{.*}}corrupt.json ignored: not JSON
// CORRUPT: tile = #fp.attention_tile<block_m = 128, block_n = 128, warps = 12, stages = 2>
// STALE: warning: tuning database tile is not buildable here (block_n: expected 64, 128 or 256 (a wgmma N) on sm_90a, got 32): using the default tile
// STALE: tile = #fp.attention_tile<block_m = 128, block_n = 128, warps = 12, stages = 2>
// BADHOPPER: cannot build #fp.attention_tile: block_n: expected 64, 128 or 256 (a wgmma N) on sm_90a, got 32
// VERSION: warning: tuning database {{.*}}v2.json ignored: version 2, this library reads version 1
// FORCED: tile = #fp.discovery_tile<key_chunk = 32, warps = 2>
// FORCED: tile = #fp.attention_tile<block_m = 64, block_n = 64, warps = 8, stages = 3>
// BUILTIN: tile = #fp.discovery_tile<key_chunk = 32, warps = 4>
// BUILTIN: tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 12, stages = 3>
// BADFORCE: attention-tile: expected 4 positive integers separated by 'x', got '64x64'
// PIPELINE: fp::dev::masked_attention<__nv_bfloat16, 128, 128, 64, 64, 8, 3, 90>

//--- ops.mlir
func.func @f(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}
//--- db.json
{"format": "flashprefill-tuning", "version": 1, "entries": [
  {"arch": "sm_90a", "head_dim": 128, "dtype": "bf16", "block_size": 128, "group": 4,
   "length_bucket": 32768, "kernel": "attention",
   "config": {"block_m": 128, "block_n": 128, "warps": 12, "stages": 2}, "ms": 5.0},
  {"arch": "sm_90a", "head_dim": 128, "dtype": "bf16", "block_size": 128, "group": 4,
   "length_bucket": 32768, "kernel": "attention",
   "config": {"block_m": 64, "block_n": 64, "warps": 8, "stages": 3}, "ms": 4.5},
  {"arch": "sm_90a", "head_dim": 128, "dtype": "bf16", "block_size": 128, "group": 4,
   "length_bucket": 32768, "kernel": "discovery",
   "config": {"key_chunk": 128, "warps": 8}, "ms": 0.3}
]}
//--- stale.json
{"format": "flashprefill-tuning", "version": 1, "entries": [
  {"arch": "sm_90a", "head_dim": 128, "dtype": "bf16", "block_size": 128, "group": 4,
   "length_bucket": 32768, "kernel": "attention",
   "config": {"block_m": 128, "block_n": 32, "warps": 4, "stages": 2}, "ms": 5.0}
]}
//--- corrupt.json
{"format": "flashprefill-tuning", "version": 1, "entries": [
//--- v2.json
{"format": "flashprefill-tuning", "version": 2, "entries": []}
