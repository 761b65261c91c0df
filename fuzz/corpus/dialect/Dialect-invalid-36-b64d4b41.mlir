func.func @attention_mask_heads(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>,
                                %c: tensor<?x8x?xi32>, %i: tensor<?x2x?x?xi32>) {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i : (tensor<?x?x8x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x8x?xi32>, tensor<?x2x?x?xi32>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return
}
