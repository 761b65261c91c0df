// RUN: fp-opt %s -split-input-file -fp-select-tiles="arch=sm_90a" -verify-diagnostics | FileCheck %s

// Default tiles are attached and the arch is recorded on the module.
// CHECK: module attributes {fp.arch = "sm_90a"}
// CHECK-LABEL: func.func @defaults_d128_b128
// CHECK: fp.block_pool {{.*}}tile = #fp.pool_tile<threads = 128>
// CHECK: fp.pattern_discovery {{.*}}tile = #fp.discovery_tile<key_chunk = {{[0-9]+}}, warps = {{[0-9]+}}>
// CHECK: fp.masked_attention {{.*}}tile = #fp.attention_tile<block_m = 128, block_n = {{[0-9]+}}, warps = {{[0-9]+}}, stages = {{[0-9]+}}>
func.func @defaults_d128_b128(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %kbar = fp.block_pool %k : (tensor<?x?x8x128xbf16>) -> tensor<?x8x?x128xbf16>
  %c, %i = fp.pattern_discovery %q, %kbar {threshold = #fp.threshold<>} : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>) -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x32x?xi32>, tensor<?x32x?x?xi32>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

// -----

// Query tiles never exceed the block: a CTA reads exactly one mask row.
// CHECK-LABEL: func.func @block_64
// CHECK: fp.masked_attention {{.*}}tile = #fp.attention_tile<block_m = 64,
func.func @block_64(%q: tensor<?x?x8x64xf16>, %k: tensor<?x?x8x64xf16>, %v: tensor<?x?x8x64xf16>,
                    %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) -> tensor<?x?x8x64xf16> {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {block_size = 64 : i64} : (tensor<?x?x8x64xf16>, tensor<?x?x8x64xf16>, tensor<?x?x8x64xf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x64xf16>, tensor<?x8x?xf32>)
  return %o : tensor<?x?x8x64xf16>
}

// -----

// A preset tile (from a tuning database) is kept when it is buildable.
// CHECK-LABEL: func.func @preset_tile_kept
// CHECK: tile = #fp.attention_tile<block_m = 64, block_n = 64, warps = 8, stages = 3>
func.func @preset_tile_kept(%q: tensor<?x?x8x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>,
                            %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) -> tensor<?x?x8x128xbf16> {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {tile = #fp.attention_tile<block_m = 64, block_n = 64, warps = 8, stages = 3>} : (tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x128xbf16>, tensor<?x8x?xf32>)
  return %o : tensor<?x?x8x128xbf16>
}

// -----

// A preset tile the verifiers accept (they know no arch; a block_m of 96,
// which no block size allows, fails there: Dialect/invalid-tiles.mlir) but
// the sm_90a mainloop cannot build.
func.func @preset_tile_bad_block_m(%q: tensor<?x?x8x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>,
                                   %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) -> tensor<?x?x8x128xbf16> {
  // expected-error @+1 {{cannot build #fp.attention_tile: block_m: expected 64 or 128 (one consumer warpgroup per 64 rows) on sm_90a, got 32}}
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {tile = #fp.attention_tile<block_m = 32, block_n = 64, warps = 8, stages = 2>} : (tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x128xbf16>, tensor<?x8x?xf32>)
  return %o : tensor<?x?x8x128xbf16>
}

// -----

func.func @preset_tile_too_much_smem(%q: tensor<?x?x8x256xbf16>, %k: tensor<?x?x8x256xbf16>, %v: tensor<?x?x8x256xbf16>,
                                     %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) -> tensor<?x?x8x256xbf16> {
  // expected-error @+1 {{cannot build #fp.attention_tile: attention tile needs}}
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {tile = #fp.attention_tile<block_m = 128, block_n = 128, warps = 12, stages = 4>} : (tensor<?x?x8x256xbf16>, tensor<?x?x8x256xbf16>, tensor<?x?x8x256xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x256xbf16>, tensor<?x8x?xf32>)
  return %o : tensor<?x?x8x256xbf16>
}

// -----

func.func @unsupported_head_dim(%k: tensor<?x?x8x96xbf16>) {
  // expected-error @+1 {{head dim 96 is unsupported by codegen: expected one of 64, 128, 256}}
  %kbar = fp.block_pool %k : (tensor<?x?x8x96xbf16>) -> tensor<?x8x?x96xbf16>
  return
}

// -----

func.func @unsupported_block_size(%k: tensor<?x?x8x64xbf16>) {
  // expected-error @+1 {{block_size 32 is unsupported by codegen: expected one of 64, 128}}
  %kbar = fp.block_pool %k {block_size = 32 : i64} : (tensor<?x?x8x64xbf16>) -> tensor<?x8x?x64xbf16>
  return
}

// -----

func.func @non_causal(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>,
                      %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) {
  // expected-error @+1 {{causal = false is unsupported: only causal prefill (s_q == s_k) is implemented}}
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {causal = false} : (tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return
}

// -----

func.func @different_lengths(%q: tensor<?x100x8x64xbf16>, %k: tensor<?x200x8x64xbf16>, %v: tensor<?x200x8x64xbf16>,
                             %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) {
  // expected-error @+1 {{s_q = 100 and s_k = 200 is unsupported: only s_q == s_k (prefill) is implemented}}
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i : (tensor<?x100x8x64xbf16>, tensor<?x200x8x64xbf16>, tensor<?x200x8x64xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x100x8x64xbf16>, tensor<?x8x100xf32>)
  return
}

// -----

func.func @not_expanded(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>) {
  // expected-error @+1 {{must be expanded before tile selection (run fp-expand-prefill)}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return
}

// -----

func.func @not_fused(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x8x?x64xbf16>) {
  // expected-error @+1 {{must be fused into fp.pattern_discovery before tile selection (run fp-fuse-pattern-discovery)}}
  %s = fp.block_score %q, %kbar : (tensor<?x?x8x64xbf16>, tensor<?x8x?x64xbf16>) -> tensor<?x8x?x?xf32>
  return
}
