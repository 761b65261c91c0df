// alpha, sink, window, last_n, min_budget, threshold kind, scale and the
// lengths are kernel arguments: changing them must not change the CUDA
// source (no recompile per request). Head dim, block size and dtype must.
//
// RUN: split-file %s %t
// RUN: fp-opt %t/base.mlir --fp-compile-pipeline --fp-emit=cuda -o %t/base.cu
// RUN: fp-opt %t/params.mlir --fp-compile-pipeline --fp-emit=cuda -o %t/params.cu
// RUN: fp-opt %t/lengths.mlir --fp-compile-pipeline --fp-emit=cuda -o %t/lengths.cu
// RUN: fp-opt %t/head-dim.mlir --fp-compile-pipeline --fp-emit=cuda -o %t/head-dim.cu
// RUN: fp-opt %t/block.mlir --fp-compile-pipeline --fp-emit=cuda -o %t/block.cu
// RUN: fp-opt %t/dtype.mlir --fp-compile-pipeline --fp-emit=cuda -o %t/dtype.cu
// RUN: diff %t/base.cu %t/params.cu
// RUN: diff %t/base.cu %t/lengths.cu
// RUN: not diff %t/base.cu %t/head-dim.cu
// RUN: not diff %t/base.cu %t/block.cu
// RUN: not diff %t/base.cu %t/dtype.cu
// RUN: fp-opt %t/base.mlir --fp-compile-pipeline="arch=sm_80" --fp-emit=cuda -o %t/sm80.cu
// RUN: not diff %t/base.cu %t/sm80.cu

//--- base.mlir
func.func @f(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

//--- params.mlir
func.func @f(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {scale = 0.3 : f32,
      threshold = #fp.threshold<kind = min_max, alpha = 0.7, sink = 5, window = 9, last_n = 0, min_budget = 3>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

//--- lengths.mlir
func.func @f(%q: tensor<2x4096x32x128xbf16>, %k: tensor<2x4096x8x128xbf16>, %v: tensor<2x4096x8x128xbf16>)
    -> (tensor<2x4096x32x128xbf16>, tensor<2x32x4096xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<2x4096x32x128xbf16>, tensor<2x4096x8x128xbf16>, tensor<2x4096x8x128xbf16>) -> (tensor<2x4096x32x128xbf16>, tensor<2x32x4096xf32>)
  return %o, %l : tensor<2x4096x32x128xbf16>, tensor<2x32x4096xf32>
}

//--- head-dim.mlir
func.func @f(%q: tensor<?x?x32x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>)
    -> (tensor<?x?x32x64xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x32x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>) -> (tensor<?x?x32x64xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x64xbf16>, tensor<?x32x?xf32>
}

//--- block.mlir
func.func @f(%q: tensor<?x?x32x128xbf16>, %k: tensor<?x?x8x128xbf16>, %v: tensor<?x?x8x128xbf16>)
    -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {block_size = 64 : i64, threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>) -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>
}

//--- dtype.mlir
func.func @f(%q: tensor<?x?x32x128xf16>, %k: tensor<?x?x8x128xf16>, %v: tensor<?x?x8x128xf16>)
    -> (tensor<?x?x32x128xf16>, tensor<?x32x?xf32>) {
  %o, %l = fp.prefill %q, %k, %v {threshold = #fp.threshold<>}
    : (tensor<?x?x32x128xf16>, tensor<?x?x8x128xf16>, tensor<?x?x8x128xf16>) -> (tensor<?x?x32x128xf16>, tensor<?x32x?xf32>)
  return %o, %l : tensor<?x?x32x128xf16>, tensor<?x32x?xf32>
}
