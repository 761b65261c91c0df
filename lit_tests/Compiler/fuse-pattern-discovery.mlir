// RUN: fp-opt %s -split-input-file -fp-fuse-pattern-discovery | FileCheck %s

// CHECK-LABEL: func.func @fuse
// CHECK-SAME: (%[[Q:.+]]: tensor<?x?x32x128xbf16>, %[[KBAR:.+]]: tensor<?x8x?x128xbf16>)
// CHECK-NOT: fp.block_score
// CHECK-NOT: fp.threshold_mask
// CHECK: %[[C:.+]], %[[I:.+]] = fp.pattern_discovery %[[Q]], %[[KBAR]] {scale = 1.250000e-01 : f32, threshold = #fp.threshold<alpha = 0.3>}
// CHECK-SAME: -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
// CHECK: return %[[C]], %[[I]]
func.func @fuse(%q: tensor<?x?x32x128xbf16>, %kbar: tensor<?x8x?x128xbf16>)
    -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>) {
  %s = fp.block_score %q, %kbar {scale = 0.125 : f32} : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x?x?xf32>
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<alpha = 0.3>} : (tensor<?x32x?x?xf32>) -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
  return %c, %i : tensor<?x32x?xi32>, tensor<?x32x?x?xi32>
}

// -----

// Scores with another user: the fused op must write them.
// CHECK-LABEL: func.func @scores_escape
// CHECK: %[[C:.+]], %[[I:.+]], %[[S:.+]] = fp.pattern_discovery
// CHECK-NOT: fp.block_score
// CHECK: return %[[C]], %[[I]], %[[S]]
func.func @scores_escape(%q: tensor<?x?x4x64xf16>, %kbar: tensor<?x4x?x64xf16>)
    -> (tensor<?x4x?xi32>, tensor<?x4x?x?xi32>, tensor<?x4x?x?xf32>) {
  %s = fp.block_score %q, %kbar : (tensor<?x?x4x64xf16>, tensor<?x4x?x64xf16>) -> tensor<?x4x?x?xf32>
  %c, %i = fp.threshold_mask %s {threshold = #fp.threshold<>} : (tensor<?x4x?x?xf32>) -> (tensor<?x4x?xi32>, tensor<?x4x?x?xi32>)
  return %c, %i, %s : tensor<?x4x?xi32>, tensor<?x4x?x?xi32>, tensor<?x4x?x?xf32>
}

// -----

// A block_score without threshold_mask is left alone.
// CHECK-LABEL: func.func @score_only
// CHECK: fp.block_score
// CHECK-NOT: fp.pattern_discovery
func.func @score_only(%q: tensor<?x?x4x64xf16>, %kbar: tensor<?x4x?x64xf16>) -> tensor<?x4x?x?xf32> {
  %s = fp.block_score %q, %kbar : (tensor<?x?x4x64xf16>, tensor<?x4x?x64xf16>) -> tensor<?x4x?x?xf32>
  return %s : tensor<?x4x?x?xf32>
}
