func.func @attention_mask_blocks(%q: tensor<?x300x8x64xbf16>, %k: tensor<?x300x4x64xbf16>, %v: tensor<?x300x4x64xbf16>,
                                 %c: tensor<?x8x4xi32>, %i: tensor<?x8x4x4xi32>) {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i : (tensor<?x300x8x64xbf16>, tensor<?x300x4x64xbf16>, tensor<?x300x4x64xbf16>, tensor<?x8x4xi32>, tensor<?x8x4x4xi32>) -> (tensor<?x300x8x64xbf16>, tensor<?x8x300xf32>)
  return
}
