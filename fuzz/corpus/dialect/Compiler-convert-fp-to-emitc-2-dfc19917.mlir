module {
  func.func @no_arch(%k: tensor<?x?x8x64xf16>) -> tensor<?x8x?x64xf16> {
    %kbar = fp.block_pool %k {tile = #fp.pool_tile<threads = 128>} : (tensor<?x?x8x64xf16>) -> tensor<?x8x?x64xf16>
    return %kbar : tensor<?x8x?x64xf16>
  }
}
