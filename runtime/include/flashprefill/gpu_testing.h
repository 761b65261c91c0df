//===- flashprefill/gpu_testing.h - Device buffers and timing ---*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Shared by GPU tests, fp-bench and fp-tune: an owning device buffer over
// the dlopen'ed driver, and CUDA-event timing (warm-up, then the median of
// repeats).
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_GPU_TESTING_H
#define FLASHPREFILL_GPU_TESTING_H

#include "flashprefill/runtime/cuda_driver.h"

#include <functional>

namespace fp::testing {

/// Device memory freed on scope exit (cuMemAlloc: 256-byte aligned).
class DeviceBuffer {
public:
  DeviceBuffer(const rt::CudaDriver *driver, size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  /// Whether the allocation succeeded.
  bool ok() const { return ptr_ != 0; }
  void *get() const { return reinterpret_cast<void *>(ptr_); }
  size_t size() const { return bytes_; }
  Status upload(const void *host);
  Status download(void *host) const;
  Status fill(unsigned char byte);

private:
  const rt::CudaDriver *driver_;
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
};

/// Median milliseconds of `fn` on the legacy stream over `repeats` runs
/// after `warmup` runs, each run bracketed by CUDA events. Stops early once
/// the runs so far exceed `boundSeconds` (0: no bound).
double medianGpuMs(const rt::CudaDriver *driver, int warmup, int repeats,
                   const std::function<void()> &fn, double boundSeconds = 0);

} // namespace fp::testing

#endif // FLASHPREFILL_GPU_TESTING_H
