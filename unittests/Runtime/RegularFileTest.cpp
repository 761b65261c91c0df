//===- RegularFileTest.cpp - Bounded, non-blocking file reads ---*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// readRegularFile() is how the kernel cache and the tuning database read
// files others may have put at their paths: FIFOs and devices must not
// block or stream forever, directories and oversized files are named.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/regular_file.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <sys/stat.h>

using fp::rt::readRegularFile;
using fp::rt::RegularFile;
using Outcome = RegularFile::Outcome;
namespace fs = std::filesystem;

namespace {

class RegularFileTest : public testing::Test {
protected:
  void SetUp() override {
    std::string pattern =
        (fs::temp_directory_path() / "fp-regular-file-XXXXXX").string();
    ASSERT_NE(mkdtemp(&pattern[0]), nullptr);
    dir = pattern;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string write(const std::string &name, const std::string &bytes) {
    std::string path = dir + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  /// readRegularFile on another thread, failing instead of hanging.
  RegularFile readWithin10s(const std::string &path, uint64_t maxBytes) {
    auto result = std::async(std::launch::async, [&] {
      return readRegularFile(path, maxBytes);
    });
    if (result.wait_for(std::chrono::seconds(10)) !=
        std::future_status::ready) {
      ADD_FAILURE() << "readRegularFile(" << path << ") blocked";
      std::abort(); // the blocked thread cannot be joined
    }
    return result.get();
  }
  std::string dir;
};

TEST_F(RegularFileTest, ReadsARegularFile) {
  std::string path = write("a.json", std::string("{}\0x", 4));
  RegularFile file = readRegularFile(path, 4);
  EXPECT_EQ(file.outcome, Outcome::kRead) << file.problem;
  EXPECT_EQ(file.bytes, std::string("{}\0x", 4));
  EXPECT_EQ(readRegularFile(write("empty", ""), 0).outcome, Outcome::kRead);
}

TEST_F(RegularFileTest, MissingPathIsMissing) {
  RegularFile file = readRegularFile(dir + "/nope.json", 100);
  EXPECT_EQ(file.outcome, Outcome::kMissing);
  EXPECT_EQ(file.problem, "does not exist");
  std::string notADir = write("file", "x");
  EXPECT_EQ(readRegularFile(notADir + "/below", 100).outcome,
            Outcome::kMissing);
}

TEST_F(RegularFileTest, LargerThanTheLimitIsNotRead) {
  RegularFile file = readRegularFile(write("big", std::string(101, 'x')), 100);
  EXPECT_EQ(file.outcome, Outcome::kTooLarge);
  EXPECT_TRUE(file.bytes.empty());
  EXPECT_EQ(file.problem, "is 101 bytes, over the limit of 100");
}

TEST_F(RegularFileTest, DirectoryIsNamed) {
  RegularFile file = readRegularFile(dir, 100);
  EXPECT_EQ(file.outcome, Outcome::kNotRegular);
  EXPECT_EQ(file.problem, "is a directory, not a regular file");
}

// A FIFO without a writer: open() for reading would block forever.
TEST_F(RegularFileTest, FifoDoesNotBlock) {
  std::string path = dir + "/fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  RegularFile file = readWithin10s(path, 100);
  EXPECT_EQ(file.outcome, Outcome::kNotRegular);
  EXPECT_EQ(file.problem, "is a FIFO, not a regular file");
}

// /dev/zero never ends: a device is not read at all.
TEST_F(RegularFileTest, DeviceIsNotRead) {
  RegularFile file = readWithin10s("/dev/zero", 1 << 20);
  EXPECT_EQ(file.outcome, Outcome::kNotRegular);
  EXPECT_EQ(file.problem, "is a character device, not a regular file");
}

// A symbolic link to a regular file is followed.
TEST_F(RegularFileTest, SymlinkToARegularFileIsRead) {
  std::string target = write("target", "abc");
  std::string link = dir + "/link";
  fs::create_symlink(target, link);
  RegularFile file = readRegularFile(link, 100);
  EXPECT_EQ(file.outcome, Outcome::kRead);
  EXPECT_EQ(file.bytes, "abc");
}

} // namespace
