func.func @prefill(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>,
                   %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %out, %lse = fp.prefill %q, %k, %v {
      block_size = 128 : i64,
      threshold = #fp.threshold<kind = relative_max, alpha = 0.1, sink = 2,
                                window = 4, last_n = 2, min_budget = 0>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>)
      -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %out, %lse : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}
