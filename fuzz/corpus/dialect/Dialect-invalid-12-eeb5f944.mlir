func.func @kv_length_mismatch(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x100x4x64xbf16>, %v: tensor<?x90x4x64xbf16>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x100x4x64xbf16>, tensor<?x90x4x64xbf16>) -> (tensor<?x?x4x64xbf16>, tensor<?x4x?xf32>)
  return
}
