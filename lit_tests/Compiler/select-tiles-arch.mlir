// RUN: not fp-opt %s -fp-select-tiles="arch=sm_75" 2>&1 | FileCheck %s
// RUN: fp-opt %s -fp-select-tiles="arch=sm_80" | FileCheck %s --check-prefix=SM80

// CHECK: arch: expected one of sm_80, sm_86, sm_89, sm_90, sm_90a, got 'sm_75'
// SM80: module attributes {fp.arch = "sm_80"}
func.func @pool(%k: tensor<?x?x8x64xbf16>) -> tensor<?x8x?x64xbf16> {
  %kbar = fp.block_pool %k : (tensor<?x?x8x64xbf16>) -> tensor<?x8x?x64xbf16>
  return %kbar : tensor<?x8x?x64xbf16>
}
