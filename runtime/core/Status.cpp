//===- Status.cpp - Error values for the runtime ----------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "flashprefill/status.h"

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

std::string Status::toString() const {
  if (isOk())
    return "ok";
  return std::string(statusCodeName(code_)) + ": " + message_;
}

} // namespace fp
