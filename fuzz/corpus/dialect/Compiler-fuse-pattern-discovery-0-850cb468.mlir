func.func @fuse(%q: tensor<?x?x32x128xbf16>, %kbar: tensor<?x8x?x128xbf16>)
    -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>) {
  %s = fp.block_score %q, %kbar {scale = 0.125 : f32} : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x?x?xf32>
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<alpha = 0.3>} : (tensor<?x32x?x?xf32>) -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
  return %c, %i : tensor<?x32x?xi32>, tensor<?x32x?x?xi32>
}
