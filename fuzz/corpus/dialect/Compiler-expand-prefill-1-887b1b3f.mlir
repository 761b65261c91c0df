func.func @pooled_queries(%q: tensor<2x300x8x64xf16>, %k: tensor<2x300x2x64xf16>, %v: tensor<2x300x2x64xf16>)
    -> (tensor<2x300x8x64xf16>, tensor<2x8x300xf32>) {
  %o, %l = fp.prefill %q, %k, %v {block_size = 64 : i64, query_kind = #fp<query_kind pooled>, threshold = #fp.threshold<>}
    : (tensor<2x300x8x64xf16>, tensor<2x300x2x64xf16>, tensor<2x300x2x64xf16>) -> (tensor<2x300x8x64xf16>, tensor<2x8x300xf32>)
  return %o, %l : tensor<2x300x8x64xf16>, tensor<2x8x300xf32>
}
