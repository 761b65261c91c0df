func.func @discovery_scores_type(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  %c, %i, %s = fp.pattern_discovery %q, %kbar {threshold = #fp.threshold<>} : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> (tensor<?x8x?xi32>, tensor<?x8x?x?xi32>, tensor<?x8x?x?xf16>)
  return
}
