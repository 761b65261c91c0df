//===- bench/dev/kernel_check.cu - GPU check and timing of fp kernels -*- CUDA -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
///
/// \file
/// Development harness for the device library (runtime/device/fp). Not part
/// of the CMake build: bench/dev/build.sh compiles it with nvcc.
///
/// It instantiates the three kernel templates with __global__ wrappers like
/// the generated ones, builds structured inputs (attention sinks, a local
/// band, recurring topic segments, per-head gains, noise; never zeros, never
/// plain randn), runs block_pool -> pattern_discovery -> masked_attention and
/// checks:
///   * kbar against a CPU mean (fp32, rounded): at most 1 ulp apart;
///   * the mask against a CPU fp64 implementation of DESIGN.md section 1
///     scored on the GPU's kbar; disagreements only for blocks within
///     1e-4 * max of a threshold (counted and reported);
///   * O against fp64 masked attention on the GPU mask (sampled query blocks
///     at long lengths): relative L2 <= 2x that of a naive fp32-accumulate,
///     P-rounded kernel, plus 1e-4; O poisoned with NaN first, every row
///     checked finite; LSE against fp64 (2x the naive kernel's + 1e-3);
///   * a second, hand-edited mask per case (empty rows, diagonal only,
///     diagonal dropped): O = 0 and LSE = -inf for empty rows.
/// With --perf it times the kernels with CUDA events (warm-up, median) next
/// to a dense (alpha = 0) run, and with --tune it times every attention
/// variant compiled below.
///
//===----------------------------------------------------------------------===//
#include "flashprefill/defaults.h"

#include "flashprefill/runtime/attention_tma.h"
#include "fp/kernels.cuh"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#define CK(x)                                                                                      \
  do {                                                                                             \
    cudaError_t err_ = (x);                                                                        \
    if (err_ != cudaSuccess) {                                                                     \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", #x, __FILE__, __LINE__,                 \
                   cudaGetErrorString(err_));                                                      \
      std::exit(2);                                                                                \
    }                                                                                              \
  } while (0)

//===----------------------------------------------------------------------===//
// Kernel wrappers, as the generated code writes them (with the
// __launch_bounds__(threads, 1) form the device library asks for).
//===----------------------------------------------------------------------===//

constexpr int kArchForHarness = 80; // default sets fit sm_80; same mainloop everywhere

template <class E, int D, int B, int T>
__global__ void __launch_bounds__(T, 1) pool_kernel(FpPoolParams p) {
  fp::dev::block_pool<E, D, B, T>(p);
}
template <class E, int D, int B, int K, int W>
__global__ void __launch_bounds__(W * 32, 1) discovery_kernel(FpDiscoveryParams p) {
  fp::dev::pattern_discovery<E, D, B, K, W>(p);
}
template <class E, int D, int B, int M, int N, int W, int S, int A>
__global__ void __launch_bounds__(W * 32, 1)
    attention_kernel(const __grid_constant__ FpAttentionParams p) {
  fp::dev::masked_attention<E, D, B, M, N, W, S, A>(p);
}

using PoolLaunch = void (*)(const FpPoolParams &, cudaStream_t);
using DiscLaunch = void (*)(const FpDiscoveryParams &, cudaStream_t);
using AttnLaunch = void (*)(const FpAttentionParams &, cudaStream_t);

template <class E, int D, int B, int T> void launch_pool(const FpPoolParams &p, cudaStream_t s) {
  pool_kernel<E, D, B, T><<<dim3(p.num_blocks, p.num_heads, p.batch), T, 0, s>>>(p);
}

template <class E, int D, int B, int K, int W>
void launch_discovery(const FpDiscoveryParams &p, cudaStream_t s) {
  using Tr = fp::dev::DiscoveryTraits<E, D, B, K, W>;
  const int smem = Tr::kSmemBaseBytes + Tr::kSmemPerKeyBlockBytes * p.num_blocks;
  static int configured = 0;
  if (smem > configured) {
    CK(cudaFuncSetAttribute(discovery_kernel<E, D, B, K, W>,
                            cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    configured = smem;
  }
  discovery_kernel<E, D, B, K, W><<<dim3(p.num_blocks, p.num_q_heads, p.batch), W * 32, smem, s>>>(p);
}

template <class E, int D, int B, int M, int N, int W, int S, int A>
void launch_attention(const FpAttentionParams &p, cudaStream_t s) {
  using Tr = fp::dev::AttentionTraits<E, D, B, M, N, W, S, A>;
  static bool configured = false;
  if (!configured) {
    CK(cudaFuncSetAttribute(attention_kernel<E, D, B, M, N, W, S, A>,
                            cudaFuncAttributeMaxDynamicSharedMemorySize, Tr::kSmemBytes));
    configured = true;
  }
  if constexpr (A == 90) {
    // The sm_90a mainloop reads Q/K/V through TMA: encode the maps per call
    // (the runtime does the same in CudaPlan).
    FpAttentionParams with_maps = p;
    const CUresult r = fp::rt::encodeAttentionTensorMaps(
        cuTensorMapEncodeTiled, with_maps, fp::dev::IsSame<E, __nv_bfloat16>::value, D, M, N);
    if (r != CUDA_SUCCESS) {
      std::fprintf(stderr, "cuTensorMapEncodeTiled failed: %d\n", int(r));
      std::exit(2);
    }
    attention_kernel<E, D, B, M, N, W, S, A>
        <<<dim3((p.seq_q + M - 1) / M, p.num_q_heads, p.batch), W * 32, Tr::kSmemBytes, s>>>(
            with_maps);
  } else {
    attention_kernel<E, D, B, M, N, W, S, A>
        <<<dim3((p.seq_q + M - 1) / M, p.num_q_heads, p.batch), W * 32, Tr::kSmemBytes, s>>>(p);
  }
}

struct AttnVariant {
  std::string name;
  AttnLaunch launch;
};

struct KernelSet {
  bool bf16;
  int d, block;
  std::string pool_cfg, disc_cfg;
  PoolLaunch pool;
  DiscLaunch disc;
  std::vector<AttnVariant> attn; // [0] is the default
};

template <class E, int D, int B, int M, int N, int W, int S, int A = kArchForHarness>
AttnVariant attn_variant() {
  char buf[96];
  std::snprintf(buf, sizeof buf, "M%d N%d W%d S%d (smem %d, arch %d)", M, N, W, S,
                fp::dev::AttentionTraits<E, D, B, M, N, W, S, A>::kSmemBytes, A);
  return {buf, &launch_attention<E, D, B, M, N, W, S, A>};
}

template <class E, int D, int B, int PT, int KC, int DW, int M, int N, int W, int S>
KernelSet make_set() {
  KernelSet k;
  k.bf16 = fp::dev::IsSame<E, __nv_bfloat16>::value;
  k.d = D;
  k.block = B;
  char buf[96];
  std::snprintf(buf, sizeof buf, "threads %d", PT);
  k.pool_cfg = buf;
  std::snprintf(buf, sizeof buf, "chunk %d warps %d", KC, DW);
  k.disc_cfg = buf;
  k.pool = &launch_pool<E, D, B, PT>;
  k.disc = &launch_discovery<E, D, B, KC, DW>;
  k.attn.push_back(attn_variant<E, D, B, M, N, W, S>());
  return k;
}

// The default configurations (mirrors the table in fp/kernels.cuh).
#define FP_DEFAULT_SETS(E)                                                                         \
  make_set<E, 64, 64, 128, 64, 4, 64, 64, 4, 2>(),                                                 \
      make_set<E, 64, 128, 128, 64, 4, 128, 64, 4, 2>(),                                           \
      make_set<E, 128, 64, 128, 64, 4, 64, 64, 4, 2>(),                                            \
      make_set<E, 128, 128, 128, 64, 4, 128, 32, 4, 2>(),                                          \
      make_set<E, 256, 64, 128, 32, 4, 64, 32, 4, 2>(),                                            \
      make_set<E, 256, 128, 128, 32, 4, 64, 32, 4, 2>()

static bool g_sm90 = false; // --sm90: the wgmma/TMA variant becomes each set's default

/// The sm_90a (wgmma/TMA) configuration of a set: one producer warpgroup plus
/// one consumer warpgroup per 64 rows; BlockN 64 at d = 256 for shared memory.
template <class E> void add_sm90_variant(KernelSet &s) {
#define FP_SM90_CASE(D, B, M, N, W, S)                                                             \
  if (s.d == D && s.block == B)                                                                    \
    s.attn.insert(s.attn.begin(), attn_variant<E, D, B, M, N, W, S, 90>());
  FP_SM90_CASE(64, 64, 64, 64, 8, 2)
  FP_SM90_CASE(64, 128, 128, 128, 12, 2)
  FP_SM90_CASE(128, 64, 64, 64, 8, 2)
  FP_SM90_CASE(128, 128, 128, 128, 12, 2)
  FP_SM90_CASE(256, 64, 64, 64, 8, 2)
  FP_SM90_CASE(256, 128, 128, 64, 12, 2)
#undef FP_SM90_CASE
}

static std::vector<KernelSet> build_sets() {
  std::vector<KernelSet> sets = {FP_DEFAULT_SETS(__nv_bfloat16), FP_DEFAULT_SETS(__half)};
  if (g_sm90)
    for (auto &s : sets) {
      if (s.bf16)
        add_sm90_variant<__nv_bfloat16>(s);
      else
        add_sm90_variant<__half>(s);
    }
#ifndef FP_DEV_NO_TUNE
  // Candidates timed by --tune (bf16 only).
  for (auto &s : sets) {
    if (!s.bf16)
      continue;
    if (s.d == 128 && s.block == 128) {
      s.attn.push_back(attn_variant<__nv_bfloat16, 128, 128, 128, 64, 8, 2>());
      s.attn.push_back(attn_variant<__nv_bfloat16, 128, 128, 128, 64, 4, 2>());
      s.attn.push_back(attn_variant<__nv_bfloat16, 128, 128, 128, 32, 4, 3>()); // 3 stages
      s.attn.push_back(attn_variant<__nv_bfloat16, 128, 128, 64, 64, 4, 2>());
    }
    if (s.d == 64 && s.block == 128) {
      s.attn.push_back(attn_variant<__nv_bfloat16, 64, 128, 128, 64, 8, 2>());
      s.attn.push_back(attn_variant<__nv_bfloat16, 64, 128, 64, 64, 4, 2>());
      s.attn.push_back(attn_variant<__nv_bfloat16, 64, 128, 128, 32, 4, 2>());
    }
    if (s.d == 256 && s.block == 128) {
      s.attn.push_back(attn_variant<__nv_bfloat16, 256, 128, 128, 32, 8, 2>());
    }
  }
#endif
  return sets;
}

/// Logits q . k_j for one query row and every key, through mma.sync exactly
/// as the attention kernel forms them (bf16 operands, fp32 accumulation, 16
/// k per instruction, d / 16 instructions in ascending k). One warp per 8
/// keys. Used by --mma-precision to separate tensor-core accumulation error
/// from the kernel's softmax arithmetic.
template <class E, int D>
__global__ void mma_logits_kernel(const E *q, const E *k, int64_t k_stride, int num_keys, float *out) {
  const int lane = threadIdx.x % 32;
  const int key0 = (blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32) * 8;
  if (key0 >= num_keys)
    return;
  const int g = lane / 4, t = lane % 4;
  const int key = min(key0 + g, num_keys - 1);
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int kk = 0; kk < D / 16; ++kk) {
    unsigned a[4];
    const unsigned *q32 = reinterpret_cast<const unsigned *>(q + kk * 16);
    a[0] = a[1] = q32[t];
    a[2] = a[3] = q32[4 + t];
    const unsigned *k32 = reinterpret_cast<const unsigned *>(k + key * k_stride + kk * 16);
    fp::dev::sm80::mma_16816<E>(acc, a, k32[t], k32[4 + t]);
  }
  if (g == 0)
    for (int i = 0; i < 2; ++i)
      if (key0 + 2 * t + i < num_keys)
        out[key0 + 2 * t + i] = acc[i];
}

//===----------------------------------------------------------------------===//
// Host numerics.
//===----------------------------------------------------------------------===//

static uint16_t to_bits(bool bf16, float x) {
  if (bf16) {
    __nv_bfloat16 h = __float2bfloat16_rn(x);
    uint16_t b;
    std::memcpy(&b, &h, 2);
    return b;
  }
  __half h = __float2half_rn(x);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
static float from_bits(bool bf16, uint16_t b) {
  if (bf16) {
    __nv_bfloat16 h;
    std::memcpy(&h, &b, 2);
    return __bfloat162float(h);
  }
  __half h;
  std::memcpy(&h, &b, 2);
  return __half2float(h);
}
static float round_elem(bool bf16, float x) { return from_bits(bf16, to_bits(bf16, x)); }

static void parallel_for(int64_t n, const std::function<void(int64_t)> &fn) {
  const int threads = std::max(1u, std::min(64u, std::thread::hardware_concurrency()));
  std::atomic<int64_t> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int64_t i; (i = next.fetch_add(1)) < n;)
        fn(i);
    });
  for (auto &th : pool)
    th.join();
}

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 0x1234567ull) {}
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  float uniform() { return (next() >> 40) * (1.0f / 16777216.0f); }
  float normal() {
    float u1 = std::max(uniform(), 1e-7f), u2 = uniform();
    return std::sqrt(-2.f * std::log(u1)) * std::cos(6.2831853f * u2);
  }
};

//===----------------------------------------------------------------------===//
// Problem.
//===----------------------------------------------------------------------===//

struct Case {
  bool bf16 = true;
  int d = 128, block = 128;
  int batch = 1, seq = 1024, hq = 4, hkv = 4;
  float alpha = FP_DEFAULT_ALPHA;
  int kind = FP_THRESHOLD_RELATIVE_MAX;
  int sink = FP_DEFAULT_SINK, window = FP_DEFAULT_WINDOW, last_n = FP_DEFAULT_LAST_N;
  int min_budget = FP_DEFAULT_MIN_BUDGET;
  int score_query = FP_SCORE_FULL_QUERIES;
  uint64_t seed = 1;
  int max_check_blocks = 24; // sampled (b, h, I) for the attention check
  int max_mask_rows = 0;      // sampled (b, h, I) for the mask check (0: all)
};

static std::string describe(const Case &c) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "%s d%d B%d b%d L%d hq%d hkv%d a%.2f %s sink%d win%d last%d k%d %s",
                c.bf16 ? "bf16" : "f16", c.d, c.block, c.batch, c.seq, c.hq, c.hkv, c.alpha,
                c.kind == FP_THRESHOLD_MIN_MAX ? "minmax" : "relmax", c.sink, c.window, c.last_n,
                c.min_budget, c.score_query == FP_SCORE_POOLED_QUERIES ? "pooled" : "full");
  return buf;
}

/// Structured inputs, [b, s, h, d] rounded to the element type, as floats.
struct Inputs {
  std::vector<float> q, k, v;
};

static Inputs make_inputs(const Case &c) {
  const int d = c.d, L = c.seq;
  Inputs in;
  in.q.resize(size_t(c.batch) * L * c.hq * d);
  in.k.resize(size_t(c.batch) * L * c.hkv * d);
  in.v.resize(in.k.size());
  const int g = c.hq / c.hkv;
  const int kTopics = 6, kSeg = 320;
  // Frequencies of a rotary-like positional code: nearby tokens correlate,
  // far ones do not, giving a local band.
  std::vector<float> freq(d / 2);
  for (int i = 0; i < d / 2; ++i)
    freq[i] = std::exp(-std::log(12.f) - (std::log(1500.f) - std::log(12.f)) * i / (d / 2));
  parallel_for(int64_t(c.batch) * c.hkv, [&](int64_t task) {
    const int b = int(task / c.hkv), kh = int(task % c.hkv);
    Rng rng(c.seed * 1000003ull + task * 7919ull + 17);
    std::vector<float> topic(kTopics * d), sink(d);
    for (auto &x : topic)
      x = rng.normal();
    for (auto &x : sink)
      x = rng.normal();
    std::vector<int> seg_topic((L + kSeg - 1) / kSeg);
    for (auto &t : seg_topic)
      t = int(rng.next() % kTopics); // topics recur far apart
    std::vector<float> gain(g);
    for (auto &x : gain)
      x = 0.5f + rng.uniform(); // flat and peaked heads
    std::vector<float> pos(d);
    for (int t = 0; t < L; ++t) {
      const int tp = seg_topic[t / kSeg];
      for (int i = 0; i < d / 2; ++i) {
        pos[2 * i] = std::cos(t * freq[i]);
        pos[2 * i + 1] = std::sin(t * freq[i]);
      }
      const float sink_w = t < 6 ? 1.6f : 0.f;
      float *kr = &in.k[((size_t(b) * L + t) * c.hkv + kh) * d];
      float *vr = &in.v[((size_t(b) * L + t) * c.hkv + kh) * d];
      for (int i = 0; i < d; ++i) {
        kr[i] = round_elem(c.bf16, 0.7f * topic[tp * d + i] + 0.9f * pos[i] + 0.6f * rng.normal() +
                                       sink_w * sink[i]);
        vr[i] = round_elem(c.bf16, rng.normal() + 0.6f * topic[tp * d + i]);
      }
      for (int h = 0; h < g; ++h) {
        float *qr = &in.q[((size_t(b) * L + t) * c.hq + kh * g + h) * d];
        for (int i = 0; i < d; ++i)
          qr[i] = round_elem(c.bf16, gain[h] * (0.7f * topic[tp * d + i] + 0.9f * pos[i] +
                                                  0.7f * sink[i]) +
                                         0.6f * rng.normal());
      }
    }
  });
  return in;
}

struct DeviceBuf {
  void *p = nullptr;
  size_t bytes = 0;
  explicit DeviceBuf(size_t n) : bytes(n) { CK(cudaMalloc(&p, std::max<size_t>(n, 16))); }
  ~DeviceBuf() { cudaFree(p); }
  DeviceBuf(const DeviceBuf &) = delete;
  DeviceBuf &operator=(const DeviceBuf &) = delete;
};

static std::vector<uint16_t> to_bits_vec(bool bf16, const std::vector<float> &x) {
  std::vector<uint16_t> r(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    r[i] = to_bits(bf16, x[i]);
  return r;
}

struct Stats {
  int failures = 0;
  void fail(const char *message, const std::string &value) {
    ++failures;
    std::printf("  FAIL %s: %s\n", message, value.c_str());
  }
};

template <class F> static float time_ms(F &&fn, int warmup, int reps) {
  for (int i = 0; i < warmup; ++i)
    fn();
  CK(cudaDeviceSynchronize());
  std::vector<float> t(reps);
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < reps; ++i) {
    CK(cudaEventRecord(a));
    fn();
    CK(cudaEventRecord(b));
    CK(cudaEventSynchronize(b));
    CK(cudaEventElapsedTime(&t[i], a, b));
  }
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  std::sort(t.begin(), t.end());
  return t[reps / 2];
}

//===----------------------------------------------------------------------===//
// CPU references.
//===----------------------------------------------------------------------===//

/// Mask of one (b, h, I) by the section-1 rule, scored in fp64 on the given
/// kbar (GPU's, so the mask check isolates discovery). Returns per-j keep
/// flags and, per j, how close its score is to any threshold it crosses.
struct RowRef {
  std::vector<double> score;
  std::vector<char> keep, ambiguous;
};

static RowRef cpu_mask_row(const Case &c, const std::vector<float> &q, const std::vector<float> &qbar,
                           const std::vector<float> &kbar, int b, int h, int I) {
  const int d = c.d, B = c.block, L = c.seq, nb = (L + B - 1) / B;
  const int kh = h / (c.hq / c.hkv);
  const double scale = 1.0 / std::sqrt(double(d));
  const int nj = I + 1;
  const int last_row = std::min((I + 1) * B, L) - 1;
  RowRef r;
  std::vector<double> E(nj, 0.0);
  const float *kb = &kbar[((size_t(b) * c.hkv + kh) * nb) * d];
  std::vector<std::vector<double>> s;
  std::vector<int> pos;
  std::vector<const float *> probes;
  if (c.score_query == FP_SCORE_POOLED_QUERIES) {
    probes.push_back(&qbar[((size_t(b) * c.hq + h) * nb + I) * d]);
    pos.push_back(last_row);
  } else {
    for (int t = I * B; t <= last_row; ++t) {
      probes.push_back(&q[((size_t(b) * L + t) * c.hq + h) * d]);
      pos.push_back(t);
    }
  }
  double M = -INFINITY;
  s.assign(probes.size(), std::vector<double>(nj, -INFINITY));
  for (size_t p = 0; p < probes.size(); ++p)
    for (int j = 0; j < nj; ++j) {
      if (pos[p] < std::min((j + 1) * B, L) - 1)
        continue;
      double acc = 0;
      for (int i = 0; i < d; ++i)
        acc += double(probes[p][i]) * double(kb[size_t(j) * d + i]);
      s[p][j] = acc * scale;
      M = std::max(M, s[p][j]);
    }
  for (size_t p = 0; p < probes.size(); ++p)
    for (int j = 0; j < nj; ++j)
      if (s[p][j] != -INFINITY)
        E[j] += std::exp(s[p][j] - M);
  double total = 0;
  for (double e : E)
    total += e;
  r.score.resize(nj);
  double mx = 0, mn = INFINITY;
  for (int j = 0; j < nj; ++j) {
    r.score[j] = E[j] / (total + 1e-9);
    mx = std::max(mx, r.score[j]);
    mn = std::min(mn, r.score[j]);
  }
  const double t = c.kind == FP_THRESHOLD_MIN_MAX ? c.alpha * mx + (1 - c.alpha) * mn : c.alpha * mx;
  auto forced = [&](int j) { return j < c.sink || I - j < c.window || I >= nb - c.last_n; };
  double budget = INFINITY;
  if (c.min_budget > 0) {
    std::vector<double> cand;
    for (int j = 0; j < nj; ++j)
      if (!forced(j))
        cand.push_back(r.score[j]);
    if (int(cand.size()) <= c.min_budget)
      budget = 0;
    else {
      std::nth_element(cand.begin(), cand.begin() + (c.min_budget - 1), cand.end(),
                       std::greater<double>());
      budget = cand[c.min_budget - 1];
    }
  }
  const double tol = 1e-4 * mx;
  r.keep.resize(nj);
  r.ambiguous.resize(nj);
  for (int j = 0; j < nj; ++j) {
    r.keep[j] = forced(j) || r.score[j] >= t || r.score[j] >= budget;
    r.ambiguous[j] = !forced(j) && (std::fabs(r.score[j] - t) <= tol ||
                                    (budget != INFINITY && std::fabs(r.score[j] - budget) <= tol));
  }
  return r;
}

/// Errors of one sampled (b, h, I) attention block against fp64.
struct AttnErr {
  double gpu2 = 0, naive2 = 0, ref2 = 0, lse_err = 0, lse_naive_err = 0;
  long bad_empty = 0;
  std::string worst; // the row with the largest LSE error
  std::vector<float> row_lse_err; // signed, per row of the block
};

static AttnErr cpu_attention_block(const Case &c, const Inputs &in, const std::vector<uint16_t> &o_bits,
                                   const std::vector<float> &lse, const std::vector<int> &counts,
                                   const std::vector<int> &ids, int b, int h, int I) {
  const int d = c.d, B = c.block, L = c.seq, nb = (L + B - 1) / B;
  const int kh = h / (c.hq / c.hkv);
  const double scale = 1.0 / std::sqrt(double(d));
  const float scale_f = float(scale);
  const size_t mrow = (size_t(b) * c.hq + h) * nb + I;
  const int cnt = counts[mrow];
  AttnErr e;
  std::vector<int> keys;
  std::vector<double> sd;
  std::vector<float> sf, of(d);
  std::vector<double> od(d);
  for (int r = I * B; r < std::min((I + 1) * B, L); ++r) {
    keys.clear();
    for (int x = 0; x < cnt; ++x) {
      const int j = ids[mrow * nb + x];
      for (int key = j * B; key < std::min((j + 1) * B, L); ++key)
        if (key <= r)
          keys.push_back(key);
    }
    const float *qr = &in.q[((size_t(b) * L + r) * c.hq + h) * d];
    const uint16_t *og = &o_bits[((size_t(b) * L + r) * c.hq + h) * d];
    const float lse_g = lse[(size_t(b) * c.hq + h) * L + r];
    if (keys.empty()) {
      for (int i = 0; i < d; ++i)
        if (from_bits(c.bf16, og[i]) != 0.f)
          ++e.bad_empty;
      if (!(std::isinf(lse_g) && lse_g < 0))
        ++e.bad_empty;
      continue;
    }
    sd.resize(keys.size());
    sf.resize(keys.size());
    double md = -INFINITY;
    float mf = -INFINITY;
    for (size_t x = 0; x < keys.size(); ++x) {
      const float *kr = &in.k[((size_t(b) * L + keys[x]) * c.hkv + kh) * d];
      double ad = 0;
      float af = 0;
      for (int i = 0; i < d; ++i) {
        ad += double(qr[i]) * double(kr[i]);
        af += qr[i] * kr[i];
      }
      sd[x] = ad * scale;
      sf[x] = af * scale_f;
      md = std::max(md, sd[x]);
      mf = std::max(mf, sf[x]);
    }
    double ld = 0;
    float lf = 0;
    std::fill(od.begin(), od.end(), 0.0);
    std::fill(of.begin(), of.end(), 0.f);
    for (size_t x = 0; x < keys.size(); ++x) {
      const float *vr = &in.v[((size_t(b) * L + keys[x]) * c.hkv + kh) * d];
      const double pd = std::exp(sd[x] - md);
      const float pf = std::exp(sf[x] - mf);
      const float pr = round_elem(c.bf16, pf);
      ld += pd;
      lf += pf;
      for (int i = 0; i < d; ++i) {
        od[i] += pd * vr[i];
        of[i] += pr * vr[i];
      }
    }
    for (int i = 0; i < d; ++i) {
      const double ref = od[i] / ld;
      const double naive = round_elem(c.bf16, of[i] / lf);
      const double gpu = from_bits(c.bf16, og[i]);
      e.gpu2 += (gpu - ref) * (gpu - ref);
      e.naive2 += (naive - ref) * (naive - ref);
      e.ref2 += ref * ref;
    }
    const double lse_ref = md + std::log(ld);
    const double lse_naive = double(mf) + std::log(double(lf));
    e.lse_naive_err = std::max(e.lse_naive_err, std::fabs(lse_naive - lse_ref));
    const double le = std::fabs(double(lse_g) - lse_ref);
    e.row_lse_err.push_back(float(double(lse_g) - lse_ref));
    if (le > e.lse_err) {
      e.lse_err = le;
      char buf[200];
      std::snprintf(buf, sizeof buf, "b%d h%d row %d keys %zu lse gpu %.6f ref %.6f naive %.6f max %.4f",
                    b, h, r, keys.size(), lse_g, lse_ref, lse_naive, md);
      e.worst = buf;
    }
  }
  return e;
}

//===----------------------------------------------------------------------===//
// One case.
//===----------------------------------------------------------------------===//

struct PerfRow {
  std::string what;
  double pool_ms, disc_ms, attn_ms, dense_attn_ms, dense_disc_ms, density, tflops_sparse, tflops_dense;
};
static std::vector<PerfRow> g_perf;
static std::vector<std::string> g_summary;

static const KernelSet *find_set(const std::vector<KernelSet> &sets, const Case &c) {
  for (auto &s : sets)
    if (s.bf16 == c.bf16 && s.d == c.d && s.block == c.block)
      return &s;
  return nullptr;
}

static FpAttentionParams attn_params(const Case &c, void *q, void *k, void *v, void *o, float *lse,
                                     const int *counts, const int *ids) {
  const int nb = (c.seq + c.block - 1) / c.block;
  FpAttentionParams p{};
  p.q = q;
  p.k = k;
  p.v = v;
  p.o = o;
  p.lse = lse;
  p.counts = counts;
  p.ids = ids;
  p.q_batch_stride = int64_t(c.seq) * c.hq * c.d;
  p.q_seq_stride = int64_t(c.hq) * c.d;
  p.q_head_stride = c.d;
  p.k_batch_stride = p.v_batch_stride = int64_t(c.seq) * c.hkv * c.d;
  p.k_seq_stride = p.v_seq_stride = int64_t(c.hkv) * c.d;
  p.k_head_stride = p.v_head_stride = c.d;
  p.o_batch_stride = p.q_batch_stride;
  p.o_seq_stride = p.q_seq_stride;
  p.o_head_stride = p.q_head_stride;
  p.batch = c.batch;
  p.seq_q = p.seq_k = c.seq;
  p.num_q_heads = c.hq;
  p.num_kv_heads = c.hkv;
  p.num_blocks = nb;
  p.scale = 1.f / std::sqrt(float(c.d));
  return p;
}

static bool g_check_variants = false; // --check-variants: verify every attention variant

static int run_case(const std::vector<KernelSet> &sets, const Case &c, bool perf, bool tune) {
  const KernelSet *ks = find_set(sets, c);
  const std::string name = describe(c);
  if (!ks) {
    std::printf("SKIP %s (no kernel set)\n", name.c_str());
    return 0;
  }
  Stats st;
  const int d = c.d, B = c.block, L = c.seq, nb = (L + B - 1) / B;
  Inputs in = make_inputs(c);
  const size_t nq = in.q.size(), nk = in.k.size();
  DeviceBuf dq(nq * 2), dk(nk * 2), dv(nk * 2), dout(nq * 2);
  DeviceBuf dkbar(size_t(c.batch) * c.hkv * nb * d * 2), dqbar(size_t(c.batch) * c.hq * nb * d * 2);
  DeviceBuf dcounts(size_t(c.batch) * c.hq * nb * 4), dids(size_t(c.batch) * c.hq * nb * nb * 4);
  DeviceBuf dscores(size_t(c.batch) * c.hq * nb * nb * 4), dlse(size_t(c.batch) * c.hq * L * 4);
  DeviceBuf dcounter(8);
  {
    auto qb = to_bits_vec(c.bf16, in.q), kb = to_bits_vec(c.bf16, in.k), vb = to_bits_vec(c.bf16, in.v);
    CK(cudaMemcpy(dq.p, qb.data(), nq * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dk.p, kb.data(), nk * 2, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dv.p, vb.data(), nk * 2, cudaMemcpyHostToDevice));
  }

  FpPoolParams pk{};
  pk.src = dk.p;
  pk.dst = dkbar.p;
  pk.src_batch_stride = int64_t(L) * c.hkv * d;
  pk.src_seq_stride = int64_t(c.hkv) * d;
  pk.src_head_stride = d;
  pk.batch = c.batch;
  pk.seq_len = L;
  pk.num_heads = c.hkv;
  pk.num_blocks = nb;
  FpPoolParams pq = pk;
  pq.src = dq.p;
  pq.dst = dqbar.p;
  pq.src_batch_stride = int64_t(L) * c.hq * d;
  pq.src_seq_stride = int64_t(c.hq) * d;
  pq.num_heads = c.hq;

  FpDiscoveryParams pd{};
  pd.q = dq.p;
  pd.kbar = dkbar.p;
  pd.qbar = dqbar.p;
  pd.counts = static_cast<fp_i32 *>(dcounts.p);
  pd.ids = static_cast<fp_i32 *>(dids.p);
  pd.kept_counter = static_cast<fp_u64 *>(dcounter.p);
  pd.debug_scores = nullptr;
  pd.q_batch_stride = pq.src_batch_stride;
  pd.q_seq_stride = pq.src_seq_stride;
  pd.q_head_stride = d;
  pd.batch = c.batch;
  pd.seq_q = pd.seq_k = L;
  pd.num_q_heads = c.hq;
  pd.num_kv_heads = c.hkv;
  pd.num_blocks = nb;
  pd.scale = 1.f / std::sqrt(float(d));
  pd.alpha = c.alpha;
  pd.sink = c.sink;
  pd.window = c.window;
  pd.last_n = c.last_n;
  pd.min_budget = c.min_budget;
  pd.threshold_kind = c.kind;
  pd.score_query = c.score_query;

  CK(cudaMemset(dkbar.p, 0xFF, dkbar.bytes));
  CK(cudaMemset(dcounts.p, 0xFF, dcounts.bytes));
  CK(cudaMemset(dcounter.p, 0, 8));
  ks->pool(pk, 0);
  CK(cudaGetLastError());
  if (c.score_query == FP_SCORE_POOLED_QUERIES) {
    ks->pool(pq, 0);
    CK(cudaGetLastError());
  }
  ks->disc(pd, 0);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  std::vector<int> counts(size_t(c.batch) * c.hq * nb), ids(size_t(c.batch) * c.hq * nb * nb);
  uint64_t kept_counter = 0;
  CK(cudaMemcpy(counts.data(), dcounts.p, counts.size() * 4, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(ids.data(), dids.p, ids.size() * 4, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(&kept_counter, dcounter.p, 8, cudaMemcpyDeviceToHost));
  // Again with debug scores: the mask must not change.
  pd.debug_scores = static_cast<float *>(dscores.p);
  pd.kept_counter = nullptr;
  ks->disc(pd, 0);
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  pd.debug_scores = nullptr;
  pd.kept_counter = static_cast<fp_u64 *>(dcounter.p);
  std::vector<float> scores(size_t(c.batch) * c.hq * nb * nb);
  {
    std::vector<int> counts2(counts.size()), ids2(ids.size());
    CK(cudaMemcpy(counts2.data(), dcounts.p, counts.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(ids2.data(), dids.p, ids.size() * 4, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(scores.data(), dscores.p, scores.size() * 4, cudaMemcpyDeviceToHost));
    long diff = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      if (counts[r] != counts2[r]) {
        ++diff;
        continue;
      }
      for (int x = 0; x < counts[r]; ++x)
        diff += ids[r * nb + x] != ids2[r * nb + x];
    }
    if (diff)
      st.fail("mask differs between debug and non-debug runs", std::to_string(diff));
  }

  // kbar (and qbar) vs CPU.
  std::vector<float> kbar(size_t(c.batch) * c.hkv * nb * d), qbar;
  {
    std::vector<uint16_t> kb(kbar.size());
    CK(cudaMemcpy(kb.data(), dkbar.p, kb.size() * 2, cudaMemcpyDeviceToHost));
    long bad = 0, off1 = 0;
    for (int b = 0; b < c.batch; ++b)
      for (int h = 0; h < c.hkv; ++h)
        for (int j = 0; j < nb; ++j) {
          const int n = std::min(B, L - j * B);
          for (int i = 0; i < d; ++i) {
            float s = 0;
            for (int t = j * B; t < j * B + n; ++t)
              s += in.k[((size_t(b) * L + t) * c.hkv + h) * d + i];
            const uint16_t ref = to_bits(c.bf16, s / float(n));
            const size_t idx = ((size_t(b) * c.hkv + h) * nb + j) * d + i;
            const uint16_t got = kb[idx];
            kbar[idx] = from_bits(c.bf16, got);
            const int delta = std::abs(int(ref) - int(got));
            if (delta > 1)
              ++bad;
            else if (delta == 1)
              ++off1;
          }
        }
    if (bad)
      st.fail("kbar elements more than 1 ulp from the CPU mean", std::to_string(bad));
    if (off1)
      std::printf("  note: %ld kbar elements 1 ulp off (fp32 summation order)\n", off1);
    if (c.score_query == FP_SCORE_POOLED_QUERIES) {
      std::vector<uint16_t> qb(size_t(c.batch) * c.hq * nb * d);
      CK(cudaMemcpy(qb.data(), dqbar.p, qb.size() * 2, cudaMemcpyDeviceToHost));
      qbar.resize(qb.size());
      for (size_t i = 0; i < qb.size(); ++i)
        qbar[i] = from_bits(c.bf16, qb[i]);
    }
  }

  // Mask vs CPU.
  long total_kept = 0, causal_blocks = 0, hard = 0, soft = 0, bad_format = 0;
  double max_score_diff = 0;
  {
    const int64_t rows = int64_t(c.batch) * c.hq * nb;
    std::vector<long> hard_v(rows), soft_v(rows), fmt_v(rows);
    std::vector<double> sdiff(rows);
    // All mask rows, or a sample (the last query blocks plus a spread).
    std::vector<int64_t> mrows;
    if (c.max_mask_rows == 0 || rows <= c.max_mask_rows) {
      for (int64_t r = 0; r < rows; ++r)
        mrows.push_back(r);
    } else {
      Rng rng(c.seed + 7);
      for (int64_t r = rows - 4; r < rows; ++r)
        mrows.push_back(r);
      while (int64_t(mrows.size()) < c.max_mask_rows)
        mrows.push_back(int64_t(rng.next() % uint64_t(rows)));
    }
    parallel_for(int64_t(mrows.size()), [&](int64_t x) {
      const int64_t r = mrows[x];
      const int I = int(r % nb), h = int((r / nb) % c.hq), b = int(r / nb / c.hq);
      RowRef ref = cpu_mask_row(c, in.q, qbar, kbar, b, h, I);
      const int cnt = counts[r];
      std::vector<char> got(I + 1, 0);
      if (cnt < 0 || cnt > I + 1) {
        fmt_v[r]++;
        return;
      }
      for (int x = 0; x < cnt; ++x) {
        const int j = ids[r * nb + x];
        if (j < 0 || j > I || (x > 0 && j <= ids[r * nb + x - 1])) {
          fmt_v[r]++;
          return;
        }
        got[j] = 1;
      }
      for (int j = 0; j <= I; ++j) {
        if (got[j] != ref.keep[j])
          (ref.ambiguous[j] ? soft_v[r] : hard_v[r])++;
        sdiff[r] = std::max(sdiff[r], std::fabs(double(scores[r * nb + j]) - ref.score[j]));
      }
    });
    for (int64_t r = 0; r < rows; ++r) {
      hard += hard_v[r];
      soft += soft_v[r];
      bad_format += fmt_v[r];
      max_score_diff = std::max(max_score_diff, sdiff[r]);
      total_kept += counts[r];
      causal_blocks += r % nb + 1;
    }
    if (bad_format)
      st.fail("malformed mask rows (count out of range, ids not ascending in [0, I])",
              std::to_string(bad_format));
    if (hard)
      st.fail("mask blocks disagree with the CPU rule away from the threshold", std::to_string(hard));
    if (kept_counter != uint64_t(total_kept))
      st.fail("kept_counter != sum of counts",
              std::to_string(kept_counter) + " vs " + std::to_string(total_kept));
  }
  const double density = double(total_kept) / double(causal_blocks);

  // Attention on the GPU mask and on an edited mask.
  std::vector<float> lse(size_t(c.batch) * c.hq * L);
  std::vector<uint16_t> o_bits(nq);
  double worst_ratio = 0, worst_gpu = 0, worst_naive = 0, worst_lse = 0, worst_lse_naive = 0;
  const size_t num_variants = g_check_variants ? ks->attn.size() : 1;
  for (size_t var = 0; var < num_variants; ++var)
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<int> cnt = counts, idv = ids;
    if (pass == 0) {
      CK(cudaMemcpy(dcounts.p, cnt.data(), cnt.size() * 4, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(dids.p, idv.data(), idv.size() * 4, cudaMemcpyHostToDevice));
    } else {
      // Edited mask: empty rows, diagonal only, diagonal dropped.
      for (size_t r = 0; r < cnt.size(); ++r) {
        const int I = int(r % nb);
        if (I % 3 == 1)
          cnt[r] = 0;
        else if (I % 3 == 2) {
          cnt[r] = 1;
          idv[r * nb] = I;
        } else if (cnt[r] > 1 && idv[r * nb + cnt[r] - 1] == I)
          cnt[r] -= 1;
      }
      CK(cudaMemcpy(dcounts.p, cnt.data(), cnt.size() * 4, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(dids.p, idv.data(), idv.size() * 4, cudaMemcpyHostToDevice));
    }
    CK(cudaMemset(dout.p, 0xFF, dout.bytes)); // NaN in bf16 and f16
    CK(cudaMemset(dlse.p, 0xFF, dlse.bytes)); // NaN in fp32
    FpAttentionParams pa = attn_params(c, dq.p, dk.p, dv.p, dout.p, static_cast<float *>(dlse.p),
                                       static_cast<const int *>(dcounts.p), static_cast<const int *>(dids.p));
    ks->attn[var].launch(pa, 0);
    CK(cudaGetLastError());
    CK(cudaDeviceSynchronize());
    CK(cudaMemcpy(o_bits.data(), dout.p, nq * 2, cudaMemcpyDeviceToHost));
    CK(cudaMemcpy(lse.data(), dlse.p, lse.size() * 4, cudaMemcpyDeviceToHost));
    long nonfinite = 0, lse_nan = 0;
    for (size_t i = 0; i < nq; ++i)
      nonfinite += !std::isfinite(from_bits(c.bf16, o_bits[i]));
    for (float x : lse)
      lse_nan += std::isnan(x) || x == INFINITY;
    if (nonfinite)
      st.fail("O elements NaN/inf (unwritten or broken)", std::to_string(nonfinite));
    if (lse_nan)
      st.fail("LSE entries NaN/+inf (unwritten or broken)", std::to_string(lse_nan));
    // Sampled (b, h, I): first and last blocks always, then a spread.
    std::vector<int64_t> samples;
    const int64_t rows = int64_t(c.batch) * c.hq * nb;
    if (rows <= c.max_check_blocks) {
      for (int64_t r = 0; r < rows; ++r)
        samples.push_back(r);
    } else {
      Rng rng(c.seed + 99 + pass);
      samples.push_back(nb - 1);
      samples.push_back(0);
      samples.push_back(rows - 1);
      while (int(samples.size()) < c.max_check_blocks)
        samples.push_back(int64_t(rng.next() % uint64_t(rows)));
    }
    std::vector<AttnErr> errs(samples.size());
    parallel_for(int64_t(samples.size()), [&](int64_t x) {
      const int64_t r = samples[x];
      const int I = int(r % nb), h = int((r / nb) % c.hq), b = int(r / nb / c.hq);
      errs[x] = cpu_attention_block(c, in, o_bits, lse, cnt, idv, b, h, I);
    });
    AttnErr tot;
    for (auto &e : errs) {
      tot.gpu2 += e.gpu2;
      tot.naive2 += e.naive2;
      tot.ref2 += e.ref2;
      if (e.lse_err > tot.lse_err) {
        tot.worst = e.worst;
        tot.row_lse_err = e.row_lse_err;
      }
      tot.lse_err = std::max(tot.lse_err, e.lse_err);
      tot.lse_naive_err = std::max(tot.lse_naive_err, e.lse_naive_err);
      tot.bad_empty += e.bad_empty;
    }
    if (tot.bad_empty)
      st.fail("rows without visible keys not O = 0 / LSE = -inf", std::to_string(tot.bad_empty));
    if (tot.ref2 > 0) {
      const double eg = std::sqrt(tot.gpu2 / tot.ref2), en = std::sqrt(tot.naive2 / tot.ref2);
      worst_gpu = std::max(worst_gpu, eg);
      worst_naive = std::max(worst_naive, en);
      worst_ratio = std::max(worst_ratio, eg / std::max(en, 1e-12));
      if (!(eg <= 2 * en + 1e-4))
        st.fail("O relative L2 error above 2x naive + 1e-4",
                "gpu " + std::to_string(eg) + " naive " + std::to_string(en));
    }
    if (g_check_variants && !tot.row_lse_err.empty()) {
      std::printf("  worst block LSE error per row (1e-5 units): %s\n   ", tot.worst.c_str());
      for (size_t i = 0; i < tot.row_lse_err.size(); ++i)
        std::printf("%s%d", i % 32 == 0 && i ? "\n    " : " ", int(std::lround(tot.row_lse_err[i] * 1e5)));
      std::printf("\n");
    }
    if (num_variants > 1)
      std::printf("  variant %-40s pass %d: O err %.3e (naive %.3e) lse %.2e (naive %.2e)\n",
                  ks->attn[var].name.c_str(), pass,
                  tot.ref2 > 0 ? std::sqrt(tot.gpu2 / tot.ref2) : 0.0,
                  tot.ref2 > 0 ? std::sqrt(tot.naive2 / tot.ref2) : 0.0, tot.lse_err, tot.lse_naive_err);
    worst_lse = std::max(worst_lse, tot.lse_err);
    worst_lse_naive = std::max(worst_lse_naive, tot.lse_naive_err);
    // Same rule as O: within 2x the naive fp32 kernel's error plus a floor.
    if (!(tot.lse_err <= 2 * tot.lse_naive_err + 1e-3))
      st.fail("LSE error above 2x naive + 1e-3",
              std::to_string(tot.lse_err) + " (naive " + std::to_string(tot.lse_naive_err) +
                  "; worst " + tot.worst + ")");
  }
  // Restore the real mask for timing.
  CK(cudaMemcpy(dcounts.p, counts.data(), counts.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dids.p, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice));

  char line[512];
  std::snprintf(line, sizeof line,
                "%s %-62s density %.3f mask hard %ld near-threshold %ld score|d| %.1e  O err %.2e "
                "(naive %.2e) lse %.1e (naive %.1e)",
                st.failures ? "FAIL" : "ok  ", name.c_str(), density, hard, soft, max_score_diff,
                worst_gpu, worst_naive, worst_lse, worst_lse_naive);
  std::printf("%s\n", line);
  g_summary.push_back(line);

  if (perf) {
    FpAttentionParams pa = attn_params(c, dq.p, dk.p, dv.p, dout.p, nullptr,
                                       static_cast<const int *>(dcounts.p), static_cast<const int *>(dids.p));
    // Visible (row, key) pairs of the sparse mask, for effective TFLOP/s.
    double pairs = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      const int I = int(r % nb);
      const double rows_i = std::min(B, L - I * B);
      for (int x = 0; x < counts[r]; ++x)
        pairs += ids[r * nb + x] == I ? rows_i * (rows_i + 1) / 2 : rows_i * B;
    }
    const double dense_pairs = double(c.batch) * c.hq * (double(L) * (L + 1) / 2);
    const int reps = L >= 16384 ? 10 : 20;
    PerfRow pr;
    pr.what = name;
    pr.pool_ms = time_ms([&] { ks->pool(pk, 0); }, 3, reps);
    pr.disc_ms = time_ms([&] { ks->disc(pd, 0); }, 3, reps);
    pr.attn_ms = time_ms([&] { ks->attn[0].launch(pa, 0); }, 3, reps);
    pr.density = density;
    pr.tflops_sparse = 4.0 * d * pairs / (pr.attn_ms * 1e-3) / 1e12;
    FpDiscoveryParams pdd = pd;
    pdd.alpha = 0.f;
    pdd.kept_counter = nullptr;
    pr.dense_disc_ms = time_ms([&] { ks->disc(pdd, 0); }, 3, reps);
    CK(cudaDeviceSynchronize());
    pr.dense_attn_ms = time_ms([&] { ks->attn[0].launch(pa, 0); }, 3, reps);
    pr.tflops_dense = 4.0 * d * dense_pairs / (pr.dense_attn_ms * 1e-3) / 1e12;
    std::printf("  perf: pool %.3f ms, discovery %.3f ms, attention %.3f ms (%.1f TFLOP/s eff, "
                "density %.3f) | dense: discovery %.3f ms, attention %.3f ms (%.1f TFLOP/s)\n",
                pr.pool_ms, pr.disc_ms, pr.attn_ms, pr.tflops_sparse, density, pr.dense_disc_ms,
                pr.dense_attn_ms, pr.tflops_dense);
    g_perf.push_back(pr);
    if (tune) {
      // Dense mask (from the alpha = 0 discovery just run) for every variant.
      for (auto &var : ks->attn) {
        const float ms = time_ms([&] { var.launch(pa, 0); }, 3, reps);
        std::printf("  tune dense %-40s %.3f ms %.1f TFLOP/s\n", var.name.c_str(), ms,
                    4.0 * d * dense_pairs / (ms * 1e-3) / 1e12);
      }
      CK(cudaGetLastError());
    }
  }
  return st.failures;
}

/// --mma-precision: for the last row of a 64K-token head, logits through
/// mma.sync vs fp32 sequential vs fp64, and the LSE each gives.
static void mma_precision() {
  Case c;
  c.seq = 65536;
  c.hq = 32;
  c.hkv = 8;
  c.seed = 4242 + 65536; // the --perf 64K case
  Inputs in = make_inputs(c);
  const int d = 128, L = c.seq, h = 31, kh = h / 4, r = 65438;
  std::vector<uint16_t> qb(d), kb(size_t(r + 1) * d);
  for (int i = 0; i < d; ++i)
    qb[i] = to_bits(true, in.q[(size_t(r) * c.hq + h) * d + i]);
  for (int key = 0; key <= r; ++key)
    for (int i = 0; i < d; ++i)
      kb[size_t(key) * d + i] = to_bits(true, in.k[(size_t(key) * c.hkv + kh) * d + i]);
  DeviceBuf dq(d * 2), dk(kb.size() * 2), dout(size_t(r + 1) * 4);
  CK(cudaMemcpy(dq.p, qb.data(), d * 2, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dk.p, kb.data(), kb.size() * 2, cudaMemcpyHostToDevice));
  const int warps = (r + 1 + 7) / 8;
  mma_logits_kernel<__nv_bfloat16, 128><<<(warps + 3) / 4, 128>>>(
      static_cast<const __nv_bfloat16 *>(dq.p), static_cast<const __nv_bfloat16 *>(dk.p), d, r + 1,
      static_cast<float *>(dout.p));
  CK(cudaGetLastError());
  std::vector<float> tc(r + 1);
  CK(cudaMemcpy(tc.data(), dout.p, tc.size() * 4, cudaMemcpyDeviceToHost));
  const double scale = 1.0 / std::sqrt(double(d));
  double max_tc = 0, max_f32 = 0, bias_tc = 0;
  std::vector<double> sd(r + 1), sf(r + 1);
  for (int key = 0; key <= r; ++key) {
    double ad = 0;
    float af = 0;
    for (int i = 0; i < d; ++i) {
      const float qv = from_bits(true, qb[i]), kv = from_bits(true, kb[size_t(key) * d + i]);
      ad += double(qv) * kv;
      af += qv * kv;
    }
    sd[key] = ad;
    sf[key] = af;
    max_tc = std::max(max_tc, std::fabs(tc[key] - ad));
    max_f32 = std::max(max_f32, std::fabs(af - ad));
    bias_tc += tc[key] - ad;
  }
  auto lse = [&](auto get) {
    double m = -INFINITY, l = 0;
    for (int key = 0; key <= r; ++key)
      m = std::max(m, get(key) * scale);
    for (int key = 0; key <= r; ++key)
      l += std::exp(get(key) * scale - m);
    return m + std::log(l);
  };
  const double lse_d = lse([&](int x) { return sd[x]; });
  std::printf("mma precision (row %d, %d keys): max |logit err| tensor core %.3e, fp32 seq %.3e, "
              "mean tc bias %.3e\n  LSE fp64 %.6f, from tc logits %.6f (%.2e), from fp32 logits %.6f\n",
              r, r + 1, max_tc, max_f32, bias_tc / (r + 1), lse_d,
              lse([&](int x) { return double(tc[x]); }), lse([&](int x) { return double(tc[x]); }) - lse_d,
              lse([&](int x) { return sf[x]; }));
}

int main(int argc, char **argv) {
  bool quick = false, perf = false, tune = false, check = true;
  int perf_d = 0; // --perf-d D: only the perf cases with head dim D
  int perf_l = 0; // --perf-l L: only the perf cases of length L
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--perf")
      perf = true;
    else if (a == "--tune")
      tune = perf = true;
    else if (a == "--no-check")
      check = false;
    else if (a == "--perf-d" && i + 1 < argc)
      perf_d = std::atoi(argv[++i]);
    else if (a == "--perf-l" && i + 1 < argc)
      perf_l = std::atoi(argv[++i]);
    else if (a == "--sm90")
      g_sm90 = true;
    else if (a == "--check-variants")
      g_check_variants = true;
    else if (a == "--mma-precision") {
      mma_precision();
      return 0;
    }
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs, cc %d.%d\n", prop.name, prop.multiProcessorCount, prop.major,
              prop.minor);
  const std::vector<KernelSet> sets = build_sets();
  int failures = 0;
  if (check) {
    std::vector<Case> cases;
    uint64_t seed = 1;
    for (bool bf16 : {true, false})
      for (int d : {64, 128, 256})
        for (int B : {64, 128}) {
          std::vector<int> lens = {1, B - 1, B + 1, 1000, 4096};
          if (quick)
            lens = {B + 1, 1000};
          int variant = 0;
          for (int L : lens) {
            Case c;
            c.bf16 = bf16;
            c.d = d;
            c.block = B;
            c.seq = L;
            c.batch = L <= 1000 ? 2 : 1;
            const bool gqa = (variant + d / 64 + B / 64) % 2 == 0;
            c.hq = 4;
            c.hkv = gqa ? 1 : 4;
            c.seed = seed++;
            // Spread the rule's options over the cases.
            switch (variant++ % 5) {
            case 1:
              c.kind = FP_THRESHOLD_MIN_MAX;
              c.alpha = 0.3f;
              break;
            case 2:
              c.min_budget = 3;
              c.alpha = 0.5f;
              c.sink = 1;
              c.window = 1;
              c.last_n = 1;
              break;
            case 3:
              c.score_query = FP_SCORE_POOLED_QUERIES;
              break;
            case 4:
              c.sink = 0;
              c.window = 0;
              c.last_n = 0;
              c.alpha = 0.2f;
              break;
            default:
              break;
            }
            cases.push_back(c);
          }
        }
    if (!quick) {
      Case c;
      c.seq = 16384;
      c.hq = 8;
      c.hkv = 2;
      c.max_check_blocks = 12;
      c.seed = 777;
      cases.push_back(c);
      c.alpha = 1.0f;
      c.seq = 8192;
      c.seed = 778;
      cases.push_back(c);
    }
    for (auto &c : cases)
      failures += run_case(sets, c, false, false) ? 1 : 0;
  }
  if (perf) {
    std::vector<Case> pcs;
    for (int L : {4096, 16384, 65536}) {
      Case c;
      c.seq = L;
      c.hq = 32;
      c.hkv = 8;
      c.max_check_blocks = L > 16384 ? 2 : 6;
      c.max_mask_rows = L > 16384 ? 256 : 0;
      c.seed = 4242 + L;
      pcs.push_back(c);
    }
    for (int d : {64, 256}) {
      Case c;
      c.d = d;
      c.seq = 16384;
      c.hq = 32;
      c.hkv = 8;
      c.max_check_blocks = 4;
      c.seed = 99 + d;
      pcs.push_back(c);
    }
    for (auto &c : pcs)
      if ((perf_d == 0 || c.d == perf_d) && (perf_l == 0 || c.seq == perf_l))
        failures += run_case(sets, c, true, tune) ? 1 : 0;
  }
  std::printf("\n==== summary ====\n");
  for (auto &l : g_summary)
    std::printf("%s\n", l.c_str());
  if (!g_perf.empty()) {
    std::printf("\n%-62s %8s %8s %8s %7s %7s | %8s %8s %7s\n", "perf case", "pool", "disc", "attn",
                "dens", "TF/eff", "d.disc", "d.attn", "TF/s");
    for (auto &p : g_perf)
      std::printf("%-62s %8.3f %8.3f %8.3f %7.3f %7.1f | %8.3f %8.3f %7.1f\n", p.what.c_str(),
                  p.pool_ms, p.disc_ms, p.attn_ms, p.density, p.tflops_sparse, p.dense_disc_ms,
                  p.dense_attn_ms, p.tflops_dense);
  }
  std::printf("\n%s: %d failing case(s)\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}
