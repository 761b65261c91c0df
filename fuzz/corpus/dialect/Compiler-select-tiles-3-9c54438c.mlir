func.func @preset_tile_bad_block_m(%q: tensor<?x?x8x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>,
                                   %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) -> tensor<?x?x8x128xbf16> {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {tile = #fp.attention_tile<block_m = 96, block_n = 64, warps = 6, stages = 2>} : (tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x128xbf16>, tensor<?x8x?xf32>)
  return %o : tensor<?x?x8x128xbf16>
}
