module attributes {fp.arch = "sm_80"} {
  func.func @prefill(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
      -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
    %kbar = fp.block_pool %k {tile = #fp.pool_tile<threads = 128>} : (tensor<?x?x8x128xbf16>) -> tensor<?x8x?x128xbf16>
    %c, %i = fp.pattern_discovery %q, %kbar {threshold = #fp.threshold<>, tile = #fp.discovery_tile<key_chunk = 64, warps = 8>} : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>) -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
    %o, %l = fp.masked_attention %q, %k, %v, %c, %i {tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 4, stages = 2>} : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x32x?xi32>, tensor<?x32x?x?xi32>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
    return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
  }
}
