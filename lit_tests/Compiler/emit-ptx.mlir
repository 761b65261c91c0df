// --fp-emit=ptx targets the module's arch and assembles with ptxas, for every
// arch fp-compile-pipeline accepts. It used to write `.target sm_80` PTX
// whatever the arch (the sm_90a kernels' wgmma and setmaxnreg then failed in
// ptxas) and to end the file in NVRTC's NUL ("Unexpected EOF" in ptxas).
// REQUIRES: ptxas

// The list below must cover every arch the pipeline accepts:
// RUN: not fp-opt %fp_src/examples/prefill.mlir --fp-compile-pipeline="arch=bogus" --fp-emit=ptx 2>&1 | FileCheck %s --check-prefix=ARCHS
// ARCHS: arch: expected one of sm_80, sm_86, sm_89, sm_90, sm_90a, got 'bogus'

// RUN: fp-opt %fp_src/examples/prefill.mlir --fp-compile-pipeline="arch=sm_80" --fp-emit=ptx -o %t.sm_80.ptx
// RUN: FileCheck %s --check-prefix=SM80 < %t.sm_80.ptx
// RUN: %ptxas -arch=sm_80 %t.sm_80.ptx -o %t.sm_80.cubin
// SM80: .target sm_80{{$}}
// SM80: .entry fp_masked_attention_{{.*}}_sm80(

// RUN: fp-opt %fp_src/examples/prefill.mlir --fp-compile-pipeline="arch=sm_86" --fp-emit=ptx -o %t.sm_86.ptx
// RUN: FileCheck %s --check-prefix=SM86 < %t.sm_86.ptx
// RUN: %ptxas -arch=sm_86 %t.sm_86.ptx -o %t.sm_86.cubin
// SM86: .target sm_86{{$}}

// RUN: fp-opt %fp_src/examples/prefill.mlir --fp-compile-pipeline="arch=sm_89" --fp-emit=ptx -o %t.sm_89.ptx
// RUN: FileCheck %s --check-prefix=SM89 < %t.sm_89.ptx
// RUN: %ptxas -arch=sm_89 %t.sm_89.ptx -o %t.sm_89.cubin
// SM89: .target sm_89{{$}}

// RUN: fp-opt %fp_src/examples/prefill.mlir --fp-compile-pipeline="arch=sm_90" --fp-emit=ptx -o %t.sm_90.ptx
// RUN: FileCheck %s --check-prefix=SM90 < %t.sm_90.ptx
// RUN: %ptxas -arch=sm_90 %t.sm_90.ptx -o %t.sm_90.cubin
// SM90: .target sm_90{{$}}
// SM90: .entry fp_masked_attention_{{.*}}_sm80(

// RUN: fp-opt %fp_src/examples/prefill.mlir --fp-compile-pipeline="arch=sm_90a" --fp-emit=ptx -o %t.sm_90a.ptx
// RUN: FileCheck %s --check-prefix=SM90A < %t.sm_90a.ptx
// RUN: %ptxas -arch=sm_90a %t.sm_90a.ptx -o %t.sm_90a.cubin
// SM90A: .target sm_90a{{$}}
// SM90A: .entry fp_masked_attention_{{.*}}_sm90(
// SM90A: wgmma.mma_async
