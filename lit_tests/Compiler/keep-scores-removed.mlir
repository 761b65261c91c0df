// `keep-scores` changed neither the CUDA nor the manifest (the fused
// discovery op only gained an unused score result), so it was removed; it is
// now rejected instead of silently doing nothing.
// RUN: not fp-opt %fp_src/examples/prefill.mlir --fp-compile-pipeline="arch=sm_90a keep-scores=true" --fp-emit=cuda 2>&1 | FileCheck %s
// RUN: not fp-opt %fp_src/examples/prefill.mlir --fp-fuse-pattern-discovery="keep-scores=true" 2>&1 | FileCheck %s
// CHECK: no such option keep-scores
