//===- Status.cpp - Error values for the runtime ----------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "flashprefill/status.h"

#include <cstdio>
#include <cstdlib>

namespace fp {

const char *statusCodeName(StatusCode code) {
  switch (code) {
  case StatusCode::kOk: return "ok";
  case StatusCode::kInvalidArgument: return "invalid argument";
  case StatusCode::kUnsupported: return "unsupported";
  case StatusCode::kNotFound: return "not found";
  case StatusCode::kCompileError: return "compile error";
  case StatusCode::kCudaError: return "CUDA error";
  case StatusCode::kNoDevice: return "no CUDA device";
  case StatusCode::kIoError: return "I/O error";
  case StatusCode::kInternal: return "internal error";
  }
  return "unknown";
}

std::string formatFloat(float value) {
  char text[32];
  for (int digits = 6; digits <= 9; ++digits) {
    std::snprintf(text, sizeof(text), "%.*g", digits, double(value));
    if (std::strtof(text, nullptr) == value)
      break;
  }
  return text;
}

std::string Status::toString() const {
  if (isOk())
    return "ok";
  // Messages may already start with the code's name ("no CUDA device: ...").
  std::string name = statusCodeName(code_);
  if (message_.compare(0, name.size(), name) == 0)
    return message_;
  return name + ": " + message_;
}

} // namespace fp
