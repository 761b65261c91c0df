func.func @scores_escape(%q: tensor<?x?x4x64xf16>, %kbar: tensor<?x4x?x64xf16>)
    -> (tensor<?x4x?xi32>, tensor<?x4x?x?xi32>, tensor<?x4x?x?xf32>) {
  %s = fp.block_score %q, %kbar : (tensor<?x?x4x64xf16>, tensor<?x4x?x64xf16>) -> tensor<?x4x?x?xf32>
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : (tensor<?x4x?x?xf32>) -> (tensor<?x4x?xi32>, tensor<?x4x?x?xi32>)
  return %c, %i, %s : tensor<?x4x?xi32>, tensor<?x4x?x?xi32>, tensor<?x4x?x?xf32>
}
