// The whole operator for a Llama-3-8B-style layer: 32 query heads, 8
// key/value heads, head dim 128, bf16, blocks of 128 tokens, the shared
// default threshold (alpha 0.1, 2 sink blocks, a 4-block window, the last 2
// query blocks dense). Batch and lengths are dynamic.
//
//   fp-opt examples/prefill.mlir                      # parse, verify, print
//   fp-opt examples/prefill.mlir --fp-compile-pipeline="arch=sm_90a" --fp-emit=cuda
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
