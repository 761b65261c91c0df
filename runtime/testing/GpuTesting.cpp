//===- GpuTesting.cpp - Device buffers and timing ---------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "flashprefill/gpu_testing.h"

#include <algorithm>
#include <vector>

namespace fp::testing {

DeviceBuffer::DeviceBuffer(const rt::CudaDriver *driver, size_t bytes)
    : driver_(driver), bytes_(bytes) {
  // At least one allocation unit, so empty problems still get a pointer.
  if (driver_->api().memAlloc(&ptr_, std::max<size_t>(bytes, 256)) !=
      CUDA_SUCCESS)
    ptr_ = 0;
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_)
    driver_->api().memFree(ptr_);
}

Status DeviceBuffer::upload(const void *host) {
  return driver_->check(driver_->api().memcpyHtoD(ptr_, host, bytes_),
                        "cuMemcpyHtoD");
}

Status DeviceBuffer::download(void *host) const {
  return driver_->check(driver_->api().memcpyDtoH(host, ptr_, bytes_),
                        "cuMemcpyDtoH");
}

Status DeviceBuffer::fill(unsigned char byte) {
  return driver_->check(driver_->api().memsetD8(ptr_, byte, bytes_),
                        "cuMemsetD8");
}

double medianGpuMs(const rt::CudaDriver *driver, int warmup, int repeats,
                   const std::function<void()> &fn, double boundSeconds) {
  const auto &api = driver->api();
  CUevent start, stop;
  api.eventCreate(&start, CU_EVENT_DEFAULT);
  api.eventCreate(&stop, CU_EVENT_DEFAULT);
  for (int i = 0; i < warmup; ++i)
    fn();
  std::vector<double> ms;
  double total = 0;
  for (int i = 0; i < std::max(1, repeats); ++i) {
    api.eventRecord(start, nullptr);
    fn();
    api.eventRecord(stop, nullptr);
    api.eventSynchronize(stop);
    float elapsed = 0;
    api.eventElapsedTime(&elapsed, start, stop);
    ms.push_back(elapsed);
    total += elapsed * 1e-3;
    if (boundSeconds > 0 && total > boundSeconds)
      break;
  }
  api.eventDestroy(start);
  api.eventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

} // namespace fp::testing
