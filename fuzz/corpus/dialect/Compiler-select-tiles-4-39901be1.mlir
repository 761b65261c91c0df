func.func @preset_tile_too_much_smem(%q: tensor<?x?x8x256xbf16>, %k: tensor<?x?x8x256xbf16>, %v: tensor<?x?x8x256xbf16>,
                                     %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) -> tensor<?x?x8x256xbf16> {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {tile = #fp.attention_tile<block_m = 128, block_n = 128, warps = 8, stages = 4>} : (tensor<?x?x8x256xbf16>, tensor<?x?x8x256xbf16>, tensor<?x?x8x256xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x256xbf16>, tensor<?x8x?xf32>)
  return %o : tensor<?x?x8x256xbf16>
}
