//===- fp-bench.cpp - Measured prefill on structured inputs -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Runs the operator through the public API on structured inputs (or .npy
// q, k, v) and prints, per length: device, shape, density, discovery and
// attention time (CUDA events after warm-up, median of repeats), dense-
// equivalent and effective TFLOP/s, the time of our own attention with every
// block kept (same process, same input), the relative L2 error against that
// dense output, and whether every planted needle was kept. Without a GPU it
// runs the CPU reference at small sizes, with a notice. --mask-png draws one
// head's kept blocks (MaskPng.h).
//
//===----------------------------------------------------------------------===//
#include "flashprefill/flashprefill.hpp"
#include "flashprefill/gpu_testing.h"
#include "flashprefill/npy.h"
#include "flashprefill/reference.h"
#include "flashprefill/runtime/cuda_driver.h"
#include "flashprefill/structured_inputs.h"
#include "common/CommandLine.h"
#include "MaskPng.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace {

using fp::rt::CudaDriver;
namespace limits = fp::tools::limits;

/// Host buffers of one length may not exceed this (the device holds about
/// the same): q, k, v, two outputs and two masks. 64 GiB fits the largest
/// GPUs we run on and keeps a typo from swapping the machine to death.
constexpr int64_t kMaxRunBytes = int64_t(64) << 30;

struct Options {
  bool cpu = false, json = false;
  std::vector<int64_t> lengths{32768};
  int64_t batch = 1, qHeads = 32, kvHeads = 8, headDim = 128, block = 128;
  fp_dtype_t dtype = FP_DTYPE_BF16;
  fp_params_t params;
  uint64_t seed = 1;
  int warmup = 3, repeats = 10;
  std::string npy;         ///< "q.npy,k.npy,v.npy"
  std::string saveInputs;  ///< directory for q/k/v .npy of each length
  std::string maskPng;     ///< heatmap of one head's kept blocks
  int64_t maskHead = 0;    ///< query head of batch 0 drawn by --mask-png
};

[[noreturn]] void usage(const char *error) {
  if (error)
    std::fprintf(stderr, "fp-bench: %s\n\n", error);
  std::fprintf(
      stderr,
      "usage: fp-bench [options]\n"
      "  --device gpu|cpu        backend (default gpu; cpu when no GPU)\n"
      "  --seq-len N             sequence length in [1, %lld] (default 32768)\n"
      "  --sweep N1,N2,...       several lengths, one result each; one\n"
      "                          progress line per length on stderr, always\n"
      "                          (logs show it too): '[3/6] 16384 tokens:\n"
      "                          12.3 ms' (discovery + attention)\n"
      "  --batch B               in [1, %lld] (default 1)\n"
      "  --q-heads H --kv-heads H  in [1, %lld], q-heads a multiple of\n"
      "                          kv-heads (default 32 and 8)\n"
      "  --head-dim D            a multiple of %lld in [%lld, %lld] (default 128)\n"
      "  --block B               a power of two in [%lld, %lld] (default 128)\n"
      "                          The buffers of one length (q, k, v, two\n"
      "                          outputs, two masks) may total %lld GiB.\n"
      "  --dtype bf16|f16\n"
      "  --alpha A --sink S --window W --last-n N --min-budget K\n"
      "                          rule parameters (integers in [0, 2^31-1])\n"
      "  --mean-correction       pruned blocks add their block means\n"
      "                          (docs/semantics.md section 3; CPU only so\n"
      "                          far); the error vs all blocks shows its gain\n"
      "  --seed S                structured-input seed >= 0 (default 1)\n"
      "  --npy q.npy,k.npy,v.npy inputs from files: uint16 bit patterns of\n"
      "                          --dtype or float32, shaped [b, s, h, d] as\n"
      "                          the flags say (one length; never reduced)\n"
      "  --warmup N --repeats N  timing, in [0, %lld] and [1, %lld]\n"
      "                          (default 3 and 10)\n"
      "  --json                  one JSON object per result on stdout\n"
      "  --save-inputs DIR       also write the inputs of each length as\n"
      "                          DIR/{q,k,v}_<len>_d<d>.npy (uint16 bits)\n"
      "  --mask-png FILE         a PNG heatmap of one head's kept blocks\n"
      "                          (query block down, key block across): blue\n"
      "                          kept, light grey causal but dropped, dark\n"
      "                          grey above the diagonal, red the diagonal.\n"
      "                          A block is 1024/nb pixels a side (1 to 32);\n"
      "                          above 1024 blocks a pixel covers several,\n"
      "                          shaded by the fraction kept. With --sweep,\n"
      "                          one file per length: FILE_<len>.png\n"
      "  --mask-head H           the query head drawn, of batch 0 (default 0)\n",
      (long long)limits::kMaxSeqLen, (long long)limits::kMaxBatch,
      (long long)limits::kMaxHeads, (long long)limits::kHeadDimStep,
      (long long)limits::kMinHeadDim, (long long)limits::kMaxHeadDim,
      (long long)limits::kMinBlock, (long long)limits::kMaxBlock,
      (long long)(kMaxRunBytes >> 30), (long long)limits::kMaxIterations,
      (long long)limits::kMaxIterations);
  std::exit(error ? 2 : 0);
}

/// Bytes of the host buffers runOne allocates for `seqLen` (q, k, v, the
/// sparse and all-blocks outputs, two masks), or nullopt on overflow.
std::optional<int64_t> runBytes(const Options &o, int64_t seqLen) {
  using fp::tools::checkedProduct;
  const int64_t nb = (seqLen + o.block - 1) / o.block;
  auto q = checkedProduct({o.batch, seqLen, o.qHeads, o.headDim, 2});
  auto kv = checkedProduct({o.batch, seqLen, o.kvHeads, o.headDim, 2});
  auto maskRows = checkedProduct({o.batch, o.qHeads, nb});
  auto maskIds = checkedProduct({o.batch, o.qHeads, nb, nb, 4});
  if (!q || !kv || !maskRows || !maskIds)
    return std::nullopt;
  // Terms below 2^60 keep the sum (at most 7 of them) below 2^63.
  if (*q > INT64_MAX / 8 || *kv > INT64_MAX / 8 || *maskIds > INT64_MAX / 8)
    return std::nullopt;
  return 3 * *q + 2 * *kv + 2 * (*maskRows * 4 + *maskIds);
}

/// FILE for one length; FILE_<len>.png when a sweep writes several.
std::string maskPngPath(const Options &o, int64_t seqLen) {
  if (o.lengths.size() <= 1)
    return o.maskPng;
  std::string stem = o.maskPng, ext;
  if (stem.size() > 4 && stem.compare(stem.size() - 4, 4, ".png") == 0) {
    ext = ".png";
    stem.resize(stem.size() - 4);
  }
  return stem + "_" + std::to_string(seqLen) + ext;
}

/// Cross-flag checks, before any GPU work.
void validate(const Options &o) {
  auto fail = [](const std::string &message) { usage(message.c_str()); };
  if (o.qHeads % o.kvHeads != 0)
    fail("--q-heads: expected a multiple of --kv-heads (" +
         std::to_string(o.kvHeads) + "), got " + std::to_string(o.qHeads));
  if (o.maskHead >= o.qHeads)
    fail("--mask-head: expected a query head in [0, " +
         std::to_string(o.qHeads - 1) + "], got " + std::to_string(o.maskHead));
  if (!o.npy.empty() && std::count(o.npy.begin(), o.npy.end(), ',') != 2)
    fail("--npy: expected q.npy,k.npy,v.npy, got '" + o.npy + "'");
  if (!o.npy.empty() && o.lengths.size() != 1)
    fail("--npy: expected one length (--seq-len, the files' s), got a "
         "--sweep of " +
         std::to_string(o.lengths.size()));
  for (int64_t seqLen : o.lengths) {
    std::optional<int64_t> bytes = runBytes(o, seqLen);
    if (!bytes || *bytes > kMaxRunBytes)
      fail("--seq-len/--sweep, --batch, --q-heads, --kv-heads, --head-dim, "
           "--block: the buffers of " +
           std::to_string(seqLen) + " tokens need " +
           (bytes ? std::to_string(*bytes >> 30) + " GiB" : "more than 2^63 bytes") +
           "; expected at most " + std::to_string(kMaxRunBytes >> 30) +
           " GiB");
  }
  if (!o.maskPng.empty())
    if (fp::Status s = fp::bench::checkMaskPngWritable(maskPngPath(o, o.lengths[0]));
        !s.isOk())
      fail(s.message());
}

Options parse(int argc, char **argv) {
  Options o;
  fp_params_init(&o.params);
  for (fp::tools::ArgCursor args(argc, argv, usage); args.next();) {
    const std::string &arg = args.arg();
    auto value = [&] { return args.value(); };
    auto int32 = [&](int64_t lo) {
      return int32_t(args.integerIn(lo, limits::kMaxInt32));
    };
    if (arg == "--help" || arg == "-h")
      usage(nullptr);
    else if (arg == "--device") {
      std::string d = value();
      if (d != "gpu" && d != "cpu")
        usage("--device: expected gpu or cpu");
      o.cpu = d == "cpu";
    } else if (arg == "--seq-len")
      o.lengths = {args.integerIn(1, limits::kMaxSeqLen)};
    else if (arg == "--sweep") {
      o.lengths = args.positiveList(limits::kMaxSeqLen);
    } else if (arg == "--batch")
      o.batch = args.integerIn(1, limits::kMaxBatch);
    else if (arg == "--q-heads")
      o.qHeads = args.integerIn(1, limits::kMaxHeads);
    else if (arg == "--kv-heads")
      o.kvHeads = args.integerIn(1, limits::kMaxHeads);
    else if (arg == "--head-dim")
      o.headDim = args.multipleIn(limits::kHeadDimStep, limits::kMinHeadDim,
                                  limits::kMaxHeadDim);
    else if (arg == "--block")
      o.block = args.powerOfTwoIn(limits::kMinBlock, limits::kMaxBlock);
    else if (arg == "--dtype") {
      std::string d = value();
      if (d != "bf16" && d != "f16")
        usage("--dtype: expected bf16 or f16");
      o.dtype = d == "bf16" ? FP_DTYPE_BF16 : FP_DTYPE_F16;
    } else if (arg == "--alpha")
      o.params.alpha = float(args.number());
    else if (arg == "--sink")
      o.params.sink = int32(0);
    else if (arg == "--window")
      o.params.window = int32(1);
    else if (arg == "--last-n")
      o.params.last_n = int32(0);
    else if (arg == "--min-budget")
      o.params.min_budget = int32(0);
    else if (arg == "--seed")
      o.seed = uint64_t(args.integerIn(0, INT64_MAX));
    else if (arg == "--warmup")
      o.warmup = int(args.integerIn(0, limits::kMaxIterations));
    else if (arg == "--repeats")
      o.repeats = int(args.integerIn(1, limits::kMaxIterations));
    else if (arg == "--mask-png") {
      o.maskPng = value();
      if (o.maskPng.empty())
        usage("--mask-png: expected a file name, got ''");
    } else if (arg == "--mask-head")
      o.maskHead = args.integerIn(0, limits::kMaxHeads - 1);
    else if (arg == "--npy")
      o.npy = value();
    else if (arg == "--json")
      o.json = true;
    else if (arg == "--save-inputs")
      o.saveInputs = value();
    else if (arg == "--mean-correction")
      o.params.mean_correction = 1;
    else
      usage(("unknown option " + arg).c_str());
  }
  validate(o);
  return o;
}

/// Query-key pairs attended under `counts`/`ids` (causal inside diagonal
/// blocks, partial last block counted exactly).
double attendedPairs(const std::vector<int32_t> &counts,
                     const std::vector<int32_t> &ids, int64_t rowsOfMask,
                     int64_t nb, int64_t block, int64_t seqLen) {
  auto rowsIn = [&](int64_t blk) {
    return std::min(block, seqLen - blk * block);
  };
  double pairs = 0;
  for (int64_t r = 0; r < rowsOfMask; ++r) {
    int64_t i = r % nb;
    for (int32_t c = 0; c < counts[r]; ++c) {
      int64_t j = ids[r * nb + c];
      double rows = double(rowsIn(i)), keys = double(rowsIn(j));
      pairs += j == i ? rows * (rows + 1) / 2 : rows * keys;
    }
  }
  return pairs;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

/// Results of one length.
struct Result {
  std::string device;
  int64_t seqLen = 0;
  double density = 0, discoveryMs = 0, attentionMs = 0, denseAttentionMs = 0;
  double denseFlops = 0, keptFlops = 0, relL2VsDense = 0;
  int64_t needles = 0, needlesKept = 0;
  double planMs = 0;
  std::string kernelOrigin, inputs;
};

void print(const Options &o, const Result &r) {
  double total = r.discoveryMs + r.attentionMs;
  double denseTflops = r.denseFlops / (total * 1e-3) / 1e12;
  double effTflops = r.keptFlops / (r.attentionMs * 1e-3) / 1e12;
  double denseOwnTflops = r.denseFlops / (r.denseAttentionMs * 1e-3) / 1e12;
  const char *dtype = o.dtype == FP_DTYPE_BF16 ? "bf16" : "f16";
  if (o.json) {
    std::printf(
        "{\"device\": \"%s\", \"dtype\": \"%s\", \"batch\": %lld, "
        "\"seq_len\": %lld, \"q_heads\": %lld, \"kv_heads\": %lld, "
        "\"head_dim\": %lld, \"block\": %lld, \"alpha\": %g, \"density\": "
        "%.5f, \"discovery_ms\": %.4f, \"attention_ms\": %.4f, \"total_ms\": "
        "%.4f, \"dense_equiv_tflops\": %.2f, \"effective_tflops\": %.2f, "
        "\"all_blocks_attention_ms\": %.4f, \"all_blocks_tflops\": %.2f, "
        "\"speedup_vs_all_blocks\": %.3f, \"discovery_share\": %.5f, "
        "\"rel_l2_vs_dense\": %.4e, \"needles\": %lld, \"needles_kept\": "
        "%lld, \"mean_correction\": %s, \"plan_ms\": %.1f, \"kernels\": \"%s\", "
        "\"inputs\": \"%s\"}\n",
        r.device.c_str(), dtype, (long long)o.batch, (long long)r.seqLen,
        (long long)o.qHeads, (long long)o.kvHeads, (long long)o.headDim,
        (long long)o.block, o.params.alpha, r.density, r.discoveryMs,
        r.attentionMs, total, denseTflops, effTflops, r.denseAttentionMs,
        denseOwnTflops, r.denseAttentionMs / total,
        r.discoveryMs / r.denseAttentionMs, r.relL2VsDense,
        (long long)r.needles, (long long)r.needlesKept,
        o.params.mean_correction ? "true" : "false", r.planMs,
        r.kernelOrigin.c_str(), r.inputs.c_str());
    return;
  }
  std::printf(
      "%s | %s b=%lld s=%lld h_q=%lld h_kv=%lld d=%lld B=%lld alpha=%g%s\n"
      "  density %.2f%% | discovery %.3f ms + attention %.3f ms = %.3f ms\n"
      "  dense-equivalent %.2f TFLOP/s, effective %.2f TFLOP/s on kept "
      "blocks\n"
      "  all blocks kept (same kernel): %.3f ms, %.1f TFLOP/s -> speedup "
      "%.2fx, discovery share %.2f%%\n"
      "  rel L2 vs all-blocks output %.3e | needles kept %lld/%lld | plan "
      "%.1f ms (%s)\n",
      r.device.c_str(), dtype, (long long)o.batch, (long long)r.seqLen,
      (long long)o.qHeads, (long long)o.kvHeads, (long long)o.headDim,
      (long long)o.block, o.params.alpha,
      o.params.mean_correction ? " (mean correction)" : "", 100 * r.density,
      r.discoveryMs,
      r.attentionMs, total, denseTflops, effTflops, r.denseAttentionMs,
      denseOwnTflops, r.denseAttentionMs / total,
      100 * r.discoveryMs / r.denseAttentionMs, r.relL2VsDense,
      (long long)r.needlesKept, (long long)r.needles, r.planMs,
      r.kernelOrigin.c_str());
}

/// q, k, v for one length: generated, or read from --npy.
fp::testing::StructuredInputs loadInputs(const Options &o, int64_t seqLen) {
  if (o.npy.empty()) {
    fp::testing::StructuredConfig c;
    c.dtype = o.dtype == FP_DTYPE_BF16 ? fp::DType::kBF16 : fp::DType::kF16;
    c.batch = o.batch;
    c.seqLen = seqLen;
    c.numQHeads = o.qHeads;
    c.numKvHeads = o.kvHeads;
    c.headDim = o.headDim;
    c.blockSize = int(o.block);
    c.seed = o.seed;
    return fp::testing::makeStructuredInputs(c);
  }
  fp::testing::StructuredInputs in;
  std::stringstream list(o.npy);
  std::vector<std::string> paths;
  for (std::string p; std::getline(list, p, ',');)
    paths.push_back(p);
  if (paths.size() != 3)
    usage("--npy: expected q.npy,k.npy,v.npy");
  fp::DType dtype =
      o.dtype == FP_DTYPE_BF16 ? fp::DType::kBF16 : fp::DType::kF16;
  std::vector<uint16_t> *dst[3] = {&in.q, &in.k, &in.v};
  const int64_t heads[3] = {o.qHeads, o.kvHeads, o.kvHeads};
  auto shapeText = [](const std::vector<int64_t> &shape) {
    std::string text = "[";
    for (size_t i = 0; i < shape.size(); ++i)
      text += (i ? ", " : "") + std::to_string(shape[i]);
    return text + "]";
  };
  for (int i = 0; i < 3; ++i) {
    auto array = fp::readNpy(paths[i]);
    if (!array.isOk()) {
      std::fprintf(stderr, "fp-bench: %s\n",
                   array.status().toString().c_str());
      std::exit(1);
    }
    // The kernels index by the flags' shape: a file of another shape would
    // be read out of bounds or silently reinterpreted.
    const std::vector<int64_t> expected{o.batch, seqLen, heads[i], o.headDim};
    if (array->type != fp::NpyType::kUInt16 &&
        array->type != fp::NpyType::kFloat32)
      usage(("--npy: " + paths[i] + ": expected uint16 (" +
             (o.dtype == FP_DTYPE_BF16 ? "bf16" : "f16") +
             " bit patterns) or float32 elements, got " +
             fp::npyDescr(array->type))
                .c_str());
    if (array->shape != expected)
      usage(("--npy: " + paths[i] + ": expected shape " +
             shapeText(expected) + " ([b, s, " + (i ? "kv" : "q") +
             "-heads, d] from the flags), got " + shapeText(array->shape))
                .c_str());
    auto tensor = fp::ref::tensorFromNpy(*array, dtype, paths[i]);
    if (!tensor.isOk()) {
      std::fprintf(stderr, "fp-bench: %s\n",
                   tensor.status().toString().c_str());
      std::exit(1);
    }
    *dst[i] = tensor->storage();
  }
  in.description = "npy(" + o.npy + ")";
  return in;
}

fp_tensor_t tensorOf(void *data, int64_t b, int64_t s, int64_t h,
                     int64_t d) {
  return {data, {b, s, h, d}, {s * h * d, h * d, d, 1}};
}

/// Median ms of `fn` (CUDA events, after warm-up).
double timeGpu(const CudaDriver *drv, int warmup, int repeats,
               const std::function<void()> &fn) {
  return fp::testing::medianGpuMs(drv, warmup, repeats, fn);
}

void check(const fp::Status &status, const char *what) {
  if (!status.isOk()) {
    std::fprintf(stderr, "fp-bench: %s: %s\n", what,
                 status.toString().c_str());
    std::exit(1);
  }
}

/// One length on the GPU or the CPU.
Result runOne(const Options &o, int64_t seqLen, bool cpu,
              const CudaDriver *drv) {
  Result r;
  r.seqLen = seqLen;
  const int64_t b = o.batch, d = o.headDim;
  const int64_t nb = (seqLen + o.block - 1) / o.block;
  fp::testing::StructuredInputs in = loadInputs(o, seqLen);
  r.inputs = in.description;
  if (!o.saveInputs.empty()) {
    // Other tools (bench/compare.py) time baselines on the same inputs.
    const std::pair<const char *, std::pair<std::vector<uint16_t> *, int64_t>>
        files[] = {{"q", {&in.q, o.qHeads}},
                   {"k", {&in.k, o.kvHeads}},
                   {"v", {&in.v, o.kvHeads}}};
    for (const auto &[name, data] : files) {
      std::string path = o.saveInputs + "/" + name + "_" +
                         std::to_string(seqLen) + "_d" + std::to_string(d) +
                         ".npy";
      check(fp::writeNpy(path, fp::makeNpyArray({b, seqLen, data.second, d},
                                                *data.first)),
            "--save-inputs");
    }
  }

  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = cpu ? FP_DEVICE_CPU : 0;
  spec.dtype = o.dtype;
  spec.head_dim = int32_t(d);
  spec.num_q_heads = int32_t(o.qHeads);
  spec.num_kv_heads = int32_t(o.kvHeads);
  spec.block_size = int32_t(o.block);
  spec.max_batch = b;
  spec.max_seq_len = seqLen;
  auto start = std::chrono::steady_clock::now();
  auto plan = fp::Plan::create(spec);
  check(plan.isOk() ? fp::Status::ok() : plan.status(), "plan");
  r.planMs = std::chrono::duration<double, std::milli>(
                 std::chrono::steady_clock::now() - start)
                 .count();
  r.device = (*plan)->info().device;
  r.kernelOrigin = (*plan)->info().kernelOrigin;

  size_t qBytes = in.q.size() * 2, kvBytes = in.k.size() * 2;
  size_t rows = size_t(b * o.qHeads * nb);
  size_t selectBytes = *(*plan)->selectWorkspaceBytes(b, seqLen);
  std::vector<int32_t> counts(rows), ids(rows * nb), denseCounts(rows),
      denseIds(rows * nb);
  std::vector<uint16_t> out(in.q.size()), denseOut(in.q.size());
  fp_params_t dense = o.params;
  dense.alpha = 0; // keeps every causal block

  if (cpu) {
    std::vector<char> workspace(selectBytes);
    fp_tensor_t q = tensorOf(in.q.data(), b, seqLen, o.qHeads, d);
    fp_tensor_t k = tensorOf(in.k.data(), b, seqLen, o.kvHeads, d);
    fp_tensor_t v = tensorOf(in.v.data(), b, seqLen, o.kvHeads, d);
    fp_tensor_t ot = tensorOf(out.data(), b, seqLen, o.qHeads, d);
    fp_tensor_t dt = tensorOf(denseOut.data(), b, seqLen, o.qHeads, d);
    fp_mask_t mask{counts.data(), ids.data(), b, o.qHeads, nb};
    fp_mask_t denseMask{denseCounts.data(), denseIds.data(), b, o.qHeads, nb};
    auto wall = [](const std::function<void()> &fn) {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      return std::chrono::duration<double, std::milli>(
                 std::chrono::steady_clock::now() - t0)
          .count();
    };
    r.discoveryMs = wall([&] {
      check((*plan)->select(&q, &k, &o.params, &mask, workspace.data(),
                            selectBytes, nullptr),
            "select");
    });
    r.attentionMs = wall([&] {
      check((*plan)->attend(&q, &k, &v, &mask, &ot, &o.params, nullptr),
            "attend");
    });
    check((*plan)->select(&q, &k, &dense, &denseMask, workspace.data(),
                          selectBytes, nullptr),
          "select (all blocks)");
    r.denseAttentionMs = wall([&] {
      check((*plan)->attend(&q, &k, &v, &denseMask, &dt, &dense, nullptr),
            "attend (all blocks)");
    });
  } else {
    const auto &api = drv->api();
    auto alloc = [&](size_t bytes) {
      CUdeviceptr p = 0;
      check(drv->check(api.memAlloc(&p, std::max<size_t>(bytes, 256)),
                       "cuMemAlloc"),
            "allocation");
      return p;
    };
    CUdeviceptr dq = alloc(qBytes), dk = alloc(kvBytes), dv = alloc(kvBytes),
                dout = alloc(qBytes), ddense = alloc(qBytes),
                dws = alloc(selectBytes), dcounts = alloc(rows * 4),
                dids = alloc(rows * nb * 4), ddc = alloc(rows * 4),
                ddi = alloc(rows * nb * 4);
    api.memcpyHtoD(dq, in.q.data(), qBytes);
    api.memcpyHtoD(dk, in.k.data(), kvBytes);
    api.memcpyHtoD(dv, in.v.data(), kvBytes);
    auto ptr = [](CUdeviceptr p) { return reinterpret_cast<void *>(p); };
    fp_tensor_t q = tensorOf(ptr(dq), b, seqLen, o.qHeads, d);
    fp_tensor_t k = tensorOf(ptr(dk), b, seqLen, o.kvHeads, d);
    fp_tensor_t v = tensorOf(ptr(dv), b, seqLen, o.kvHeads, d);
    fp_tensor_t ot = tensorOf(ptr(dout), b, seqLen, o.qHeads, d);
    fp_tensor_t dt = tensorOf(ptr(ddense), b, seqLen, o.qHeads, d);
    fp_mask_t mask{static_cast<int32_t *>(ptr(dcounts)),
                   static_cast<int32_t *>(ptr(dids)), b, o.qHeads, nb};
    fp_mask_t denseMask{static_cast<int32_t *>(ptr(ddc)),
                        static_cast<int32_t *>(ptr(ddi)), b, o.qHeads, nb};
    r.discoveryMs = timeGpu(drv, o.warmup, o.repeats, [&] {
      check((*plan)->select(&q, &k, &o.params, &mask, ptr(dws), selectBytes,
                            nullptr),
            "select");
    });
    r.attentionMs = timeGpu(drv, o.warmup, o.repeats, [&] {
      check((*plan)->attend(&q, &k, &v, &mask, &ot, &o.params, nullptr),
            "attend");
    });
    check((*plan)->select(&q, &k, &dense, &denseMask, ptr(dws), selectBytes,
                          nullptr),
          "select (all blocks)");
    r.denseAttentionMs = timeGpu(drv, o.warmup, o.repeats, [&] {
      check((*plan)->attend(&q, &k, &v, &denseMask, &dt, &dense, nullptr),
            "attend (all blocks)");
    });
    api.ctxSynchronize();
    api.memcpyDtoH(counts.data(), dcounts, rows * 4);
    api.memcpyDtoH(ids.data(), dids, rows * nb * 4);
    api.memcpyDtoH(out.data(), dout, qBytes);
    api.memcpyDtoH(denseOut.data(), ddense, qBytes);
    for (CUdeviceptr p : {dq, dk, dv, dout, ddense, dws, dcounts, dids, ddc,
                          ddi})
      api.memFree(p);
  }

  // Density, FLOPs, error vs all blocks, needles.
  int64_t kept = 0;
  for (int32_t c : counts)
    kept += c;
  double causalBlocks = double(b * o.qHeads) * nb * (nb + 1) / 2;
  r.density = kept / causalBlocks;
  double densePairs = double(b * o.qHeads) * seqLen * (seqLen + 1) / 2;
  r.denseFlops = 4.0 * d * densePairs;
  r.keptFlops =
      4.0 * d * attendedPairs(counts, ids, int64_t(rows), nb, o.block, seqLen);
  fp::DType dtype =
      o.dtype == FP_DTYPE_BF16 ? fp::DType::kBF16 : fp::DType::kF16;
  // Streamed: at 128K x 32 heads the outputs hold 537M elements each.
  double diff = 0, norm = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    double sparse = fp::bitsToFloat(dtype, out[i]);
    double full = fp::bitsToFloat(dtype, denseOut[i]);
    diff += (sparse - full) * (sparse - full);
    norm += full * full;
  }
  r.relL2VsDense = norm > 0 ? std::sqrt(diff / norm) : 0;
  for (const auto &n : in.needles) {
    ++r.needles;
    int64_t row = (n.batch * o.qHeads + n.head) * nb + n.queryBlock;
    const int32_t *begin = &ids[row * nb], *end = begin + counts[row];
    r.needlesKept += std::find(begin, end, int32_t(n.keyBlock)) != end;
  }
  if (!o.maskPng.empty()) {
    const size_t firstRow = size_t(o.maskHead * nb); // batch 0
    check(fp::bench::writeMaskPng(
              maskPngPath(o, seqLen),
              {&counts[firstRow], &ids[firstRow * size_t(nb)], nb}),
          "--mask-png");
  }
  return r;
}

} // namespace

int main(int argc, char **argv) {
  Options o = parse(argc, argv);
  if (fp::Status s = fp::validateParams(&o.params); !s.isOk()) {
    std::fprintf(stderr, "fp-bench: %s\n", s.toString().c_str());
    return 2;
  }
  bool cpu = o.cpu;
  const CudaDriver *drv = nullptr;
  if (!cpu) {
    auto driver = CudaDriver::get();
    if (!driver.isOk() || (*driver)->deviceCount() == 0 ||
        !(*driver)->makePrimaryContextCurrent(0).isOk()) {
      std::fprintf(stderr,
                   "fp-bench: %s; running the CPU reference at small sizes "
                   "instead\n",
                   driver.isOk() ? "no CUDA device: 0 devices"
                                 : driver.status().message().c_str());
      cpu = true;
    } else {
      drv = *driver;
    }
  }
  if (cpu && o.npy.empty()) {
    // The reference is O(s^2) on 2-16 cores: keep to 4K tokens x 8 query
    // heads (seconds), preserving the GQA group. Files are taken as given.
    int64_t group = o.qHeads / std::max<int64_t>(1, o.kvHeads);
    if (o.qHeads > 8 && group <= 8) {
      std::fprintf(stderr, "fp-bench: CPU backend: %lld query heads reduced "
                           "to 8 (group %lld kept)\n",
                   (long long)o.qHeads, (long long)group);
      o.qHeads = 8;
      o.kvHeads = 8 / group;
    }
    for (int64_t &len : o.lengths)
      if (len * o.qHeads * o.batch > 4096 * 8) {
        int64_t small = std::max<int64_t>(512, 4096 * 8 / (o.qHeads * o.batch));
        std::fprintf(stderr,
                     "fp-bench: CPU backend: length %lld reduced to %lld\n",
                     (long long)len, (long long)small);
        len = small;
      }
    if (o.maskHead >= o.qHeads) {
      std::fprintf(stderr,
                   "fp-bench: --mask-head: expected a query head in [0, "
                   "%lld] (the CPU backend runs %lld), got %lld\n",
                   (long long)o.qHeads - 1, (long long)o.qHeads,
                   (long long)o.maskHead);
      return 2;
    }
  }
  // Progress of a sweep: always on (stderr; stdout keeps the results), so
  // a log shows it too. On a terminal the line is written when the length
  // starts and completed in place when it ends.
  const bool sweep = o.lengths.size() > 1, tty = ::isatty(2);
  for (size_t i = 0; i < o.lengths.size(); ++i) {
    if (sweep && tty)
      std::fprintf(stderr, "[%zu/%zu] %lld tokens ...", i + 1,
                   o.lengths.size(), (long long)o.lengths[i]);
    Result r = runOne(o, o.lengths[i], cpu, drv);
    if (sweep)
      std::fprintf(stderr, "%s[%zu/%zu] %lld tokens: %.1f ms\n",
                   tty ? "\r" : "", i + 1, o.lengths.size(),
                   (long long)r.seqLen, r.discoveryMs + r.attentionMs);
    print(o, r);
    std::fflush(stdout);
  }
  return 0;
}
