func.func @pool(%k: tensor<?x?x8x64xbf16>) -> tensor<?x8x?x64xbf16> {
  %kbar = fp.block_pool %k : (tensor<?x?x8x64xbf16>) -> tensor<?x8x?x64xbf16>
  return %kbar : tensor<?x8x?x64xbf16>
}
