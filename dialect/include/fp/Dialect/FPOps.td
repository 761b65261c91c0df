//===- FPOps.td - fp dialect operations --------------------*- tablegen -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Types are plain ranked tensors; the C++ verifiers check ranks, static
// heads and head dim, dtypes and the relations between operands, and name
// the operand and the expected value in every diagnostic.
//
//===----------------------------------------------------------------------===//
#ifndef FP_DIALECT_FPOPS_TD
#define FP_DIALECT_FPOPS_TD

include "fp/Dialect/FPDialect.td"
include "fp/Dialect/FPAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def FP_Tensor : RankedTensorOf<[BF16, F16, F32, I32]>;

/// Attributes every op that depends on the block partition carries.
defvar FP_BlockSizeAttr = DefaultValuedAttr<I64Attr, "FP_DEFAULT_BLOCK_SIZE">;

//===----------------------------------------------------------------------===//
// fp.prefill
//===----------------------------------------------------------------------===//

def FP_PrefillOp : FP_Op<"prefill", [Pure]> {
  let summary = "block-sparse causal prefill attention (the whole operator)";
  let description = [{
    Pools keys per block, scores key blocks for every query block, keeps the
    blocks the threshold rule selects and runs flash attention over them
    (docs/semantics.md section 1). Returns the output `[b, s_q, h_q, d]` and
    the natural-log log-sum-exp `[b, h_q, s_q]`. `fp-expand-prefill` rewrites
    it into the four step ops.

    Only `causal` with `s_q == s_k` is implemented: the verifier rejects
    static lengths that differ, `fp-select-tiles` rejects `causal = false`,
    each with a named diagnostic.

    ```mlir
    %out, %lse = fp.prefill %q, %k, %v {
        block_size = 128 : i64,
        threshold = #fp.threshold<alpha = 0.1, sink = 2, window = 4, last_n = 2>}
      : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>)
        -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
    ```
  }];
  let arguments = (ins FP_Tensor:$q, FP_Tensor:$k, FP_Tensor:$v,
      FP_BlockSizeAttr:$block_size,
      FP_ThresholdAttr:$threshold,
      DefaultValuedAttr<FP_QueryKindAttr, "QueryKind::Full">:$query_kind,
      DefaultValuedAttr<BoolAttr, "true">:$causal,
      OptionalAttr<F32Attr>:$scale);
  let results = (outs FP_Tensor:$out, FP_Tensor:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fp.block_pool
//===----------------------------------------------------------------------===//

def FP_BlockPoolOp : FP_Op<"block_pool", [Pure]> {
  let summary = "mean of every block of tokens, per head";
  let description = [{
    `out[b, h, j] = mean of input[b, t, h]` over the valid tokens `t` of block
    `j` (`[jB, min((j+1)B, s))`), accumulated in fp32 and rounded to the input
    dtype so the scoring dot product can run on tensor cores. Used for keys
    and, in the pooled-query variant, for queries.

    ```mlir
    %kbar = fp.block_pool %k {block_size = 128 : i64}
      : (tensor<?x?x8x128xbf16>) -> tensor<?x8x?x128xbf16>
    ```
  }];
  let arguments = (ins FP_Tensor:$input, FP_BlockSizeAttr:$block_size,
                       OptionalAttr<FP_PoolTileAttr>:$tile);
  let results = (outs FP_Tensor:$pooled);
  let assemblyFormat = [{
    $input attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fp.block_score
//===----------------------------------------------------------------------===//

def FP_BlockScoreOp : FP_Op<"block_score", [Pure]> {
  let summary = "normalised attention mass of every key block per query block";
  let description = [{
    For query block `I`: `s[r, j] = (q_r . kbar_j) * scale` over valid rows
    `r` and key blocks `j <= I` whose last token row `r` sees; `E[I, j] =
    sum_r exp(s[r, j] - M_I)` with the tile max `M_I`; `score[I, j] =
    E[I, j] / (sum_j' E[I, j'] + 1e-9)`. With `query_kind = pooled` the probes
    are the pooled queries `[b, h_q, nb, d]` instead of every query row.

    The `[b, h_q, nb, nb]` result exists only in IR: `fp-fuse-pattern-discovery`
    keeps scores on chip.

    ```mlir
    %scores = fp.block_score %q, %kbar {block_size = 128 : i64}
      : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>) -> tensor<?x32x?x?xf32>
    ```
  }];
  let arguments = (ins FP_Tensor:$query, FP_Tensor:$kbar,
      FP_BlockSizeAttr:$block_size,
      DefaultValuedAttr<FP_QueryKindAttr, "QueryKind::Full">:$query_kind,
      DefaultValuedAttr<BoolAttr, "true">:$causal,
      OptionalAttr<F32Attr>:$scale);
  let results = (outs FP_Tensor:$scores);
  let assemblyFormat = [{
    $query `,` $kbar attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fp.threshold_mask
//===----------------------------------------------------------------------===//

def FP_ThresholdMaskOp : FP_Op<"threshold_mask", [Pure]> {
  let summary = "keep rule and compaction into the padded-rows block mask";
  let description = [{
    Per (batch, query head, query block `I`) keeps key block `j <= I` when its
    score passes the threshold or it is forced (sink, window, last query
    blocks); see `#fp.threshold`. Results are `counts [b, h_q, nb]` and
    ascending `ids [b, h_q, nb, nb]` (entries past the count unspecified).

    ```mlir
    %counts, %ids = fp.threshold_mask %scores {threshold = #fp.threshold<>}
      : (tensor<?x32x?x?xf32>) -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
    ```
  }];
  let arguments = (ins FP_Tensor:$scores, FP_ThresholdAttr:$threshold);
  let results = (outs FP_Tensor:$counts, FP_Tensor:$ids);
  let assemblyFormat = [{
    $scores attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fp.pattern_discovery
//===----------------------------------------------------------------------===//

def FP_PatternDiscoveryOp : FP_Op<"pattern_discovery", [Pure]> {
  let summary = "fused block_score + threshold_mask + compaction";
  let description = [{
    Created by `fp-fuse-pattern-discovery`: one kernel per query block scores
    key blocks, applies the threshold and compacts the kept ids, so scores
    never reach global memory. The optional `scores` result (debug) keeps the
    `[b, h_q, nb, nb]` score matrix.

    ```mlir
    %counts, %ids = fp.pattern_discovery %q, %kbar {
        block_size = 128 : i64, threshold = #fp.threshold<>}
      : (tensor<?x?x32x128xbf16>, tensor<?x8x?x128xbf16>)
        -> (tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
    ```
  }];
  let arguments = (ins FP_Tensor:$query, FP_Tensor:$kbar,
      FP_BlockSizeAttr:$block_size,
      FP_ThresholdAttr:$threshold,
      DefaultValuedAttr<FP_QueryKindAttr, "QueryKind::Full">:$query_kind,
      DefaultValuedAttr<BoolAttr, "true">:$causal,
      OptionalAttr<F32Attr>:$scale,
      OptionalAttr<FP_DiscoveryTileAttr>:$tile);
  let results = (outs FP_Tensor:$counts, FP_Tensor:$ids,
                      Optional<FP_Tensor>:$scores);
  let assemblyFormat = [{
    $query `,` $kbar attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// fp.masked_attention
//===----------------------------------------------------------------------===//

def FP_MaskedAttentionOp : FP_Op<"masked_attention", [Pure]> {
  let summary = "flash attention over the kept key blocks of each query block";
  let description = [{
    Online-softmax attention with fp32 accumulation over the key blocks listed
    in the mask; causal masking is applied only in blocks that cross the
    diagonal (`j == I`). A row with no visible key gives 0 and LSE `-inf`.

    ```mlir
    %out, %lse = fp.masked_attention %q, %k, %v, %counts, %ids {block_size = 128 : i64}
      : (tensor<?x?x32x128xbf16>, tensor<?x?x8x128xbf16>, tensor<?x?x8x128xbf16>,
         tensor<?x32x?xi32>, tensor<?x32x?x?xi32>)
        -> (tensor<?x?x32x128xbf16>, tensor<?x32x?xf32>)
    ```
  }];
  let arguments = (ins FP_Tensor:$q, FP_Tensor:$k, FP_Tensor:$v,
      FP_Tensor:$counts, FP_Tensor:$ids,
      FP_BlockSizeAttr:$block_size,
      DefaultValuedAttr<BoolAttr, "true">:$causal,
      OptionalAttr<F32Attr>:$scale,
      OptionalAttr<FP_AttentionTileAttr>:$tile);
  let results = (outs FP_Tensor:$out, FP_Tensor:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $counts `,` $ids attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Engine shapes (docs/semantics.md section 2): varlen ops
//===----------------------------------------------------------------------===//

// The trailing `sequences` operands of every varlen op say where each
// sequence of the packed batch lives, and the rank of `k` says the K/V
// layout:
//   packed K/V, k `[total_k, h_kv, d]`:
//     cu_seqlens_q `[b+1]`, cu_seqlens_k `[b+1]`
//   paged K/V, k `[num_pages, page_size, h_kv, d]`:
//     cu_seqlens_q `[b+1]`, page_table `[b, max_pages]`, k_lens `[b]`
// all i32, device data read by the kernels (the compiler never sees the
// lengths; the host passes maxima that size grids and workspaces).

def FP_PrefillVarlenOp : FP_Op<"prefill_varlen", [Pure]> {
  let summary = "block-sparse prefill of packed sequences after cached prefixes";
  let description = [{
    The whole operator for engine shapes (docs/semantics.md section 2): b
    sequences packed along the rows of `q [total_q, h_q, d]`; sequence i has
    `q_len_i` queries, its last positions, and `k_len_i >= q_len_i` keys
    (prefix `p_i = k_len_i - q_len_i`, causal diagonal at the bottom right),
    packed `[total_k, h_kv, d]` or paged `[num_pages, page_size, h_kv, d]`
    (page size a power of two in [1, 256]). Query blocks are local to each
    sequence, key blocks absolute. Returns the output `[total_q, h_q, d]` and
    the log-sum-exp `[h_q, total_q]`. `fp-expand-prefill` rewrites it into
    `fp.varlen_block_pool`, `fp.varlen_pattern_discovery` and
    `fp.varlen_masked_attention` (with `query_kind = pooled`, also
    `fp.varlen_query_pool`).

    ```mlir
    %out, %lse = fp.prefill_varlen %q, %k, %v, %cu_q, %cu_k {threshold = #fp.threshold<>}
      : (tensor<?x32x128xbf16>, tensor<?x8x128xbf16>, tensor<?x8x128xbf16>,
         tensor<?xi32>, tensor<?xi32>) -> (tensor<?x32x128xbf16>, tensor<32x?xf32>)
    %out, %lse = fp.prefill_varlen %q, %kc, %vc, %cu_q, %pages, %k_lens {threshold = #fp.threshold<>}
      : (tensor<?x32x128xbf16>, tensor<?x16x8x128xbf16>, tensor<?x16x8x128xbf16>,
         tensor<?xi32>, tensor<?x?xi32>, tensor<?xi32>)
        -> (tensor<?x32x128xbf16>, tensor<32x?xf32>)
    ```
  }];
  let arguments = (ins FP_Tensor:$q, FP_Tensor:$k, FP_Tensor:$v,
      Variadic<FP_Tensor>:$sequences,
      FP_BlockSizeAttr:$block_size,
      FP_ThresholdAttr:$threshold,
      DefaultValuedAttr<FP_QueryKindAttr, "QueryKind::Full">:$query_kind,
      DefaultValuedAttr<BoolAttr, "true">:$causal,
      OptionalAttr<F32Attr>:$scale);
  let results = (outs FP_Tensor:$out, FP_Tensor:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $sequences attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def FP_VarlenBlockPoolOp : FP_Op<"varlen_block_pool", [Pure]> {
  let summary = "mean of every key block of every sequence, per kv head";
  let description = [{
    `kbar[i, h, j]` is the mean of sequence i's keys `[jB, min((j+1)B,
    k_len_i))` (fp32 sum, stored in the input dtype), packed or paged; the
    result is `[b, h_kv, max_key_blocks, d]` with `max_key_blocks =
    ceil(max_seqlen_k / B)`; blocks past a sequence's keys are not written.

    ```mlir
    %kbar = fp.varlen_block_pool %k, %cu_q, %cu_k
      : (tensor<?x8x128xbf16>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x8x?x128xbf16>
    ```
  }];
  let arguments = (ins FP_Tensor:$k, Variadic<FP_Tensor>:$sequences,
                       FP_BlockSizeAttr:$block_size,
                       OptionalAttr<FP_PoolTileAttr>:$tile);
  let results = (outs FP_Tensor:$pooled);
  let assemblyFormat = [{
    $k `,` $sequences attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def FP_VarlenQueryPoolOp : FP_Op<"varlen_query_pool", [Pure]> {
  let summary = "mean of every query block of every sequence (pooled queries)";
  let description = [{
    `qbar[row, h]` is the mean of the query rows of local block I of
    sequence i (fp32 sum, stored in the input dtype), at the compact-mask row
    `row = floor(cu_seqlens_q[i] / B) + i + I`: `[num_rows, h_q, d]`, the
    probes of `fp.varlen_pattern_discovery` with `query_kind = pooled`.

    ```mlir
    %qbar = fp.varlen_query_pool %q, %cu_q, %cu_k
      : (tensor<?x32x128xbf16>, tensor<?xi32>, tensor<?xi32>) -> tensor<?x32x128xbf16>
    ```
  }];
  let arguments = (ins FP_Tensor:$q, Variadic<FP_Tensor>:$sequences,
                       FP_BlockSizeAttr:$block_size,
                       OptionalAttr<FP_PoolTileAttr>:$tile);
  let results = (outs FP_Tensor:$pooled);
  let assemblyFormat = [{
    $q `,` $sequences attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def FP_VarlenPatternDiscoveryOp : FP_Op<"varlen_pattern_discovery", [Pure]> {
  let summary = "fused scoring and selection of a varlen call into the compact mask";
  let description = [{
    Per sequence i, query head and local query block I: scores the key
    blocks `j <= J(I) = (p_i + last row of I) div B`, row r taking part for
    block j iff block j's last key is at a position `<= p_i + r`; forced
    blocks are `j < sink`, `J(I) - j < window` and, where last_n applies to
    the sequence, the last `last_n` query blocks of the sequence. There is
    no unfused form: scores never leave the kernel. The compact mask:
    `counts [num_rows, h_q]` and ascending absolute key-block `ids
    [num_rows, h_q, max_key_blocks]`, query block I of sequence i in row
    `floor(cu_seqlens_q[i] / B) + i + I`. With `query_kind = pooled`,
    `query` is `fp.varlen_query_pool`'s `[num_rows, h_q, d]` and block I's
    one probe sits at its last row.

    ```mlir
    %counts, %ids = fp.varlen_pattern_discovery %q, %kbar, %cu_q, %cu_k {threshold = #fp.threshold<>}
      : (tensor<?x32x128xbf16>, tensor<?x8x?x128xbf16>, tensor<?xi32>, tensor<?xi32>)
        -> (tensor<?x32xi32>, tensor<?x32x?xi32>)
    ```
  }];
  let arguments = (ins FP_Tensor:$query, FP_Tensor:$kbar,
      Variadic<FP_Tensor>:$sequences,
      FP_BlockSizeAttr:$block_size,
      FP_ThresholdAttr:$threshold,
      DefaultValuedAttr<FP_QueryKindAttr, "QueryKind::Full">:$query_kind,
      DefaultValuedAttr<BoolAttr, "true">:$causal,
      OptionalAttr<F32Attr>:$scale,
      OptionalAttr<FP_DiscoveryTileAttr>:$tile);
  let results = (outs FP_Tensor:$counts, FP_Tensor:$ids);
  let assemblyFormat = [{
    $query `,` $kbar `,` $sequences attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def FP_VarlenMaskedAttentionOp : FP_Op<"varlen_masked_attention", [Pure]> {
  let summary = "attention of a varlen call over the kept key blocks";
  let description = [{
    Online-softmax attention of every sequence's query rows over the keys of
    its kept blocks (compact mask), local row r seeing the keys at positions
    `<= p_i + r` (bottom-right causal mask, applied per token only in blocks
    whose last key lies beyond `p_i + ` the first row of the tile). K/V
    packed or paged, as `k`'s rank says.

    ```mlir
    %out, %lse = fp.varlen_masked_attention %q, %k, %v, %counts, %ids, %cu_q, %cu_k
      : (tensor<?x32x128xbf16>, tensor<?x8x128xbf16>, tensor<?x8x128xbf16>,
         tensor<?x32xi32>, tensor<?x32x?xi32>, tensor<?xi32>, tensor<?xi32>)
        -> (tensor<?x32x128xbf16>, tensor<32x?xf32>)
    ```
  }];
  let arguments = (ins FP_Tensor:$q, FP_Tensor:$k, FP_Tensor:$v,
      FP_Tensor:$counts, FP_Tensor:$ids,
      Variadic<FP_Tensor>:$sequences,
      FP_BlockSizeAttr:$block_size,
      DefaultValuedAttr<BoolAttr, "true">:$causal,
      OptionalAttr<F32Attr>:$scale,
      OptionalAttr<FP_AttentionTileAttr>:$tile);
  let results = (outs FP_Tensor:$out, FP_Tensor:$lse);
  let assemblyFormat = [{
    $q `,` $k `,` $v `,` $counts `,` $ids `,` $sequences attr-dict `:`
    functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // FP_DIALECT_FPOPS_TD
