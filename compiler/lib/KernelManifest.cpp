//===- KernelManifest.cpp - What the runtime needs to launch ----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/KernelManifest.h"

#include "fp/params.h"

#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <cstddef>

using namespace mlir;
using namespace mlir::fp;

DictionaryAttr KernelInfo::toAttribute(MLIRContext *ctx) const {
  Builder b(ctx);
  SmallVector<NamedAttribute> fields{
      b.getNamedAttr("params", b.getStringAttr(paramsStruct)),
      b.getNamedAttr("threads", b.getI64IntegerAttr(threads)),
      b.getNamedAttr("grid", b.getStringAttr(grid)),
      b.getNamedAttr("smem_base", b.getI64IntegerAttr(smemBaseBytes)),
      b.getNamedAttr("smem_per_key_block",
                     b.getI64IntegerAttr(smemPerKeyBlockBytes)),
  };
  if (tmaQRows > 0) {
    fields.push_back(b.getNamedAttr("tma_q_rows", b.getI64IntegerAttr(tmaQRows)));
    fields.push_back(
        b.getNamedAttr("tma_kv_rows", b.getI64IntegerAttr(tmaKVRows)));
  }
  return b.getDictionaryAttr(fields);
}

FailureOr<KernelInfo> KernelInfo::fromAttribute(Operation *kernel) {
  auto dict = kernel->getAttrOfType<DictionaryAttr>("fp.kernel");
  auto name = kernel->getAttrOfType<StringAttr>("sym_name");
  if (!dict || !name)
    return kernel->emitError("expected an 'fp.kernel' dictionary");
  auto str = [&](StringRef key) { return dict.getAs<StringAttr>(key); };
  auto num = [&](StringRef key) { return dict.getAs<IntegerAttr>(key); };
  if (!str("params") || !num("threads") || !str("grid") || !num("smem_base") ||
      !num("smem_per_key_block"))
    return kernel->emitError("'fp.kernel': expected params, threads, grid, "
                             "smem_base and smem_per_key_block");
  KernelInfo info{name.str(),
                  str("params").str(),
                  num("threads").getInt(),
                  str("grid").str(),
                  num("smem_base").getInt(),
                  num("smem_per_key_block").getInt(),
                  ""};
  if (num("tma_q_rows") && num("tma_kv_rows")) {
    info.tmaQRows = num("tma_q_rows").getInt();
    info.tmaKVRows = num("tma_kv_rows").getInt();
  }
  return info;
}

namespace {

#define FP_FIELD(type, field)                                                  \
  " " #field ":" << offsetof(type, field) << ":" << sizeof(((type *)0)->field)

/// Layouts of the parameter structs as this compiler's host ABI sees them;
/// the runtime compares them with its own to catch a stale params.h.
void printStructs(llvm::raw_ostream &os) {
  os << "struct FpPoolParams size=" << sizeof(FpPoolParams)
     << FP_FIELD(FpPoolParams, src) << FP_FIELD(FpPoolParams, dst)
     << FP_FIELD(FpPoolParams, src_batch_stride)
     << FP_FIELD(FpPoolParams, src_seq_stride)
     << FP_FIELD(FpPoolParams, src_head_stride) << FP_FIELD(FpPoolParams, batch)
     << FP_FIELD(FpPoolParams, seq_len) << FP_FIELD(FpPoolParams, num_heads)
     << FP_FIELD(FpPoolParams, num_blocks) << "\n";
  os << "struct FpDiscoveryParams size=" << sizeof(FpDiscoveryParams)
     << FP_FIELD(FpDiscoveryParams, q) << FP_FIELD(FpDiscoveryParams, kbar)
     << FP_FIELD(FpDiscoveryParams, qbar) << FP_FIELD(FpDiscoveryParams, counts)
     << FP_FIELD(FpDiscoveryParams, ids)
     << FP_FIELD(FpDiscoveryParams, kept_counter)
     << FP_FIELD(FpDiscoveryParams, debug_scores)
     << FP_FIELD(FpDiscoveryParams, q_batch_stride)
     << FP_FIELD(FpDiscoveryParams, q_seq_stride)
     << FP_FIELD(FpDiscoveryParams, q_head_stride)
     << FP_FIELD(FpDiscoveryParams, batch) << FP_FIELD(FpDiscoveryParams, seq_q)
     << FP_FIELD(FpDiscoveryParams, seq_k)
     << FP_FIELD(FpDiscoveryParams, num_q_heads)
     << FP_FIELD(FpDiscoveryParams, num_kv_heads)
     << FP_FIELD(FpDiscoveryParams, num_blocks)
     << FP_FIELD(FpDiscoveryParams, scale) << FP_FIELD(FpDiscoveryParams, alpha)
     << FP_FIELD(FpDiscoveryParams, sink) << FP_FIELD(FpDiscoveryParams, window)
     << FP_FIELD(FpDiscoveryParams, last_n)
     << FP_FIELD(FpDiscoveryParams, min_budget)
     << FP_FIELD(FpDiscoveryParams, threshold_kind)
     << FP_FIELD(FpDiscoveryParams, score_query) << "\n";
  os << "struct FpAttentionParams size=" << sizeof(FpAttentionParams)
     << FP_FIELD(FpAttentionParams, tma_q) << FP_FIELD(FpAttentionParams, tma_k)
     << FP_FIELD(FpAttentionParams, tma_v)
     << FP_FIELD(FpAttentionParams, q) << FP_FIELD(FpAttentionParams, k)
     << FP_FIELD(FpAttentionParams, v) << FP_FIELD(FpAttentionParams, o)
     << FP_FIELD(FpAttentionParams, lse) << FP_FIELD(FpAttentionParams, counts)
     << FP_FIELD(FpAttentionParams, ids)
     << FP_FIELD(FpAttentionParams, q_batch_stride)
     << FP_FIELD(FpAttentionParams, q_seq_stride)
     << FP_FIELD(FpAttentionParams, q_head_stride)
     << FP_FIELD(FpAttentionParams, k_batch_stride)
     << FP_FIELD(FpAttentionParams, k_seq_stride)
     << FP_FIELD(FpAttentionParams, k_head_stride)
     << FP_FIELD(FpAttentionParams, v_batch_stride)
     << FP_FIELD(FpAttentionParams, v_seq_stride)
     << FP_FIELD(FpAttentionParams, v_head_stride)
     << FP_FIELD(FpAttentionParams, o_batch_stride)
     << FP_FIELD(FpAttentionParams, o_seq_stride)
     << FP_FIELD(FpAttentionParams, o_head_stride)
     << FP_FIELD(FpAttentionParams, batch) << FP_FIELD(FpAttentionParams, seq_q)
     << FP_FIELD(FpAttentionParams, seq_k)
     << FP_FIELD(FpAttentionParams, num_q_heads)
     << FP_FIELD(FpAttentionParams, num_kv_heads)
     << FP_FIELD(FpAttentionParams, num_blocks)
     << FP_FIELD(FpAttentionParams, scale) << "\n";
  os << "struct FpVarlenSequences size=" << sizeof(FpVarlenSequences)
     << FP_FIELD(FpVarlenSequences, cu_seqlens_q)
     << FP_FIELD(FpVarlenSequences, cu_seqlens_k)
     << FP_FIELD(FpVarlenSequences, page_table)
     << FP_FIELD(FpVarlenSequences, k_lens)
     << FP_FIELD(FpVarlenSequences, apply_last_n)
     << FP_FIELD(FpVarlenSequences, batch)
     << FP_FIELD(FpVarlenSequences, total_q)
     << FP_FIELD(FpVarlenSequences, total_k)
     << FP_FIELD(FpVarlenSequences, num_pages)
     << FP_FIELD(FpVarlenSequences, max_pages)
     << FP_FIELD(FpVarlenSequences, page_size_log2)
     << FP_FIELD(FpVarlenSequences, max_seqlen_q)
     << FP_FIELD(FpVarlenSequences, max_seqlen_k) << "\n";
  os << "struct FpVarlenPoolParams size=" << sizeof(FpVarlenPoolParams)
     << FP_FIELD(FpVarlenPoolParams, seqs) << FP_FIELD(FpVarlenPoolParams, src)
     << FP_FIELD(FpVarlenPoolParams, dst)
     << FP_FIELD(FpVarlenPoolParams, src_page_stride)
     << FP_FIELD(FpVarlenPoolParams, src_seq_stride)
     << FP_FIELD(FpVarlenPoolParams, src_head_stride)
     << FP_FIELD(FpVarlenPoolParams, num_heads)
     << FP_FIELD(FpVarlenPoolParams, max_key_blocks) << "\n";
  os << "struct FpVarlenDiscoveryParams size="
     << sizeof(FpVarlenDiscoveryParams)
     << FP_FIELD(FpVarlenDiscoveryParams, seqs)
     << FP_FIELD(FpVarlenDiscoveryParams, q)
     << FP_FIELD(FpVarlenDiscoveryParams, kbar)
     << FP_FIELD(FpVarlenDiscoveryParams, qbar)
     << FP_FIELD(FpVarlenDiscoveryParams, counts)
     << FP_FIELD(FpVarlenDiscoveryParams, ids)
     << FP_FIELD(FpVarlenDiscoveryParams, kept_counter)
     << FP_FIELD(FpVarlenDiscoveryParams, q_seq_stride)
     << FP_FIELD(FpVarlenDiscoveryParams, q_head_stride)
     << FP_FIELD(FpVarlenDiscoveryParams, num_q_heads)
     << FP_FIELD(FpVarlenDiscoveryParams, num_kv_heads)
     << FP_FIELD(FpVarlenDiscoveryParams, max_key_blocks)
     << FP_FIELD(FpVarlenDiscoveryParams, scale)
     << FP_FIELD(FpVarlenDiscoveryParams, alpha)
     << FP_FIELD(FpVarlenDiscoveryParams, sink)
     << FP_FIELD(FpVarlenDiscoveryParams, window)
     << FP_FIELD(FpVarlenDiscoveryParams, last_n)
     << FP_FIELD(FpVarlenDiscoveryParams, min_budget)
     << FP_FIELD(FpVarlenDiscoveryParams, threshold_kind)
     << FP_FIELD(FpVarlenDiscoveryParams, score_query) << "\n";
  os << "struct FpVarlenAttentionParams size="
     << sizeof(FpVarlenAttentionParams)
     << FP_FIELD(FpVarlenAttentionParams, seqs)
     << FP_FIELD(FpVarlenAttentionParams, q)
     << FP_FIELD(FpVarlenAttentionParams, k)
     << FP_FIELD(FpVarlenAttentionParams, v)
     << FP_FIELD(FpVarlenAttentionParams, o)
     << FP_FIELD(FpVarlenAttentionParams, lse)
     << FP_FIELD(FpVarlenAttentionParams, counts)
     << FP_FIELD(FpVarlenAttentionParams, ids)
     << FP_FIELD(FpVarlenAttentionParams, q_seq_stride)
     << FP_FIELD(FpVarlenAttentionParams, q_head_stride)
     << FP_FIELD(FpVarlenAttentionParams, k_page_stride)
     << FP_FIELD(FpVarlenAttentionParams, k_seq_stride)
     << FP_FIELD(FpVarlenAttentionParams, k_head_stride)
     << FP_FIELD(FpVarlenAttentionParams, v_page_stride)
     << FP_FIELD(FpVarlenAttentionParams, v_seq_stride)
     << FP_FIELD(FpVarlenAttentionParams, v_head_stride)
     << FP_FIELD(FpVarlenAttentionParams, o_seq_stride)
     << FP_FIELD(FpVarlenAttentionParams, o_head_stride)
     << FP_FIELD(FpVarlenAttentionParams, num_q_heads)
     << FP_FIELD(FpVarlenAttentionParams, num_kv_heads)
     << FP_FIELD(FpVarlenAttentionParams, max_key_blocks)
     << FP_FIELD(FpVarlenAttentionParams, scale) << "\n";
}

#undef FP_FIELD

} // namespace

FailureOr<std::string> mlir::fp::buildKernelManifest(ModuleOp module) {
  auto arch = module->getAttrOfType<StringAttr>("fp.arch");
  auto launches = module->getAttrOfType<DictionaryAttr>("fp.launches");
  if (!arch || !launches)
    return module.emitError("expected a module lowered by "
                            "convert-fp-to-emitc ('fp.arch' and "
                            "'fp.launches' attributes)");
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "format 1\n"
     << "codegen " << kCodegenVersion << "\n"
     << "params_abi " << FP_PARAMS_ABI_VERSION << "\n"
     << "arch " << arch.getValue() << "\n";
  for (auto func : module.getOps<emitc::FuncOp>()) {
    FailureOr<KernelInfo> info = KernelInfo::fromAttribute(func);
    if (failed(info))
      return failure();
    os << "kernel " << info->entry << " params=" << info->paramsStruct
       << " threads=" << info->threads << " grid=" << info->grid
       << " smem_base=" << info->smemBaseBytes
       << " smem_per_key_block=" << info->smemPerKeyBlockBytes;
    if (info->tmaQRows > 0)
      os << " tma_q_rows=" << info->tmaQRows
         << " tma_kv_rows=" << info->tmaKVRows;
    os << "\n";
  }
  for (NamedAttribute function : launches) {
    auto sequence = dyn_cast<ArrayAttr>(function.getValue());
    if (!sequence)
      return module.emitError("'fp.launches': expected arrays");
    for (Attribute launch : sequence) {
      auto pair = dyn_cast<ArrayAttr>(launch);
      if (!pair || pair.size() != 2)
        return module.emitError("'fp.launches': expected [role, entry]");
      os << "launch " << function.getName().getValue() << " "
         << cast<StringAttr>(pair[0]).getValue() << " "
         << cast<StringAttr>(pair[1]).getValue() << "\n";
    }
  }
  printStructs(os);
  return text;
}
