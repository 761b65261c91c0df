// RUN: fp-opt %fp_src/examples/prefill.mlir --fp-compile-pipeline="arch=sm_90a" --fp-emit=manifest | FileCheck %s
// RUN: not fp-opt %fp_src/examples/prefill.mlir --fp-emit=cuda 2>&1 | FileCheck %s --check-prefix=UNLOWERED
// RUN: not fp-opt %fp_src/examples/prefill.mlir --fp-emit=manifest 2>&1 | FileCheck %s --check-prefix=NOMANIFEST

// CHECK: format 1
// CHECK-NEXT: codegen fp-codegen-1
// CHECK-NEXT: params_abi 4
// CHECK-NEXT: arch sm_90a
// CHECK-NEXT: kernel [[POOL:fp_block_pool_bf16_d128_b128_t128]] params=FpPoolParams threads=128 grid=blocks,heads,batch smem_base=0 smem_per_key_block=0
// CHECK-NEXT: kernel [[DISC:fp_pattern_discovery_bf16_d128_b128_c[0-9]+w[0-9]+]] params=FpDiscoveryParams threads={{[0-9]+}} grid=blocks,q_heads,batch smem_base={{[0-9]+}} smem_per_key_block=8
// CHECK-NEXT: kernel [[ATTN:fp_masked_attention_bf16_d128_b128_m128n[0-9]+w[0-9]+s[0-9]+_sm90]] params=FpAttentionParams threads={{[0-9]+}} grid=q_tiles:128,q_heads,batch smem_base={{[0-9]+}} smem_per_key_block=0 tma_q_rows=128 tma_kv_rows=128
// CHECK-NEXT: launch prefill pool_keys [[POOL]]
// CHECK-NEXT: launch prefill discovery [[DISC]]
// CHECK-NEXT: launch prefill attention [[ATTN]]
// CHECK-NEXT: struct FpPoolParams size={{[0-9]+}} src:0:8 dst:8:8
// CHECK-NEXT: struct FpDiscoveryParams size={{[0-9]+}} q:0:8
// CHECK-NEXT: struct FpAttentionParams size={{[0-9]+}} tma_q:0:128 tma_k:128:128 tma_v:256:128 q:384:8
// CHECK-NEXT: struct FpVarlenSequences size={{[0-9]+}} cu_seqlens_q:0:8
// CHECK-NEXT: struct FpVarlenPoolParams size={{[0-9]+}} seqs:0:72 src:72:8 dst:80:8
// CHECK-NEXT: struct FpVarlenDiscoveryParams size={{[0-9]+}} seqs:0:
// CHECK-NEXT: struct FpVarlenAttentionParams size={{[0-9]+}} seqs:0:

// UNLOWERED: expected IR lowered to EmitC; run --fp-compile-pipeline before emitting CUDA
// NOMANIFEST: error: --fp-emit=manifest: expected a string module attribute 'fp.arch'
