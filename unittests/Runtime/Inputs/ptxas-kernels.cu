// Source of the captured ptxas-*.log files in this directory: compiled with
// NVRTC 13.0.88 (-std=c++17 -default-device -Xptxas -v -I<cuda>/include),
// -arch=sm_90a -maxrregcount=64 and -arch=sm_80. spill_kernel spills, the
// template has static shared memory, helper is a non-inlined device function.
#include <cuda_bf16.h>
__device__ __noinline__ float helper(float* a, int i) { float loc[64]; for (int j=0;j<64;j++) loc[j]=a[j*i]; return loc[i&63]; }
extern "C" __global__ void spill_kernel(float* out, const float* in, int n) {
  float acc[256];
  #pragma unroll
  for (int i = 0; i < 256; ++i) acc[i] = in[i * n + threadIdx.x];
  float s = 0;
  for (int r = 0; r < n; ++r) {
    #pragma unroll
    for (int i = 0; i < 256; ++i) { acc[i] = acc[i] * acc[(i + 1) & 255] + in[r]; }
  }
  #pragma unroll
  for (int i = 0; i < 256; ++i) s += acc[i];
  out[threadIdx.x] = s + helper(out, n);
}
template <int N> __global__ void tmpl_kernel(__nv_bfloat16* p) { __shared__ float sm[N]; sm[threadIdx.x] = 1.f; __syncthreads(); p[threadIdx.x] = __float2bfloat16(sm[N - 1 - threadIdx.x]); }
template __global__ void tmpl_kernel<2048>(__nv_bfloat16*);
extern "C" __global__ void dyn_kernel(float* p) { extern __shared__ float dsm[]; dsm[threadIdx.x] = p[0]; __syncthreads(); p[threadIdx.x] = dsm[threadIdx.x ^ 1]; }
