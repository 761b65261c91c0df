func.func @f(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

func.func @f(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {scale = 0.3 : f32,
      threshold = #fp.threshold<kind = min_max, alpha = 0.7, sink = 5, window = 9, last_n = 0, min_budget = 3>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

func.func @f(%q: tensor<2x4096x32x128xbf16>, %k: tensor<2x4096x8x128xbf16>, %v: tensor<2x4096x8x128xbf16>)
    -> (tensor<2x4096x32x128xbf16>, tensor<2x32x4096xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<2x4096x32x128xbf16>, tensor<2x4096x8x128xbf16>, tensor<2x4096x8x128xbf16>) -> (tensor<2x4096x32x128xbf16>, tensor<2x32x4096xf32>)
  return %o, %l : tensor<2x4096x32x128xbf16>, tensor<2x32x4096xf32>
}

func.func @f(%q: tensor<?x?x32x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>)
    -> (tensor<?x?x32x64xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x32x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>) -> (tensor<?x?x32x64xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x64xbf16>, tensor<?x32x?xf32>
}

func.func @f(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {block_size = 64 : i64, threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

func.func @f(%q: tensor<?x?x32x128xf16>, %k: tensor<?x?x8x128xf16>, %v: tensor<?x?x8x128xf16>)
    -> (tensor<?x?x32x128xf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xf16>, tensor<?x?x8x128xf16>, tensor<?x?x8x128xf16>) -> (tensor<?x?x32x128xf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xf16>, tensor<?x32x?xf32>
}
