func.func @discovery_mask_heads(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  %c, %i = fp.pattern_discovery %q, %kbar {threshold = #fp.threshold<>} : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> (tensor<?x4x?xi32>, tensor<?x8x?x?xi32>)
  return
}
