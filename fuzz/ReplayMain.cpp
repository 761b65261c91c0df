//===- ReplayMain.cpp - Run a fuzz target over files, without libFuzzer ---===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Linked into the fuzz targets when FP_FUZZ is OFF (gcc builds, CI): every
// argument is a file or a directory (all regular files in it, sorted), and
// each file is passed once to LLVMFuzzerTestOneInput. A crash, sanitizer
// report or failed invariant aborts the process, so CTest sees a failure;
// the file being replayed is printed first. Flags starting with '-' are
// ignored, so the libFuzzer command lines of scripts/fuzz.sh also work.
//
//===----------------------------------------------------------------------===//
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int *argc,
                                                          char ***argv);

int main(int argc, char **argv) {
  namespace fs = std::filesystem;
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("-", 0) == 0)
      continue;
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      std::vector<std::string> inDir;
      for (const auto &entry : fs::directory_iterator(arg))
        if (entry.is_regular_file())
          inDir.push_back(entry.path().string());
      std::sort(inDir.begin(), inDir.end());
      files.insert(files.end(), inDir.begin(), inDir.end());
    } else if (fs::is_regular_file(arg, ec)) {
      files.push_back(arg);
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n",
                   arg.c_str());
      return 2;
    }
  }
  if (files.empty()) {
    std::fprintf(stderr,
                 "usage: %s <file|dir>...  (replays each input once; "
                 "built without libFuzzer)\n",
                 argv[0]);
    return 2;
  }
  for (const std::string &file : files) {
    std::fprintf(stderr, "replay: %s\n", file.c_str());
    std::ifstream in(file, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    // Copy into an exact-size heap block so ASan sees reads past the end.
    uint8_t *copy = new uint8_t[bytes.size() ? bytes.size() : 1];
    std::copy(bytes.begin(), bytes.end(), copy);
    LLVMFuzzerTestOneInput(copy, bytes.size());
    delete[] copy;
  }
  std::fprintf(stderr, "replay: %zu inputs, no failure\n", files.size());
  return 0;
}
