// The varlen ops through each pass (docs/semantics.md section 2).
// RUN: fp-opt %s -fp-expand-prefill | FileCheck %s --check-prefix=EXPAND
// RUN: fp-opt %s -fp-expand-prefill -fp-select-tiles="arch=sm_90a" | FileCheck %s --check-prefix=SM90A
// RUN: fp-opt %s -fp-expand-prefill -fp-select-tiles="arch=sm_80" | FileCheck %s --check-prefix=SM80
// RUN: fp-opt %s -fp-compile-pipeline="arch=sm_90a" | FileCheck %s --check-prefix=EMITC
// RUN: fp-opt %s -fp-compile-pipeline="arch=sm_90a" --fp-emit=manifest | FileCheck %s --check-prefix=MANIFEST

// fp-expand-prefill: pool, fused discovery (varlen scoring has no unfused
// form), attention; the sequence operands go to all three.
// EXPAND-LABEL: func.func @packed
// EXPAND-SAME: (%[[Q:.+]]: tensor<?x32x128xbf16>, %[[K:.+]]: tensor<?x8x128xbf16>, %[[V:.+]]: tensor<?x8x128xbf16>, %[[CQ:.+]]: tensor<3xi32>, %[[CK:.+]]: tensor<3xi32>)
// EXPAND: %[[KBAR:.+]] = fp.varlen_block_pool %[[K]], %[[CQ]], %[[CK]] : (tensor<?x8x128xbf16>, tensor<3xi32>, tensor<3xi32>) -> tensor<2x8x?x128xbf16>
// EXPAND: %[[C:.+]], %[[I:.+]] = fp.varlen_pattern_discovery %[[Q]], %[[KBAR]], %[[CQ]], %[[CK]] {scale = 2.500000e-01 : f32, threshold = #fp.threshold<alpha = 0.2>}
// EXPAND-SAME: -> (tensor<?x32xi32>, tensor<?x32x?xi32>)
// EXPAND: %[[O:.+]], %[[L:.+]] = fp.varlen_masked_attention %[[Q]], %[[K]], %[[V]], %[[C]], %[[I]], %[[CQ]], %[[CK]] {scale = 2.500000e-01 : f32}
// EXPAND-NOT: fp.prefill_varlen
// EXPAND: return %[[O]], %[[L]]
func.func @packed(%q: tensor<?x32x128xbf16>, %k: tensor<?x8x128xbf16>, %v: tensor<?x8x128xbf16>,
                  %cu_q: tensor<3xi32>, %cu_k: tensor<3xi32>) -> (tensor<?x32x128xbf16>, tensor<32x?xf32>) {
  %o, %l = fp.prefill_varlen %q, %k, %v, %cu_q, %cu_k {scale = 0.25 : f32, threshold = #fp.threshold<alpha = 0.2>}
    : (tensor<?x32x128xbf16>, tensor<?x8x128xbf16>, tensor<?x8x128xbf16>, tensor<3xi32>, tensor<3xi32>)
      -> (tensor<?x32x128xbf16>, tensor<32x?xf32>)
  return %o, %l : tensor<?x32x128xbf16>, tensor<32x?xf32>
}

// Pooled queries: the queries are pooled per compact-mask row and
// discovery scores with them; attention still reads q.
// EXPAND-LABEL: func.func @pooled
// EXPAND: %[[KBAR:.+]] = fp.varlen_block_pool
// EXPAND: %[[QBAR:.+]] = fp.varlen_query_pool %[[Q:[^,]+]], {{.*}} -> tensor<?x4x64xf16>
// EXPAND: fp.varlen_pattern_discovery %[[QBAR]], %[[KBAR]], {{.*}}query_kind = #fp<query_kind pooled>
// EXPAND: fp.varlen_masked_attention %[[Q]],
func.func @pooled(%q: tensor<?x4x64xf16>, %k: tensor<?x2x64xf16>, %v: tensor<?x2x64xf16>,
                  %cu_q: tensor<?xi32>, %cu_k: tensor<?xi32>) -> (tensor<?x4x64xf16>, tensor<4x?xf32>) {
  %o, %l = fp.prefill_varlen %q, %k, %v, %cu_q, %cu_k {block_size = 64 : i64,
      query_kind = #fp<query_kind pooled>, threshold = #fp.threshold<>}
    : (tensor<?x4x64xf16>, tensor<?x2x64xf16>, tensor<?x2x64xf16>, tensor<?xi32>, tensor<?xi32>)
      -> (tensor<?x4x64xf16>, tensor<4x?xf32>)
  return %o, %l : tensor<?x4x64xf16>, tensor<4x?xf32>
}

// fp-select-tiles: the mma.sync (sm_80-path) tiles on every arch, sm_90a
// included, where the s_q == s_k attention would get 128x128x12x2.
// SM90A-LABEL: func.func @paged
// SM90A: fp.varlen_block_pool {{.*}}tile = #fp.pool_tile<threads = 128>
// SM90A: fp.varlen_pattern_discovery {{.*}}tile = #fp.discovery_tile<key_chunk = 64, warps = 4>
// SM90A: fp.varlen_masked_attention {{.*}}tile = #fp.attention_tile<block_m = 128, block_n = 32, warps = 4, stages = 2>
// SM80-LABEL: func.func @paged
// SM80: fp.varlen_masked_attention {{.*}}tile = #fp.attention_tile<block_m = 128, block_n = 32, warps = 4, stages = 2>
// EXPAND-LABEL: func.func @paged
// EXPAND: fp.varlen_block_pool %{{[^,]+}}, %{{[^,]+}}, %{{[^,]+}}, %{{[^ ]+}} : (tensor<?x16x8x128xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x8x?x128xbf16>
func.func @paged(%q: tensor<?x32x128xbf16>, %k: tensor<?x16x8x128xbf16>, %v: tensor<?x16x8x128xbf16>,
                 %cu_q: tensor<?xi32>, %pages: tensor<?x?xi32>, %k_lens: tensor<?xi32>)
    -> (tensor<?x32x128xbf16>, tensor<32x?xf32>) {
  %o, %l = fp.prefill_varlen %q, %k, %v, %cu_q, %pages, %k_lens {threshold = #fp.threshold<>}
    : (tensor<?x32x128xbf16>, tensor<?x16x8x128xbf16>, tensor<?x16x8x128xbf16>, tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>)
      -> (tensor<?x32x128xbf16>, tensor<32x?xf32>)
  return %o, %l : tensor<?x32x128xbf16>, tensor<32x?xf32>
}

// convert-fp-to-emitc: pooling and discovery are shared by both layouts,
// attention has one kernel per layout (kPaged 0 / 1), all on the mma.sync
// mainloop (AttentionTraits<..., 80>) although the arch is sm_90a.
// EMITC: fp.launches = {packed = [
// EMITC-SAME: ["varlen_pool_keys", "[[POOL:fp_varlen_block_pool_bf16_d128_b128_t128]]"]
// EMITC-SAME: ["varlen_discovery", "[[DISC:fp_varlen_pattern_discovery_bf16_d128_b128_c64w4]]"]
// EMITC-SAME: ["varlen_attention_packed", "[[PACKED:fp_varlen_masked_attention_packed_bf16_d128_b128_m128n32w4s2]]"]
// EMITC-SAME: paged = {{\[\[}}"varlen_pool_keys", "[[POOL]]"], ["varlen_discovery", "[[DISC]]"], ["varlen_attention_paged", "[[PAGED:fp_varlen_masked_attention_paged_bf16_d128_b128_m128n32w4s2]]"]]
// EMITC-SAME: pooled = {{\[\[}}"varlen_pool_keys", "fp_varlen_block_pool_f16_d64_b64_t128"], ["varlen_pool_queries", "[[QPOOL:fp_varlen_query_pool_f16_d64_b64_t128]]"]
// EMITC: emitc.func @[[POOL]](%{{.+}}: !emitc.opaque<"FpVarlenPoolParams">)
// EMITC-SAME: grid = "key_blocks,kv_heads,batch"
// EMITC: call_opaque "fp::dev::varlen_block_pool"
// EMITC: emitc.func @[[DISC]](%{{.+}}: !emitc.opaque<"FpVarlenDiscoveryParams">)
// EMITC-SAME: grid = "q_blocks,q_heads,batch"
// EMITC: call_opaque "fp::dev::varlen_pattern_discovery"
// EMITC: emitc.func @[[PACKED]](%{{.+}}: !emitc.opaque<"FpVarlenAttentionParams">)
// EMITC-SAME: grid = "q_tiles:128,q_heads,batch"
// EMITC: call_opaque "fp::dev::varlen_masked_attention"(%{{.+}}) {template_args = [#emitc.opaque<"__nv_bfloat16">, 128 : i32, 128 : i32, 128 : i32, 32 : i32, 4 : i32, 2 : i32, 0 : i32]}
// EMITC: AttentionTraits<__nv_bfloat16, 128, 128, 128, 32, 4, 2, 80>::kSmemBytes
// EMITC: emitc.func @[[PAGED]](
// EMITC: call_opaque "fp::dev::varlen_masked_attention"(%{{.+}}) {template_args = [#emitc.opaque<"__nv_bfloat16">, 128 : i32, 128 : i32, 128 : i32, 32 : i32, 4 : i32, 2 : i32, 1 : i32]}
// EMITC-NOT: emitc.func @fp_varlen_block_pool_bf16

// MANIFEST: params_abi 4
// MANIFEST: kernel fp_varlen_block_pool_bf16_d128_b128_t128 params=FpVarlenPoolParams threads=128 grid=key_blocks,kv_heads,batch smem_base=0 smem_per_key_block=0
// MANIFEST: kernel fp_varlen_pattern_discovery_bf16_d128_b128_c64w4 params=FpVarlenDiscoveryParams threads=128 grid=q_blocks,q_heads,batch smem_base=67776 smem_per_key_block=8
// MANIFEST: kernel fp_varlen_masked_attention_packed_bf16_d128_b128_m128n32w4s2 params=FpVarlenAttentionParams threads=128 grid=q_tiles:128,q_heads,batch smem_base=65536 smem_per_key_block=0
// MANIFEST: kernel fp_varlen_query_pool_f16_d64_b64_t128 params=FpVarlenPoolParams threads=128 grid=q_blocks,q_heads,batch smem_base=0 smem_per_key_block=0
// MANIFEST-NOT: tma_q_rows
// MANIFEST: launch packed varlen_attention_packed fp_varlen_masked_attention_packed_bf16_d128_b128_m128n32w4s2
// MANIFEST: launch paged varlen_attention_paged fp_varlen_masked_attention_paged_bf16_d128_b128_m128n32w4s2
// MANIFEST: struct FpVarlenSequences size=72
// MANIFEST: struct FpVarlenAttentionParams size=224
