//===- TuningDatabaseTest.cpp - fp-tune's database --------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/TuningDatabase.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
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

// Config text round-trips and rejects malformed input.
TEST(TuningDatabaseTest, ConfigText) {
  EXPECT_EQ(configText({128, 32, 4, 2}), "128x32x4x2");
  EXPECT_EQ(*parseConfigText("64x4", 2), (std::vector<int64_t>{64, 4}));
  EXPECT_FALSE(parseConfigText("64x4", 4));
  EXPECT_FALSE(parseConfigText("64xfour", 2));
  EXPECT_FALSE(parseConfigText("0x4", 2));
}

} // namespace
