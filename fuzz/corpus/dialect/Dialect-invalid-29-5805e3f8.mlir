func.func @score_group(%q: tensor<?x?x6x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  %s = fp.block_score %q, %kbar : (tensor<?x?x6x64xbf16>, tensor<?x4x?x64xbf16>) -> tensor<?x6x?x?xf32>
  return
}
