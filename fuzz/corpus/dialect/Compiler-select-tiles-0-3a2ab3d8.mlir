func.func @defaults_d128_b128(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %kbar = fp.block_pool %k : (tensor<?x?x8x128xbf16>) -> tensor<?x8x?x128xbf16>
  %c, %i = fp.pattern_discovery %q, %kbar {threshold = #fp.threshold<>} : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>) -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x32x?xi32>, tensor<?x32x?x?xi32>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}
