func.func @head_dim_not_multiple_of_16(%q: tensor<?x?x4x72xbf16>, %k: tensor<?x?x4x72xbf16>, %v: tensor<?x?x4x72xbf16>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x72xbf16>, tensor<?x?x4x72xbf16>, tensor<?x?x4x72xbf16>) -> (tensor<?x?x4x72xbf16>, tensor<?x4x?xf32>)
  return
}
