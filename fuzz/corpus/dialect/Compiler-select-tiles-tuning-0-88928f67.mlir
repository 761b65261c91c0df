func.func @f(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}
{"format": "flashprefill-tuning", "version": 1, "entries": [
  {"arch": "sm_90a", "head_dim": 128, "dtype": "bf16", "block_size": 128, "group": 4,
   "length_bucket": 32768, "kernel": "attention",
   "config": {"block_m": 128, "block_n": 32, "warps": 4, "stages": 2}, "ms": 5.0},
  {"arch": "sm_90a", "head_dim": 128, "dtype": "bf16", "block_size": 128, "group": 4,
   "length_bucket": 32768, "kernel": "attention",
   "config": {"block_m": 64, "block_n": 64, "warps": 4, "stages": 3}, "ms": 4.5},
  {"arch": "sm_90a", "head_dim": 128, "dtype": "bf16", "block_size": 128, "group": 4,
   "length_bucket": 32768, "kernel": "discovery",
   "config": {"key_chunk": 128, "warps": 8}, "ms": 0.3}
]}
{"format": "flashprefill-tuning", "version": 1, "entries": [
{"format": "flashprefill-tuning", "version": 2, "entries": []}
