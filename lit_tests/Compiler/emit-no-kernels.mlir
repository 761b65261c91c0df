// --fp-emit of a module without fp kernels, or without a string `fp.arch`,
// is an error naming what is missing. --fp-emit=cubin used to crash on the
// missing attribute, and cuda/ptx wrote empty output with exit 0.

// An empty module (each case is a file of its own: -split-input-file cannot
// be combined with --fp-emit):
// RUN: echo 'module {}' > %t.empty.mlir
// RUN: not fp-opt %t.empty.mlir --fp-emit=cuda 2>&1 | FileCheck %s --check-prefix=NOARCH-CUDA
// RUN: not fp-opt %t.empty.mlir --fp-emit=ptx 2>&1 | FileCheck %s --check-prefix=NOARCH-PTX
// RUN: not fp-opt %t.empty.mlir --fp-emit=cubin 2>&1 | FileCheck %s --check-prefix=NOARCH-CUBIN
// RUN: not fp-opt %t.empty.mlir --fp-emit=manifest 2>&1 | FileCheck %s --check-prefix=NOARCH-MANIFEST
// NOARCH-CUDA: error: --fp-emit=cuda: expected a string module attribute 'fp.arch' (one of sm_80, sm_86, sm_89, sm_90, sm_90a, set by --fp-compile-pipeline="arch=..."), got none
// NOARCH-PTX: error: --fp-emit=ptx: expected a string module attribute 'fp.arch'
// NOARCH-CUBIN: error: --fp-emit=cubin: expected a string module attribute 'fp.arch'
// NOARCH-MANIFEST: error: --fp-emit=manifest: expected a string module attribute 'fp.arch'

// RUN: for e in cuda ptx cubin manifest; do not fp-opt %t.empty.mlir --fp-compile-pipeline="arch=sm_80" --fp-emit=$e 2>&1; done | FileCheck %s --check-prefix=NOKERNELS
// NOKERNELS: error: --fp-emit=cuda: the module holds no fp kernels (expected fp.prefill or fp kernel ops lowered by --fp-compile-pipeline)
// NOKERNELS: error: --fp-emit=ptx: the module holds no fp kernels
// NOKERNELS: error: --fp-emit=cubin: the module holds no fp kernels
// NOKERNELS: error: --fp-emit=manifest: the module holds no fp kernels

// A non-string or unknown fp.arch:
// RUN: echo 'module attributes {fp.arch = 90 : i64} {}' > %t.intarch.mlir
// RUN: not fp-opt %t.intarch.mlir --fp-emit=cubin 2>&1 | FileCheck %s --check-prefix=INTARCH
// INTARCH: error: --fp-emit=cubin: expected a string module attribute 'fp.arch' ({{.*}}), got 90 : i64
// RUN: echo 'module attributes {fp.arch = "sm_70"} {}' > %t.sm70.mlir
// RUN: not fp-opt %t.sm70.mlir --fp-emit=ptx 2>&1 | FileCheck %s --check-prefix=SM70
// SM70: error: --fp-emit=ptx: fp.arch: expected one of sm_80, sm_86, sm_89, sm_90, sm_90a, got 'sm_70'

// Nothing is written on these errors.
// RUN: rm -f %t.out
// RUN: not fp-opt %t.empty.mlir --fp-compile-pipeline="arch=sm_80" --fp-emit=cuda -o %t.out
// RUN: not test -e %t.out
