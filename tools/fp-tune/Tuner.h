//===- Tuner.h - Search tile configurations on the GPU ----------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The engine of fp-tune: enumerate the legal tiles of the attention and
// discovery kernels, prune statically (divisibility, shared memory) and by
// the compile report (register spills), check each survivor's output on the
// GPU against the reference, time it on structured inputs, and record every
// timing in the tuning database.
//
//===----------------------------------------------------------------------===//
#ifndef FP_TOOLS_FPTUNE_TUNER_H
#define FP_TOOLS_FPTUNE_TUNER_H

#include "fp/Compiler/TuningDatabase.h"

#include <functional>
#include <string>
#include <vector>

namespace fp::tune {

struct TuneOptions {
  std::string dtype = "bf16";
  int headDim = 128, blockSize = 128, qHeads = 32, kvHeads = 8;
  std::vector<int64_t> buckets{4096, 16384, 65536};
  std::vector<std::string> kernels{tuning::kAttention, tuning::kDiscovery};
  std::string arch;         ///< "" = the device's (required for dry runs)
  bool dryRun = false;      ///< enumerate and prune only, no GPU
  double budgetSeconds = 0; ///< 0 = none; stop timing when exceeded
  double configSeconds = 2; ///< per-config time bound (after warm-up)
  int warmup = 3, repeats = 10;
  int compileThreads = 0; ///< 0 = hardware threads
  uint64_t seed = 1;
};

/// One configuration and what happened to it.
struct Candidate {
  std::string kernel;          ///< tuning::kAttention / kDiscovery
  std::vector<int64_t> config; ///< tuning::configFields(kernel) order
  bool heuristic = false;      ///< the compiler's default choice
  std::string pruned;          ///< why it was dropped ("" = kept)
  int registers = -1;
  std::vector<double> ms; ///< per bucket, -1 = not timed
};

struct TuneReport {
  std::string arch, device;
  std::vector<Candidate> candidates;
  tuning::TuningDatabase results; ///< every timing of this run
  bool budgetExhausted = false;
};

/// Legal configurations of `kernel` before any pruning.
std::vector<Candidate> enumerate(const TuneOptions &options,
                                 const std::string &kernel,
                                 const std::string &arch);

/// Runs the search. `progress(done, total, what)` is called as work
/// completes. Errors: no device (unless dryRun), bad options.
StatusOr<TuneReport>
runTuning(const TuneOptions &options,
          const std::function<void(int, int, const std::string &)> &progress =
              nullptr);

} // namespace fp::tune

#endif // FP_TOOLS_FPTUNE_TUNER_H
