//===- GpuMergeStatesTest.cpp - fp_merge_states on the GPU ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The merge kernel (fp/merge_states.cuh) through a CUDA plan against
// ref::mergeStates on the same inputs: every combination of bf16 / f16 /
// f32 for a, b and out, rows of every kind (both sides, one side empty with
// -inf or +inf and NaN garbage in its O, both empty, NaN LSE); the varlen,
// dense and token-major LSE layouts, a strided output and no output LSE;
// merging in place; more rows than the grid has warps; CUDA-graph replay.
// Empty, copied and NaN rows must match bit for bit; rows merged from both
// sides within the last bits (CUDA's expf / logf are within 2 / 1 ulp of
// std::exp / std::log; the operations around them are the reference's, each
// rounded once). Tests skip without a GPU.
//
//===----------------------------------------------------------------------===//
#include "GpuTestUtil.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>

namespace fp::gputest {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

fp_dtype_t cType(ref::StateType t) {
  return t == ref::StateType::kBF16  ? FP_DTYPE_BF16
         : t == ref::StateType::kF16 ? FP_DTYPE_F16
                                     : FP_DTYPE_F32;
}

int64_t bytesOf(ref::StateType t) { return t == ref::StateType::kF32 ? 4 : 2; }

float toFloat(ref::StateType t, const unsigned char *p) {
  if (t == ref::StateType::kF32) {
    float x;
    std::memcpy(&x, p, 4);
    return x;
  }
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return bitsToFloat(t == ref::StateType::kBF16 ? DType::kBF16 : DType::kF16,
                     bits);
}

void fromFloat(ref::StateType t, unsigned char *p, float x) {
  if (t == ref::StateType::kF32) {
    std::memcpy(p, &x, 4);
    return;
  }
  const uint16_t bits = floatToBits(
      t == ref::StateType::kBF16 ? DType::kBF16 : DType::kF16, x);
  std::memcpy(p, &bits, 2);
}

/// A state on the host and its device copy. O has `rowStride` elements per
/// (b, s, h) row (>= d: a strided view when larger), rows [b, s, h]
/// contiguous; LSE is [b, h, s] (`tokenMajor`: [b, s, h]).
struct State {
  ref::StateType type;
  int64_t b, s, h, d, rowStride;
  bool tokenMajor;
  std::vector<unsigned char> o;
  std::vector<float> lse;
  std::unique_ptr<DeviceBuffer> dO, dLse;

  State(ref::StateType t, int64_t batch, int64_t seq, int64_t heads,
        int64_t dim, int64_t stride = 0, bool tm = false)
      : type(t), b(batch), s(seq), h(heads), d(dim),
        rowStride(stride ? stride : dim), tokenMajor(tm),
        o(size_t(batch * seq * heads * rowStride * bytesOf(t)), 0),
        lse(size_t(batch * seq * heads), 0.0f) {}

  /// A copy of the host data (no device buffers).
  State hostCopy() const {
    State c(type, b, s, h, d, rowStride, tokenMajor);
    c.o = o;
    c.lse = lse;
    return c;
  }

  int64_t elem(int64_t bi, int64_t si, int64_t hi, int64_t c) const {
    return ((bi * s + si) * h + hi) * rowStride + c;
  }
  size_t lseIndex(int64_t bi, int64_t si, int64_t hi) const {
    return size_t(tokenMajor ? (bi * s + si) * h + hi
                             : (bi * h + hi) * s + si);
  }
  unsigned char *at(int64_t bi, int64_t si, int64_t hi, int64_t c) {
    return o.data() + elem(bi, si, hi, c) * bytesOf(type);
  }
  const unsigned char *at(int64_t bi, int64_t si, int64_t hi,
                          int64_t c) const {
    return o.data() + elem(bi, si, hi, c) * bytesOf(type);
  }
  float &lseAt(int64_t bi, int64_t si, int64_t hi) {
    return lse[lseIndex(bi, si, hi)];
  }
  float lseAt(int64_t bi, int64_t si, int64_t hi) const {
    return lse[lseIndex(bi, si, hi)];
  }
  void lseStrides(int64_t out[3]) const {
    out[0] = h * s;
    out[1] = tokenMajor ? 1 : s;
    out[2] = tokenMajor ? h : 1;
  }
  ref::AttentionState host() {
    ref::AttentionState st;
    st.o = o.data();
    st.type = type;
    const int64_t shape[4] = {b, s, h, d};
    const int64_t strides[4] = {s * h * rowStride, h * rowStride, rowStride, 1};
    std::copy(shape, shape + 4, st.shape);
    std::copy(strides, strides + 4, st.strides);
    st.lse = lse.data();
    lseStrides(st.lseStrides);
    return st;
  }
  void upload(const rt::CudaDriver *drv) {
    dO = std::make_unique<DeviceBuffer>(drv, o.size());
    dLse = std::make_unique<DeviceBuffer>(drv, lse.size() * 4);
    ASSERT_TRUE(dO->ok() && dLse->ok());
    ASSERT_TRUE(dO->upload(o.data()).isOk());
    ASSERT_TRUE(dLse->upload(lse.data()).isOk());
  }
  void download() {
    ASSERT_TRUE(dO->download(o.data()).isOk());
    ASSERT_TRUE(dLse->download(lse.data()).isOk());
  }
  fp_attn_state_t device() const {
    fp_attn_state_t st{};
    st.o = {dO->get(),
            {b, s, h, d},
            {s * h * rowStride, h * rowStride, rowStride, 1}};
    st.dtype = cType(type);
    st.lse = static_cast<float *>(dLse->get());
    lseStrides(st.lse_strides);
    return st;
  }
};

/// Random O and LSE; every 7th row one side empty (-inf or +inf) with NaN in
/// its O, every 31st both empty, every 53rd a NaN LSE.
void fillPair(State &a, State &b, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  int64_t row = 0;
  for (int64_t bi = 0; bi < a.b; ++bi)
    for (int64_t si = 0; si < a.s; ++si)
      for (int64_t hi = 0; hi < a.h; ++hi, ++row) {
        float la = 6.0f * normal(rng), lb = 6.0f * normal(rng);
        bool emptyA = false, emptyB = false;
        if (row % 7 == 3)
          (row % 2 ? emptyA : emptyB) = true;
        if (row % 31 == 5)
          emptyA = emptyB = true;
        if (emptyA)
          la = row % 3 ? -kInf : kInf;
        if (emptyB)
          lb = row % 5 ? -kInf : kInf;
        if (row % 53 == 11)
          la = nan;
        a.lseAt(bi, si, hi) = la;
        b.lseAt(bi, si, hi) = lb;
        for (int64_t c = 0; c < a.d; ++c) {
          fromFloat(a.type, a.at(bi, si, hi, c), emptyA ? nan : normal(rng));
          fromFloat(b.type, b.at(bi, si, hi, c), emptyB ? nan : normal(rng));
        }
      }
}

/// GPU `got` against the reference `want` (same shape): LSE and O bit for
/// bit on rows that are not merged from both sides; merged rows within a
/// few ulps (see the file comment). `differ` (optional) counts the merged
/// elements that differ at all, for the log.
void expectClose(const State &got, const State &want, const State &a,
                 const State &b, int64_t *differ = nullptr) {
  const float unit = got.type == ref::StateType::kF32    ? 2e-6f
                     : got.type == ref::StateType::kBF16 ? 1.0f / 128
                                                         : 1.0f / 1024;
  for (int64_t bi = 0; bi < got.b; ++bi)
    for (int64_t si = 0; si < got.s; ++si)
      for (int64_t hi = 0; hi < got.h; ++hi) {
        const float la = a.lseAt(bi, si, hi), lb = b.lseAt(bi, si, hi);
        const ref::MergeRow row = ref::mergeRow(la, lb);
        const float gl = got.lseAt(bi, si, hi), wl = want.lseAt(bi, si, hi);
        if (row.kind != ref::MergeRow::kBoth) {
          uint32_t x, y;
          std::memcpy(&x, &gl, 4);
          std::memcpy(&y, &wl, 4);
          EXPECT_EQ(x, y) << "LSE, row kind " << int(row.kind);
        } else {
          // expf within 2 ulp moves a weight by ~1.2e-7, log(sum) as much,
          // and m + log(sum) rounds once more: a few ulps of max(1, |LSE|).
          EXPECT_NEAR(gl, wl, 1e-6f * std::max(1.0f, std::fabs(wl)));
        }
        for (int64_t c = 0; c < got.d; ++c) {
          const unsigned char *g = got.at(bi, si, hi, c),
                              *w = want.at(bi, si, hi, c);
          if (row.kind != ref::MergeRow::kBoth) {
            ASSERT_EQ(std::memcmp(g, w, size_t(bytesOf(got.type))), 0)
                << "row kind " << int(row.kind) << " at " << bi << "," << si
                << "," << hi << "," << c;
            continue;
          }
          const float gv = toFloat(got.type, g), wv = toFloat(want.type, w);
          const float va = toFloat(a.type, a.at(bi, si, hi, c));
          const float vb = toFloat(b.type, b.at(bi, si, hi, c));
          const float scale = std::max(std::fabs(va), std::fabs(vb));
          ASSERT_NEAR(gv, wv, unit * scale + 1e-30f)
              << bi << "," << si << "," << hi << "," << c;
          if (differ)
            *differ += std::memcmp(g, w, size_t(bytesOf(got.type))) != 0;
        }
      }
}

std::unique_ptr<Plan> mergePlan() {
  // Any plan: merging does not depend on its spec.
  return makePlan(FP_DTYPE_BF16, 64, 4, 2, 64, 1, 256);
}

TEST(GpuMergeStatesTest, EveryTypeCombinationMatchesTheReference) {
  FP_REQUIRE_GPU(drv);
  auto plan = mergePlan();
  ASSERT_TRUE(plan);
  using T = ref::StateType;
  const T types[] = {T::kBF16, T::kF16, T::kF32};
  int64_t differ = 0, total = 0;
  for (T ta : types)
    for (T tb : types)
      for (T to : types) {
        State a(ta, 2, 37, 5, 72), b(tb, 2, 37, 5, 72), out(to, 2, 37, 5, 72),
            want(to, 2, 37, 5, 72);
        fillPair(a, b, 7 + unsigned(ta) * 9 + unsigned(tb) * 3 + unsigned(to));
        ASSERT_TRUE(ref::mergeStates(a.host(), b.host(), want.host()).isOk());
        a.upload(drv);
        b.upload(drv);
        out.upload(drv);
        fp_attn_state_t da = a.device(), db = b.device(), dout = out.device();
        ASSERT_TRUE((*plan).mergeStates(&da, &db, &dout, nullptr).isOk());
        ASSERT_EQ(drv->api().ctxSynchronize(), CUDA_SUCCESS);
        out.download();
        expectClose(out, want, a, b, &differ);
        total += 2 * 37 * 5 * 72;
      }
  std::printf("[          ] merged elements differing from the reference in "
              "the last bits: %lld of %lld\n",
              static_cast<long long>(differ), static_cast<long long>(total));
}

// Varlen LSE [h, n] with O [1, n, h, d]; token-major LSE [n, h]
// (FlashInfer's); a strided output (rows of 2d, the second half written);
// no output LSE; in place into a and into b.
TEST(GpuMergeStatesTest, LayoutsAndInPlace) {
  FP_REQUIRE_GPU(drv);
  auto plan = mergePlan();
  ASSERT_TRUE(plan);
  using T = ref::StateType;
  for (bool tokenMajor : {false, true}) {
    State a(T::kBF16, 1, 300, 8, 128, 0, tokenMajor),
        b(T::kBF16, 1, 300, 8, 128, 0, tokenMajor),
        want(T::kBF16, 1, 300, 8, 128, 0, tokenMajor);
    fillPair(a, b, tokenMajor ? 101 : 102);
    ASSERT_TRUE(ref::mergeStates(a.host(), b.host(), want.host()).isOk());
    a.upload(drv);
    b.upload(drv);

    // Strided output with its LSE.
    State wide(T::kBF16, 1, 300, 8, 128, 256, tokenMajor);
    for (unsigned char &x : wide.o)
      x = 0x5a;
    wide.upload(drv);
    fp_attn_state_t da = a.device(), db = b.device(), dw = wide.device();
    dw.o.data = static_cast<char *>(dw.o.data) + 128 * 2;
    ASSERT_TRUE(plan->mergeStates(&da, &db, &dw, nullptr).isOk());
    ASSERT_EQ(drv->api().ctxSynchronize(), CUDA_SUCCESS);
    wide.download();
    State half(T::kBF16, 1, 300, 8, 128, 0, tokenMajor);
    half.lse = wide.lse;
    for (int64_t r = 0; r < 300 * 8; ++r) {
      std::memcpy(half.o.data() + r * 256, wide.o.data() + r * 512 + 256, 256);
      for (int64_t e = 0; e < 256; ++e) // the first half is untouched
        ASSERT_EQ(wide.o[size_t(r * 512 + e)], 0x5a);
    }
    expectClose(half, want, a, b);

    // No output LSE: O is the same, nothing else written.
    State noLse(T::kBF16, 1, 300, 8, 128, 0, tokenMajor);
    noLse.upload(drv);
    fp_attn_state_t dn = noLse.device();
    dn.lse = nullptr;
    ASSERT_TRUE(plan->mergeStates(&da, &db, &dn, nullptr).isOk());
    ASSERT_EQ(drv->api().ctxSynchronize(), CUDA_SUCCESS);
    noLse.download();
    EXPECT_EQ(noLse.o, half.o);
    for (float x : noLse.lse)
      ASSERT_EQ(x, 0.0f);

    // In place into a, then (fresh copies) into b: the out-of-place bits.
    for (int side = 0; side < 2; ++side) {
      State ca = a.hostCopy(), cb = b.hostCopy();
      ca.upload(drv);
      cb.upload(drv);
      fp_attn_state_t xa = ca.device(), xb = cb.device();
      fp_attn_state_t &acc = side == 0 ? xa : xb;
      ASSERT_TRUE(plan->mergeStates(&xa, &xb, &acc, nullptr).isOk());
      ASSERT_EQ(drv->api().ctxSynchronize(), CUDA_SUCCESS);
      State &result = side == 0 ? ca : cb;
      result.download();
      EXPECT_EQ(result.o, half.o) << "in place, side " << side;
      EXPECT_EQ(std::memcmp(result.lse.data(), half.lse.data(),
                            half.lse.size() * 4),
                0)
          << "in place, side " << side;
    }
  }
}

// More rows than the grid's warps (2^20 CTAs of 4 warps): the grid-stride
// loop covers every row; d = 3 (lanes past d idle).
TEST(GpuMergeStatesTest, MoreRowsThanWarps) {
  FP_REQUIRE_GPU(drv);
  auto plan = mergePlan();
  ASSERT_TRUE(plan);
  using T = ref::StateType;
  const int64_t n = (int64_t(1) << 22) + 37;
  State a(T::kF32, 1, n, 1, 3), b(T::kF16, 1, n, 1, 3), out(T::kF32, 1, n, 1, 3),
      want(T::kF32, 1, n, 1, 3);
  fillPair(a, b, 5);
  ASSERT_TRUE(ref::mergeStates(a.host(), b.host(), want.host()).isOk());
  a.upload(drv);
  b.upload(drv);
  out.upload(drv);
  fp_attn_state_t da = a.device(), db = b.device(), dout = out.device();
  ASSERT_TRUE(plan->mergeStates(&da, &db, &dout, nullptr).isOk());
  ASSERT_EQ(drv->api().ctxSynchronize(), CUDA_SUCCESS);
  out.download();
  expectClose(out, want, a, b);
}

// A merge captured in a CUDA graph replays on new inputs written to the same
// buffers, matching a direct call.
TEST(GpuMergeStatesTest, GraphCaptureReplays) {
  FP_REQUIRE_GPU(drv);
  auto plan = mergePlan();
  ASSERT_TRUE(plan);
  const auto &api = drv->api();
  using T = ref::StateType;
  State a(T::kBF16, 1, 500, 4, 64), b(T::kBF16, 1, 500, 4, 64),
      out(T::kBF16, 1, 500, 4, 64);
  fillPair(a, b, 1);
  a.upload(drv);
  b.upload(drv);
  out.upload(drv);
  fp_attn_state_t da = a.device(), db = b.device(), dout = out.device();
  CUstream stream = nullptr;
  ASSERT_EQ(api.streamCreate(&stream, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  ASSERT_EQ(api.ctxSynchronize(), CUDA_SUCCESS);
  ASSERT_EQ(api.streamBeginCapture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL),
            CUDA_SUCCESS);
  Status captured = plan->mergeStates(&da, &db, &dout, stream);
  CUgraph graph = nullptr;
  ASSERT_EQ(api.streamEndCapture(stream, &graph), CUDA_SUCCESS);
  ASSERT_TRUE(captured.isOk()) << captured.toString();
  CUgraphExec exec = nullptr;
  ASSERT_EQ(api.graphInstantiate(&exec, graph, 0), CUDA_SUCCESS);
  for (uint32_t seed : {2u, 3u}) {
    State na(T::kBF16, 1, 500, 4, 64), nb(T::kBF16, 1, 500, 4, 64),
        want(T::kBF16, 1, 500, 4, 64);
    fillPair(na, nb, seed);
    ASSERT_TRUE(ref::mergeStates(na.host(), nb.host(), want.host()).isOk());
    ASSERT_TRUE(a.dO->upload(na.o.data()).isOk());
    ASSERT_TRUE(a.dLse->upload(na.lse.data()).isOk());
    ASSERT_TRUE(b.dO->upload(nb.o.data()).isOk());
    ASSERT_TRUE(b.dLse->upload(nb.lse.data()).isOk());
    ASSERT_EQ(api.graphLaunch(exec, stream), CUDA_SUCCESS);
    ASSERT_EQ(api.streamSynchronize(stream), CUDA_SUCCESS);
    out.download();
    expectClose(out, want, na, nb);
  }
  api.graphExecDestroy(exec);
  api.graphDestroy(graph);
  api.streamDestroy(stream);
}

// A bad view is refused on a CUDA plan before any launch, with the CPU
// plan's message (one validation for both backends).
TEST(GpuMergeStatesTest, BadViewsAreNamed) {
  FP_REQUIRE_GPU(drv);
  auto plan = mergePlan();
  ASSERT_TRUE(plan);
  using T = ref::StateType;
  State a(T::kBF16, 1, 10, 2, 8), b(T::kBF16, 1, 10, 2, 8);
  a.upload(drv);
  b.upload(drv);
  fp_attn_state_t da = a.device(), db = b.device(), dout = a.device();
  dout.o.data = static_cast<char *>(dout.o.data) + 16; // overlaps a.o
  Status st = plan->mergeStates(&da, &db, &dout, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("out.o: expected memory disjoint from a.o"),
            std::string::npos)
      << st.message();
}

} // namespace
} // namespace fp::gputest
