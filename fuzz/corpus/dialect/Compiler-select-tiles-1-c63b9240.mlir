func.func @block_64(%q: tensor<?x?x8x64xf16>, %k: tensor<?x?x8x64xf16>, %v: tensor<?x?x8x64xf16>,
                    %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) -> tensor<?x?x8x64xf16> {
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {block_size = 64 : i64} : (tensor<?x?x8x64xf16>, tensor<?x?x8x64xf16>, tensor<?x?x8x64xf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x64xf16>, tensor<?x8x?xf32>)
  return %o : tensor<?x?x8x64xf16>
}
