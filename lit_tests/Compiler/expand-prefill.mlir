// RUN: fp-opt %s -split-input-file -fp-expand-prefill | FileCheck %s

// CHECK-LABEL: func.func @full_queries
// CHECK-SAME: (%[[Q:.+]]: tensor<?x?x32x128xbf16>, %[[K:.+]]: tensor<?x?x8x128xbf16>, %[[V:.+]]: tensor<?x?x8x128xbf16>)
// CHECK: %[[KBAR:.+]] = fp.block_pool %[[K]] : (tensor<?x?x8x128xbf16>) -> tensor<?x8x?x128xbf16>
// CHECK: %[[S:.+]] = fp.block_score %[[Q]], %[[KBAR]] {scale = 2.500000e-01 : f32} : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x?x?xf32>
// CHECK: %[[C:.+]], %[[I:.+]] = fp.threshold_mask %[[S]] {threshold = #fp.threshold<alpha = 0.2, sink = 1>}
// CHECK-SAME: -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
// CHECK: %[[O:.+]], %[[L:.+]] = fp.masked_attention %[[Q]], %[[K]], %[[V]], %[[C]], %[[I]] {scale = 2.500000e-01 : f32}
// CHECK-NOT: fp.prefill
// CHECK: return %[[O]], %[[L]]
func.func @full_queries(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {scale = 0.25 : f32, threshold = #fp.threshold<alpha = 0.2, sink = 1>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

// -----

// Pooled queries pool Q too; static lengths give static block counts
// (300 tokens / 64 = 5 blocks).
// CHECK-LABEL: func.func @pooled_queries
// CHECK: %[[KBAR:.+]] = fp.block_pool %{{.+}} {block_size = 64 : i64} : (tensor<2x300x2x64xf16>) -> tensor<2x2x5x64xf16>
// CHECK: %[[QBAR:.+]] = fp.block_pool %{{.+}} {block_size = 64 : i64} : (tensor<2x300x8x64xf16>) -> tensor<2x8x5x64xf16>
// CHECK: fp.block_score %[[QBAR]], %[[KBAR]] {block_size = 64 : i64, query_kind = #fp<query_kind pooled>}
// CHECK-SAME: -> tensor<2x8x5x5xf32>
// CHECK: fp.threshold_mask {{.*}} -> (tensor<2x8x5xi32>, tensor<2x8x5x5xi32>)
// CHECK: fp.masked_attention {{.*}}block_size = 64 : i64
func.func @pooled_queries(%q: tensor<2x300x8x64xf16>, %k: tensor<2x300x2x64xf16>, %v: tensor<2x300x2x64xf16>)
    -> (tensor<2x300x8x64xf16>, tensor<2x8x300xf32>) {
  %o, %l = fp.prefill %q, %k, %v {block_size = 64 : i64, query_kind = #fp<query_kind pooled>, threshold = #fp.threshold<>}
    : (tensor<2x300x8x64xf16>, tensor<2x300x2x64xf16>, tensor<2x300x2x64xf16>) -> (tensor<2x300x8x64xf16>, tensor<2x8x300xf32>)
  return %o, %l : tensor<2x300x8x64xf16>, tensor<2x8x300xf32>
}
