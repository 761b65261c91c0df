//===- FPDialect.td - The fp dialect -----------------------*- tablegen -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#ifndef FP_DIALECT_FPDIALECT_TD
#define FP_DIALECT_FPDIALECT_TD

include "mlir/IR/OpBase.td"

def FP_Dialect : Dialect {
  let name = "fp";
  let summary = "FlashPrefill block-sparse prefill attention";
  let description = [{
    Tensor-level ops of FlashPrefill-style block-sparse causal attention:
    `fp.prefill` is the whole operator; `fp-expand-prefill` splits it into
    `fp.block_pool`, `fp.block_score`, `fp.threshold_mask` and
    `fp.masked_attention`, whose semantics are docs/semantics.md section 1
    ("rule v1"); the CPU reference in `runtime/reference/` is the executable
    definition.

    Tensor layouts: queries and outputs `[b, s_q, h_q, d]`, keys and values
    `[b, s_k, h_kv, d]`, pooled blocks `[b, h, nb, d]`, block scores
    `[b, h_q, nb, nb]`, mask counts `[b, h_q, nb]` and ids `[b, h_q, nb, nb]`,
    log-sum-exp `[b, h_q, s_q]`. Batch, lengths and `nb` are dynamic (`?`);
    heads and head dim are static because kernels are specialized on them.

    Engine shapes (docs/semantics.md section 2): `fp.prefill_varlen` and its
    steps `fp.varlen_block_pool`, `fp.varlen_pattern_discovery`,
    `fp.varlen_masked_attention` take packed queries `[total_q, h_q, d]`,
    K/V packed `[total_k, h_kv, d]` or paged `[num_pages, page_size, h_kv,
    d]` (s_k apart from s_q: each sequence has its own q_len <= k_len), and
    trailing sequence operands (cu_seqlens_q with cu_seqlens_k, or with
    page_table and k_lens); the compact mask is `counts [num_rows, h_q]`,
    `ids [num_rows, h_q, max_key_blocks]`, the LSE `[h_q, total_q]`.
  }];
  let cppNamespace = "::mlir::fp";
  let useDefaultAttributePrinterParser = 1;
}

class FP_Op<string mnemonic, list<Trait> traits = []>
    : Op<FP_Dialect, mnemonic, traits>;

#endif // FP_DIALECT_FPDIALECT_TD
