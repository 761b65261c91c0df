//===- TuningDatabase.h - Measured tile winners -----------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// fp-tune's results, read by fp-select-tiles and plan(). Human-readable,
// versioned JSON; one timing per (key, kernel, config), so adding configs
// later never invalidates earlier measurements, and merging two files keeps
// the faster timing of each. Keys use length buckets (powers of two), not
// exact lengths. MLIR-free header.
//
//   {"format": "flashprefill-tuning", "version": 1, "entries": [
//     {"arch": "sm_90a", "head_dim": 128, "dtype": "bf16", "block_size": 128,
//      "group": 4, "length_bucket": 32768, "kernel": "attention",
//      "config": {"block_m": 128, "block_n": 32, "warps": 4, "stages": 2},
//      "ms": 4.92, "density": 0.148, "device": "NVIDIA H100 80GB HBM3"}]}
//
//===----------------------------------------------------------------------===//
#ifndef FP_COMPILER_TUNINGDATABASE_H
#define FP_COMPILER_TUNINGDATABASE_H

#include "flashprefill/status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fp::tuning {

/// What a tuned choice depends on.
struct TuningKey {
  std::string arch; ///< "sm_90a"
  int headDim = 0;
  std::string dtype; ///< "bf16" or "f16"
  int blockSize = 0;
  int group = 0;            ///< h_q / h_kv
  int64_t lengthBucket = 0; ///< lengthBucket(seq_len)
  bool operator==(const TuningKey &o) const;
};

/// Kernels with tunable tiles, and the names of their config fields.
inline const char *const kAttention = "attention";
inline const char *const kDiscovery = "discovery";
/// {"block_m", "block_n", "warps", "stages"} or {"key_chunk", "warps"}.
const std::vector<std::string> &configFields(const std::string &kernel);

/// One measurement.
struct TuningEntry {
  TuningKey key;
  std::string kernel;          ///< kAttention or kDiscovery
  std::vector<int64_t> config; ///< values of configFields(kernel), in order
  double ms = 0;               ///< median time at the bucket length
  double density = -1;         ///< optional hint (-1: none)
  std::string device;          ///< GPU name, for humans
};

/// "128x32x4x2" style text of a config, as the select-tiles options take.
std::string configText(const std::vector<int64_t> &config);
/// Parses configText output; nullopt on malformed text.
std::optional<std::vector<int64_t>> parseConfigText(const std::string &text,
                                                    size_t fields);

/// Smallest power of two >= seqLen, at least 1024, at most 2^62: the tuning
/// key.
int64_t lengthBucket(int64_t seqLen);

class TuningDatabase {
public:
  static constexpr int kVersion = 1;

  /// $FLASHPREFILL_TUNING_DB, else tuning.json in the kernel cache
  /// directory ($FLASHPREFILL_CACHE_DIR, $XDG_CACHE_HOME/flashprefill,
  /// ~/.cache/flashprefill).
  static std::string defaultPath();

  /// defaultPath() if something is there, else "": plans read the default
  /// database only once fp-tune has written one.
  static std::string existingDefaultPath();

  /// Limits on what load() and parse() read: bigger files and deeper JSON
  /// are ignored with a warning (fp-tune writes kilobytes, 4 levels deep).
  static constexpr uint64_t kMaxFileBytes = uint64_t(64) << 20;
  static constexpr int kMaxNesting = 64;

  /// Whether load() warns about a missing file: a database named by the
  /// user (fp-select-tiles' tuning-db) should exist; fp-tune's own file
  /// need not exist yet.
  enum class IfMissing { kEmpty, kWarn };

  /// Reads `path`: regular files of at most kMaxFileBytes only, never
  /// blocking. A missing file gives an empty database (and, with
  /// IfMissing::kWarn, a warning). A directory, FIFO, device, oversized,
  /// unreadable, corrupt or foreign-version file, or an entry with a field
  /// out of range, gives an empty database and sets warning(), which names
  /// the path and the reason (the file is ignored, never fatal).
  static TuningDatabase load(const std::string &path,
                             IfMissing ifMissing = IfMissing::kEmpty);
  /// Parses JSON text (as load does, `source` names it in warnings).
  static TuningDatabase parse(const std::string &text,
                              const std::string &source);

  /// Writes atomically (temporary file + rename).
  Status save(const std::string &path) const;
  std::string toJson() const;

  /// Adds a measurement; for the same (key, kernel, config) the faster one
  /// stays.
  void record(const TuningEntry &entry);
  /// record() of every entry of `other`.
  void merge(const TuningDatabase &other);
  /// The fastest config measured for (key, kernel), if any.
  std::optional<TuningEntry> best(const TuningKey &key,
                                  const std::string &kernel) const;

  const std::vector<TuningEntry> &entries() const { return entries_; }
  const std::string &warning() const { return warning_; }

private:
  std::vector<TuningEntry> entries_;
  std::string warning_;
};

/// The databases shipped with the library (bench/tuning/*.json, compiled
/// in), the fallback for keys the user's database lacks.
const TuningDatabase &builtinDatabase();

} // namespace fp::tuning

#endif // FP_COMPILER_TUNINGDATABASE_H
