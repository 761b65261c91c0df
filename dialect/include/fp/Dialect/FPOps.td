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

#endif // FP_DIALECT_FPOPS_TD
