//===- flashprefill/status.h - Error values for the runtime -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Errors travel as values (no exceptions cross the C API). A Status carries a
// code and a message that names the offending argument and what was expected,
// e.g. "head_dim: expected one of 64, 128, 256, got 96".
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_STATUS_H
#define FLASHPREFILL_STATUS_H

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace fp {

/// Status codes; the numeric values are part of the C API (fp_status_t).
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  ///< an argument is out of range or inconsistent
  kUnsupported = 2,      ///< valid request the library does not implement yet
  kNotFound = 3,         ///< a file, library or symbol is missing
  kCompileError = 4,     ///< NVRTC (or codegen) rejected the kernel source
  kCudaError = 5,        ///< a CUDA driver call failed
  kNoDevice = 6,         ///< no CUDA device (or driver) is available
  kIoError = 7,          ///< reading or writing a file failed
  kInternal = 8,         ///< a bug: an invariant did not hold
};

/// Returns a stable lowercase name for a code ("invalid argument", ...).
const char *statusCodeName(StatusCode code);

/// A float as error messages show it: the shortest of %.6g .. %.9g that
/// reads back as the same float, so 1.0000001 is never shown as "1".
std::string formatFloat(float value);

/// Outcome of an operation: ok, or a code with a human-readable message.
class [[nodiscard]] Status {
public:
  Status() = default;
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  bool isOk() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return isOk(); }
  StatusCode code() const { return code_; }
  const std::string &message() const { return message_; }
  /// "<code name>: <message>", or "ok".
  std::string toString() const;

private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalidArgument(std::string message) {
  return Status(StatusCode::kInvalidArgument, std::move(message));
}
inline Status unsupported(std::string message) {
  return Status(StatusCode::kUnsupported, std::move(message));
}

/// A value or the Status explaining why there is none.
template <typename T> class [[nodiscard]] StatusOr {
public:
  StatusOr(T value) : value_(std::move(value)) {}
  StatusOr(Status status) : status_(std::move(status)) {
    assert(!status_.isOk() && "StatusOr built from an ok Status");
  }
  bool isOk() const { return status_.isOk(); }
  explicit operator bool() const { return isOk(); }
  const Status &status() const { return status_; }
  T &value() { return *value_; }
  const T &value() const { return *value_; }
  T &operator*() { return *value_; }
  const T &operator*() const { return *value_; }
  T *operator->() { return &*value_; }
  const T *operator->() const { return &*value_; }

private:
  Status status_;
  std::optional<T> value_;
};

} // namespace fp

/// Returns early from the enclosing function when `expr` is not ok.
#define FP_RETURN_IF_ERROR(expr)                                               \
  do {                                                                         \
    ::fp::Status fpStatus_ = (expr);                                           \
    if (!fpStatus_.isOk())                                                     \
      return fpStatus_;                                                        \
  } while (0)

#endif // FLASHPREFILL_STATUS_H
