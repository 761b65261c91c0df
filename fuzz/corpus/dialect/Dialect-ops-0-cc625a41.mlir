func.func @prefill(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>,
                   %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %out, %lse = fp.prefill %q, %k, %v {block_size = 128 : i64,
      threshold = #fp.threshold<alpha = 0.25, sink = 1, window = 3, last_n = 1, min_budget = 4>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>)
      -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %out, %lse : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

func.func @prefill_options(%q: tensor<2x100x4x64xf16>, %k: tensor<2x100x4x64xf16>,
                           %v: tensor<2x100x4x64xf16>)
    -> (tensor<2x100x4x64xf16>, tensor<2x4x100xf32>) {
  %out, %lse = fp.prefill %q, %k, %v {block_size = 64 : i64, causal = false,
      query_kind = #fp<query_kind pooled>, scale = 0.5 : f32,
      threshold = #fp.threshold<kind = min_max, alpha = 0.3>}
    : (tensor<2x100x4x64xf16>, tensor<2x100x4x64xf16>, tensor<2x100x4x64xf16>)
      -> (tensor<2x100x4x64xf16>, tensor<2x4x100xf32>)
  return %out, %lse : tensor<2x100x4x64xf16>, tensor<2x4x100xf32>
}

func.func @steps(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>,
                 %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %kbar = fp.block_pool %k {block_size = 128 : i64, tile = #fp.pool_tile<threads = 128>}
    : (tensor<?x?x8x128xbf16>) -> tensor<?x8x?x128xbf16>
  %scores = fp.block_score %q, %kbar {block_size = 128 : i64}
    : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x?x?xf32>
  %counts, %ids = fp.threshold_mask %scores {threshold = #fp.threshold<>}
    : (tensor<?x32x?x?xf32>) -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
  %out, %lse = fp.masked_attention %q, %k, %v, %counts, %ids {block_size = 128 : i64,
      tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 4, stages = 2>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>,
       tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
      -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %out, %lse : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

func.func @discovery(%q: tensor<?x?x32x128xbf16>, %kbar: tensor<?x8x?x128xbf16>)
    -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>, tensor<?x32x?x?xf32>) {
  %counts, %ids, %scores = fp.pattern_discovery %q, %kbar {block_size = 128 : i64,
      threshold = #fp.threshold<>, tile = #fp.discovery_tile<key_chunk = 64, warps = 8>}
    : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>)
      -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>, tensor<?x32x?x?xf32>)
  return %counts, %ids, %scores : tensor<?x32x?xi32>, tensor<?x32x?x?xi32>, tensor<?x32x?x?xf32>
}

func.func @pooled_queries(%q: tensor<?x?x8x64xf16>, %k: tensor<?x?x2x64xf16>)
    -> tensor<?x8x?x?xf32> {
  %qbar = fp.block_pool %q {block_size = 64 : i64} : (tensor<?x?x8x64xf16>) -> tensor<?x8x?x64xf16>
  %kbar = fp.block_pool %k {block_size = 64 : i64} : (tensor<?x?x2x64xf16>) -> tensor<?x2x?x64xf16>
  %scores = fp.block_score %qbar, %kbar {block_size = 64 : i64, query_kind = #fp<query_kind pooled>}
    : (tensor<?x8x?x64xf16>, tensor<?x2x?x64xf16>) -> tensor<?x8x?x?xf32>
  return %scores : tensor<?x8x?x?xf32>
}
