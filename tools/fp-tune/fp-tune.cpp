//===- fp-tune.cpp - Tune tile configurations per GPU -----------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//   fp-tune --head-dim 128 --buckets 4096,16384,65536       # on the GPU
//   fp-tune --dry-run --arch sm_90a                          # search space
//
// Merges every timing into the tuning database (default next to the kernel
// cache; --db overrides), which plan() and fp-select-tiles then use.
//
//===----------------------------------------------------------------------===//
#include "Tuner.h"
#include "common/CommandLine.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

namespace {

using namespace fp;
namespace limits = fp::tools::limits;

[[noreturn]] void usage(const char *error) {
  if (error)
    std::fprintf(stderr, "fp-tune: %s\n\n", error);
  std::fprintf(
      stderr,
      "usage: fp-tune [options]\n"
      "  --head-dim D           a multiple of %lld in [%lld, %lld] (default 128)\n"
      "  --block B              a power of two in [%lld, %lld] (default 128)\n"
      "  --q-heads H --kv-heads H  in [1, %lld], q-heads a multiple of\n"
      "                         kv-heads (default 32 and 8)\n"
      "  --dtype bf16|f16\n"
      "  --buckets N1,N2,...    lengths in [1, %lld], each rounded up to its\n"
      "                         power-of-two bucket (default 4096,16384,65536);\n"
      "                         q, k, v and output of a bucket may total 64 GiB\n"
      "  --kernels K1,K2        attention and/or discovery (default both)\n"
      "  --db PATH              tuning database to merge into (default: %s)\n"
      "  --budget-seconds S     stop timing after S seconds (results kept)\n"
      "  --config-seconds S     time bound per config (default 2)\n"
      "  --warmup N --repeats N CUDA-event timing, in [1, %lld] (default 3, 10)\n"
      "  --dry-run --arch A     print the search space and compile-pruning\n"
      "                         without a GPU\n",
      (long long)limits::kHeadDimStep, (long long)limits::kMinHeadDim,
      (long long)limits::kMaxHeadDim, (long long)limits::kMinBlock,
      (long long)limits::kMaxBlock, (long long)limits::kMaxHeads,
      (long long)limits::kMaxSeqLen,
      tuning::TuningDatabase::defaultPath().c_str(),
      (long long)limits::kMaxIterations);
  std::exit(error ? 2 : 0);
}

std::vector<std::string> splitList(const std::string &text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    out.push_back(item);
  return out;
}

} // namespace

int main(int argc, char **argv) {
  tune::TuneOptions o;
  std::string dbPath = tuning::TuningDatabase::defaultPath();
  for (fp::tools::ArgCursor args(argc, argv, usage); args.next();) {
    const std::string &arg = args.arg();
    auto value = [&] { return args.value(); };
    auto integer = [&] { return args.positive(); };
    // Every value is range-checked here, before it is narrowed to int.
    if (arg == "--help" || arg == "-h")
      usage(nullptr);
    else if (arg == "--head-dim")
      o.headDim = int(args.multipleIn(limits::kHeadDimStep, limits::kMinHeadDim,
                                      limits::kMaxHeadDim));
    else if (arg == "--block")
      o.blockSize = int(args.powerOfTwoIn(limits::kMinBlock, limits::kMaxBlock));
    else if (arg == "--q-heads")
      o.qHeads = int(args.integerIn(1, limits::kMaxHeads));
    else if (arg == "--kv-heads")
      o.kvHeads = int(args.integerIn(1, limits::kMaxHeads));
    else if (arg == "--dtype") {
      o.dtype = value();
      if (o.dtype != "bf16" && o.dtype != "f16")
        usage("--dtype: expected bf16 or f16");
    } else if (arg == "--buckets") {
      o.buckets.clear();
      for (int64_t length : args.positiveList(limits::kMaxSeqLen))
        o.buckets.push_back(tuning::lengthBucket(length));
    } else if (arg == "--kernels")
      o.kernels = splitList(value());
    else if (arg == "--db")
      dbPath = value();
    else if (arg == "--budget-seconds")
      o.budgetSeconds = double(integer());
    else if (arg == "--config-seconds")
      o.configSeconds = double(integer());
    else if (arg == "--warmup")
      o.warmup = int(args.integerIn(1, limits::kMaxIterations));
    else if (arg == "--repeats")
      o.repeats = int(args.integerIn(1, limits::kMaxIterations));
    else if (arg == "--dry-run")
      o.dryRun = true;
    else if (arg == "--arch")
      o.arch = value();
    else
      usage(("unknown option " + arg).c_str());
  }
  if (o.qHeads % o.kvHeads != 0)
    usage(("--q-heads: expected a multiple of --kv-heads (" +
           std::to_string(o.kvHeads) + "), got " + std::to_string(o.qHeads))
              .c_str());
  // Timing holds q, k, v and the output of the longest bucket on the GPU.
  constexpr int64_t kMaxBucketBytes = int64_t(64) << 30;
  for (int64_t bucket : o.buckets) {
    auto q = tools::checkedProduct({bucket, o.qHeads, o.headDim, 2});
    auto kv = tools::checkedProduct({bucket, o.kvHeads, o.headDim, 2});
    if (!q || !kv || 2 * *q + 2 * *kv > kMaxBucketBytes)
      usage(("--buckets, --q-heads, --kv-heads, --head-dim: the tensors of "
             "bucket " +
             std::to_string(bucket) + " need more than " +
             std::to_string(kMaxBucketBytes >> 30) + " GiB")
                .c_str());
  }

  auto start = std::chrono::steady_clock::now();
  auto report =
      tune::runTuning(o, [&](int done, int total, const std::string &what) {
        double s = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
        int width = 30, filled = total ? width * done / total : width;
        std::fprintf(stderr, "\r%-8s [%s%s] %d/%d  %.0fs", what.c_str(),
                     std::string(filled, '#').c_str(),
                     std::string(width - filled, '.').c_str(), done, total, s);
        if (done == total)
          std::fprintf(stderr, "\n");
      });
  if (!report.isOk()) {
    std::fprintf(stderr, "fp-tune: %s\n", report.status().toString().c_str());
    return 1;
  }

  // The search space and what happened to each config.
  std::printf("%s %s, d %d, B %d, %s, h_q %d, h_kv %d\n",
              report->device.empty() ? "(dry run)" : report->device.c_str(),
              report->arch.c_str(), o.headDim, o.blockSize, o.dtype.c_str(),
              o.qHeads, o.kvHeads);
  int kept = 0;
  for (const tune::Candidate &c : report->candidates) {
    kept += c.pruned.empty();
    std::printf("  %-9s %-12s %s regs %-4d %s\n", c.kernel.c_str(),
                tuning::configText(c.config).c_str(),
                c.heuristic ? "(heuristic)" : "           ", c.registers,
                c.pruned.empty() ? "ok" : c.pruned.c_str());
  }
  std::printf("%d of %zu configurations survive pruning\n", kept,
              report->candidates.size());
  if (o.dryRun)
    return 0;

  // Winners against the heuristic, per bucket and kernel.
  std::printf("\n%-10s %-9s %-14s %10s %-14s %10s %8s\n", "bucket", "kernel",
              "heuristic", "ms", "winner", "ms", "speedup");
  for (size_t b = 0; b < o.buckets.size(); ++b)
    for (const std::string &kernel : o.kernels) {
      const tune::Candidate *heuristic = nullptr, *best = nullptr;
      for (const tune::Candidate &c : report->candidates) {
        if (c.kernel != kernel || c.ms[b] < 0)
          continue;
        if (c.heuristic)
          heuristic = &c;
        if (!best || c.ms[b] < best->ms[b])
          best = &c;
      }
      if (!best)
        continue;
      std::printf("%-10lld %-9s %-14s %10.4f %-14s %10.4f %7.3fx\n",
                  (long long)o.buckets[b], kernel.c_str(),
                  heuristic ? tuning::configText(heuristic->config).c_str()
                            : "(not timed)",
                  heuristic ? heuristic->ms[b] : 0.0,
                  tuning::configText(best->config).c_str(), best->ms[b],
                  heuristic ? heuristic->ms[b] / best->ms[b] : 0.0);
    }
  if (report->budgetExhausted)
    std::printf("(time budget exhausted: later buckets not timed)\n");

  tuning::TuningDatabase db = tuning::TuningDatabase::load(dbPath);
  if (!db.warning().empty())
    std::fprintf(stderr, "fp-tune: %s; starting a new file\n",
                 db.warning().c_str());
  db.merge(report->results);
  if (Status s = db.save(dbPath); !s.isOk()) {
    std::fprintf(stderr, "fp-tune: %s\n", s.toString().c_str());
    return 1;
  }
  std::printf("wrote %zu timings (%zu total) to %s\n",
              report->results.entries().size(), db.entries().size(),
              dbPath.c_str());
  return 0;
}
