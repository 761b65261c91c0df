func.func @dynamic_head_dim(%q: tensor<?x?x4x?xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x?xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x4x?xbf16>, tensor<?x4x?xf32>)
  return
}
