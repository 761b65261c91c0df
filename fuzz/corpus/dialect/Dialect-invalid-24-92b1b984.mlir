func.func @pool_result_heads(%k: tensor<?x?x4x64xbf16>) {
  %kbar = fp.block_pool %k : (tensor<?x?x4x64xbf16>) -> tensor<?x8x?x64xbf16>
  return
}
