func.func @preset_tile_kept(%q: tensor<?x?x8x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>,
                            %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) -> tensor<?x?x8x128xbf16> {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {tile = #fp.attention_tile<block_m = 64, block_n = 32, warps = 4, stages = 3>} : (tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x128xbf16>, tensor<?x8x?xf32>)
  return %o : tensor<?x?x8x128xbf16>
}
