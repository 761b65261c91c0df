//===- CudaDriverTest.cpp - CUDA driver loader and Module -----------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// On a machine without a GPU the loader must answer kNoDevice; the GPU tests
// skip with the driver's reason.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/cuda_driver.h"
#include "flashprefill/runtime/nvrtc.h"

#include <cstdio>
#include <gtest/gtest.h>
#include <vector>

using namespace fp;
using namespace fp::rt;

namespace {

#define REQUIRE_GPU(var)                                                       \
  StatusOr<const CudaDriver *> var##OrError = CudaDriver::get();               \
  if (!var##OrError)                                                           \
    GTEST_SKIP() << "GPU test skipped: " << var##OrError.status().toString();  \
  const CudaDriver *var = *var##OrError

// The arch string is sm_<major><minor>, with 'a' only from CC 9.0 on and
// only when arch-specific features are requested.
TEST(CudaDriverTest, ArchForComputeCapability) {
  EXPECT_EQ(archForComputeCapability(9, 0, true), "sm_90a");
  EXPECT_EQ(archForComputeCapability(9, 0, false), "sm_90");
  EXPECT_EQ(archForComputeCapability(10, 0, true), "sm_100a");
  EXPECT_EQ(archForComputeCapability(8, 0, true), "sm_80");
  EXPECT_EQ(archForComputeCapability(8, 6, false), "sm_86");
  EXPECT_EQ(archForComputeCapability(12, 0, true), "sm_120a");
}

// A driver library that cannot be loaded is kNoDevice naming the attempt.
TEST(CudaDriverTest, MissingDriverIsNoDevice) {
  StatusOr<std::unique_ptr<CudaDriver>> driver =
      CudaDriver::load({"libcuda-does-not-exist.so.1"});
  ASSERT_FALSE(driver);
  EXPECT_EQ(driver.status().code(), StatusCode::kNoDevice);
  EXPECT_EQ(driver.status().message().rfind("no CUDA device: ", 0), 0u);
  EXPECT_NE(driver.status().message().find("libcuda-does-not-exist.so.1"),
            std::string::npos);
}

// The process-wide loader either finds a device or fails with kNoDevice
// (never another code), and Module::load reports the same without one.
TEST(CudaDriverTest, GetIsOkOrNoDevice) {
  StatusOr<const CudaDriver *> driver = CudaDriver::get();
  if (!driver) {
    EXPECT_EQ(driver.status().code(), StatusCode::kNoDevice)
        << driver.status().toString();
    std::printf("[          ] %s\n", driver.status().toString().c_str());
    StatusOr<Module> module = Module::load("not an image");
    ASSERT_FALSE(module);
    EXPECT_EQ(module.status().code(), StatusCode::kNoDevice);
    return;
  }
  EXPECT_GE((*driver)->deviceCount(), 1);
  EXPECT_GT((*driver)->driverVersion(), 0);
}

// Device attributes are sane and out-of-range ordinals name the argument.
TEST(CudaDriverTest, DeviceInfo) {
  REQUIRE_GPU(driver);
  StatusOr<DeviceInfo> info = driver->deviceInfo(0);
  ASSERT_TRUE(info) << info.status().toString();
  EXPECT_FALSE(info->name.empty());
  EXPECT_GE(info->ccMajor, 7);
  EXPECT_GT(info->smCount, 0);
  EXPECT_GE(info->maxSharedMemOptin, info->maxSharedMemPerBlock);
  std::printf("[          ] device 0: %s, CC %d.%d, %d SMs, %d B opt-in "
              "smem, driver %d\n",
              info->name.c_str(), info->ccMajor, info->ccMinor, info->smCount,
              info->maxSharedMemOptin, driver->driverVersion());
  StatusOr<DeviceInfo> bad = driver->deviceInfo(driver->deviceCount());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("device: expected"), std::string::npos);
}

// An NVRTC CUBIN for the device's exact arch (and compute_80 PTX) loads,
// launches and computes; missing symbols are kNotFound; events time it.
TEST(CudaDriverTest, CompileLoadLaunch) {
  REQUIRE_GPU(driver);
  StatusOr<const Nvrtc *> nvrtc = Nvrtc::get();
  if (!nvrtc)
    GTEST_SKIP() << "NVRTC unavailable: " << nvrtc.status().toString();
  StatusOr<DeviceInfo> info = driver->deviceInfo(0);
  ASSERT_TRUE(info) << info.status().toString();
  ASSERT_TRUE(driver->makePrimaryContextCurrent(0));
  const CudaDriverApi &cu = driver->api();

  const char *source = R"(
#include "fp/params.h"
__device__ fp_i32 fp_marker = 42;
extern "C" __global__ void fp_axpy(float *y, const float *x, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    y[i] = a * x[i] + y[i] + (fp_marker - 42);
}
)";
  for (const std::string &arch :
       {archForComputeCapability(info->ccMajor, info->ccMinor, true),
        std::string("compute_80")}) {
    SCOPED_TRACE(arch);
    NvrtcOptions options;
    options.arch = arch;
    StatusOr<NvrtcOutput> out = (*nvrtc)->compile(source, "axpy.cu", options);
    ASSERT_TRUE(out) << out.status().toString();
    StatusOr<Module> module = Module::load(out->binary);
    ASSERT_TRUE(module) << module.status().toString();
    StatusOr<CUfunction> fn = module->function("fp_axpy");
    ASSERT_TRUE(fn) << fn.status().toString();
    StatusOr<CUfunction> missing = module->function("fp_nope");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
    auto marker = module->global("fp_marker");
    ASSERT_TRUE(marker) << marker.status().toString();
    EXPECT_EQ(marker->second, sizeof(int));
    int markerValue = 0;
    ASSERT_TRUE(driver->check(
        cu.memcpyDtoH(&markerValue, marker->first, sizeof(int)), "DtoH"));
    EXPECT_EQ(markerValue, 42);

    int n = 1000;
    std::vector<float> x(n), y(n);
    for (int i = 0; i < n; ++i) {
      x[i] = float(i);
      y[i] = 1.0f;
    }
    CUdeviceptr dx = 0, dy = 0;
    ASSERT_TRUE(driver->check(cu.memAlloc(&dx, n * sizeof(float)), "alloc"));
    ASSERT_TRUE(driver->check(cu.memAlloc(&dy, n * sizeof(float)), "alloc"));
    ASSERT_TRUE(driver->check(cu.memcpyHtoD(dx, x.data(), n * 4), "HtoD"));
    ASSERT_TRUE(driver->check(cu.memcpyHtoD(dy, y.data(), n * 4), "HtoD"));
    float a = 2.0f;
    void *args[] = {&dy, &dx, &a, &n};
    CUevent start, stop;
    ASSERT_TRUE(driver->check(cu.eventCreate(&start, 0), "eventCreate"));
    ASSERT_TRUE(driver->check(cu.eventCreate(&stop, 0), "eventCreate"));
    ASSERT_TRUE(driver->check(cu.eventRecord(start, nullptr), "record"));
    ASSERT_TRUE(driver->check(cu.launchKernel(*fn, (n + 255) / 256, 1, 1, 256,
                                              1, 1, 0, nullptr, args, nullptr),
                              "cuLaunchKernel"));
    ASSERT_TRUE(driver->check(cu.eventRecord(stop, nullptr), "record"));
    ASSERT_TRUE(driver->check(cu.eventSynchronize(stop), "eventSync"));
    float ms = 0;
    ASSERT_TRUE(
        driver->check(cu.eventElapsedTime(&ms, start, stop), "elapsed"));
    EXPECT_GE(ms, 0.0f);
    ASSERT_TRUE(driver->check(cu.streamSynchronize(nullptr), "sync"));
    ASSERT_TRUE(driver->check(cu.memcpyDtoH(y.data(), dy, n * 4), "DtoH"));
    for (int i = 0; i < n; ++i)
      ASSERT_EQ(y[i], 2.0f * i + 1.0f) << "i=" << i;
    cu.eventDestroy(start);
    cu.eventDestroy(stop);
    cu.memFree(dx);
    cu.memFree(dy);
  }
}

// Garbage is rejected by the driver with kCudaError, not a crash.
TEST(CudaDriverTest, RejectsGarbageImage) {
  REQUIRE_GPU(driver);
  ASSERT_TRUE(driver->makePrimaryContextCurrent(0));
  StatusOr<Module> module = Module::load(std::string(64, 'x'));
  ASSERT_FALSE(module);
  EXPECT_EQ(module.status().code(), StatusCode::kCudaError);
}

} // namespace
