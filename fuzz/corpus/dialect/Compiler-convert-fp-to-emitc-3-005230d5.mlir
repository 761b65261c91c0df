module attributes {fp.arch = "sm_90a"} {
  func.func @no_tile(%k: tensor<?x?x8x64xf16>) -> tensor<?x8x?x64xf16> {
    %kbar = fp.block_pool %k : (tensor<?x?x8x64xf16>) -> tensor<?x8x?x64xf16>
    return %kbar : tensor<?x8x?x64xf16>
  }
}
