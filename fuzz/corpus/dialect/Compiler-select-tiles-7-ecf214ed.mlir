func.func @non_causal(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>,
                      %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {causal = false} : (tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return
}
