// RUN: fp-opt %s | fp-opt | FileCheck %s
// RUN: fp-opt %s --mlir-print-op-generic | fp-opt | FileCheck %s
// The varlen ops (docs/semantics.md section 2) round-trip: q [total_q, h_q, d],
// K/V packed [total_k, h_kv, d] (sequences: cu_seqlens_q, cu_seqlens_k) or
// paged [num_pages, page_size, h_kv, d] (cu_seqlens_q, page_table, k_lens).

// CHECK-LABEL: func.func @packed
// CHECK: fp.prefill_varlen {{.*}} {threshold = #fp.threshold<alpha = 0.2>}
// CHECK-SAME: (tensor<?x32x128xbf16>, tensor<?x8x128xbf16>, tensor<?x8x128xbf16>, tensor<?xi32>, tensor<?xi32>) -> (tensor<?x32x128xbf16>, tensor<32x?xf32>)
func.func @packed(%q: tensor<?x32x128xbf16>, %k: tensor<?x8x128xbf16>, %v: tensor<?x8x128xbf16>,
                  %cu_q: tensor<?xi32>, %cu_k: tensor<?xi32>) -> (tensor<?x32x128xbf16>, tensor<32x?xf32>) {
  %o, %l = fp.prefill_varlen %q, %k, %v, %cu_q, %cu_k {threshold = #fp.threshold<alpha = 0.2>}
    : (tensor<?x32x128xbf16>, tensor<?x8x128xbf16>, tensor<?x8x128xbf16>, tensor<?xi32>, tensor<?xi32>)
      -> (tensor<?x32x128xbf16>, tensor<32x?xf32>)
  return %o, %l : tensor<?x32x128xbf16>, tensor<32x?xf32>
}

// CHECK-LABEL: func.func @paged
// CHECK: fp.prefill_varlen
// CHECK-SAME: (tensor<100x4x64xf16>, tensor<?x16x2x64xf16>, tensor<?x16x2x64xf16>, tensor<3xi32>, tensor<2x?xi32>, tensor<2xi32>) -> (tensor<100x4x64xf16>, tensor<4x100xf32>)
func.func @paged(%q: tensor<100x4x64xf16>, %k: tensor<?x16x2x64xf16>, %v: tensor<?x16x2x64xf16>,
                 %cu_q: tensor<3xi32>, %pages: tensor<2x?xi32>, %k_lens: tensor<2xi32>)
    -> (tensor<100x4x64xf16>, tensor<4x100xf32>) {
  %o, %l = fp.prefill_varlen %q, %k, %v, %cu_q, %pages, %k_lens {block_size = 64 : i64, threshold = #fp.threshold<>}
    : (tensor<100x4x64xf16>, tensor<?x16x2x64xf16>, tensor<?x16x2x64xf16>, tensor<3xi32>, tensor<2x?xi32>, tensor<2xi32>)
      -> (tensor<100x4x64xf16>, tensor<4x100xf32>)
  return %o, %l : tensor<100x4x64xf16>, tensor<4x100xf32>
}

// CHECK-LABEL: func.func @pooled_queries
// CHECK: %[[QBAR:.+]] = fp.varlen_query_pool {{.*}} : (tensor<?x4x64xf16>, tensor<3xi32>, tensor<3xi32>) -> tensor<?x4x64xf16>
// CHECK: fp.varlen_pattern_discovery %[[QBAR]], {{.*}}query_kind = #fp<query_kind pooled>
func.func @pooled_queries(%q: tensor<?x4x64xf16>, %kbar: tensor<2x2x?x64xf16>, %cu_q: tensor<3xi32>, %cu_k: tensor<3xi32>) {
  %qbar = fp.varlen_query_pool %q, %cu_q, %cu_k {block_size = 64 : i64}
    : (tensor<?x4x64xf16>, tensor<3xi32>, tensor<3xi32>) -> tensor<?x4x64xf16>
  %c, %i = fp.varlen_pattern_discovery %qbar, %kbar, %cu_q, %cu_k {block_size = 64 : i64,
      query_kind = #fp<query_kind pooled>, threshold = #fp.threshold<>}
    : (tensor<?x4x64xf16>, tensor<2x2x?x64xf16>, tensor<3xi32>, tensor<3xi32>) -> (tensor<?x4xi32>, tensor<?x4x?xi32>)
  return
}

// CHECK-LABEL: func.func @steps
// CHECK: %[[KBAR:.+]] = fp.varlen_block_pool {{.*}} {tile = #fp.pool_tile<threads = 128>}
// CHECK: %[[C:.+]], %[[I:.+]] = fp.varlen_pattern_discovery %{{[^,]+}}, %[[KBAR]], {{.*}} {threshold = #fp.threshold<>}
// CHECK-SAME: -> (tensor<?x32xi32>, tensor<?x32x?xi32>)
// CHECK: fp.varlen_masked_attention {{.*}}, %[[C]], %[[I]], {{.*}}tile = #fp.attention_tile<block_m = 128, block_n = 32, warps = 4, stages = 2>
func.func @steps(%q: tensor<?x32x128xbf16>, %k: tensor<?x1x8x128xbf16>, %v: tensor<?x1x8x128xbf16>,
                 %cu_q: tensor<?xi32>, %pages: tensor<?x?xi32>, %k_lens: tensor<?xi32>)
    -> (tensor<?x32x128xbf16>, tensor<32x?xf32>) {
  %kbar = fp.varlen_block_pool %k, %cu_q, %pages, %k_lens {tile = #fp.pool_tile<threads = 128>}
    : (tensor<?x1x8x128xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x8x?x128xbf16>
  %c, %i = fp.varlen_pattern_discovery %q, %kbar, %cu_q, %pages, %k_lens {threshold = #fp.threshold<>}
    : (tensor<?x32x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>)
      -> (tensor<?x32xi32>, tensor<?x32x?xi32>)
  %o, %l = fp.varlen_masked_attention %q, %k, %v, %c, %i, %cu_q, %pages, %k_lens {
      tile = #fp.attention_tile<block_m = 128, block_n = 32, warps = 4, stages = 2>}
    : (tensor<?x32x128xbf16>, tensor<?x1x8x128xbf16>, tensor<?x1x8x128xbf16>, tensor<?x32xi32>, tensor<?x32x?xi32>,
       tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) -> (tensor<?x32x128xbf16>, tensor<32x?xf32>)
  return %o, %l : tensor<?x32x128xbf16>, tensor<32x?xf32>
}
