// RUN: fp-opt %s -split-input-file -verify-diagnostics
// Each diagnostic of the varlen verifiers names the operand and the expected value.

func.func @q_rank(%q: tensor<1x?x4x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{'q': expected rank 3 [total_q, h, d], got 'tensor<1x?x4x64xbf16>'}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %ck {threshold = #fp.threshold<>} : (tensor<1x?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<1x?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @k_rank(%q: tensor<?x4x64xbf16>, %k: tensor<?x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{'k': expected rank 3 [total_k, h, d] (packed) or rank 4 [num_pages, page_size, h, d] (paged), got 'tensor<?x64xbf16>'}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %ck {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x64xbf16>, tensor<?x4x64xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @page_size(%q: tensor<?x4x64xbf16>, %k: tensor<?x24x4x64xbf16>, %v: tensor<?x24x4x64xbf16>, %cq: tensor<?xi32>, %pt: tensor<?x?xi32>, %kl: tensor<?xi32>) {
  // expected-error @+1 {{'k': expected a page size (dim 1) that is a power of two in [1, 256], got 24}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %pt, %kl {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x24x4x64xbf16>, tensor<?x24x4x64xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @page_size_too_large(%q: tensor<?x4x64xbf16>, %k: tensor<?x512x4x64xbf16>, %v: tensor<?x512x4x64xbf16>, %cq: tensor<?xi32>, %pt: tensor<?x?xi32>, %kl: tensor<?xi32>) {
  // expected-error @+1 {{'k': expected a page size (dim 1) that is a power of two in [1, 256], got 512}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %pt, %kl {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x512x4x64xbf16>, tensor<?x512x4x64xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @mixed_layouts(%q: tensor<?x4x64xbf16>, %k: tensor<?x16x4x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<?xi32>, %pt: tensor<?x?xi32>, %kl: tensor<?xi32>) {
  // expected-error @+1 {{'v': expected the layout of 'k' (paged, rank 4), got packed, rank 3}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %pt, %kl {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x16x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @different_page_sizes(%q: tensor<?x4x64xbf16>, %k: tensor<?x16x4x64xbf16>, %v: tensor<?x32x4x64xbf16>, %cq: tensor<?xi32>, %pt: tensor<?x?xi32>, %kl: tensor<?xi32>) {
  // expected-error @+1 {{'v': expected the pages and page size of 'k'}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %pt, %kl {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x16x4x64xbf16>, tensor<?x32x4x64xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @packed_with_page_table(%q: tensor<?x4x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<?xi32>, %pt: tensor<?x?xi32>, %kl: tensor<?xi32>) {
  // expected-error @+1 {{'sequences': expected 2 operands (cu_seqlens_q, cu_seqlens_k for packed K/V), got 3}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %pt, %kl {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @paged_without_k_lens(%q: tensor<?x4x64xbf16>, %k: tensor<?x16x4x64xbf16>, %v: tensor<?x16x4x64xbf16>, %cq: tensor<?xi32>, %pt: tensor<?x?xi32>) {
  // expected-error @+1 {{'sequences': expected 3 operands (cu_seqlens_q, page_table, k_lens for paged K/V), got 2}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %pt {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x16x4x64xbf16>, tensor<?x16x4x64xbf16>, tensor<?xi32>, tensor<?x?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @cu_seqlens_type(%q: tensor<?x4x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<?xf32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{'cu_seqlens_q': expected tensor<?xi32> [b + 1], got 'tensor<?xf32>'}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %ck {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?xf32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @no_sequence(%q: tensor<?x4x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<1xi32>, %ck: tensor<1xi32>) {
  // expected-error @+1 {{'cu_seqlens_q': expected b + 1 >= 2 offsets (at least one sequence), got 1}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %ck {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<1xi32>, tensor<1xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @cu_seqlens_k_batch(%q: tensor<?x4x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<3xi32>, %ck: tensor<4xi32>) {
  // expected-error @+1 {{'cu_seqlens_k': expected tensor<3xi32> [b + 1] (like 'cu_seqlens_q'), got 'tensor<4xi32>'}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %ck {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<3xi32>, tensor<4xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @page_table_batch(%q: tensor<?x4x64xbf16>, %k: tensor<?x16x4x64xbf16>, %v: tensor<?x16x4x64xbf16>, %cq: tensor<3xi32>, %pt: tensor<3x?xi32>, %kl: tensor<2xi32>) {
  // expected-error @+1 {{'page_table': expected tensor<2x?xi32> [b, max_pages], got 'tensor<3x?xi32>'}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %pt, %kl {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x16x4x64xbf16>, tensor<?x16x4x64xbf16>, tensor<3xi32>, tensor<3x?xi32>, tensor<2xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @lse_layout(%q: tensor<100x4x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{'lse': expected tensor<4x100xf32> [h_q, total_q], got 'tensor<100x4xf32>'}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %ck {threshold = #fp.threshold<>} : (tensor<100x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<100x4x64xbf16>, tensor<100x4xf32>)
  return
}

// -----

func.func @group(%q: tensor<?x6x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{expected query heads (6) to be a multiple of key/value heads (4)}}
  %o, %l = fp.prefill_varlen %q, %k, %v, %cq, %ck {threshold = #fp.threshold<>} : (tensor<?x6x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x6x64xbf16>, tensor<6x?xf32>)
  return
}

// -----

func.func @pool_result(%k: tensor<?x4x64xbf16>, %cq: tensor<3xi32>, %ck: tensor<3xi32>) {
  // expected-error @+1 {{'pooled': expected tensor<2x4x?x64xbf16> [b, h_kv, max_key_blocks, d], got 'tensor<3x4x?x64xbf16>'}}
  %kbar = fp.varlen_block_pool %k, %cq, %ck : (tensor<?x4x64xbf16>, tensor<3xi32>, tensor<3xi32>) -> tensor<3x4x?x64xbf16>
  return
}

// -----

func.func @query_pool_result(%q: tensor<?x4x64xbf16>, %cq: tensor<3xi32>, %ck: tensor<3xi32>) {
  // expected-error @+1 {{'pooled': expected tensor<?x4x64xbf16> [num_rows, h_q, d], got 'tensor<?x2x64xbf16>'}}
  %qbar = fp.varlen_query_pool %q, %cq, %ck : (tensor<?x4x64xbf16>, tensor<3xi32>, tensor<3xi32>) -> tensor<?x2x64xbf16>
  return
}

// -----

func.func @discovery_kbar_batch(%q: tensor<?x4x64xbf16>, %kbar: tensor<5x4x?x64xbf16>, %cq: tensor<3xi32>, %ck: tensor<3xi32>) {
  // expected-error @+1 {{'kbar': expected batch 2 (from 'cu_seqlens_q'), got 5}}
  %c, %i = fp.varlen_pattern_discovery %q, %kbar, %cq, %ck {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<5x4x?x64xbf16>, tensor<3xi32>, tensor<3xi32>) -> (tensor<?x4xi32>, tensor<?x4x?xi32>)
  return
}

// -----

func.func @discovery_mask(%q: tensor<?x4x64xbf16>, %kbar: tensor<?x4x7x64xbf16>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{'ids': expected tensor<?x4x7xi32> [num_rows, h_q, max_key_blocks] (rows of 'counts'), got 'tensor<?x4x8xi32>'}}
  %c, %i = fp.varlen_pattern_discovery %q, %kbar, %cq, %ck {threshold = #fp.threshold<>} : (tensor<?x4x64xbf16>, tensor<?x4x7x64xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4xi32>, tensor<?x4x8xi32>)
  return
}

// -----

func.func @attention_counts(%q: tensor<?x4x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %c: tensor<?x4x?xi32>, %i: tensor<?x4x?xi32>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{'counts': expected tensor<?x4xi32> [num_rows, h_q], got 'tensor<?x4x?xi32>'}}
  %o, %l = fp.varlen_masked_attention %q, %k, %v, %c, %i, %cq, %ck : (tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x?xi32>, tensor<?x4x?xi32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}

// -----

func.func @attention_tile(%q: tensor<?x4x64xbf16>, %k: tensor<?x4x64xbf16>, %v: tensor<?x4x64xbf16>, %c: tensor<?x4xi32>, %i: tensor<?x4x?xi32>, %cq: tensor<?xi32>, %ck: tensor<?xi32>) {
  // expected-error @+1 {{#fp.attention_tile block_m: expected a divisor of block_size 64, got 128}}
  %o, %l = fp.varlen_masked_attention %q, %k, %v, %c, %i, %cq, %ck {block_size = 64 : i64, tile = #fp.attention_tile<block_m = 128, block_n = 32, warps = 4, stages = 2>} : (tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4x64xbf16>, tensor<?x4xi32>, tensor<?x4x?xi32>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x4x64xbf16>, tensor<4x?xf32>)
  return
}
