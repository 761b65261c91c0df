func.func @head_dim_too_large(%q: tensor<?x?x4x512xbf16>, %k: tensor<?x?x4x512xbf16>, %v: tensor<?x?x4x512xbf16>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x512xbf16>, tensor<?x?x4x512xbf16>, tensor<?x?x4x512xbf16>) -> (tensor<?x?x4x512xbf16>, tensor<?x4x?xf32>)
  return
}
