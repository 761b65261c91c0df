// RUN: fp-opt %s -split-input-file -fp-select-tiles="arch=sm_90a" -verify-diagnostics
// fp-select-tiles names what the varlen verifiers accept but codegen cannot build.

func.func @not_expanded(%q: tensor<?x4x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{'fp.prefill_varlen' op must be expanded before tile selection (run fp-expand-prefill)}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %ck {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @head_dim(%k: tensor<?x16x4x48xbf16>, %cq: tensor<?xi32>, %pt: tensor<?x?xi32>, %kl: tensor<?xi32>) {
  // expected-error @+1 {{head dim 48 is unsupported by codegen: expected one of 64, 128, 256}}
  %kbar = fp.varlen_block_pool %k, %cq, %pt, %kl : (tensor<?x16x4x48xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x4x?x48xbf16>
  return
}

// -----

// A tile for the sm_90a (wgmma) mainloop does not build the varlen kernel,
// which runs the mma.sync mainloop there.
func.func @hopper_tile(%q: tensor<?x4x128xbf16>, %k: tensor<?x4x128xbf16>, %v: tensor<?x4x128xbf16>, %c: tensor<?x4xi32>, %i: tensor<?x4x?xi32>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{cannot build #fp.attention_tile: warps: expected 1 to 16 warps with block_m 128 a multiple of 16 * warps, got 12}}
  %o, %l = fp.varlen_masked_attention %q, %k, %v, %c, %i, %cq, %ck {tile = #fp.attention_tile<block_m = 128, block_n = 128, warps = 12, stages = 2>} : (tensor<?x4x128xbf16>, tensor<?x4x128xbf16>, tensor<?x4x128xbf16>, tensor<?x4xi32>, tensor<?x4x?xi32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x128xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @non_causal(%q: tensor<?x4x128xbf16>, %kbar: tensor<?x4x?x128xbf16>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{causal = false is unsupported}}
  %c, %i = fp.varlen_pattern_discovery %q, %kbar, %cq, %ck {causal = false, threshold = #fp.threshold<>} : (tensor<?x4x128xbf16>, tensor<?x4x?x128xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4xi32>, tensor<?x4x?xi32>)
  return
}
