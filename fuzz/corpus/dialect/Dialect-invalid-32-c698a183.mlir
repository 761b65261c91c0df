func.func @threshold_scores_not_square(%s: tensor<?x8x4x5xf32>) {
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : (tensor<?x8x4x5xf32>) -> (tensor<?x8x4xi32>, tensor<?x8x4x4xi32>)
  return
}
