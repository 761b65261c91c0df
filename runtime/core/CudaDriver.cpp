//===- CudaDriver.cpp - CUDA driver via dlopen ----------------------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/cuda_driver.h"

#include "DynamicLibrary.h"

#include <dlfcn.h>
#include <initializer_list>
#include <mutex>

namespace fp {
namespace rt {

std::string archForComputeCapability(int major, int minor, bool archSpecific) {
  std::string arch = "sm_" + std::to_string(major) + std::to_string(minor);
  // Arch-specific ('a') targets exist from Hopper on; earlier archs have
  // no such variant and take the plain name.
  if (archSpecific && major >= 9)
    arch += 'a';
  return arch;
}

namespace {

Status noDevice(const std::string &why) {
  return Status(StatusCode::kNoDevice, "no CUDA device: " + why);
}

} // namespace

StatusOr<std::unique_ptr<CudaDriver>>
CudaDriver::load(const std::vector<std::string> &candidates) {
  detail::OpenedLibrary opened = detail::openFirst(candidates);
  if (!opened.handle)
    return noDevice("the CUDA driver library could not be loaded (tried " +
                    detail::join(opened.failures, ", ") + ")");

  std::unique_ptr<CudaDriver> driver(new CudaDriver());
  driver->handle_ = opened.handle;
  CudaDriverApi &api = driver->api_;
  std::vector<std::string> missing;
  // Each slot takes the first symbol that exists: cuda.h maps several names
  // to _v2 ABI symbols, and cuEventElapsedTime_v2 only exists from 12.8 on.
  auto resolve = [&](auto &slot, std::initializer_list<const char *> names) {
    void *symbol = nullptr;
    for (const char *name : names)
      if ((symbol = dlsym(opened.handle, name)))
        break;
    if (!symbol)
      missing.push_back(*names.begin());
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(symbol);
  };
  resolve(api.init, {"cuInit"});
  resolve(api.driverGetVersion, {"cuDriverGetVersion"});
  resolve(api.getErrorString, {"cuGetErrorString"});
  resolve(api.getErrorName, {"cuGetErrorName"});
  resolve(api.deviceGetCount, {"cuDeviceGetCount"});
  resolve(api.deviceGet, {"cuDeviceGet"});
  resolve(api.deviceGetAttribute, {"cuDeviceGetAttribute"});
  resolve(api.deviceGetName, {"cuDeviceGetName"});
  resolve(api.devicePrimaryCtxRetain, {"cuDevicePrimaryCtxRetain"});
  resolve(api.devicePrimaryCtxRelease, {"cuDevicePrimaryCtxRelease_v2"});
  resolve(api.ctxSetCurrent, {"cuCtxSetCurrent"});
  resolve(api.ctxGetCurrent, {"cuCtxGetCurrent"});
  resolve(api.ctxSynchronize, {"cuCtxSynchronize"});
  resolve(api.moduleLoadData, {"cuModuleLoadData"});
  resolve(api.moduleUnload, {"cuModuleUnload"});
  resolve(api.moduleGetFunction, {"cuModuleGetFunction"});
  resolve(api.moduleGetGlobal, {"cuModuleGetGlobal_v2"});
  resolve(api.funcSetAttribute, {"cuFuncSetAttribute"});
  resolve(api.funcGetAttribute, {"cuFuncGetAttribute"});
  resolve(api.launchKernel, {"cuLaunchKernel"});
  resolve(api.memAlloc, {"cuMemAlloc_v2"});
  resolve(api.memFree, {"cuMemFree_v2"});
  resolve(api.memcpyHtoD, {"cuMemcpyHtoD_v2"});
  resolve(api.memcpyDtoH, {"cuMemcpyDtoH_v2"});
  resolve(api.memsetD8, {"cuMemsetD8_v2"});
  resolve(api.streamSynchronize, {"cuStreamSynchronize"});
  resolve(api.streamCreate, {"cuStreamCreate"});
  resolve(api.streamDestroy, {"cuStreamDestroy_v2"});
  resolve(api.streamBeginCapture, {"cuStreamBeginCapture_v2"});
  resolve(api.streamEndCapture, {"cuStreamEndCapture"});
  resolve(api.graphInstantiate, {"cuGraphInstantiateWithFlags"});
  resolve(api.graphLaunch, {"cuGraphLaunch"});
  resolve(api.graphExecDestroy, {"cuGraphExecDestroy"});
  resolve(api.graphDestroy, {"cuGraphDestroy"});
  resolve(api.eventCreate, {"cuEventCreate"});
  resolve(api.eventDestroy, {"cuEventDestroy_v2"});
  resolve(api.eventRecord, {"cuEventRecord"});
  resolve(api.eventSynchronize, {"cuEventSynchronize"});
  resolve(api.eventElapsedTime,
          {"cuEventElapsedTime_v2", "cuEventElapsedTime"});
  resolve(api.tensorMapEncodeTiled, {"cuTensorMapEncodeTiled"});
  if (!missing.empty())
    return noDevice("the CUDA driver at '" + opened.candidate + "' lacks " +
                    detail::join(missing, ", ") + " (driver too old?)");

  CUresult rc = api.init(0);
  if (rc != CUDA_SUCCESS)
    return noDevice(driver->check(rc, "cuInit").message());
  api.driverGetVersion(&driver->driverVersion_);
  rc = api.deviceGetCount(&driver->deviceCount_);
  if (rc != CUDA_SUCCESS)
    return noDevice(driver->check(rc, "cuDeviceGetCount").message());
  if (driver->deviceCount_ <= 0)
    return noDevice("the driver reports 0 devices");
  return driver;
}

StatusOr<const CudaDriver *> CudaDriver::get() {
  // Loaded once and never unloaded (see ~CudaDriver).
  static std::once_flag once;
  static StatusOr<const CudaDriver *> *instance = nullptr;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    if (std::string env = detail::getEnv("FLASHPREFILL_CUDA_DRIVER_PATH");
        !env.empty())
      candidates.push_back(env);
    candidates.push_back("libcuda.so.1");
    StatusOr<std::unique_ptr<CudaDriver>> loaded = load(candidates);
    if (loaded)
      instance = new StatusOr<const CudaDriver *>(loaded->release());
    else
      instance = new StatusOr<const CudaDriver *>(loaded.status());
  });
  return *instance;
}

Status CudaDriver::check(CUresult result, std::string_view what) const {
  if (result == CUDA_SUCCESS)
    return Status::ok();
  const char *name = nullptr, *text = nullptr;
  if (api_.getErrorName)
    api_.getErrorName(result, &name);
  if (api_.getErrorString)
    api_.getErrorString(result, &text);
  std::string message = std::string(what) + ": " +
                        (name ? name : "CUDA error " + std::to_string(result));
  if (text)
    message += std::string(" (") + text + ")";
  return Status(StatusCode::kCudaError, message);
}

StatusOr<DeviceInfo> CudaDriver::deviceInfo(int ordinal) const {
  if (ordinal < 0 || ordinal >= deviceCount_)
    return invalidArgument("device: expected an ordinal in [0, " +
                           std::to_string(deviceCount_) + "), got " +
                           std::to_string(ordinal));
  CUdevice device;
  FP_RETURN_IF_ERROR(check(api_.deviceGet(&device, ordinal), "cuDeviceGet"));
  DeviceInfo info;
  info.ordinal = ordinal;
  char name[256] = {0};
  FP_RETURN_IF_ERROR(check(api_.deviceGetName(name, sizeof(name) - 1, device),
                           "cuDeviceGetName"));
  info.name = name;
  struct {
    int *slot;
    CUdevice_attribute attribute;
    const char *what;
  } attributes[] = {
      {&info.ccMajor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
       "compute capability major"},
      {&info.ccMinor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
       "compute capability minor"},
      {&info.smCount, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "SM count"},
      {&info.maxSharedMemPerBlock,
       CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, "shared memory"},
      {&info.maxSharedMemOptin,
       CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
       "opt-in shared memory"},
      {&info.maxThreadsPerBlock, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
       "threads per block"},
  };
  for (auto &attribute : attributes)
    FP_RETURN_IF_ERROR(check(
        api_.deviceGetAttribute(attribute.slot, attribute.attribute, device),
        std::string("cuDeviceGetAttribute(") + attribute.what + ")"));
  return info;
}

StatusOr<CUcontext> CudaDriver::makePrimaryContextCurrent(int ordinal) const {
  if (ordinal < 0 || ordinal >= deviceCount_)
    return invalidArgument("device: expected an ordinal in [0, " +
                           std::to_string(deviceCount_) + "), got " +
                           std::to_string(ordinal));
  CUdevice device;
  FP_RETURN_IF_ERROR(check(api_.deviceGet(&device, ordinal), "cuDeviceGet"));
  CUcontext context = nullptr;
  FP_RETURN_IF_ERROR(check(api_.devicePrimaryCtxRetain(&context, device),
                           "cuDevicePrimaryCtxRetain"));
  FP_RETURN_IF_ERROR(check(api_.ctxSetCurrent(context), "cuCtxSetCurrent"));
  return context;
}

//===----------------------------------------------------------------------===//
// Module
//===----------------------------------------------------------------------===//

StatusOr<Module> Module::load(std::string_view image) {
  StatusOr<const CudaDriver *> driver = CudaDriver::get();
  if (!driver)
    return driver.status();
  if (image.empty())
    return invalidArgument("image: expected a CUBIN or PTX image, got 0 "
                           "bytes");
  // PTX is read up to its NUL; a view need not be NUL-terminated.
  bool isElf = image.substr(0, 4) == "\x7f" "ELF";
  std::string terminatedPtx;
  if (!isElf && image.back() != '\0')
    terminatedPtx = std::string(image);
  CUmodule module = nullptr;
  FP_RETURN_IF_ERROR((*driver)->check(
      (*driver)->api().moduleLoadData(
          &module, terminatedPtx.empty() ? image.data() : terminatedPtx.c_str()),
      "cuModuleLoadData"));
  return Module(*driver, module);
}

Module::Module(Module &&other) noexcept
    : driver_(other.driver_), module_(other.module_) {
  other.module_ = nullptr;
}

Module &Module::operator=(Module &&other) noexcept {
  if (this != &other) {
    reset();
    driver_ = other.driver_;
    module_ = other.module_;
    other.module_ = nullptr;
  }
  return *this;
}

Module::~Module() { reset(); }

void Module::reset() {
  // Errors are ignored: at process exit the context may already be gone.
  if (module_ && driver_)
    driver_->api().moduleUnload(module_);
  module_ = nullptr;
}

StatusOr<CUfunction> Module::function(const std::string &name) const {
  if (!module_)
    return invalidArgument("module: expected a loaded module, got an empty "
                           "one");
  CUfunction function = nullptr;
  CUresult rc =
      driver_->api().moduleGetFunction(&function, module_, name.c_str());
  if (rc == CUDA_ERROR_NOT_FOUND)
    return Status(StatusCode::kNotFound,
                  "kernel '" + name + "' not found in the module");
  FP_RETURN_IF_ERROR(driver_->check(rc, "cuModuleGetFunction('" + name + "')"));
  return function;
}

StatusOr<std::pair<CUdeviceptr, size_t>>
Module::global(const std::string &name) const {
  if (!module_)
    return invalidArgument("module: expected a loaded module, got an empty "
                           "one");
  CUdeviceptr address = 0;
  size_t size = 0;
  CUresult rc =
      driver_->api().moduleGetGlobal(&address, &size, module_, name.c_str());
  if (rc == CUDA_ERROR_NOT_FOUND)
    return Status(StatusCode::kNotFound,
                  "global '" + name + "' not found in the module");
  FP_RETURN_IF_ERROR(driver_->check(rc, "cuModuleGetGlobal('" + name + "')"));
  return std::make_pair(address, size);
}

} // namespace rt
} // namespace fp
