func.func @block_size_too_large(%k: tensor<?x?x4x64xbf16>) {
  %kbar = fp.block_pool %k {block_size = 512 : i64} : (tensor<?x?x4x64xbf16>) -> tensor<?x4x?x64xbf16>
  return
}
