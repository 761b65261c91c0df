func.func @score_only(%q: tensor<?x?x4x64xf16>, %kbar: tensor<?x4x?x64xf16>) -> tensor<?x4x?x?xf32> {
  %s = fp.block_score %q, %kbar : (tensor<?x?x4x64xf16>, tensor<?x4x?x64xf16>) -> tensor<?x4x?x?xf32>
  return %s : tensor<?x4x?x?xf32>
}
