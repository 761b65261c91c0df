func.func @threshold_ids_heads(%s: tensor<?x8x?x?xf32>) {
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : (tensor<?x8x?x?xf32>) -> (tensor<?x8x?xi32>, tensor<?x4x?x?xi32>)
  return
}
