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
/// (strtof("abc") would silently give 0).
///
//===----------------------------------------------------------------------===//
#ifndef FP_TOOLS_COMMANDLINE_H
#define FP_TOOLS_COMMANDLINE_H

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace fp::tools {

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

  /// A comma-separated list of positive integers ("4096,16384").
  std::vector<int64_t> positiveList() {
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
  int argc_;
  char **argv_;
  Usage usage_;
  int index_ = 0;
  std::string arg_;
};

} // namespace fp::tools

#endif // FP_TOOLS_COMMANDLINE_H
