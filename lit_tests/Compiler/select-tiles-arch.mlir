// RUN: not fp-opt %s -fp-select-tiles="arch=sm_75" 2>&1 | FileCheck %s
// RUN: fp-opt %s -fp-select-tiles="arch=sm_80" | FileCheck %s --check-prefix=SM80
// Only sm_90a gets the wgmma/TMA mainloop's tiles (wgmma is an sm_90a
// feature); plain sm_90 keeps the mma.sync tiles.
// RUN: fp-opt %s -fp-select-tiles="arch=sm_90a" | FileCheck %s --check-prefix=SM90A
// RUN: fp-opt %s -fp-select-tiles="arch=sm_90" | FileCheck %s --check-prefix=SM90

// CHECK: arch: expected one of sm_80, sm_86, sm_89, sm_90, sm_90a, got 'sm_75'
// SM80: module attributes {fp.arch = "sm_80"}
func.func @pool(%k: tensor<?x?x8x64xbf16>) -> tensor<?x8x?x64xbf16> {
  %kbar = fp.block_pool %k : (tensor<?x?x8x64xbf16>) -> tensor<?x8x?x64xbf16>
  return %kbar : tensor<?x8x?x64xbf16>
}

// SM90A-LABEL: func.func @attention_tiles
// SM90A: tile = #fp.attention_tile<block_m = 128, block_n = 128, warps = 12, stages = 2>
// SM90A: tile = #fp.attention_tile<block_m = 64, block_n = 64, warps = 8, stages = 2>
// SM90A: tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 12, stages = 2>
// SM90-LABEL: func.func @attention_tiles
// SM90: tile = #fp.attention_tile<block_m = 128, block_n = 32, warps = 4, stages = 2>
// SM90: tile = #fp.attention_tile<block_m = 64, block_n = 64, warps = 4, stages = 2>
// SM90: tile = #fp.attention_tile<block_m = 64, block_n = 32, warps = 4, stages = 2>
func.func @attention_tiles(%q: tensor<?x?x8x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>,
                           %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>,
                           %q2: tensor<?x?x8x256xbf16>, %k2: tensor<?x?x8x256xbf16>, %v2: tensor<?x?x8x256xbf16>) {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i : (tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x128xbf16>, tensor<?x8x?xf32>)
  %o2, %l2 = fp.masked_attention %q, %k, %v, %c, %i {block_size = 64 : i64} : (tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x128xbf16>, tensor<?x8x?xf32>)
  %o3, %l3 = fp.masked_attention %q2, %k2, %v2, %c, %i : (tensor<?x?x8x256xbf16>, tensor<?x?x8x256xbf16>, tensor<?x?x8x256xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x256xbf16>, tensor<?x8x?xf32>)
  return
}
