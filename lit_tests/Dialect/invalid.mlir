// RUN: fp-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect

func.func @head_dim_not_multiple_of_16(%q: tensor<?x?x4x72xbf16>, %k: tensor<?x?x4x72xbf16>, %v: tensor<?x?x4x72xbf16>) {
  // expected-error @+1 {{'q': expected a head dim that is a multiple of 16 in [16, 256], got 72}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x72xbf16>, tensor<?x?x4x72xbf16>, tensor<?x?x4x72xbf16>) -> (tensor<?x?x4x72xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @head_dim_too_large(%q: tensor<?x?x4x512xbf16>, %k: tensor<?x?x4x512xbf16>, %v: tensor<?x?x4x512xbf16>) {
  // expected-error @+1 {{'q': expected a head dim that is a multiple of 16 in [16, 256], got 512}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x512xbf16>, tensor<?x?x4x512xbf16>, tensor<?x?x4x512xbf16>) -> (tensor<?x?x4x512xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @dynamic_heads(%q: tensor<?x?x?x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'q': expected a static head count (dim 2), got ?}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x?x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x?x64xbf16>, tensor<?x?x?xf32>)
  return
}

// -----

func.func @dynamic_head_dim(%q: tensor<?x?x4x?xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'q': expected a static head dim (dim 3), got ?}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x?xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x4x?xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @wrong_rank(%q: tensor<?x4x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'q': expected rank 4 [b, s, h, d], got 'tensor<?x4x64xbf16>'}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x4x64xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @f32_inputs(%q: tensor<?x?x4x64xf32>, %k: tensor<?x?x4x64xf32>, %v: tensor<?x?x4x64xf32>) {
  // expected-error @+1 {{'q': expected element type bf16 or f16, got 'f32'}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>, tensor<?x?x4x64xf32>) -> (tensor<?x?x4x64xf32>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @mixed_dtypes(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x?x4x64xf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'k': expected element type 'bf16' (same as 'q'), got 'f16'}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x?x4x64xf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x4x64xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @kv_head_dim_mismatch(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x?x4x128xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'k': expected head dim 64 (same as 'q'), got 128}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x?x4x128xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x4x64xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @v_head_dim_mismatch(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x128xbf16>) {
  // expected-error @+1 {{'v': expected head dim 64 (same as 'q'; d_v != d is not supported yet), got 128}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x128xbf16>) -> (tensor<?x?x4x64xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @group_not_integral(%q: tensor<?x?x6x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{expected query heads (6) to be a multiple of key/value heads (4)}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x6x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x6x64xbf16>, tensor<?x6x?xf32>)
  return
}

// -----

func.func @kv_heads_differ(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x2x64xbf16>) {
  // expected-error @+1 {{'v': expected 4 heads (same as 'k'), got 2}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x8x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x2x64xbf16>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return
}

// -----

func.func @batch_mismatch(%q: tensor<2x?x4x64xbf16>, %k: tensor<3x?x4x64xbf16>, %v: tensor<3x?x4x64xbf16>) {
  // expected-error @+1 {{'k' and 'v': expected batch 2 (same as 'q')}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<2x?x4x64xbf16>, tensor<3x?x4x64xbf16>, tensor<3x?x4x64xbf16>) -> (tensor<2x?x4x64xbf16>, tensor<2x4x?xf32>)
  return
}

// -----

func.func @kv_length_mismatch(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x100x4x64xbf16>, %v: tensor<?x90x4x64xbf16>) {
  // expected-error @+1 {{'v': expected 100 tokens (same as 'k'), got 90}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x100x4x64xbf16>, tensor<?x90x4x64xbf16>) -> (tensor<?x?x4x64xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @out_shape(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'out': expected tensor<?x?x4x64xbf16> [b, s_q, h_q, d] (like 'q'), got 'tensor<?x?x4x64xf16>'}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x4x64xf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @lse_shape(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'lse': expected tensor<?x4x?xf32> [b, h_q, s_q], got 'tensor<?x2x?xf32>'}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x4x64xbf16>, tensor<?x2x?xf32>)
  return
}

// -----

func.func @block_size_not_power_of_two(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{block_size: expected a power of two in [16, 256], got 96}}
  %o, %l = fp.prefill %q, %k, %v {block_size = 96 : i64, threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x4x64xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @block_size_too_large(%k: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{block_size: expected a power of two in [16, 256], got 512}}
  %kbar = fp.block_pool %k {block_size = 512 : i64} : (tensor<?x?x4x64xbf16>) -> tensor<?x4x?x64xbf16>
  return
}

// -----

func.func @alpha_above_one() {
  // expected-error @+1 {{alpha: expected a value in [0, 1], got 1.5}}
  "test.use"() {threshold = #fp.threshold<alpha = 1.5>} : () -> ()
  return
}

// -----

func.func @alpha_negative() {
  // expected-error @+1 {{alpha: expected a value in [0, 1], got -0.1}}
  "test.use"() {threshold = #fp.threshold<alpha = -0.1>} : () -> ()
  return
}

// -----

func.func @window_zero() {
  // expected-error @+1 {{window: expected a value >= 1 (the diagonal block is kept only by the window), got 0}}
  "test.use"() {threshold = #fp.threshold<window = 0>} : () -> ()
  return
}

// -----

func.func @sink_negative() {
  // expected-error @+1 {{sink: expected a value >= 0, got -1}}
  "test.use"() {threshold = #fp.threshold<sink = -1>} : () -> ()
  return
}

// -----

func.func @last_n_negative() {
  // expected-error @+1 {{last_n: expected a value >= 0, got -2}}
  "test.use"() {threshold = #fp.threshold<last_n = -2>} : () -> ()
  return
}

// -----

func.func @min_budget_negative() {
  // expected-error @+1 {{min_budget: expected a value >= 0, got -3}}
  "test.use"() {threshold = #fp.threshold<min_budget = -3>} : () -> ()
  return
}

// -----

func.func @pool_result_blocks(%k: tensor<?x200x4x64xbf16>) {
  // expected-error @+1 {{'pooled': expected tensor<?x4x2x64xbf16> [b, h, ceil(s / block_size), d], got 'tensor<?x4x3x64xbf16>'}}
  %kbar = fp.block_pool %k : (tensor<?x200x4x64xbf16>) -> tensor<?x4x3x64xbf16>
  return
}

// -----

func.func @pool_result_heads(%k: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'pooled': expected tensor<?x4x?x64xbf16> [b, h, ceil(s / block_size), d], got 'tensor<?x8x?x64xbf16>'}}
  %kbar = fp.block_pool %k : (tensor<?x?x4x64xbf16>) -> tensor<?x8x?x64xbf16>
  return
}

// -----

func.func @score_kbar_blocks(%q: tensor<?x256x8x64xbf16>, %kbar: tensor<?x4x3x64xbf16>) {
  // expected-error @+1 {{'kbar': expected 2 blocks (ceil(s / block_size) of 'query'), got 3}}
  %s = fp.block_score %q, %kbar : (tensor<?x256x8x64xbf16>, tensor<?x4x3x64xbf16>) -> tensor<?x8x?x?xf32>
  return
}

// -----

func.func @score_kbar_dtype(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xf16>) {
  // expected-error @+1 {{'kbar': expected element type 'bf16' (same as 'query'), got 'f16'}}
  %s = fp.block_score %q, %kbar : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xf16>) -> tensor<?x8x?x?xf32>
  return
}

// -----

func.func @score_kbar_head_dim(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x128xbf16>) {
  // expected-error @+1 {{'kbar': expected head dim 64 (same as 'query'), got 128}}
  %s = fp.block_score %q, %kbar : (tensor<?x?x8x64xbf16>, tensor<?x4x?x128xbf16>) -> tensor<?x8x?x?xf32>
  return
}

// -----

func.func @score_kbar_batch(%q: tensor<2x?x8x64xbf16>, %kbar: tensor<3x4x?x64xbf16>) {
  // expected-error @+1 {{'kbar': expected batch 2 (same as 'query'), got 3}}
  %s = fp.block_score %q, %kbar : (tensor<2x?x8x64xbf16>, tensor<3x4x?x64xbf16>) -> tensor<2x8x?x?xf32>
  return
}

// -----

func.func @score_group(%q: tensor<?x?x6x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{expected query heads (6) to be a multiple of key/value heads (4)}}
  %s = fp.block_score %q, %kbar : (tensor<?x?x6x64xbf16>, tensor<?x4x?x64xbf16>) -> tensor<?x6x?x?xf32>
  return
}

// -----

func.func @score_result(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{'scores': expected tensor<?x8x?x?xf32> [b, h_q, nb, nb], got 'tensor<?x4x?x?xf32>'}}
  %s = fp.block_score %q, %kbar : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> tensor<?x4x?x?xf32>
  return
}

// -----

func.func @score_pooled_query_layout(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{'query': expected static heads (dim 1) and head dim (dim 3), got 'tensor<?x?x8x64xbf16>'}}
  %s = fp.block_score %q, %kbar {query_kind = #fp<query_kind pooled>} : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> tensor<?x8x?x?xf32>
  return
}

// -----

func.func @threshold_scores_not_square(%s: tensor<?x8x4x5xf32>) {
  // expected-error @+1 {{'scores': expected tensor<?x?x?x?xf32> [b, h_q, nb, nb], got 'tensor<?x8x4x5xf32>'}}
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : (tensor<?x8x4x5xf32>) -> (tensor<?x8x4xi32>, tensor<?x8x4x4xi32>)
  return
}

// -----

func.func @threshold_counts_type(%s: tensor<?x8x?x?xf32>) {
  // expected-error @+1 {{'counts': expected tensor<?x8x?xi32> [b, h_q, nb], got 'tensor<?x8xi32>'}}
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : (tensor<?x8x?x?xf32>) -> (tensor<?x8xi32>, tensor<?x8x?x?xi32>)
  return
}

// -----

func.func @threshold_ids_heads(%s: tensor<?x8x?x?xf32>) {
  // expected-error @+1 {{'ids': expected tensor<?x8x?x?xi32> [b, h_q, nb, nb], got 'tensor<?x4x?x?xi32>'}}
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : (tensor<?x8x?x?xf32>) -> (tensor<?x8x?xi32>, tensor<?x4x?x?xi32>)
  return
}

// -----

func.func @attention_mask_blocks(%q: tensor<?x300x8x64xbf16>, %k: tensor<?x300x4x64xbf16>, %v: tensor<?x300x4x64xbf16>,
                                 %c: tensor<?x8x4xi32>, %i: tensor<?x8x4x4xi32>) {
  // expected-error @+1 {{'counts': expected tensor<?x8x3xi32> [b, h_q, nb], got 'tensor<?x8x4xi32>'}}
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i : (tensor<?x300x8x64xbf16>, tensor<?x300x4x64xbf16>, tensor<?x300x4x64xbf16>, tensor<?x8x4xi32>, tensor<?x8x4x4xi32>) -> (tensor<?x300x8x64xbf16>, tensor<?x8x300xf32>)
  return
}

// -----

func.func @attention_mask_heads(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>,
                                %c: tensor<?x8x?xi32>, %i: tensor<?x2x?x?xi32>) {
  // expected-error @+1 {{'ids': expected tensor<?x8x?x?xi32> [b, h_q, nb, nb], got 'tensor<?x2x?x?xi32>'}}
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i : (tensor<?x?x8x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x8x?xi32>, tensor<?x2x?x?xi32>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return
}

// -----

func.func @discovery_scores_type(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{'scores': expected tensor<?x8x?x?xf32> [b, h_q, nb, nb], got 'tensor<?x8x?x?xf16>'}}
  %c, %i, %s = fp.pattern_discovery %q, %kbar {threshold = #fp.threshold<>} : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> (tensor<?x8x?xi32>, tensor<?x8x?x?xi32>, tensor<?x8x?x?xf16>)
  return
}

// -----

func.func @discovery_mask_heads(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{'counts': expected tensor<?x8x?xi32> [b, h_q, nb], got 'tensor<?x4x?xi32>'}}
  %c, %i = fp.pattern_discovery %q, %kbar {threshold = #fp.threshold<>} : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> (tensor<?x4x?xi32>, tensor<?x8x?x?xi32>)
  return
}

// -----

func.func @zero_query_heads(%q: tensor<?x?x0x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'q': expected a head count (dim 2) in [1, 2147483647], got 0}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x0x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x0x64xbf16>, tensor<?x0x?xf32>)
  return
}

// -----

func.func @zero_kv_heads(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x?x0x64xbf16>, %v: tensor<?x?x0x64xbf16>) {
  // expected-error @+1 {{'k': expected a head count (dim 2) in [1, 2147483647], got 0}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x?x0x64xbf16>, tensor<?x?x0x64xbf16>) -> (tensor<?x?x4x64xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @query_heads_above_int32(%q: tensor<?x?x4294967296x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{'q': expected a head count (dim 2) in [1, 2147483647], got 4294967296}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x?x4294967296x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x4294967296x64xbf16>, tensor<?x4294967296x?xf32>)
  return
}

// -----

func.func @pooled_heads_above_int32(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x2147483648x?x64xbf16>) {
  // expected-error @+1 {{'kbar': expected a head count (dim 1) in [1, 2147483647], got 2147483648}}
  %s = fp.block_score %q, %kbar : (tensor<?x?x8x64xbf16>, tensor<?x2147483648x?x64xbf16>) -> tensor<?x8x?x?xf32>
  return
}

// -----

func.func @scale_nan(%q: tensor<?x?x4x64xbf16>, %k: tensor<?x?x4x64xbf16>, %v: tensor<?x?x4x64xbf16>) {
  // expected-error @+1 {{scale: expected a finite value, got nan}}
  %o, %l = fp.prefill %q, %k, %v {scale = 0x7FC00000 : f32, threshold = #fp.threshold<>} : (tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>, tensor<?x?x4x64xbf16>) -> (tensor<?x?x4x64xbf16>, tensor<?x4x?xf32>)
  return
}

// -----

func.func @scale_infinite(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{scale: expected a finite value, got inf}}
  %s = fp.block_score %q, %kbar {scale = 0x7F800000 : f32} : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> tensor<?x8x?x?xf32>
  return
}

// -----

func.func @discovery_scale_negative_infinite(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{scale: expected a finite value, got -inf}}
  %c, %i = fp.pattern_discovery %q, %kbar {scale = 0xFF800000 : f32, threshold = #fp.threshold<>} : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> (tensor<?x8x?xi32>, tensor<?x8x?x?xi32>)
  return
}

// -----

func.func @attention_scale_nan(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>,
                               %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) {
  // expected-error @+1 {{scale: expected a finite value, got nan}}
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {scale = 0x7FC00000 : f32} : (tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return
}

// -----

// Reported on the op the user wrote: before, fp.prefill verified and the
// error came from the internal fp.block_score its expansion creates.
func.func @prefill_lengths_differ(%q: tensor<?x100x4x64xbf16>, %k: tensor<?x300x4x64xbf16>, %v: tensor<?x300x4x64xbf16>) {
  // expected-error @+1 {{'fp.prefill' op s_q = 100 and s_k = 300 is unsupported: only s_q == s_k (prefill) is implemented}}
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>} : (tensor<?x100x4x64xbf16>, tensor<?x300x4x64xbf16>, tensor<?x300x4x64xbf16>) -> (tensor<?x100x4x64xbf16>, tensor<?x4x100xf32>)
  return
}
