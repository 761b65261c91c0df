func.func @pool_result_blocks(%k: tensor<?x200x4x64xbf16>) {
  %kbar = fp.block_pool %k : (tensor<?x200x4x64xbf16>) -> tensor<?x4x3x64xbf16>
  return
}
