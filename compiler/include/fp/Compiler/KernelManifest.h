//===- KernelManifest.h - What the runtime needs to launch ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The manifest is a line-based text the MLIR-free runtime parses without a
// JSON library. Format (one record per line, fields separated by spaces):
//
//   format 1
//   codegen <codegen version>
//   params_abi <FP_PARAMS_ABI_VERSION>
//   arch <sm_XY[a]>
//   kernel <entry> params=<struct> threads=<n> grid=<rule>
//          smem_base=<bytes> smem_per_key_block=<bytes>       (one line)
//   launch <function> <role> <entry>       (in launch order)
//   struct <name> size=<bytes> <field>:<offset>:<bytes> ...
//
// Grid rules: "blocks,heads,batch" (one CTA per block per head),
// "blocks,q_heads,batch", "q_tiles:<M>,q_heads,batch" (ceil(s_q / M) CTAs);
// varlen kernels size their grids from the host-side maxima:
// "key_blocks,kv_heads,batch" (ceil(max_seqlen_k / B)), "q_blocks,q_heads,batch"
// (ceil(max_seqlen_q / B)), "q_tiles:<M>,q_heads,batch" (ceil(max_seqlen_q / M)).
// Dynamic shared memory = smem_base + smem_per_key_block * nb (varlen:
// * max_key_blocks). Roles: pool_keys, pool_queries, discovery, attention,
// varlen_pool_keys, varlen_pool_queries, varlen_discovery, varlen_attention_packed,
// varlen_attention_paged.
//
//===----------------------------------------------------------------------===//
#ifndef FP_COMPILER_KERNELMANIFEST_H
#define FP_COMPILER_KERNELMANIFEST_H

#include "mlir/IR/BuiltinOps.h"

#include <cstdint>
#include <string>

namespace mlir::fp {

/// Bumped whenever generated code changes for the same input; part of the
/// kernel cache key.
inline constexpr const char *kCodegenVersion = "fp-codegen-1";

/// Launch facts of one generated kernel.
struct KernelInfo {
  std::string entry;        ///< extern "C" kernel name
  std::string paramsStruct; ///< FpPoolParams, FpDiscoveryParams, ...
  int64_t threads;          ///< threads per CTA (= __launch_bounds__)
  std::string grid;         ///< grid rule, see the file comment
  int64_t smemBaseBytes;
  int64_t smemPerKeyBlockBytes;
  std::string traits; ///< device traits class exporting smem, or empty
  /// Box rows of the Q and K/V tensor maps the host must encode into the
  /// params (sm_90a attention); 0 when the kernel reads no tensor map.
  int64_t tmaQRows = 0, tmaKVRows = 0;

  /// As the `fp.kernel` dictionary attached to the emitc.func.
  DictionaryAttr toAttribute(MLIRContext *ctx) const;
  static FailureOr<KernelInfo> fromAttribute(Operation *kernel);
};

/// Prints the manifest of a module lowered by convert-fp-to-emitc.
FailureOr<std::string> buildKernelManifest(ModuleOp module);

} // namespace mlir::fp

#endif // FP_COMPILER_KERNELMANIFEST_H
