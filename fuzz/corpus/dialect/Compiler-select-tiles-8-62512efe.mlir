func.func @different_lengths(%q: tensor<?x100x8x64xbf16>, %k: tensor<?x200x8x64xbf16>, %v: tensor<?x200x8x64xbf16>,
                             %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i : (tensor<?x100x8x64xbf16>, tensor<?x200x8x64xbf16>, tensor<?x200x8x64xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x100x8x64xbf16>, tensor<?x8x100xf32>)
  return
}
