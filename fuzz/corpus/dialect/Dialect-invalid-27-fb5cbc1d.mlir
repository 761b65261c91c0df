func.func @score_kbar_head_dim(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x128xbf16>) {
  %s = fp.block_score %q, %kbar : (tensor<?x?x8x64xbf16>, tensor<?x4x?x128xbf16>) -> tensor<?x8x?x?xf32>
  return
}
