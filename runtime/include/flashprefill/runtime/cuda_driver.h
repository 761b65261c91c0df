//===- flashprefill/runtime/cuda_driver.h - CUDA driver via dlopen -*- C++
//-*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The CUDA driver API, loaded from libcuda.so.1 at run time so the library
// loads on machines without a GPU or driver (they get kNoDevice). cuda.h is
// used for its types only. The entry points are the ABI symbols cuda.h maps
// to (cuMemAlloc -> cuMemAlloc_v2, ...), resolved with dlsym.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_RUNTIME_CUDA_DRIVER_H
#define FLASHPREFILL_RUNTIME_CUDA_DRIVER_H

#include "flashprefill/status.h"

#include <cuda.h>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fp {
namespace rt {

/// Entry points of a loaded libcuda. Members are named like the driver
/// functions without the "cu" prefix; call them through CudaDriver::api().
struct CudaDriverApi {
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuDriverGetVersion) driverGetVersion = nullptr;
  decltype(&::cuGetErrorString) getErrorString = nullptr;
  decltype(&::cuGetErrorName) getErrorName = nullptr;
  decltype(&::cuDeviceGetCount) deviceGetCount = nullptr;
  decltype(&::cuDeviceGet) deviceGet = nullptr;
  decltype(&::cuDeviceGetAttribute) deviceGetAttribute = nullptr;
  decltype(&::cuDeviceGetName) deviceGetName = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) devicePrimaryCtxRetain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease) devicePrimaryCtxRelease = nullptr;
  decltype(&::cuCtxSetCurrent) ctxSetCurrent = nullptr;
  decltype(&::cuCtxGetCurrent) ctxGetCurrent = nullptr;
  decltype(&::cuCtxSynchronize) ctxSynchronize = nullptr;
  decltype(&::cuModuleLoadData) moduleLoadData = nullptr;
  decltype(&::cuModuleUnload) moduleUnload = nullptr;
  decltype(&::cuModuleGetFunction) moduleGetFunction = nullptr;
  decltype(&::cuModuleGetGlobal) moduleGetGlobal = nullptr;
  decltype(&::cuFuncSetAttribute) funcSetAttribute = nullptr;
  decltype(&::cuFuncGetAttribute) funcGetAttribute = nullptr;
  decltype(&::cuLaunchKernel) launchKernel = nullptr;
  decltype(&::cuMemAlloc) memAlloc = nullptr;
  decltype(&::cuMemFree) memFree = nullptr;
  decltype(&::cuMemcpyHtoD) memcpyHtoD = nullptr;
  decltype(&::cuMemcpyDtoH) memcpyDtoH = nullptr;
  decltype(&::cuMemsetD8) memsetD8 = nullptr;
  decltype(&::cuStreamSynchronize) streamSynchronize = nullptr;
  // Streams and graphs: tests and tools check CUDA-graph capture.
  decltype(&::cuStreamCreate) streamCreate = nullptr;
  decltype(&::cuStreamDestroy) streamDestroy = nullptr;
  decltype(&::cuStreamBeginCapture) streamBeginCapture = nullptr;
  decltype(&::cuStreamEndCapture) streamEndCapture = nullptr;
  decltype(&::cuGraphInstantiateWithFlags) graphInstantiate = nullptr;
  decltype(&::cuGraphLaunch) graphLaunch = nullptr;
  decltype(&::cuGraphExecDestroy) graphExecDestroy = nullptr;
  decltype(&::cuGraphDestroy) graphDestroy = nullptr;
  decltype(&::cuEventCreate) eventCreate = nullptr;
  decltype(&::cuEventDestroy) eventDestroy = nullptr;
  decltype(&::cuEventRecord) eventRecord = nullptr;
  decltype(&::cuEventSynchronize) eventSynchronize = nullptr;
  decltype(&::cuEventElapsedTime) eventElapsedTime = nullptr;
  // TMA descriptors for the sm_90a attention kernel (attention_tma.h).
  decltype(&::cuTensorMapEncodeTiled) tensorMapEncodeTiled = nullptr;
};

/// What the runtime needs to know about one device.
struct DeviceInfo {
  int ordinal = 0;
  std::string name;             ///< "NVIDIA H100 80GB HBM3"
  int ccMajor = 0, ccMinor = 0; ///< compute capability
  int smCount = 0;              ///< multiprocessors
  int maxSharedMemPerBlock = 0; ///< default static limit, bytes
  int maxSharedMemOptin = 0;    ///< with cuFuncSetAttribute opt-in, bytes
  int maxThreadsPerBlock = 0;
};

/// The NVRTC arch for compute capability `major`.`minor`: "sm_<major><minor>",
/// with the 'a' suffix when `archSpecific` and major >= 9 (sm_90a, sm_100a,
/// sm_120a), which unlocks wgmma/TMA-class instructions but runs only on
/// that exact compute capability.
std::string archForComputeCapability(int major, int minor, bool archSpecific);

/// The loaded CUDA driver. Thread-safe after get() returns (immutable).
class CudaDriver {
public:
  /// The process-wide driver: dlopen("libcuda.so.1") (or
  /// $FLASHPREFILL_CUDA_DRIVER_PATH), cuInit(0), at least one device. Any
  /// failure is kNoDevice "no CUDA device: <why>"; the outcome is remembered.
  static StatusOr<const CudaDriver *> get();

  /// Like get() but from explicit dlopen `candidates` and not remembered.
  /// For tests and tools.
  static StatusOr<std::unique_ptr<CudaDriver>>
  load(const std::vector<std::string> &candidates);

  /// Leaves libcuda loaded: unloading a driver that may have started threads
  /// is unsafe, and dlopen reference-counts the handle anyway.
  ~CudaDriver() = default;
  CudaDriver(const CudaDriver &) = delete;
  CudaDriver &operator=(const CudaDriver &) = delete;

  /// The driver entry points.
  const CudaDriverApi &api() const { return api_; }
  /// Number of devices (>= 1).
  int deviceCount() const { return deviceCount_; }
  /// cuDriverGetVersion, e.g. 13000.
  int driverVersion() const { return driverVersion_; }

  /// Ok for CUDA_SUCCESS, else kCudaError "<what>: CUDA_ERROR_X (<text>)".
  Status check(CUresult result, std::string_view what) const;

  /// Name, compute capability, SM count and shared-memory limits of device
  /// `ordinal`; kInvalidArgument if it is out of [0, deviceCount()).
  StatusOr<DeviceInfo> deviceInfo(int ordinal) const;

  /// Retains device `ordinal`'s primary context and makes it current on the
  /// calling thread. The retain is never released (the runtime keeps it for
  /// the process's lifetime, like the CUDA runtime does).
  StatusOr<CUcontext> makePrimaryContextCurrent(int ordinal) const;

private:
  CudaDriver() = default;
  CudaDriverApi api_;
  void *handle_ = nullptr;
  int deviceCount_ = 0;
  int driverVersion_ = 0;
};

/// A loaded CUBIN or PTX image (cuModuleLoadData on the current context);
/// unloaded on destruction. Move-only.
class Module {
public:
  /// Loads `image` (a CUBIN, or PTX text, NUL-terminated or not) into the
  /// current context; kNoDevice without a driver, kCudaError when the
  /// driver rejects it (wrong arch, no current context).
  static StatusOr<Module> load(std::string_view image);

  Module() = default;
  Module(Module &&other) noexcept;
  Module &operator=(Module &&other) noexcept;
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;
  ~Module();

  /// The kernel named `name` (its lowered/mangled name); kNotFound names it.
  StatusOr<CUfunction> function(const std::string &name) const;

  /// Address and size of the __device__ global `name`; kNotFound names it.
  StatusOr<std::pair<CUdeviceptr, size_t>>
  global(const std::string &name) const;

  /// The raw handle (null when empty).
  CUmodule handle() const { return module_; }

private:
  Module(const CudaDriver *driver, CUmodule module)
      : driver_(driver), module_(module) {}
  void reset();

  const CudaDriver *driver_ = nullptr;
  CUmodule module_ = nullptr;
};

} // namespace rt
} // namespace fp

#endif // FLASHPREFILL_RUNTIME_CUDA_DRIVER_H
