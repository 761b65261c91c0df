func.func @unsupported_head_dim(%k: tensor<?x?x8x96xbf16>) {
  %kbar = fp.block_pool %k : (tensor<?x?x8x96xbf16>) -> tensor<?x8x?x96xbf16>
  return
}
