module attributes {fp.arch = "sm_90a"} {
  func.func @pooled(%q: tensor<?x?x8x64xf16>, %k: tensor<?x?x8x64xf16>) -> tensor<?x8x?xi32> {
    %kbar = fp.block_pool %k {block_size = 64 : i64, tile = #fp.pool_tile<threads = 128>} : (tensor<?x?x8x64xf16>) -> tensor<?x8x?x64xf16>
    %qbar = fp.block_pool %q {block_size = 64 : i64, tile = #fp.pool_tile<threads = 128>} : (tensor<?x?x8x64xf16>) -> tensor<?x8x?x64xf16>
    %c, %i = fp.pattern_discovery %qbar, %kbar {block_size = 64 : i64, query_kind = #fp<query_kind pooled>, threshold = #fp.threshold<>, tile = #fp.discovery_tile<key_chunk = 64, warps = 4>} : (tensor<?x8x?x64xf16>, tensor<?x8x?x64xf16>) -> (tensor<?x8x?xi32>, tensor<?x8x?x?xi32>)
    return %c : tensor<?x8x?xi32>
  }
}
