//===- tools/common/CommandLine.h - Flag parsing for fp-bench and fp-tune -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// The small "--flag value" walker fp-bench and fp-tune share (fp-opt uses
/// MLIR's own option parser). Every malformed value ends in the tool's
/// usage(error) with a message naming the flag and the expected value, e.g.
/// "--alpha: expected a number, got 'abc'"; nothing is parsed leniently
/// (strtof("abc") would silently give 0). Integers are range-checked here,
/// before a tool narrows them to int or allocates by them: the shape limits
/// both tools state in their --help live in `limits` below.
///
//===----------------------------------------------------------------------===//
#ifndef FP_TOOLS_COMMANDLINE_H
#define FP_TOOLS_COMMANDLINE_H

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace fp::tools {

/// Bounds of the shape and timing flags. The head-dim and block rules are
/// those fp_plan_spec_t accepts; the rest keep every buffer size and loop
/// count far from int64 overflow (2^12 * 2^22 * 2^10 * 2^8 * 2 < 2^63).
namespace limits {
constexpr int64_t kMaxSeqLen = int64_t(1) << 22; ///< 4M tokens
constexpr int64_t kMaxBatch = 4096;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMinHeadDim = 16, kMaxHeadDim = 256, kHeadDimStep = 16;
constexpr int64_t kMinBlock = 16, kMaxBlock = 256; ///< powers of two
constexpr int64_t kMaxIterations = 100000;         ///< --warmup, --repeats
constexpr int64_t kMaxInt32 = 2147483647;
} // namespace limits

/// a * b * ..., or nullopt when the product of these non-negative factors
/// overflows int64 (checked before a size is used to allocate).
inline std::optional<int64_t> checkedProduct(std::initializer_list<int64_t> factors) {
  int64_t product = 1;
  for (int64_t factor : factors)
    if (factor < 0 || __builtin_mul_overflow(product, factor, &product))
      return std::nullopt;
  return product;
}

class ArgCursor {
public:
  /// `usage` prints the error (or the help when null) and exits.
  using Usage = void (*)(const char *error);

  ArgCursor(int argc, char **argv, Usage usage) : argc_(argc), argv_(argv), usage_(usage) {}

  /// Moves to the next flag; false past the end.
  bool next() {
    if (++index_ >= argc_)
      return false;
    arg_ = argv_[index_];
    return true;
  }
  const std::string &arg() const { return arg_; }

  /// The flag's value (the next argument).
  std::string value() {
    if (index_ + 1 >= argc_)
      fail("expected a value");
    return argv_[++index_];
  }

  /// A whole decimal integer.
  int64_t integer() {
    const std::string text = value();
    errno = 0;
    char *end = nullptr;
    const long long n = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end || errno == ERANGE)
      fail("expected an integer, got '" + text + "'");
    return int64_t(n);
  }

  /// A whole decimal integer > 0.
  int64_t positive() {
    const std::string text = argv_[index_ + 1 < argc_ ? index_ + 1 : index_];
    const int64_t n = integer();
    if (n <= 0)
      fail("expected a positive integer, got '" + text + "'");
    return n;
  }

  /// A whole decimal integer in [lo, hi].
  int64_t integerIn(int64_t lo, int64_t hi) {
    return steppedIn(1, lo, hi, "an integer in " + range(lo, hi));
  }

  /// A multiple of `step` in [lo, hi] (lo a multiple of step).
  int64_t multipleIn(int64_t step, int64_t lo, int64_t hi) {
    return steppedIn(step, lo, hi,
                     "a multiple of " + std::to_string(step) + " in " +
                         range(lo, hi));
  }

  /// A power of two in [lo, hi].
  int64_t powerOfTwoIn(int64_t lo, int64_t hi) {
    const std::string expected = "a power of two in " + range(lo, hi);
    const int64_t n = steppedIn(1, lo, hi, expected);
    if ((n & (n - 1)) != 0)
      fail("expected " + expected + ", got '" + std::to_string(n) + "'");
    return n;
  }

  /// A comma-separated list of integers in [1, hi] ("4096,16384").
  std::vector<int64_t> positiveList(int64_t hi = INT64_MAX) {
    const std::string text = value();
    std::vector<int64_t> out;
    size_t begin = 0;
    while (begin <= text.size()) {
      size_t end = text.find(',', begin);
      if (end == std::string::npos)
        end = text.size();
      const std::string item = text.substr(begin, end - begin);
      errno = 0;
      char *stop = nullptr;
      const long long n = std::strtoll(item.c_str(), &stop, 10);
      if (item.empty() || *stop || errno == ERANGE || n <= 0)
        fail("expected positive integers separated by ',', got '" + text + "'");
      if (n > hi)
        fail("expected values in " + range(1, hi) + ", got '" + item + "'");
      out.push_back(int64_t(n));
      begin = end + 1;
    }
    return out;
  }

  /// A finite decimal number.
  double number() {
    const std::string text = value();
    errno = 0;
    char *end = nullptr;
    const double x = std::strtod(text.c_str(), &end);
    if (text.empty() || *end || errno == ERANGE || !std::isfinite(x))
      fail("expected a number, got '" + text + "'");
    return x;
  }

  [[noreturn]] void fail(const std::string &what) {
    usage_((arg_ + ": " + what).c_str());
    std::abort(); // usage exits; never reached
  }

private:
  static std::string range(int64_t lo, int64_t hi) {
    return "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }

  /// The value as an integer n in [lo, hi] with n % step == 0; otherwise
  /// fails with "expected <expected>, got '<text>'" (malformed text too).
  int64_t steppedIn(int64_t step, int64_t lo, int64_t hi,
                    const std::string &expected) {
    const std::string text = value();
    errno = 0;
    char *end = nullptr;
    const long long n = std::strtoll(text.c_str(), &end, 10);
    if (text.empty() || *end || errno == ERANGE || n < lo || n > hi ||
        n % step != 0)
      fail("expected " + expected + ", got '" + text + "'");
    return int64_t(n);
  }

  int argc_;
  char **argv_;
  Usage usage_;
  int index_ = 0;
  std::string arg_;
};

} // namespace fp::tools

#endif // FP_TOOLS_COMMANDLINE_H
