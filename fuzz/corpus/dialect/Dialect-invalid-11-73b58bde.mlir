func.func @batch_mismatch(%q: tensor<2x?x4x64xbf16>, %k: tensor<3x?x4x64xbf16>, %v: tensor<3x?x4x64xbf16>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<2x?x4x64xbf16>, tensor<3x?x4x64xbf16>, tensor<3x?x4x64xbf16>) -> (tensor<2x?x4x64xbf16>, tensor<2x4x?xf32>)
  return
}
