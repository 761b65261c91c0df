func.func @score_result(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  %s = fp.block_score %q, %kbar : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> tensor<?x4x?x?xf32>
  return
}
