func.func @threshold_counts_type(%s: tensor<?x8x?x?xf32>) {
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : (tensor<?x8x?x?xf32>) -> (tensor<?x8xi32>, tensor<?x8x?x?xi32>)
  return
}
