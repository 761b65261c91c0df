//===- Tuner.cpp - Search tile configurations on the GPU --------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Phases, in order:
//   1. enumerate the tiles of each kernel; drop those the compiler's static
//      rules reject (divisibility, warps, shared memory for the arch);
//   2. compile the survivors with NVRTC in parallel threads, dropping those
//      whose kernel spills registers;
//   3. on the GPU: check each survivor on a small problem against the CPU
//      reference (identical mask, output within the section-4 bound);
//      failures are recorded and never timed;
//   4. time each survivor per length bucket on structured inputs (CUDA
//      events, warm-up, median, a per-config time bound) and record it.
//
//===----------------------------------------------------------------------===//
#include "Tuner.h"

#include "flashprefill/flashprefill.hpp"
#include "flashprefill/gpu_testing.h"
#include "flashprefill/reference.h"
#include "flashprefill/runtime/nvrtc.h"
#include "flashprefill/structured_inputs.h"
#include "fp/Compiler/Codegen.h"
#include "fp/Compiler/TileConfig.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

namespace fp::tune {
namespace {

using Clock = std::chrono::steady_clock;

mlir::fp::KernelKey keyOf(const TuneOptions &o,
                          const mlir::fp::TargetArch &target) {
  return {target.computeCapability, o.headDim, o.blockSize, 2,
          o.qHeads / o.kvHeads, target.attentionMainloop};
}

/// The compile-time spec of a candidate (the other kernel keeps its
/// heuristic tile).
codegen::KernelSpec specOf(const TuneOptions &o, const std::string &arch,
                           const Candidate &c) {
  codegen::KernelSpec spec;
  spec.dtype = o.dtype;
  spec.headDim = o.headDim;
  spec.numQHeads = o.qHeads;
  spec.numKvHeads = o.kvHeads;
  spec.blockSize = o.blockSize;
  spec.arch = arch;
  (c.kernel == tuning::kAttention ? spec.attentionTile : spec.discoveryTile) =
      tuning::configText(c.config);
  return spec;
}

/// Phase 2 for one candidate: compile and read the ptxas report.
void compileCheck(const TuneOptions &o, const std::string &arch, Candidate &c) {
  auto nvrtc = rt::Nvrtc::get();
  if (!nvrtc.isOk()) {
    c.pruned = "no NVRTC: " + nvrtc.status().message();
    return;
  }
  auto kernels = codegen::generateKernels(specOf(o, arch, c));
  if (!kernels.isOk()) {
    c.pruned = "codegen: " + kernels.status().message();
    return;
  }
  rt::NvrtcOptions options;
  options.arch = arch;
  options.ptxasVerbose = true;
  auto out = (*nvrtc)->compile(kernels->source, "fp_tune.cu", options);
  if (!out.isOk()) {
    c.pruned = "compile error";
    return;
  }
  const char *entry =
      c.kernel == tuning::kAttention ? "masked_attention" : "pattern_discovery";
  for (const auto &r : out->resources)
    if (r.isEntry && r.kernel.find(entry) != std::string::npos) {
      c.registers = r.registers;
      if (r.spillStoreBytes + r.spillLoadBytes > 0)
        c.pruned = "spills " + std::to_string(r.spillStoreBytes) + "+" +
                   std::to_string(r.spillLoadBytes) + " bytes";
    }
}

/// Host inputs of one problem size.
struct HostProblem {
  int64_t seqLen = 0;
  testing::StructuredInputs in;
};

/// Device buffers of one problem, with a mask from select().
struct DeviceProblem {
  DeviceProblem(const rt::CudaDriver *drv, const TuneOptions &o,
                const HostProblem &h, size_t workspaceBytes)
      : seqLen(h.seqLen), numBlocks((h.seqLen + o.blockSize - 1) / o.blockSize),
        q(drv, h.in.q.size() * 2), k(drv, h.in.k.size() * 2),
        v(drv, h.in.v.size() * 2), out(drv, h.in.q.size() * 2),
        counts(drv, size_t(o.qHeads * numBlocks) * 4),
        ids(drv, size_t(o.qHeads * numBlocks * numBlocks) * 4),
        workspace(drv, workspaceBytes) {
    auto t = [&](const testing::DeviceBuffer &b, int64_t heads) {
      return fp_tensor_t{
          b.get(),
          {1, seqLen, heads, o.headDim},
          {seqLen * heads * o.headDim, heads * o.headDim, o.headDim, 1}};
    };
    qt = t(q, o.qHeads);
    kt = t(k, o.kvHeads);
    vt = t(v, o.kvHeads);
    ot = t(out, o.qHeads);
    mask = {static_cast<int32_t *>(counts.get()),
            static_cast<int32_t *>(ids.get()), 1, o.qHeads, numBlocks};
    fp_params_init(&params);
    status = q.upload(h.in.q.data());
    if (status.isOk())
      status = k.upload(h.in.k.data());
    if (status.isOk())
      status = v.upload(h.in.v.data());
  }
  Status select(const Plan &plan) {
    return plan.select(&qt, &kt, &params, &mask, workspace.get(),
                       workspace.size(), nullptr);
  }
  Status attend(const Plan &plan) {
    return plan.attend(&qt, &kt, &vt, &mask, &ot, &params, nullptr);
  }

  int64_t seqLen, numBlocks;
  testing::DeviceBuffer q, k, v, out, counts, ids, workspace;
  fp_tensor_t qt, kt, vt, ot;
  fp_mask_t mask;
  fp_params_t params;
  Status status;
};

/// The CPU reference of the correctness problem: mask and fp64 output.
struct Expected {
  ref::BlockMask mask;
  std::vector<double> truth; ///< fp64 on the reference mask
  double naiveError = 0;     ///< naive fp32/P-rounded kernel's error
};

StatusOr<Expected> expectedOf(const TuneOptions &o, const HostProblem &h) {
  DType dtype = o.dtype == "bf16" ? DType::kBF16 : DType::kF16;
  auto view = [&](const std::vector<uint16_t> &data, int64_t heads) {
    return ref::TensorView{data.data(),
                           dtype,
                           1,
                           h.seqLen,
                           heads,
                           o.headDim,
                           h.seqLen * heads * o.headDim,
                           heads * o.headDim,
                           o.headDim};
  };
  ref::Options options;
  options.blockSize = o.blockSize;
  auto qv = view(h.in.q, o.qHeads), kv = view(h.in.k, o.kvHeads),
       vv = view(h.in.v, o.kvHeads);
  auto result = ref::prefill(qv, kv, vv, options);
  if (!result.isOk())
    return result.status();
  auto truth = ref::naiveAttention(qv, kv, vv, options, &result->mask);
  if (!truth.isOk())
    return truth.status();
  std::vector<double> naive(result->attention.out.storage().size());
  for (size_t i = 0; i < naive.size(); ++i)
    naive[i] = bitsToFloat(dtype, result->attention.out.storage()[i]);
  return Expected{result->mask, truth->out,
                  testing::relativeL2(naive, truth->out)};
}

/// Phase 3: "" when the candidate's plan reproduces the reference.
std::string checkCandidate(const rt::CudaDriver *drv, const TuneOptions &o,
                           const Plan &plan, DeviceProblem &p,
                           const Expected &expected) {
  if (Status s = p.select(plan); !s.isOk())
    return "select failed: " + s.message();
  if (Status s = p.attend(plan); !s.isOk())
    return "attend failed: " + s.message();
  if (drv->api().ctxSynchronize() != CUDA_SUCCESS)
    return "kernel failed";
  const size_t rows = size_t(o.qHeads * p.numBlocks);
  std::vector<int32_t> counts(rows), ids(rows * p.numBlocks);
  std::vector<uint16_t> out(p.out.size() / 2);
  if (!p.counts.download(counts.data()).isOk() ||
      !p.ids.download(ids.data()).isOk() || !p.out.download(out.data()).isOk())
    return "download failed";
  for (size_t r = 0; r < rows; ++r) {
    if (counts[r] != expected.mask.counts[r])
      return "mask differs from the reference";
    for (int32_t c = 0; c < counts[r]; ++c)
      if (ids[r * p.numBlocks + c] != expected.mask.ids[r * p.numBlocks + c])
        return "mask differs from the reference";
  }
  DType dtype = o.dtype == "bf16" ? DType::kBF16 : DType::kF16;
  std::vector<double> values(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    values[i] = bitsToFloat(dtype, out[i]);
    if (!std::isfinite(values[i]))
      return "non-finite output";
  }
  double error = testing::relativeL2(values, expected.truth);
  double bound = std::max(2 * expected.naiveError, 2e-3);
  if (!(error <= bound))
    return "output error " + std::to_string(error) + " > bound " +
           std::to_string(bound);
  return "";
}

} // namespace

std::vector<Candidate> enumerate(const TuneOptions &o,
                                 const std::string &kernel,
                                 const std::string &arch) {
  std::optional<mlir::fp::TargetArch> target = mlir::fp::parseTargetArch(arch);
  std::vector<Candidate> out;
  if (!target)
    return out;
  mlir::fp::KernelKey key = keyOf(o, *target);
  if (kernel == tuning::kAttention) {
    mlir::fp::AttentionTile h = mlir::fp::defaultAttentionTile(key);
    // sm_90a: the warp count follows from block_m (a producer warpgroup plus
    // one consumer warpgroup per 64 rows) and block_n is a wgmma N.
    const bool hopper = key.attentionMainloop == 90;
    const std::vector<int64_t> blockNs =
        hopper ? std::vector<int64_t>{64, 128} : std::vector<int64_t>{32, 64, 128};
    for (int64_t m : {64, 128})
      for (int64_t n : blockNs)
        for (int64_t w : hopper ? std::vector<int64_t>{4 * (m / 64 + 1)}
                                : std::vector<int64_t>{4, 8})
          for (int64_t st : {2, 3}) {
            Candidate c{kernel, {m, n, w, st}};
            c.heuristic = h.blockM == m && h.blockN == n && h.warps == w &&
                          h.stages == st;
            c.pruned =
                mlir::fp::checkAttentionTile(key, {m, n, w, st}, *target);
            out.push_back(c);
          }
  } else if (kernel == tuning::kDiscovery) {
    mlir::fp::DiscoveryTile h = mlir::fp::defaultDiscoveryTile(key);
    for (int64_t chunk : {32, 64, 128})
      for (int64_t w : {2, 4, 8}) {
        Candidate c{kernel, {chunk, w}};
        c.heuristic = h.keyChunk == chunk && h.warps == w;
        c.pruned = mlir::fp::checkDiscoveryTile(key, {chunk, w}, *target);
        out.push_back(c);
      }
  }
  return out;
}

StatusOr<TuneReport>
runTuning(const TuneOptions &o,
          const std::function<void(int, int, const std::string &)> &progress) {
  if (o.qHeads <= 0 || o.kvHeads <= 0 || o.qHeads % o.kvHeads != 0)
    return invalidArgument("--q-heads / --kv-heads: expected positive heads "
                           "with q-heads a multiple of kv-heads");
  if (o.buckets.empty())
    return invalidArgument("--buckets: expected at least one length");
  Clock::time_point start = Clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  TuneReport report;
  const rt::CudaDriver *drv = nullptr;
  report.arch = o.arch;
  if (!o.dryRun) {
    auto driver = rt::CudaDriver::get();
    if (!driver.isOk())
      return driver.status();
    drv = *driver;
    if (drv->deviceCount() == 0)
      return Status(StatusCode::kNoDevice, "no CUDA device: 0 devices");
    auto info = drv->deviceInfo(0);
    if (!info.isOk())
      return info.status();
    FP_RETURN_IF_ERROR(drv->makePrimaryContextCurrent(0).status());
    report.device = info->name;
    std::string deviceArch =
        rt::archForComputeCapability(info->ccMajor, info->ccMinor, true);
    if (!o.arch.empty() && o.arch != deviceArch)
      return invalidArgument("--arch: " + o.arch +
                             " does not match the "
                             "device's " +
                             deviceArch);
    report.arch = deviceArch;
  }
  if (report.arch.empty())
    return invalidArgument("--arch: required with --dry-run (e.g. sm_90a)");
  if (!mlir::fp::parseTargetArch(report.arch))
    return unsupported("arch " + report.arch + ": expected one of " +
                       mlir::fp::supportedArchList().str());

  // 1. Enumerate and prune statically.
  for (const std::string &kernel : o.kernels) {
    auto cands = enumerate(o, kernel, report.arch);
    if (cands.empty())
      return invalidArgument("--kernels: unknown kernel '" + kernel +
                             "' (attention, discovery)");
    report.candidates.insert(report.candidates.end(), cands.begin(),
                             cands.end());
  }
  // 2. Compile survivors in parallel; prune spills.
  std::vector<Candidate *> toCompile;
  for (Candidate &c : report.candidates) {
    c.ms.assign(o.buckets.size(), -1);
    if (c.pruned.empty())
      toCompile.push_back(&c);
  }
  unsigned threads = o.compileThreads > 0
                         ? unsigned(o.compileThreads)
                         : std::max(1u, std::thread::hardware_concurrency());
  std::atomic<size_t> next{0};
  std::atomic<int> compiled{0};
  std::mutex progressMutex;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::min<size_t>(threads, toCompile.size()); ++t)
    pool.emplace_back([&] {
      for (size_t i; (i = next++) < toCompile.size();) {
        compileCheck(o, report.arch, *toCompile[i]);
        std::lock_guard<std::mutex> lock(progressMutex);
        if (progress)
          progress(++compiled, int(toCompile.size()), "compile");
      }
    });
  for (std::thread &t : pool)
    t.join();
  if (o.dryRun)
    return report;

  // 3. Correctness on a small problem against the CPU reference.
  int64_t maxLen = *std::max_element(o.buckets.begin(), o.buckets.end());
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.dtype = o.dtype == "bf16" ? FP_DTYPE_BF16 : FP_DTYPE_F16;
  spec.head_dim = o.headDim;
  spec.num_q_heads = o.qHeads;
  spec.num_kv_heads = o.kvHeads;
  spec.block_size = o.blockSize;
  spec.max_seq_len = maxLen;
  auto inputsFor = [&](int64_t len) {
    testing::StructuredConfig c;
    c.dtype = spec.dtype == FP_DTYPE_BF16 ? DType::kBF16 : DType::kF16;
    c.seqLen = len;
    c.numQHeads = o.qHeads;
    c.numKvHeads = o.kvHeads;
    c.headDim = o.headDim;
    c.blockSize = o.blockSize;
    c.seed = o.seed;
    return HostProblem{len, testing::makeStructuredInputs(c)};
  };
  HostProblem small = inputsFor(std::min<int64_t>(maxLen, 1024));
  auto expected = expectedOf(o, small);
  if (!expected.isOk())
    return expected.status();
  PlanTuning heuristicTuning;
  heuristicTuning.useTuningDatabase = false;
  auto heuristicPlan = Plan::create(spec, heuristicTuning);
  if (!heuristicPlan.isOk())
    return heuristicPlan.status();
  size_t wsBytes = *(*heuristicPlan)->selectWorkspaceBytes(1, maxLen);
  DeviceProblem check(drv, o, small, wsBytes);
  FP_RETURN_IF_ERROR(check.status);

  std::vector<std::pair<Candidate *, std::unique_ptr<Plan>>> plans;
  int total = 0, done = 0;
  for (Candidate &c : report.candidates)
    total += c.pruned.empty();
  for (Candidate &c : report.candidates) {
    if (!c.pruned.empty())
      continue;
    PlanTuning tuning;
    tuning.useTuningDatabase = false;
    (c.kernel == tuning::kAttention ? tuning.attentionTile
                                    : tuning.discoveryTile) =
        tuning::configText(c.config);
    auto plan = Plan::create(spec, tuning);
    if (!plan.isOk())
      c.pruned = "plan: " + plan.status().message();
    else if (std::string why = checkCandidate(drv, o, **plan, check, *expected);
             !why.empty())
      c.pruned = "wrong result: " + why;
    else
      plans.emplace_back(&c, std::move(*plan));
    if (progress)
      progress(++done, total, "check");
  }

  // 4. Time per bucket.
  done = 0;
  total = int(plans.size() * o.buckets.size());
  for (size_t b = 0; b < o.buckets.size(); ++b) {
    HostProblem problem = inputsFor(o.buckets[b]);
    DeviceProblem p(drv, o, problem, wsBytes);
    FP_RETURN_IF_ERROR(p.status);
    // The heuristic mask serves every attention candidate.
    FP_RETURN_IF_ERROR(p.select(**heuristicPlan));
    drv->api().ctxSynchronize();
    std::vector<int32_t> counts(p.counts.size() / 4);
    FP_RETURN_IF_ERROR(p.counts.download(counts.data()));
    double kept = 0;
    for (int32_t c : counts)
      kept += c;
    double density =
        kept / (double(o.qHeads) * p.numBlocks * (p.numBlocks + 1) / 2);
    for (auto &[cand, plan] : plans) {
      if (o.budgetSeconds > 0 && elapsed() > o.budgetSeconds) {
        report.budgetExhausted = true;
        break;
      }
      Plan &pl = *plan;
      bool attention = cand->kernel == tuning::kAttention;
      double ms = testing::medianGpuMs(
          drv, o.warmup, o.repeats,
          [&] { (void)(attention ? p.attend(pl) : p.select(pl)); },
          o.configSeconds);
      // select() above overwrote nothing the attention timing reads: every
      // discovery candidate produced the reference mask in phase 3.
      cand->ms[b] = ms;
      tuning::TuningEntry entry;
      entry.key = {report.arch,          o.headDim,   o.dtype, o.blockSize,
                   o.qHeads / o.kvHeads, o.buckets[b]};
      entry.kernel = cand->kernel;
      entry.config = cand->config;
      entry.ms = ms;
      entry.density = density;
      entry.device = report.device;
      report.results.record(entry);
      if (progress)
        progress(++done, total, "time");
    }
    if (report.budgetExhausted)
      break;
  }
  return report;
}

} // namespace fp::tune
