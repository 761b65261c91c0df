//===- FPAttrs.td - fp dialect attributes ------------------*- tablegen -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#ifndef FP_DIALECT_FPATTRS_TD
#define FP_DIALECT_FPATTRS_TD

include "fp/Dialect/FPDialect.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

//===----------------------------------------------------------------------===//
// Enums
//===----------------------------------------------------------------------===//

def FP_ThresholdKind : I32EnumAttr<"ThresholdKind", "block threshold rule", [
    I32EnumAttrCase<"RelativeMax", 0, "relative_max">,
    I32EnumAttrCase<"MinMax", 1, "min_max">]> {
  let cppNamespace = "::mlir::fp";
  let genSpecializedAttr = 0;
}
def FP_ThresholdKindAttr
    : EnumAttr<FP_Dialect, FP_ThresholdKind, "threshold_kind">;

def FP_QueryKind : I32EnumAttr<"QueryKind", "block score probes", [
    I32EnumAttrCase<"Full", 0, "full">,
    I32EnumAttrCase<"Pooled", 1, "pooled">]> {
  let cppNamespace = "::mlir::fp";
  let genSpecializedAttr = 0;
}
def FP_QueryKindAttr : EnumAttr<FP_Dialect, FP_QueryKind, "query_kind">;

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

class FP_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<FP_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

/// A float parameter with a default, printed with enough digits to
/// round-trip exactly.
/// Stored as an f32 APFloat (APFloat, unlike float, is hashable).
class FP_DefaultFloatParameter<string value>
    : DefaultValuedParameter<"::llvm::APFloat", "::llvm::APFloat(" # value # ")"> {
  let comparator = "$_lhs.bitwiseIsEqual($_rhs)";
  let parser = [{ ::mlir::fp::parseFloatParameter($_parser) }];
  let printer = [{ ::mlir::fp::printFloatParameter($_printer, $_self) }];
}

def FP_ThresholdAttr : FP_Attr<"Threshold", "threshold"> {
  let summary = "block selection rule (threshold_mask parameters)";
  let description = [{
    Parameters of the keep rule of docs/semantics.md section 1, step 3.
    Omitted parameters take the shared defaults of `flashprefill/defaults.h`.
    These are runtime values: kernels receive them as arguments, so changing
    them never changes generated code.

    ```mlir
    #fp.threshold<kind = relative_max, alpha = 0.1, sink = 2, window = 4,
                  last_n = 2, min_budget = 0>
    ```
  }];
  let parameters = (ins
    DefaultValuedParameter<"ThresholdKind", "ThresholdKind::RelativeMax">:$kind,
    FP_DefaultFloatParameter<"FP_DEFAULT_ALPHA">:$alpha,
    DefaultValuedParameter<"int64_t", "FP_DEFAULT_SINK">:$sink,
    DefaultValuedParameter<"int64_t", "FP_DEFAULT_WINDOW">:$window,
    DefaultValuedParameter<"int64_t", "FP_DEFAULT_LAST_N">:$last_n,
    DefaultValuedParameter<"int64_t", "FP_DEFAULT_MIN_BUDGET">:$min_budget);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// alpha as the f32 the kernels receive.
    float getAlphaValue() const { return getAlpha().convertToFloat(); }
  }];
}

def FP_PoolTileAttr : FP_Attr<"PoolTile", "pool_tile"> {
  let summary = "kernel configuration of block_pool";
  let description = [{
    Chosen by `fp-select-tiles`. `threads` per CTA; one CTA pools one block.
    ```mlir
    #fp.pool_tile<threads = 128>
    ```
  }];
  let parameters = (ins "int64_t":$threads);
  let assemblyFormat = "`<` struct(params) `>`";
  // Rejects what no kernel can build (fp/Dialect/TileRules.h).
  let genVerifyDecl = 1;
}

def FP_DiscoveryTileAttr : FP_Attr<"DiscoveryTile", "discovery_tile"> {
  let summary = "kernel configuration of pattern_discovery";
  let description = [{
    Chosen by `fp-select-tiles`: key blocks scored per chunk and warps per
    CTA (one CTA per query block).
    ```mlir
    #fp.discovery_tile<key_chunk = 64, warps = 8>
    ```
  }];
  let parameters = (ins "int64_t":$key_chunk, "int64_t":$warps);
  let assemblyFormat = "`<` struct(params) `>`";
  // Rejects what no kernel can build (fp/Dialect/TileRules.h).
  let genVerifyDecl = 1;
}

def FP_AttentionTileAttr : FP_Attr<"AttentionTile", "attention_tile"> {
  let summary = "kernel configuration of masked_attention";
  let description = [{
    Chosen by `fp-select-tiles`: query rows per CTA (`block_m`), key rows per
    inner step (`block_n`), warps per CTA and K/V pipeline stages. Both tile
    sizes divide the block size, so a CTA reads one mask row.
    ```mlir
    #fp.attention_tile<block_m = 128, block_n = 64, warps = 4, stages = 2>
    ```
  }];
  let parameters = (ins "int64_t":$block_m, "int64_t":$block_n,
                        "int64_t":$warps, "int64_t":$stages);
  let assemblyFormat = "`<` struct(params) `>`";
  // Rejects what no kernel can build (fp/Dialect/TileRules.h).
  let genVerifyDecl = 1;
}

#endif // FP_DIALECT_FPATTRS_TD
