//===- TuningDatabaseTest.cpp - fp-tune's database --------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/TuningDatabase.h"

#include <gtest/gtest.h>

#include <map>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <future>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace fp::tuning;

TuningKey key128() { return {"sm_90a", 128, "bf16", 128, 4, 32768}; }

TuningEntry attention(std::vector<int64_t> config, double ms) {
  return {key128(), kAttention, std::move(config), ms, 0.15, "H100"};
}

std::string tempPath(const char *name) {
  return ::testing::TempDir() + "/" + name + "." + std::to_string(getpid());
}

// Buckets are powers of two, at least 1024.
TEST(TuningDatabaseTest, LengthBuckets) {
  EXPECT_EQ(lengthBucket(1), 1024);
  EXPECT_EQ(lengthBucket(4096), 4096);
  EXPECT_EQ(lengthBucket(4097), 8192);
  EXPECT_EQ(lengthBucket(200000), 262144);
  // Terminates for any length (doubling used to overflow and spin).
  EXPECT_EQ(lengthBucket(INT64_MAX), int64_t(1) << 62);
}

// One timing per config: re-recording keeps the faster, best() picks the
// fastest config of a key.
TEST(TuningDatabaseTest, RecordKeepsFasterAndBestPicksFastest) {
  TuningDatabase db;
  db.record(attention({128, 32, 4, 2}, 5.0));
  db.record(attention({64, 64, 4, 3}, 4.5));
  db.record(attention({128, 32, 4, 2}, 6.0)); // slower re-measurement
  ASSERT_EQ(db.entries().size(), 2u);
  EXPECT_EQ(db.entries()[0].ms, 5.0);
  auto best = db.best(key128(), kAttention);
  ASSERT_TRUE(best);
  EXPECT_EQ(best->config, (std::vector<int64_t>{64, 64, 4, 3}));
  TuningKey other = key128();
  other.lengthBucket = 65536;
  EXPECT_FALSE(db.best(other, kAttention));
  EXPECT_FALSE(db.best(key128(), kDiscovery));
}

// Save then load gives the same entries; the file is valid JSON with the
// format tag and version.
TEST(TuningDatabaseTest, SaveLoadRoundTrip) {
  TuningDatabase db;
  db.record(attention({128, 32, 4, 2}, 5.0));
  db.record({key128(), kDiscovery, {64, 4}, 0.3, -1, ""});
  std::string path = tempPath("tuning.json");
  ASSERT_TRUE(db.save(path).isOk());
  TuningDatabase loaded = TuningDatabase::load(path);
  EXPECT_TRUE(loaded.warning().empty()) << loaded.warning();
  ASSERT_EQ(loaded.entries().size(), 2u);
  EXPECT_EQ(loaded.entries()[0].config, db.entries()[0].config);
  EXPECT_EQ(loaded.entries()[1].kernel, kDiscovery);
  EXPECT_EQ(loaded.entries()[1].density, -1);
  EXPECT_NE(db.toJson().find("\"format\": \"flashprefill-tuning\""),
            std::string::npos);
  std::remove(path.c_str());
}

// Merging two files keeps the faster entry of each config and adds new
// ones (adding configs never re-tunes old ones).
TEST(TuningDatabaseTest, MergeKeepsFaster) {
  TuningDatabase a, b;
  a.record(attention({128, 32, 4, 2}, 5.0));
  b.record(attention({128, 32, 4, 2}, 4.0));
  b.record(attention({64, 32, 4, 2}, 7.0));
  a.merge(b);
  ASSERT_EQ(a.entries().size(), 2u);
  EXPECT_EQ(a.best(key128(), kAttention)->ms, 4.0);
}

// Corrupt, foreign-format and foreign-version files are ignored with a
// warning; a missing file is simply empty.
TEST(TuningDatabaseTest, BadFilesAreIgnoredWithAWarning) {
  auto corrupt = TuningDatabase::parse("{\"format\": ", "a.json");
  EXPECT_TRUE(corrupt.entries().empty());
  EXPECT_NE(corrupt.warning().find("a.json ignored: not JSON"),
            std::string::npos);
  auto foreign = TuningDatabase::parse("{\"format\": \"other\"}", "b.json");
  EXPECT_NE(foreign.warning().find("flashprefill-tuning"), std::string::npos);
  auto version = TuningDatabase::parse(
      "{\"format\": \"flashprefill-tuning\", \"version\": 9, \"entries\": []}",
      "c.json");
  EXPECT_NE(version.warning().find("version 9, this library reads version 1"),
            std::string::npos);
  auto badEntry = TuningDatabase::parse(
      "{\"format\": \"flashprefill-tuning\", \"version\": 1, \"entries\": "
      "[{\"arch\": \"sm_90a\", \"kernel\": \"attention\", \"ms\": 1, "
      "\"config\": {\"block_m\": 64}}]}",
      "d.json");
  EXPECT_TRUE(badEntry.entries().empty());
  EXPECT_NE(badEntry.warning().find("'block_n' missing"), std::string::npos);
  auto missing = TuningDatabase::load(tempPath("does-not-exist.json"));
  EXPECT_TRUE(missing.entries().empty());
  EXPECT_TRUE(missing.warning().empty());
}

// Infinite timings or densities (JSON 1e999) are ignored, not saved as an
// unreadable "inf" later.
TEST(TuningDatabaseTest, NonFiniteTimingsAreIgnored) {
  auto entry = [](const char *ms, const char *density) {
    return std::string("{\"format\": \"flashprefill-tuning\", \"version\": 1, "
                       "\"entries\": [{\"arch\": \"sm_90a\", \"head_dim\": 128, "
                       "\"dtype\": \"bf16\", \"block_size\": 128, \"group\": 4, "
                       "\"length_bucket\": 4096, \"kernel\": \"discovery\", "
                       "\"config\": {\"key_chunk\": 64, \"warps\": 4}, \"ms\": ") +
           ms + ", \"density\": " + density + "}]}";
  };
  auto inf = TuningDatabase::parse(entry("1e999", "0.5"), "a.json");
  EXPECT_TRUE(inf.entries().empty());
  EXPECT_NE(inf.warning().find("ms is not a finite positive number"),
            std::string::npos);
  auto dens = TuningDatabase::parse(entry("1.0", "1e999"), "b.json");
  EXPECT_TRUE(dens.entries().empty());
  EXPECT_NE(dens.warning().find("density is not finite"), std::string::npos);
  EXPECT_EQ(TuningDatabase::parse(entry("1.0", "0.5"), "c.json").entries().size(),
            1u);
}

/// A database file with one entry whose `field` holds `value` (JSON text).
std::string entryWith(const std::string &field, const std::string &value) {
  std::map<std::string, std::string> fields = {
      {"head_dim", "128"}, {"block_size", "128"}, {"group", "4"},
      {"length_bucket", "4096"}};
  fields[field] = value;
  std::string entry = "{\"arch\": \"sm_90a\", \"dtype\": \"bf16\", "
                      "\"kernel\": \"discovery\", \"ms\": 1.0, "
                      "\"config\": {\"key_chunk\": 64, \"warps\": 4}";
  for (const auto &[name, text] : fields)
    if (text != "absent")
      entry += ", \"" + name + "\": " + text;
  return "{\"format\": \"flashprefill-tuning\", \"version\": 1, "
         "\"entries\": [" +
         entry + "}]}";
}

// Integers are range-checked before they are narrowed to int: a head_dim
// of 4294967424 (2^32 + 128) used to become 128 and match d 128.
TEST(TuningDatabaseTest, IntegersOutOfRangeAreNamed) {
  ASSERT_EQ(TuningDatabase::parse(entryWith("group", "4"), "ok.json")
                .entries()
                .size(),
            1u);
  struct Case {
    const char *field, *value, *message;
  } cases[] = {
      {"head_dim", "4294967424",
       "an entry's head_dim: expected an integer in [1, 2147483647], got "
       "4294967424"},
      {"block_size", "-128", "an entry's block_size: expected an integer in "
                             "[1, 2147483647], got -128"},
      {"group", "absent", "an entry's group: expected an integer in [1, "
                          "2147483647], got none"},
      {"group", "4.5", "an entry's group: expected an integer"},
      {"length_bucket", "0", "an entry's length_bucket: expected an integer "
                             "in [1, 9223372036854775807], got 0"},
      {"head_dim", "\"128\"", "an entry's head_dim: expected an integer in "
                               "[1, 2147483647], got \"128\""},
  };
  for (const Case &c : cases) {
    TuningDatabase db = TuningDatabase::parse(entryWith(c.field, c.value),
                                              "range.json");
    EXPECT_TRUE(db.entries().empty()) << c.field << " = " << c.value;
    EXPECT_NE(db.warning().find(std::string("range.json ignored: ") +
                                c.message),
              std::string::npos)
        << db.warning();
  }
  TuningDatabase hugeConfig = TuningDatabase::parse(
      "{\"format\": \"flashprefill-tuning\", \"version\": 1, "
      "\"entries\": [{\"arch\": \"sm_90a\", \"head_dim\": 128, "
      "\"dtype\": \"bf16\", \"block_size\": 128, \"group\": 4, "
      "\"length_bucket\": 4096, \"kernel\": \"discovery\", \"ms\": 1.0, "
      "\"config\": {\"key_chunk\": 4294967360, \"warps\": 4}}]}",
      "config.json");
  EXPECT_TRUE(hugeConfig.entries().empty());
  EXPECT_NE(hugeConfig.warning().find("config field 'key_chunk': expected at "
                                      "most 2147483647, got 4294967360"),
            std::string::npos)
      << hugeConfig.warning();
}

// 50,000 nested '[' used to overflow the stack in the recursive JSON
// parser (plan creation reads $FLASHPREFILL_CACHE_DIR/tuning.json, so one
// bad file crashed a serving process). Brackets inside strings do not
// count, and the real format (4 levels) is far below the limit.
TEST(TuningDatabaseTest, DeepNestingIsIgnoredBeforeParsing) {
  TuningDatabase deep =
      TuningDatabase::parse(std::string(50000, '['), "deep.json");
  EXPECT_TRUE(deep.entries().empty());
  EXPECT_NE(deep.warning().find("deep.json ignored: arrays or objects "
                                "nested deeper than 64 levels"),
            std::string::npos)
      << deep.warning();
  std::string objects;
  for (int i = 0; i < 50000; ++i)
    objects += "{\"a\":";
  EXPECT_NE(TuningDatabase::parse(objects, "o.json").warning().find(
                "nested deeper than 64"),
            std::string::npos);
  // 64 levels are parsed (and rejected for what they are, not for depth).
  std::string atLimit = std::string(64, '[') + std::string(64, ']');
  EXPECT_EQ(TuningDatabase::parse(atLimit, "limit.json").warning().find(
                "nested"),
            std::string::npos);
  // Brackets in strings (after an escaped quote, too) are text.
  std::string device = "\"\\\"" + std::string(1000, '[') + "\"";
  TuningDatabase ok =
      TuningDatabase::parse(entryWith("device", device), "strings.json");
  EXPECT_TRUE(ok.warning().empty()) << ok.warning();
  ASSERT_EQ(ok.entries().size(), 1u);
  EXPECT_EQ(ok.entries()[0].device, "\"" + std::string(1000, '['));
}

/// TuningDatabase::load on another thread, failing instead of hanging.
TuningDatabase loadWithin10s(const std::string &path,
                             TuningDatabase::IfMissing ifMissing =
                                 TuningDatabase::IfMissing::kEmpty) {
  auto loaded = std::async(std::launch::async, [&] {
    return TuningDatabase::load(path, ifMissing);
  });
  if (loaded.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "TuningDatabase::load(" << path << ") hangs";
    std::abort(); // the blocked thread cannot be joined
  }
  return loaded.get();
}

// tuning-db=/dev/zero used to hang (read until memory ran out); a
// directory, a FIFO or a missing file named explicitly gave no warning.
// Each is now ignored with a warning naming the path and the reason.
TEST(TuningDatabaseTest, FilesThatAreNotRegularAreNamed) {
  TuningDatabase zero = loadWithin10s("/dev/zero");
  EXPECT_TRUE(zero.entries().empty());
  EXPECT_EQ(zero.warning(), "tuning database /dev/zero ignored: is a "
                            "character device, not a regular file");

  std::string dir = ::testing::TempDir();
  TuningDatabase directory = loadWithin10s(dir);
  EXPECT_EQ(directory.warning(), "tuning database " + dir +
                                     " ignored: is a directory, not a "
                                     "regular file");

  std::string fifo = tempPath("tuning-fifo.json");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  TuningDatabase fromFifo = loadWithin10s(fifo);
  EXPECT_EQ(fromFifo.warning(), "tuning database " + fifo +
                                    " ignored: is a FIFO, not a regular file");
  std::remove(fifo.c_str());

  std::string missing = tempPath("missing.json");
  EXPECT_EQ(loadWithin10s(missing).warning(), "")
      << "fp-tune's own file need not exist";
  EXPECT_EQ(loadWithin10s(missing, TuningDatabase::IfMissing::kWarn).warning(),
            "tuning database " + missing + " ignored: does not exist");

  // Larger than 64 MiB: not read (a sparse file, no disk used).
  std::string big = tempPath("big.json");
  int fd = open(big.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, off_t(TuningDatabase::kMaxFileBytes) + 1), 0);
  close(fd);
  EXPECT_EQ(loadWithin10s(big).warning(),
            "tuning database " + big + " ignored: is 67108865 bytes, over "
            "the limit of 67108864");
  std::remove(big.c_str());
}

// Config text round-trips and rejects malformed input.
TEST(TuningDatabaseTest, ConfigText) {
  EXPECT_EQ(configText({128, 32, 4, 2}), "128x32x4x2");
  EXPECT_EQ(*parseConfigText("64x4", 2), (std::vector<int64_t>{64, 4}));
  EXPECT_FALSE(parseConfigText("64x4", 4));
  EXPECT_FALSE(parseConfigText("64xfour", 2));
  EXPECT_FALSE(parseConfigText("0x4", 2));
}

} // namespace
