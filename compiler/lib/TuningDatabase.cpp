//===- TuningDatabase.cpp - Measured tile winners ---------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/TuningDatabase.h"

#include "flashprefill/runtime/regular_file.h"
#include "fp/Dialect/TextNesting.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>

namespace fp::tuning {

namespace json = llvm::json;

bool TuningKey::operator==(const TuningKey &o) const {
  return arch == o.arch && headDim == o.headDim && dtype == o.dtype &&
         blockSize == o.blockSize && group == o.group &&
         lengthBucket == o.lengthBucket;
}

const std::vector<std::string> &configFields(const std::string &kernel) {
  static const std::vector<std::string> attention = {"block_m", "block_n",
                                                     "warps", "stages"};
  static const std::vector<std::string> discovery = {"key_chunk", "warps"};
  static const std::vector<std::string> none;
  return kernel == kAttention   ? attention
         : kernel == kDiscovery ? discovery
                                : none;
}

std::string configText(const std::vector<int64_t> &config) {
  return llvm::join(
      llvm::map_range(config, [](int64_t v) { return std::to_string(v); }),
      "x");
}

std::optional<std::vector<int64_t>> parseConfigText(const std::string &text,
                                                    size_t fields) {
  llvm::SmallVector<llvm::StringRef> parts;
  llvm::StringRef(text).split(parts, 'x');
  if (parts.size() != fields)
    return std::nullopt;
  std::vector<int64_t> values;
  for (llvm::StringRef part : parts) {
    int64_t value;
    if (part.getAsInteger(10, value) || value <= 0)
      return std::nullopt;
    values.push_back(value);
  }
  return values;
}

int64_t lengthBucket(int64_t seqLen) {
  // Doubling past 2^62 would overflow (and loop forever): saturate there.
  constexpr int64_t kLargestBucket = int64_t(1) << 62;
  int64_t bucket = 1024;
  while (bucket < seqLen && bucket < kLargestBucket)
    bucket *= 2;
  return bucket;
}

std::string TuningDatabase::defaultPath() {
  if (const char *path = std::getenv("FLASHPREFILL_TUNING_DB"))
    return path;
  std::string dir;
  if (const char *cache = std::getenv("FLASHPREFILL_CACHE_DIR"))
    dir = cache;
  else if (const char *xdg = std::getenv("XDG_CACHE_HOME"))
    dir = std::string(xdg) + "/flashprefill";
  else if (const char *home = std::getenv("HOME"))
    dir = std::string(home) + "/.cache/flashprefill";
  else
    return "";
  return dir + "/tuning.json";
}

std::string TuningDatabase::existingDefaultPath() {
  std::string path = defaultPath();
  struct stat st;
  return !path.empty() && ::stat(path.c_str(), &st) == 0 ? path : "";
}

TuningDatabase TuningDatabase::load(const std::string &path,
                                    IfMissing ifMissing) {
  // Plan creation reads this file inside serving processes: a FIFO or
  // device at the path must not block or stream forever, a huge file must
  // not be loaded (rt::readRegularFile).
  rt::RegularFile file = rt::readRegularFile(path, kMaxFileBytes);
  if (file.outcome == rt::RegularFile::Outcome::kRead)
    return parse(file.bytes, path);
  if (file.outcome == rt::RegularFile::Outcome::kMissing &&
      ifMissing == IfMissing::kEmpty)
    return TuningDatabase(); // no database yet: the heuristics apply
  TuningDatabase empty;
  empty.warning_ = "tuning database " + path + " ignored: " + file.problem;
  return empty;
}

namespace {

/// The JSON text of a field's value for messages ("none" when absent).
std::string jsonText(const json::Object &object, llvm::StringRef field) {
  const json::Value *value = object.get(field);
  if (!value)
    return "none";
  std::string text;
  llvm::raw_string_ostream os(text);
  os << *value;
  return text;
}

} // namespace

TuningDatabase TuningDatabase::parse(const std::string &text,
                                     const std::string &source) {
  TuningDatabase db;
  auto ignored = [&](const std::string &why) {
    TuningDatabase empty;
    empty.warning_ = "tuning database " + source + " ignored: " + why;
    return empty;
  };
  // llvm::json::parse recurses once per level: 50,000 '[' overflow the
  // stack. The dialect's bracket scan (strings skipped) bounds the depth.
  if (auto tooDeep = mlir::fp::findExcessiveNesting(text, kMaxNesting))
    return ignored("arrays or objects nested deeper than " +
                   std::to_string(kMaxNesting) + " levels (line " +
                   std::to_string(tooDeep->line) + ")");
  llvm::Expected<json::Value> value = json::parse(text);
  if (!value)
    return ignored("not JSON (" + llvm::toString(value.takeError()) + ")");
  const json::Object *root = value->getAsObject();
  if (!root || root->getString("format") != "flashprefill-tuning")
    return ignored("expected \"format\": \"flashprefill-tuning\"");
  if (root->getInteger("version") != kVersion)
    return ignored("version " +
                   std::to_string(root->getInteger("version").value_or(-1)) +
                   ", this library reads version " + std::to_string(kVersion));
  const json::Array *entries = root->getArray("entries");
  if (!entries)
    return ignored("expected an \"entries\" array");
  for (const json::Value &item : *entries) {
    const json::Object *e = item.getAsObject();
    if (!e)
      return ignored("an entry is not an object");
    TuningEntry entry;
    auto str = [&](llvm::StringRef k) {
      return e->getString(k).value_or("").str();
    };
    entry.key.arch = str("arch");
    entry.key.dtype = str("dtype");
    entry.kernel = str("kernel");
    entry.ms = e->getNumber("ms").value_or(-1);
    entry.density = e->getNumber("density").value_or(-1);
    entry.device = str("device");
    const std::vector<std::string> &fields = configFields(entry.kernel);
    const json::Object *config = e->getObject("config");
    if (fields.empty() || !config || entry.key.arch.empty())
      return ignored("an entry lacks kernel, config, ms or arch");
    // JSON numbers like 1e999 parse as infinity; saving one would write
    // "inf", which no reader accepts.
    if (!std::isfinite(entry.ms) || entry.ms <= 0)
      return ignored("an entry's ms is not a finite positive number");
    if (!std::isfinite(entry.density))
      return ignored("an entry's density is not finite");
    for (const std::string &field : fields) {
      std::optional<int64_t> v = config->getInteger(field);
      if (!v || *v <= 0)
        return ignored("config field '" + field + "' missing or not > 0");
      if (*v > INT32_MAX)
        return ignored("config field '" + field +
                       "': expected at most 2147483647, got " +
                       std::to_string(*v));
      entry.config.push_back(*v);
    }
    // Range-checked before narrowing: a head_dim of 4294967424 must not
    // become 128 (and match d 128).
    int64_t headDim, blockSize, group;
    for (auto [name, max, out] :
         {std::tuple<const char *, int64_t, int64_t *>{"head_dim", INT32_MAX,
                                                       &headDim},
          {"block_size", INT32_MAX, &blockSize},
          {"group", INT32_MAX, &group},
          {"length_bucket", INT64_MAX, &entry.key.lengthBucket}}) {
      std::optional<int64_t> v = e->getInteger(name);
      if (!v || *v < 1 || *v > max)
        return ignored(std::string("an entry's ") + name +
                       ": expected an integer in [1, " + std::to_string(max) +
                       "], got " + jsonText(*e, name));
      *out = *v;
    }
    entry.key.headDim = int(headDim);
    entry.key.blockSize = int(blockSize);
    entry.key.group = int(group);
    db.record(entry);
  }
  return db;
}

std::string TuningDatabase::toJson() const {
  json::Array entries;
  for (const TuningEntry &e : entries_) {
    json::Object config;
    const std::vector<std::string> &fields = configFields(e.kernel);
    for (size_t i = 0; i < fields.size(); ++i)
      config[fields[i]] = e.config[i];
    json::Object entry{{"arch", e.key.arch},
                       {"head_dim", e.key.headDim},
                       {"dtype", e.key.dtype},
                       {"block_size", e.key.blockSize},
                       {"group", e.key.group},
                       {"length_bucket", e.key.lengthBucket},
                       {"kernel", e.kernel},
                       {"config", std::move(config)},
                       {"ms", e.ms}};
    if (e.density >= 0)
      entry["density"] = e.density;
    if (!e.device.empty())
      entry["device"] = e.device;
    entries.push_back(std::move(entry));
  }
  json::Object root{{"format", "flashprefill-tuning"},
                    {"version", kVersion},
                    {"entries", std::move(entries)}};
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::formatv("{0:2}", json::Value(std::move(root))) << "\n";
  return text;
}

Status TuningDatabase::save(const std::string &path) const {
  llvm::SmallString<256> dir(path);
  llvm::sys::path::remove_filename(dir);
  if (!dir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(dir))
      return Status(StatusCode::kIoError, "tuning database: cannot create " +
                                              dir.str().str() + ": " +
                                              ec.message());
  // Temporary file in the same directory, then rename: readers never see a
  // half-written database.
  std::string temp = path + ".tmp." + std::to_string(::getpid()) + "." +
                     std::to_string(reinterpret_cast<uintptr_t>(this) & 0xffff);
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(temp, ec);
    if (ec)
      return Status(StatusCode::kIoError, "tuning database: cannot write " +
                                              temp + ": " + ec.message());
    out << toJson();
    out.close();
    if (out.has_error()) {
      out.clear_error();
      llvm::sys::fs::remove(temp);
      return Status(StatusCode::kIoError,
                    "tuning database: write to " + temp + " failed");
    }
  }
  if (std::error_code ec = llvm::sys::fs::rename(temp, path)) {
    llvm::sys::fs::remove(temp);
    return Status(StatusCode::kIoError, "tuning database: cannot rename to " +
                                            path + ": " + ec.message());
  }
  return Status::ok();
}

void TuningDatabase::record(const TuningEntry &entry) {
  for (TuningEntry &e : entries_)
    if (e.key == entry.key && e.kernel == entry.kernel &&
        e.config == entry.config) {
      if (entry.ms < e.ms)
        e = entry;
      return;
    }
  entries_.push_back(entry);
}

void TuningDatabase::merge(const TuningDatabase &other) {
  for (const TuningEntry &e : other.entries_)
    record(e);
}

std::optional<TuningEntry>
TuningDatabase::best(const TuningKey &key, const std::string &kernel) const {
  std::optional<TuningEntry> best;
  for (const TuningEntry &e : entries_)
    if (e.key == key && e.kernel == kernel && (!best || e.ms < best->ms))
      best = e;
  return best;
}

} // namespace fp::tuning
