//===- FuzzInput.h - Decode a fuzzer's bytes into values --------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// A small, compiler-independent stand-in for libFuzzer's FuzzedDataProvider
// (the replay drivers are built with gcc too): values are taken from the
// front, little-endian; an exhausted input yields zeros. Deterministic: the
// same bytes always decode to the same values.
//
//===----------------------------------------------------------------------===//
#ifndef FP_FUZZ_FUZZINPUT_H
#define FP_FUZZ_FUZZINPUT_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

namespace fp::fuzz {

class FuzzInput {
public:
  FuzzInput(const uint8_t *data, size_t size) : data_(data), size_(size) {}

  size_t remaining() const { return size_ - pos_; }

  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  bool flag() { return byte() & 1; }

  /// The next sizeof(T) bytes as a T (zeros past the end).
  template <typename T> T raw() {
    static_assert(std::is_trivially_copyable_v<T>);
    unsigned char bytes[sizeof(T)] = {};
    for (size_t i = 0; i < sizeof(T); ++i)
      bytes[i] = byte();
    T value;
    std::memcpy(&value, bytes, sizeof(T));
    return value;
  }

  /// A value in [lo, hi] (lo when exhausted).
  int64_t range(int64_t lo, int64_t hi) {
    if (hi <= lo)
      return lo;
    uint64_t span = uint64_t(hi) - uint64_t(lo) + 1;
    uint64_t v = span <= 0x100     ? byte()
                 : span <= 0x10000 ? raw<uint16_t>()
                                   : raw<uint64_t>();
    return int64_t(uint64_t(lo) + (span == 0 ? v : v % span));
  }

  /// One element of `values`.
  template <typename T, size_t N> T pick(const T (&values)[N]) {
    return values[range(0, int64_t(N) - 1)];
  }

  /// Up to `n` bytes as a string.
  std::string bytes(size_t n) {
    n = n < remaining() ? n : remaining();
    std::string out(reinterpret_cast<const char *>(data_ + pos_), n);
    pos_ += n;
    return out;
  }
  std::string rest() { return bytes(remaining()); }

private:
  const uint8_t *data_;
  size_t size_;
  size_t pos_ = 0;
};

/// Aborts with a message: the fuzzer reports it as a crash with a stack.
[[noreturn]] inline void fail(const char *what,
                              const std::string &detail = "") {
  std::fprintf(stderr, "fuzz invariant violated: %s%s%s\n", what,
               detail.empty() ? "" : ": ", detail.c_str());
  std::abort();
}

} // namespace fp::fuzz

#define FP_FUZZ_CHECK(cond, detail)                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      ::fp::fuzz::fail(#cond, detail);                                         \
  } while (0)

#endif // FP_FUZZ_FUZZINPUT_H
