//===- fuzz_dialect.cpp - fp dialect text through verifiers and pipeline --===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The bytes are MLIR text as fp-opt reads it (fp ops in func.func). Parse
// (the fp verifiers run as part of it), then fp-compile-pipeline (expand,
// fuse, select tiles, convert to EmitC) with options picked from the input's
// hash (arch, tuning tables, forced tiles), then the CUDA
// emission and the kernel manifest, like
// fp::codegen::generateKernels. Only diagnostics are allowed: a crash, an
// assertion, a sanitizer report or an escaped exception is a finding.
//
// Two input modes. Text: the bytes are the module. Structured (first byte
// 0xff): the bytes choose the numbers of a well-formed module (head counts,
// head dims, dtypes, static or dynamic dims, block size, threshold, query
// kind, causal, scale, tiles, and one of three op sequences), mostly valid
// with one or two fields pushed to odd or extreme values, so the verifiers
// and every pass see deep, parseable inputs that text mutation rarely builds.
//
// Inputs that mention `emitc` are skipped: hand-written EmitC exercises
// upstream MLIR's EmitC parser and C++ emitter, not our code (our EmitC is
// what the pipeline produces, and that is emitted).
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/CudaEmitter.h"
#include "fp/Compiler/KernelManifest.h"
#include "fp/Compiler/Passes.h"
#include "fp/Dialect/FPDialect.h"
#include "fp/Dialect/TextNesting.h"

#include "mlir/Dialect/EmitC/IR/EmitC.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include "FuzzInput.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace mlir;

namespace {

const char *const kArchs[] = {"sm_80", "sm_86", "sm_89", "sm_90", "sm_90a"};

uint64_t fnv1a(const uint8_t *data, size_t size) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i)
    h = (h ^ data[i]) * 1099511628211ull;
  return h;
}

std::string dimText(int64_t dim) { return dim < 0 ? "?" : std::to_string(dim); }

std::string tensorType(std::initializer_list<int64_t> dims,
                       const std::string &element) {
  std::string t = "tensor<";
  for (int64_t d : dims)
    t += dimText(d) + "x";
  return t + element + ">";
}

/// A module built from the bytes (see the file comment).
std::string structuredModule(::fp::fuzz::FuzzInput &in) {
  const int64_t odd[] = {0,
                         1,
                         -1,
                         3,
                         8,
                         16,
                         17,
                         48,
                         96,
                         512,
                         4096,
                         int64_t(1) << 31,
                         int64_t(1) << 40,
                         INT64_MAX};
  auto maybeOdd = [&](int64_t valid) {
    return in.byte() < 235 ? valid : in.pick(odd);
  };
  const int64_t headDims[] = {16, 32, 64, 128, 256};
  const int64_t blocks[] = {16, 32, 64, 128, 256};
  int64_t hkv = maybeOdd(in.range(1, 8));
  int64_t hq = maybeOdd(hkv > (1 << 20) ? hkv : hkv * in.range(1, 4));
  int64_t d = maybeOdd(in.pick(headDims));
  int64_t block = maybeOdd(in.pick(blocks));
  std::string dtype = in.byte() < 240 ? (in.flag() ? "bf16" : "f16")
                                      : (in.flag() ? "f32" : "i8");
  std::string dtypeK = in.byte() < 245 ? dtype : "f16";
  int64_t b = in.flag() ? -1 : maybeOdd(in.range(1, 4));
  int64_t seq = in.flag() ? -1 : maybeOdd(in.range(1, 5000));
  int64_t nb = seq < 0 || block <= 0 ? -1 : seq / block + (seq % block != 0);
  if (in.byte() >= 240)
    nb = in.pick(odd);

  std::string threshold = "#fp.threshold<";
  std::vector<std::string> fields;
  if (in.flag())
    fields.push_back(in.flag() ? "kind = min_max" : "kind = relative_max");
  const char *alphas[] = {"0.0",  "0.1", "1.0",     "0.5",
                          "-0.5", "1.5", "1.0e+39", "0x7FC00000"};
  if (in.flag())
    fields.push_back(std::string("alpha = ") + in.pick(alphas));
  for (const char *name : {"sink", "window", "last_n", "min_budget"})
    if (in.flag())
      fields.push_back(std::string(name) + " = " +
                       std::to_string(maybeOdd(in.range(0, 8))));
  for (size_t i = 0; i < fields.size(); ++i)
    threshold += (i ? ", " : "") + fields[i];
  threshold += ">";

  std::string common = "block_size = " + std::to_string(block) + " : i64";
  if (in.byte() >= 200)
    common += ", causal = false";
  if (in.byte() >= 200) {
    const char *scales[] = {"0.5", "0.0", "-1.0", "1.0e+30", "0x7F800000"};
    common += std::string(", scale = ") + in.pick(scales) + " : f32";
  }
  bool pooled = in.byte() >= 200;
  std::string query = pooled ? ", query_kind = #fp<query_kind pooled>" : "";

  std::string q = tensorType({b, seq, hq, d}, dtype);
  std::string kv = tensorType(
      {b, seq, hkv, in.byte() < 245 || d > (1 << 20) ? d : d * 2}, dtypeK);
  std::string lse = tensorType({b, hq, seq}, "f32");
  std::string counts = tensorType({b, hq, nb}, "i32");
  std::string ids = tensorType({b, hq, nb, nb}, "i32");
  std::string kbar = tensorType({b, hkv, nb, d}, dtypeK);
  std::string scores = tensorType({b, hq, nb, nb}, "f32");
  auto tile = [&](const char *kind) -> std::string {
    if (in.byte() < 170)
      return "";
    auto v = [&](int64_t valid) { return std::to_string(maybeOdd(valid)); };
    if (std::string(kind) == "attention")
      return ", tile = #fp.attention_tile<block_m = " + v(128) +
             ", block_n = " + v(32) + ", warps = " + v(4) +
             ", stages = " + v(2) + ">";
    if (std::string(kind) == "discovery")
      return ", tile = #fp.discovery_tile<key_chunk = " + v(64) +
             ", warps = " + v(4) + ">";
    return ", tile = #fp.pool_tile<threads = " + v(128) + ">";
  };

  std::string body;
  switch (in.range(0, 2)) {
  case 0: // the whole operator
    body = llvm::formatv("  %o, %l = fp.prefill %q, %k, %v {{{0}{1}, "
                         "threshold = {2}} : ({3}, {4}, {4}) -> ({3}, {5})\n",
                         common, query, threshold, q, kv, lse);
    break;
  case 1: // the expanded steps
    body = llvm::formatv(
        "  %kbar = fp.block_pool %k {{block_size = {0} : i64{1}} : ({2}) -> "
        "{3}\n"
        "  %s = fp.block_score %q, %kbar {{{4}{5}} : ({6}, {3}) -> {7}\n"
        "  %c, %i = fp.threshold_mask %s {{threshold = {8}} : ({7}) -> ({9}, "
        "{10})\n"
        "  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {{{4}{11}} : ({6}, "
        "{2}, {2}, {9}, {10}) -> ({6}, {12})\n",
        block, tile("pool"), kv, kbar, common, query, q, scores, threshold,
        counts, ids, tile("attention"), lse);
    break;
  default: // fused discovery, then attention
    body = llvm::formatv(
        "  %kbar = fp.block_pool %k {{block_size = {0} : i64{1}} : ({2}) -> "
        "{3}\n"
        "  %c, %i = fp.pattern_discovery %q, %kbar {{{4}{5}, threshold = "
        "{6}{7}} : ({8}, {3}) -> ({9}, {10})\n"
        "  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {{{4}{11}} : ({8}, "
        "{2}, {2}, {9}, {10}) -> ({8}, {12})\n",
        block, tile("pool"), kv, kbar, common, query, threshold,
        tile("discovery"), q, counts, ids, tile("attention"), lse);
    break;
  }
  return llvm::formatv("func.func @f(%q: {0}, %k: {1}, %v: {1}) -> ({0}, {2}) "
                       "{{\n{3}  return %o, %l : {0}, {2}\n}\n",
                       q, kv, lse, body);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // Keep single inputs fast: the parser is linear, the passes are not the
  // point of huge inputs.
  if (size > 16384)
    return 0;
  // MLIR's lexer reads the NUL after the buffer (as files, std::string and
  // MemoryBuffer provide): copy the bytes into a std::string.
  std::string owned;
  if (size > 0 && data[0] == 0xff) {
    ::fp::fuzz::FuzzInput in(data + 1, size - 1);
    owned = structuredModule(in);
    if (std::getenv("FP_FUZZ_DIALECT_PRINT"))
      std::fprintf(stderr, "%s\n", owned.c_str());
  } else {
    owned.assign(reinterpret_cast<const char *>(data), size);
  }
  llvm::StringRef text(owned);
  if (text.contains("emitc"))
    return 0;
  // Refused by fp-opt too: deeper nesting overflows the parser's stack.
  if (mlir::fp::findExcessiveNesting(text))
    return 0;

  DialectRegistry registry;
  registry
      .insert<mlir::fp::FPDialect, func::FuncDialect, emitc::EmitCDialect>();
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  context.allowUnregisteredDialects(false);
  size_t diagnostics = 0;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &) {
    ++diagnostics;
    return success();
  });

  ParserConfig config(&context, /*verifyAfterParse=*/true);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, config);
  if (!module)
    return 0;

  // Pipeline options from the input's hash: arch, the shipped tuning
  // tables, and now and then forced tiles (valid, odd or extreme).
  uint64_t hash = fnv1a(data, size);
  mlir::fp::CompilePipelineOptions options;
  options.arch = kArchs[hash % 5];
  options.builtinTuning = (hash >> 9) & 1;
  options.lengthBucket = int64_t(1024) << ((hash >> 10) % 9);
  if (((hash >> 16) & 7) == 0) {
    const char *attention[] = {"128x32x4x2",     "64x64x4x3",  "16x16x1x1",
                               "4096x4096x64x9", "128x33x4x2", "1x1x1x1"};
    const char *discovery[] = {"64x4", "32x2", "1x1", "100000x64", "128x8"};
    options.attentionTile = attention[(hash >> 20) % 6];
    options.discoveryTile = discovery[(hash >> 24) % 5];
  }
  PassManager pm(&context);
  mlir::fp::buildCompilePipeline(pm, options);
  if (failed(pm.run(*module)))
    return 0;

  std::string cuda;
  llvm::raw_string_ostream os(cuda);
  if (failed(mlir::fp::translateToCuda(*module, os)))
    return 0;
  (void)mlir::fp::buildKernelManifest(*module);
  return 0;
}
