func.func @score_kbar_batch(%q: tensor<2x?x8x64xbf16>, %kbar: tensor<3x4x?x64xbf16>) {
  %s = fp.block_score %q, %kbar : (tensor<2x?x8x64xbf16>, tensor<3x4x?x64xbf16>) -> tensor<2x8x?x?xf32>
  return
}
