module attributes {fp.arch = "sm_90a"} {
  func.func @unfused(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x8x?x64xbf16>) -> tensor<?x8x?x?xf32> {
    %s = fp.block_score %q, %kbar : (tensor<?x?x8x64xbf16>, tensor<?x8x?x64xbf16>) -> tensor<?x8x?x?xf32>
    return %s : tensor<?x8x?x?xf32>
  }
}
