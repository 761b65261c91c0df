func.func @d64_b64_bf16(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>)
    -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {block_size = 64 : i64, threshold = #fp.threshold<>}
    : (tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return %o, %l : tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>
}

func.func @d64_b128_f16(%q: tensor<?x?x4x64xf16>, %k: tensor<?x?x1x64xf16>, %v: tensor<?x?x1x64xf16>)
    -> (tensor<?x?x4x64xf16>, tensor<?x4x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x4x64xf16>, tensor<?x?x1x64xf16>, tensor<?x?x1x64xf16>) -> (tensor<?x?x4x64xf16>, tensor<?x4x?xf32>)
  return %o, %l : tensor<?x?x4x64xf16>, tensor<?x4x?xf32>
}

func.func @d128_b64_f16(%q: tensor<?x?x32x128xf16>, %k: tensor<?x?x8x128xf16>, %v: tensor<?x?x8x128xf16>)
    -> (tensor<?x?x32x128xf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {block_size = 64 : i64, threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xf16>, tensor<?x?x8x128xf16>, tensor<?x?x8x128xf16>) -> (tensor<?x?x32x128xf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xf16>, tensor<?x32x?xf32>
}

func.func @d128_b128_bf16(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

func.func @d256_b64_bf16(%q: tensor<?x?x16x256xbf16>, %k: tensor<?x?x2x256xbf16>, %v: tensor<?x?x2x256xbf16>)
    -> (tensor<?x?x16x256xbf16>, tensor<?x16x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {block_size = 64 : i64, threshold = #fp.threshold<>}
    : (tensor<?x?x16x256xbf16>, tensor<?x?x2x256xbf16>, tensor<?x?x2x256xbf16>) -> (tensor<?x?x16x256xbf16>, tensor<?x16x?xf32>)
  return %o, %l : tensor<?x?x16x256xbf16>, tensor<?x16x?xf32>
}

func.func @d256_b128_f16(%q: tensor<?x?x8x256xf16>, %k: tensor<?x?x8x256xf16>, %v: tensor<?x?x8x256xf16>)
    -> (tensor<?x?x8x256xf16>, tensor<?x8x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x8x256xf16>, tensor<?x?x8x256xf16>, tensor<?x?x8x256xf16>) -> (tensor<?x?x8x256xf16>, tensor<?x8x?xf32>)
  return %o, %l : tensor<?x?x8x256xf16>, tensor<?x8x?xf32>
}
