func.func @unsupported_block_size(%k: tensor<?x?x8x64xbf16>) {
  %kbar = fp.block_pool %k {block_size = 32 : i64} : (tensor<?x?x8x64xbf16>) -> tensor<?x8x?x64xbf16>
  return
}
