func.func @score_kbar_blocks(%q: tensor<?x256x8x64xbf16>, %kbar: tensor<?x4x3x64xbf16>) {
  %s = fp.block_score %q, %kbar : (tensor<?x256x8x64xbf16>, tensor<?x4x3x64xbf16>) -> tensor<?x8x?x?xf32>
  return
}
