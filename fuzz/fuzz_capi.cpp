//===- fuzz_capi.cpp - C API argument validation on arbitrary tuples ------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Decodes a plan spec, a problem, four tensors (shapes, strides, NULLs),
// params, a mask and a workspace from the bytes, then calls the C API (or
// the C++ fp::Plan) with the CPU backend. Mostly-valid values with one or
// two fields broken reach deep into validation; raw values cover the rest.
//
// Every buffer the harness passes is exactly as large as the view it backs
// (the extent of shape/strides is computed first), so ASan reports any read
// or write the library makes outside what the caller declared. A view that
// the library might accept but that would need a huge buffer is not called
// (that would be a harness lie, not a library bug).
//
// Invariants checked on every call:
//  - the status is a known code; FP_OK iff fp_last_error() is "";
//  - on error: a non-empty message, and nothing written (out, lse, mask,
//    kept_counter keep their fill pattern); fp_plan_create leaves NULL;
//  - the workspace-size queries return 0 iff they set an error;
//  - no crash, no sanitizer report, no C++ exception escapes.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"

#include "flashprefill/flashprefill.h"
#include "flashprefill/flashprefill.hpp"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

using fp::fuzz::FuzzInput;

namespace {

/// Largest buffer the harness allocates per tensor (elements) and for the
/// workspace (bytes). Every problem it builds needs far less.
constexpr int64_t kMaxElements = int64_t(1) << 22;
constexpr uint64_t kMaxWorkspace = uint64_t(1) << 26;
/// CPU work cap (b * h_q * s * s * d): keeps an execution in milliseconds.
constexpr int64_t kMaxWork = int64_t(1) << 23;

const int64_t kInteresting64[] = {0,         1,         -1,
                                  2,         INT32_MAX, int64_t(INT32_MAX) + 1,
                                  INT64_MAX, INT64_MIN, INT64_MAX / 2,
                                  65536,     1 << 20,   int64_t(1) << 40};
const int32_t kInteresting32[] = {
    0, 1, -1, 2, 7, 8, 16, 17, 255, 256, 257, INT32_MAX, INT32_MIN, 65535};

int64_t int64Value(FuzzInput &in) {
  return in.flag() ? in.pick(kInteresting64) : in.raw<int64_t>();
}
int32_t int32Value(FuzzInput &in) {
  return in.flag() ? in.pick(kInteresting32) : in.raw<int32_t>();
}
float floatValue(FuzzInput &in) {
  const float special[] = {0.0f,
                           -0.0f,
                           1.0f,
                           -1.0f,
                           1.5f,
                           1e-45f,
                           3.4e38f,
                           std::numeric_limits<float>::infinity(),
                           -std::numeric_limits<float>::infinity(),
                           std::numeric_limits<float>::quiet_NaN()};
  return in.flag() ? in.pick(special) : in.raw<float>();
}

/// Mostly `valid`; now and then an interesting or raw 32-bit value.
int32_t maybeBreak32(FuzzInput &in, int32_t valid) {
  return in.byte() < 230 ? valid : int32Value(in);
}
int64_t maybeBreak64(FuzzInput &in, int64_t valid) {
  return in.byte() < 230 ? valid : int64Value(in);
}

/// Multiplies non-negative values; false on overflow or past `limit`.
bool product(std::initializer_list<int64_t> values, int64_t limit,
             int64_t *out) {
  int64_t p = 1;
  for (int64_t v : values) {
    if (v < 0 || __builtin_mul_overflow(p, v, &p) || p > limit)
      return false;
  }
  *out = p;
  return true;
}

/// A bit pattern source for tensor contents: finite small values, with
/// NaN / Inf / huge values sprinkled in when `specials`.
struct Filler {
  uint64_t state;
  int mode; // 0 small finite, 1 with specials, 2 any bits
  uint16_t next(fp_dtype_t dtype) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    uint16_t bits = uint16_t(state >> 24);
    if (mode == 2)
      return bits;
    if (mode == 1 && (state & 0x3f) == 0) {
      const uint16_t bf16[] = {0x7fc0, 0x7f80, 0xff80, 0x7f7f, 0x0001};
      const uint16_t f16[] = {0x7e00, 0x7c00, 0xfc00, 0x7bff, 0x0001};
      return (dtype == FP_DTYPE_F16 ? f16 : bf16)[(state >> 8) % 5];
    }
    // |x| in about [2^-4, 4): sign, small exponent range, any mantissa.
    if (dtype == FP_DTYPE_F16)
      return uint16_t((bits & 0x83ff) | ((11 + (bits >> 10) % 6) << 10));
    return uint16_t((bits & 0x807f) | ((123 + (bits >> 7) % 6) << 7));
  }
};

/// A tensor argument and the buffer behind it.
struct TensorArg {
  fp_tensor_t view{};
  bool null = false;
  std::unique_ptr<uint16_t[]> storage;
  int64_t elements = 0;
  bool tooLargeToBack = false; ///< might be accepted, cannot be allocated

  fp_tensor_t *ptr() { return null ? nullptr : &view; }
};

/// Could validation accept this view? (Everything it could read.)
bool mightBeAccepted(const fp_tensor_t &t) {
  if (!t.data || t.strides[3] != 1)
    return false;
  for (int i = 0; i < 4; ++i)
    if (t.shape[i] < 1)
      return false;
  for (int i = 0; i < 3; ++i)
    if (t.strides[i] < 0)
      return false;
  return true;
}

/// 1 + sum (shape[i] - 1) * strides[i]: the elements a view spans.
bool extentOf(const fp_tensor_t &t, int64_t *out) {
  int64_t extent = 1;
  for (int i = 0; i < 4; ++i) {
    if (t.shape[i] < 1 || t.strides[i] < 0)
      return false;
    int64_t term;
    if (__builtin_mul_overflow(t.shape[i] - 1, t.strides[i], &term) ||
        __builtin_add_overflow(extent, term, &extent))
      return false;
  }
  *out = extent;
  return true;
}

void makeTensor(FuzzInput &in, TensorArg &arg, int64_t b, int64_t s, int64_t h,
                int64_t d, fp_dtype_t dtype, Filler &filler) {
  fp_tensor_t &t = arg.view;
  int64_t shape[4] = {b, s, h, d};
  int64_t contiguous[4] = {s * h * d, h * d, d, 1};
  std::memcpy(t.shape, shape, sizeof(shape));
  std::memcpy(t.strides, contiguous, sizeof(contiguous));
  uint8_t kind = in.byte();
  if (kind >= 248) {
    arg.null = true;
    return;
  } else if (kind >= 224) {
    t.strides[in.range(0, 3)] = int64Value(in); // one stride broken
  } else if (kind >= 208) {
    int dim = int(in.range(0, 3)); // one shape dim broken
    t.shape[dim] = in.flag() ? t.shape[dim] + in.range(-2, 2) : int64Value(in);
  } else if (kind >= 192) {
    uint8_t zeros = in.byte(); // broadcast dims (stride 0)
    for (int i = 0; i < 3; ++i)
      if (zeros & (1 << i))
        t.strides[i] = 0;
  } else if (kind >= 160) {
    int64_t padHead = in.range(0, 16), padSeq = in.range(0, 64); // padded rows
    t.strides[2] = d + padHead;
    t.strides[1] = h * t.strides[2] + padSeq;
    t.strides[0] = s * t.strides[1] + in.range(0, 64);
  }
  bool nullData = kind >= 240 && kind < 248;

  int64_t extent = 0;
  bool backed = extentOf(t, &extent) && extent <= kMaxElements;
  t.data = reinterpret_cast<void *>(uintptr_t(16)); // placeholder, non-NULL
  if (!backed && mightBeAccepted(t) && !nullData) {
    arg.tooLargeToBack = true;
    extent = 1;
  }
  arg.elements = backed ? extent : 8; // rejected views get a small buffer
  arg.storage.reset(new uint16_t[arg.elements]);
  for (int64_t i = 0; i < arg.elements; ++i)
    arg.storage[i] = filler.next(dtype);
  t.data = nullData ? nullptr : arg.storage.get();
}

/// Everything an error must leave untouched, copied before the call.
struct Snapshot {
  std::vector<uint16_t> out;
  std::vector<float> lse;
  std::vector<int32_t> counts, ids;
  unsigned long long kept = 0;
};

std::string callName(int op) {
  const char *names[] = {"fp_select", "fp_attend", "fp_prefill",
                         "fp_select + fp_attend"};
  return names[op];
}

void checkStatus(int status, const std::string &what) {
  FP_FUZZ_CHECK(status >= FP_OK && status <= FP_ERROR_INTERNAL, what);
  std::string error = fp_last_error();
  if (status == FP_OK)
    FP_FUZZ_CHECK(error.empty(), what + " returned FP_OK with: " + error);
  else
    FP_FUZZ_CHECK(!error.empty(), what + " failed without a message");
}

/// Decodes a plan spec; mostly valid and small (the CPU backend runs it).
fp_plan_spec_t decodeSpec(FuzzInput &in) {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  const int32_t headDims[] = {16, 32, 64, 128, 256};
  const int32_t blocks[] = {16, 32, 64, 128, 256};
  spec.device = FP_DEVICE_CPU;
  spec.struct_size = in.byte() < 240 ? sizeof(fp_plan_spec_t)
                                     : size_t(in.raw<uint64_t>() % 256);
  int32_t dtype = maybeBreak32(in, int32_t(in.range(0, 1)));
  std::memcpy(&spec.dtype, &dtype, sizeof(dtype)); // any int, as C allows
  spec.head_dim = maybeBreak32(in, in.pick(headDims));
  spec.head_dim_v = in.byte() < 240 ? 0 : int32Value(in);
  int32_t kv = int32_t(in.range(1, 4));
  spec.num_kv_heads = maybeBreak32(in, kv);
  spec.num_q_heads = maybeBreak32(in, kv * int32_t(in.range(1, 4)));
  spec.block_size = maybeBreak32(in, in.pick(blocks));
  spec.causal = maybeBreak32(in, 1);
  spec.pooled_queries = in.byte() < 240 ? in.flag() : int32Value(in);
  spec.max_batch = maybeBreak64(in, in.range(1, 3));
  spec.max_seq_len = maybeBreak64(in, in.range(1, 600));
  // Only the CPU backend: a CUDA ordinal would JIT on a GPU machine. Other
  // negative values must be rejected.
  if (in.byte() >= 240)
    spec.device = std::min(int32Value(in), int32_t(FP_DEVICE_CPU));
  uint8_t ws = in.byte();
  spec.max_workspace_bytes = ws < 200   ? 0
                             : ws < 230 ? uint64_t(in.range(0, 1 << 20))
                                        : in.raw<uint64_t>();
  return spec;
}

fp_params_t decodeParams(FuzzInput &in, const int32_t *varlen) {
  fp_params_t p;
  fp_params_init(&p);
  uint8_t fields = in.byte(); // which fields to break (usually none)
  if (fields < 160)
    return p;
  switch (in.range(0, 12)) {
  case 0:
    p.struct_size = size_t(in.raw<uint64_t>() % 512);
    break;
  case 1:
    p.alpha = floatValue(in);
    break;
  case 2:
    p.sink = int32Value(in);
    break;
  case 3:
    p.window = int32Value(in);
    break;
  case 4:
    p.last_n = int32Value(in);
    break;
  case 5:
    p.min_budget = int32Value(in);
    break;
  case 6:
    p.threshold_kind = int32Value(in);
    break;
  case 7:
    p.scale = floatValue(in);
    break;
  case 8:
    p.cu_seqlens_q = varlen;
    break;
  case 9:
    p.cu_seqlens_k = varlen;
    break;
  case 10:
    p.max_seqlen_q = int64Value(in);
    break;
  case 11:
    p.max_seqlen_k = int64Value(in);
    break;
  default:
    // Valid but unusual values together.
    p.alpha = float(in.range(0, 100)) / 100.0f;
    p.sink = int32_t(in.range(0, 70));
    p.window = int32_t(in.range(1, 70));
    p.last_n = int32_t(in.range(0, 70));
    p.min_budget = int32_t(in.range(0, 70));
    p.threshold_kind = int32_t(in.range(0, 1));
    p.scale = float(in.range(-2, 8)) / 4.0f;
    break;
  }
  return p;
}

/// The bytes queries, each checked: 0 iff an error was set.
void checkWorkspaceQueries(FuzzInput &in, const fp_plan_t *plan) {
  int count = int(in.range(0, 3));
  for (int i = 0; i < count; ++i) {
    int64_t batch = in.flag() ? in.range(-1, 4) : int64Value(in);
    int64_t seq = in.flag() ? in.range(-1, 700) : int64Value(in);
    const fp_plan_t *p = in.byte() < 245 ? plan : nullptr;
    size_t bytes = 0;
    switch (in.range(0, 2)) {
    case 0:
      bytes = fp_plan_workspace_bytes(p, batch, seq);
      break;
    case 1:
      bytes = fp_plan_select_workspace_bytes(p, batch, seq);
      break;
    default:
      bytes = fp_plan_mask_bytes(p, batch, seq);
      break;
    }
    bool error = *fp_last_error() != '\0';
    FP_FUZZ_CHECK(error == (bytes == 0),
                  "bytes query: " + std::to_string(bytes) + " with error '" +
                      fp_last_error() + "'");
  }
}


/// Checks a failed call's message: non-empty and naming an argument, i.e.
/// "<name>: ..." with the name starting with a letter.
void checkNamesArgument(const std::string &message, const std::string &what) {
  FP_FUZZ_CHECK(!message.empty(), what + " failed without a message");
  size_t colon = message.find(": ");
  FP_FUZZ_CHECK(colon != std::string::npos && colon > 0 &&
                    std::isalpha(static_cast<unsigned char>(message[0])),
                what + ": the message names no argument: " + message);
}

/// The varlen byte queries, each checked: 0 iff an error was set.
void checkVarlenWorkspaceQueries(FuzzInput &in, const fp_plan_t *plan) {
  int count = int(in.range(0, 3));
  for (int i = 0; i < count; ++i) {
    int64_t batch = in.flag() ? in.range(-1, 4) : int64Value(in);
    int64_t totalQ = in.flag() ? in.range(-1, 1300) : int64Value(in);
    int64_t maxQ = in.flag() ? in.range(-1, 700) : int64Value(in);
    int64_t maxK = in.flag() ? in.range(-1, 700) : int64Value(in);
    const fp_plan_t *p = in.byte() < 245 ? plan : nullptr;
    size_t bytes = 0;
    switch (in.range(0, 2)) {
    case 0:
      bytes = fp_plan_varlen_workspace_bytes(p, batch, totalQ, maxQ, maxK);
      break;
    case 1:
      bytes =
          fp_plan_varlen_select_workspace_bytes(p, batch, totalQ, maxQ, maxK);
      break;
    default:
      bytes = fp_plan_varlen_mask_bytes(p, batch, totalQ, maxK);
      break;
    }
    bool error = *fp_last_error() != '\0';
    FP_FUZZ_CHECK(error == (bytes == 0),
                  "varlen bytes query: " + std::to_string(bytes) +
                      " with error '" + fp_last_error() + "'");
    if (error)
      checkNamesArgument(fp_last_error(), "varlen bytes query");
  }
}

/// Everything a varlen call may write, for the error and determinism checks.
struct VarlenOutputs {
  std::vector<uint16_t> out;
  std::vector<float> lse;
  std::vector<int32_t> counts, ids;
  unsigned long long kept = 0;
  bool operator==(const VarlenOutputs &o) const {
    // Bitwise: NaN payloads must repeat too.
    auto same = [](const auto &a, const auto &b) {
      return a.size() == b.size() &&
             (a.empty() ||
              std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0);
    };
    return same(out, o.out) && same(lse, o.lse) && same(counts, o.counts) &&
           same(ids, o.ids) && kept == o.kept;
  }
};

/// The variable-length calls (flashprefill.h "Engine shapes", docs/varlen.md)
/// on a CPU plan: sequences of a few dozen tokens, packed or paged K/V (page
/// sizes include non-powers of two), maxima, struct_size, apply_last_n,
/// tensor views, mask shapes and workspace sizes, each sometimes broken.
/// Besides the dense calls' invariants: on success, a second identical call
/// gives bit-identical outputs, and out/lse rows past cu_seqlens_q[b] keep
/// their fill pattern.
int fuzzVarlen(FuzzInput &in, fp_plan_t *plan, fp::Plan *cppPlan,
               const fp_plan_spec_t &ps) {
  if (!cppPlan)
    checkVarlenWorkspaceQueries(in, plan);
  const int64_t hq = ps.num_q_heads, hkv = ps.num_kv_heads, d = ps.head_dim;
  const int64_t blockSize = ps.block_size;

  // Lengths: q_len_i in [0, 40], prefix in [0, 40]; sometimes broken below.
  int64_t b = in.byte() < 240 ? in.range(1, std::min<int64_t>(ps.max_batch, 3))
                              : in.range(-1, 4);
  const int64_t seqs = std::clamp<int64_t>(b, 1, 4); // entries we back
  std::vector<int32_t> qLen(seqs), kLen(seqs);
  int64_t maxQ = 0, maxK = 0, work = 0;
  for (int64_t i = 0; i < seqs; ++i) {
    qLen[i] = int32_t(in.range(0, 40));
    kLen[i] = qLen[i] + int32_t(in.range(0, 40));
    maxQ = std::max<int64_t>(maxQ, qLen[i]);
    maxK = std::max<int64_t>(maxK, kLen[i]);
    work += int64_t(qLen[i]) * kLen[i];
  }
  if (work * hq * d > kMaxWork)
    return 0;
  std::vector<int32_t> cuQ(seqs + 1, 0), cuK(seqs + 1, 0);
  for (int64_t i = 0; i < seqs; ++i) {
    cuQ[i + 1] = cuQ[i] + qLen[i];
    cuK[i + 1] = cuK[i] + kLen[i];
  }
  // Rows past cu_seqlens_q[b] belong to no sequence.
  int64_t totalQ = std::max<int64_t>(cuQ[seqs] + in.range(0, 2), 1);
  int64_t totalK = std::max<int64_t>(cuK[seqs] + in.range(0, 1), 1);

  fp_varlen_t vl{};
  vl.struct_size = in.byte() < 240 ? sizeof(fp_varlen_t)
                                   : size_t(in.raw<uint64_t>() % 256);
  vl.batch = b;
  vl.max_seqlen_q = maybeBreak64(in, std::max<int64_t>(maxQ, 1));
  vl.max_seqlen_k = maybeBreak64(in, std::max<int64_t>(maxK, 1));
  if (in.byte() >= 200 && vl.max_seqlen_k < INT32_MAX) // loose maxima
    vl.max_seqlen_k += in.range(0, 8);

  const bool paged = in.flag();
  const int64_t pageSizes[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  const int64_t notPowersOfTwo[] = {3, 5, 6, 12, 48, 100, 255, 257};
  int64_t pageSize = in.pick(pageSizes);
  uint8_t pageKind = in.byte();
  if (pageKind >= 250)
    pageSize = in.range(-1, 300);
  else if (pageKind >= 235)
    pageSize = in.pick(notPowersOfTwo);
  std::vector<int32_t> pageTable, kLens(kLen);
  int64_t numPages = 1, maxPages = 1;
  if (paged) {
    const int64_t ps1 = std::max<int64_t>(pageSize, 1);
    for (int64_t i = 0; i < seqs; ++i)
      maxPages = std::max<int64_t>(maxPages, (kLen[i] + ps1 - 1) / ps1);
    maxPages += in.range(0, 2);
    int64_t used = 0;
    for (int64_t i = 0; i < seqs; ++i)
      used += (kLen[i] + ps1 - 1) / ps1;
    numPages = std::max<int64_t>(used + in.range(0, 2), 1);
    // Pages in a shuffled order, so sequences interleave in the pool.
    std::vector<int32_t> order(numPages);
    for (int64_t p = 0; p < numPages; ++p)
      order[p] = int32_t(p);
    for (int64_t p = numPages - 1; p > 0; --p)
      std::swap(order[p], order[in.range(0, p)]);
    int64_t next = 0;
    pageTable.assign(size_t(seqs * maxPages), -1); // unused entries: invalid
    for (int64_t i = 0; i < seqs; ++i)
      for (int64_t t = 0; t < (kLen[i] + ps1 - 1) / ps1; ++t)
        pageTable[i * maxPages + t] = order[next++];
  }
  int64_t declaredMaxPages = maybeBreak64(in, maxPages);

  // One length field broken now and then (the CPU backend reads them all).
  uint8_t breakLengths = in.byte();
  if (breakLengths >= 216) {
    int64_t i = in.range(0, seqs);
    int32_t value = in.flag() ? int32_t(in.range(-2, 100)) : int32Value(in);
    switch (in.range(0, 4)) {
    case 0:
      cuQ[i] = value;
      break;
    case 1:
      cuK[i] = value;
      break;
    case 2:
      kLens[std::min(i, seqs - 1)] = value;
      break;
    case 3:
      if (!pageTable.empty())
        pageTable[in.range(0, int64_t(pageTable.size()) - 1)] = value;
      break;
    default:
      std::swap(cuQ, cuK); // keys fewer than queries, or past a total
    }
  }
  std::vector<int32_t> applyLastN(seqs);
  for (auto &a : applyLastN)
    a = int32_t(in.range(0, 1));
  uint8_t pointers = in.byte(); // which length pointers are given
  vl.cu_seqlens_q = pointers >= 250 ? nullptr : cuQ.data();
  if (paged) {
    vl.page_table = pointers >= 245 && pointers < 250 ? nullptr
                                                      : pageTable.data();
    vl.k_lens = pointers >= 240 && pointers < 245 ? nullptr : kLens.data();
    vl.max_pages = declaredMaxPages;
    if (pointers >= 235 && pointers < 240)
      vl.cu_seqlens_k = cuK.data(); // both layouts
  } else {
    vl.cu_seqlens_k = cuK.data();
    if (pointers >= 235 && pointers < 240)
      vl.k_lens = kLens.data(); // both layouts
  }
  vl.apply_last_n = in.flag() ? applyLastN.data() : nullptr;
  // The library reads batch + 1 offsets, batch lengths, batch rows of the
  // page table: a batch past what is backed would be a harness lie. Only the
  // page-table entries a sequence needs are read (flashprefill.h), so a
  // declared max_pages wider than the table is backed only up to them.
  if (b > seqs)
    return 0;
  std::vector<int32_t> wideTable;
  if (paged && vl.page_table && declaredMaxPages != maxPages &&
      declaredMaxPages >= 1 && b >= 1) {
    int64_t needed = 0;
    for (int64_t i = 0; i < b; ++i) {
      int64_t pages = kLens[i] >= 0 && pageSize >= 1
                          ? (int64_t(kLens[i]) + pageSize - 1) / pageSize
                          : 0;
      pages = std::min(pages, declaredMaxPages);
      int64_t end;
      if (__builtin_mul_overflow(i, declaredMaxPages, &end) ||
          __builtin_add_overflow(end, pages, &end))
        return 0;
      needed = std::max(needed, end);
    }
    if (needed > kMaxElements)
      return 0;
    wideTable.assign(size_t(std::max<int64_t>(needed, 1)), 0);
    for (int64_t i = 0; i < b; ++i)
      for (int64_t t = 0; t < std::min(maxPages, declaredMaxPages); ++t)
        if (i * declaredMaxPages + t < needed)
          wideTable[i * declaredMaxPages + t] = pageTable[i * maxPages + t];
    vl.page_table = wideTable.data();
  }
  const fp_varlen_t *vp = in.byte() >= 252 ? nullptr : &vl;

  Filler filler{in.raw<uint64_t>() | 1, int(in.range(0, 2))};
  TensorArg q, k, v, out;
  makeTensor(in, q, 1, totalQ, hq, d, ps.dtype, filler);
  if (paged) {
    makeTensor(in, k, numPages, pageSize, hkv, d, ps.dtype, filler);
    makeTensor(in, v, numPages, pageSize, hkv, d, ps.dtype, filler);
  } else {
    makeTensor(in, k, 1, totalK, hkv, d, ps.dtype, filler);
    makeTensor(in, v, 1, totalK, hkv, d, ps.dtype, filler);
  }
  makeTensor(in, out, 1, totalQ, hq, d, ps.dtype, filler);
  if (q.tooLargeToBack || k.tooLargeToBack || v.tooLargeToBack ||
      out.tooLargeToBack)
    return 0;
  int32_t paramLengths[4] = {0, 1, 2, 3};
  fp_params_t params = decodeParams(in, paramLengths);
  const fp_params_t *pp = in.byte() >= 250 ? nullptr : &params;

  // lse is [h_q, total_q], total_q from q's declared shape.
  std::vector<float> lse;
  int64_t lseCount = 0;
  if (in.flag() &&
      product({hq, q.view.shape[1]}, kMaxElements, &lseCount) && lseCount > 0) {
    lse.assign(size_t(lseCount), -7.0f);
    params.lse = lse.data();
  }
  unsigned long long kept = in.flag() ? in.raw<uint64_t>() : 0;
  if (in.flag())
    params.kept_counter = &kept;

  // The compact mask: mostly the call's shape, buffers exactly its size.
  // (The harness's own sizes when the declared ones are broken.)
  const int64_t maskKeys = vl.max_seqlen_k >= 1 && vl.max_seqlen_k <= INT32_MAX
                               ? vl.max_seqlen_k
                               : std::max<int64_t>(maxK, 1);
  fp_varlen_mask_t mask{nullptr, nullptr, totalQ / blockSize + b, hq,
                        (maskKeys + blockSize - 1) / blockSize};
  if (in.byte() >= 224) {
    switch (in.range(0, 2)) {
    case 0:
      mask.num_rows = in.flag() ? mask.num_rows + in.range(-1, 1)
                                : int64Value(in);
      break;
    case 1:
      mask.heads = int64Value(in);
      break;
    default:
      mask.max_key_blocks = in.flag() ? mask.max_key_blocks + in.range(-1, 1)
                                      : int64Value(in);
    }
  }
  int64_t rows = 0, cells = 0;
  bool maskBacked =
      product({mask.num_rows, mask.heads}, kMaxElements, &rows) &&
      product({rows, mask.max_key_blocks}, kMaxElements, &cells);
  if (!maskBacked)
    rows = cells = 0;
  std::vector<int32_t> counts(size_t(rows) + 1), ids(size_t(cells) + 1);
  uint8_t maskNulls = in.byte();
  mask.counts = maskNulls >= 250 ? nullptr : counts.data();
  mask.ids = maskNulls >= 245 && maskNulls < 250 ? nullptr : ids.data();
  if (!maskBacked && mask.counts && mask.ids && mask.num_rows > 0 &&
      mask.heads > 0 && mask.max_key_blocks > 0)
    return 0; // might be accepted but cannot be backed
  // Contents for attend: random (validation must catch bad ids) or every
  // key block up to the row's last (causal-plausible; validation decides).
  bool plausibleMask = in.flag();
  for (int64_t r = 0; r < rows; ++r)
    counts[r] = plausibleMask ? int32_t(std::min<int64_t>(
                                    mask.max_key_blocks, 1 + r % 3))
                              : int32_t(in.range(-2, 8));
  for (int64_t c = 0; c < cells; ++c)
    ids[c] = plausibleMask && mask.max_key_blocks > 0
                 ? int32_t(c % mask.max_key_blocks)
                 : int32_t(in.range(-2, 8));
  const fp_varlen_mask_t *mp = in.byte() >= 250 ? nullptr : &mask;

  // Workspace: the required size, mostly; sometimes off by a little or a lot.
  int op = int(in.range(0, 3));
  uint64_t required = 0;
  {
    auto bytes =
        cppPlan ? (op == 0 ? cppPlan->varlenSelectWorkspaceBytes(
                                 b, totalQ, vl.max_seqlen_q, vl.max_seqlen_k)
                           : cppPlan->varlenWorkspaceBytes(
                                 b, totalQ, vl.max_seqlen_q, vl.max_seqlen_k))
                : fp::StatusOr<size_t>(
                      op == 0 ? fp_plan_varlen_select_workspace_bytes(
                                    plan, b, totalQ, vl.max_seqlen_q,
                                    vl.max_seqlen_k)
                              : fp_plan_varlen_workspace_bytes(
                                    plan, b, totalQ, vl.max_seqlen_q,
                                    vl.max_seqlen_k));
    required = bytes.isOk() ? *bytes : 0;
  }
  uint64_t claimed = required;
  uint8_t wsKind = in.byte();
  if (wsKind >= 240)
    claimed = in.raw<uint64_t>();
  else if (wsKind >= 220)
    claimed = required + uint64_t(in.range(-256, 256));
  uint64_t backedBytes = std::min<uint64_t>(claimed, kMaxWorkspace);
  if (required > backedBytes && claimed >= required)
    fp::fuzz::fail("harness: varlen workspace larger than kMaxWorkspace");
  std::unique_ptr<char[]> workspace(new char[backedBytes ? backedBytes : 1]);
  void *ws = in.byte() >= 250 ? nullptr : workspace.get();
  const fp_plan_t *cp = in.byte() >= 252 ? nullptr : plan;

  auto snapshot = [&] {
    VarlenOutputs o;
    o.out.assign(out.storage.get(), out.storage.get() + out.elements);
    o.lse = lse;
    o.counts = counts;
    o.ids = ids;
    o.kept = kept;
    return o;
  };
  auto restore = [&](const VarlenOutputs &o) {
    std::copy(o.out.begin(), o.out.end(), out.storage.get());
    lse = o.lse;
    counts = o.counts;
    ids = o.ids;
    kept = o.kept;
  };
  const char *names[] = {"fp_select_varlen", "fp_attend_varlen",
                         "fp_prefill_varlen", "fp_select_varlen + attend"};
  const std::string name = names[op];
  int status = FP_OK;
  std::string message;
  auto run = [&](auto cFn, auto cppFn) {
    if (cppPlan) {
      fp::Status st = cppFn();
      status = int(st.code());
      message = st.message();
      FP_FUZZ_CHECK(st.isOk() == message.empty(), message);
    } else {
      status = cFn();
      checkStatus(status, name);
      message = fp_last_error();
    }
  };
  auto select = [&] {
    run(
        [&] {
          return fp_select_varlen(cp, q.ptr(), k.ptr(), vp, pp,
                                  const_cast<fp_varlen_mask_t *>(mp), ws,
                                  claimed, nullptr);
        },
        [&] {
          return cppPlan->selectVarlen(q.ptr(), k.ptr(), vp, pp, mp, ws,
                                       claimed, nullptr);
        });
  };
  auto attend = [&] {
    run(
        [&] {
          return fp_attend_varlen(cp, q.ptr(), k.ptr(), v.ptr(), vp, mp,
                                  out.ptr(), pp, nullptr);
        },
        [&] {
          return cppPlan->attendVarlen(q.ptr(), k.ptr(), v.ptr(), vp, mp,
                                       out.ptr(), pp, nullptr);
        });
  };
  auto prefill = [&] {
    run(
        [&] {
          return fp_prefill_varlen(cp, q.ptr(), k.ptr(), v.ptr(), vp,
                                   out.ptr(), pp, ws, claimed, nullptr);
        },
        [&] {
          return cppPlan->prefillVarlen(q.ptr(), k.ptr(), v.ptr(), vp,
                                        out.ptr(), pp, ws, claimed, nullptr);
        });
  };
  // One call of `op`; leaves status, message and the outputs.
  bool selectSucceeded = false; // op 3: the select half, and its count
  unsigned long long keptAfterSelect = 0;
  auto call = [&]() {
    selectSucceeded = false;
    switch (op) {
    case 0:
      select();
      break;
    case 1:
      attend();
      break;
    case 2:
      prefill();
      break;
    default:
      select();
      if (status == FP_OK) {
        keptAfterSelect = kept;
        selectSucceeded = true;
        attend();
        // Select accepted plan, q, k, varlen, params and the mask: attend
        // may only reject v or out.
        if (status != FP_OK)
          FP_FUZZ_CHECK(message.rfind("v", 0) == 0 ||
                            message.rfind("out", 0) == 0,
                        "attend_varlen rejected what select_varlen "
                        "accepted: " +
                            message);
      }
    }
  };

  const VarlenOutputs before = snapshot();
  call();

  static const bool trace = std::getenv("FP_FUZZ_CAPI_TRACE") != nullptr;
  if (trace)
    std::fprintf(stderr,
                 "trace: %s%s%s b=%lld total_q=%lld hq=%lld d=%lld -> %d %s\n",
                 name.c_str(), paged ? " paged" : " packed",
                 cppPlan ? " (C++)" : "", (long long)b, (long long)totalQ,
                 (long long)hq, (long long)d, status,
                 message.substr(0, 60).c_str());

  if (status != FP_OK) {
    checkNamesArgument(message, name);
    VarlenOutputs after = snapshot();
    FP_FUZZ_CHECK(after.out == before.out,
                  name + " wrote out despite: " + message);
    FP_FUZZ_CHECK(after.lse == before.lse,
                  name + " wrote lse despite: " + message);
    FP_FUZZ_CHECK(after.kept == (selectSucceeded ? keptAfterSelect
                                                 : before.kept),
                  name + " counted kept blocks despite: " + message);
    if (op == 0)
      FP_FUZZ_CHECK(after.counts == before.counts && after.ids == before.ids,
                    name + " wrote the mask despite: " + message);
    return 0;
  }

  // Success: the rows past cu_seqlens_q[b] are the caller's. total_q is q's
  // declared rows (the library takes it from there).
  const int64_t firstFree = cuQ[b], effectiveTotalQ = q.view.shape[1];
  if (op != 0) {
    const fp_tensor_t &o = out.view;
    for (int64_t t = firstFree; t < effectiveTotalQ; ++t)
      for (int64_t h = 0; h < hq; ++h)
        for (int64_t e = 0; e < d; ++e) {
          int64_t at = t * o.strides[1] + h * o.strides[2] + e;
          FP_FUZZ_CHECK(out.storage[at] == before.out[at],
                        name + " wrote out row " + std::to_string(t) +
                            " past cu_seqlens_q[b] = " +
                            std::to_string(firstFree));
        }
    if (!lse.empty())
      for (int64_t t = firstFree; t < effectiveTotalQ; ++t)
        for (int64_t h = 0; h < hq; ++h)
          FP_FUZZ_CHECK(lse[h * effectiveTotalQ + t] ==
                            before.lse[h * effectiveTotalQ + t],
                        name + " wrote lse row " + std::to_string(t) +
                            " past cu_seqlens_q[b]");
  }
  // A second identical call from the same starting state gives the same
  // bits (the kept counter counts the same blocks again).
  const VarlenOutputs first = snapshot();
  restore(before);
  call();
  FP_FUZZ_CHECK(status == FP_OK, name + " failed on a repeat: " + message);
  FP_FUZZ_CHECK(snapshot() == first,
                name + ": a second identical call gave different outputs");
  return 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzInput in(data, size);
  fp_plan_spec_t spec = decodeSpec(in);
  // The C++ fp::Plan instead of the C API; the varlen calls instead of the
  // whole-prompt ones (C API for 160..191, C++ for 240..255).
  uint8_t apiKind = in.byte();
  bool useCpp = apiKind >= 192;
  bool varlenCalls = (apiKind >= 160 && apiKind < 192) || apiKind >= 240;

  // Create the plan (sometimes through NULL pointers).
  uint8_t nulls = in.byte();
  fp_plan_t *plan = reinterpret_cast<fp_plan_t *>(uintptr_t(0x10));
  if (nulls >= 250) {
    int status = fp_plan_create(nulls & 1 ? nullptr : &spec,
                                nulls & 1 ? &plan : nullptr);
    checkStatus(status, "fp_plan_create(NULL)");
    FP_FUZZ_CHECK(status == FP_ERROR_INVALID_ARGUMENT, "");
    FP_FUZZ_CHECK(!(nulls & 1) || plan == nullptr, "");
    return 0;
  }
  std::unique_ptr<fp::Plan> cppPlan;
  if (useCpp) {
    auto created = fp::Plan::create(spec);
    if (!created.isOk()) {
      FP_FUZZ_CHECK(!created.status().message().empty(), "");
      return 0;
    }
    cppPlan = std::move(*created);
    plan = nullptr;
  } else {
    int status = fp_plan_create(&spec, &plan);
    checkStatus(status, "fp_plan_create");
    if (status != FP_OK) {
      FP_FUZZ_CHECK(plan == nullptr, "a failed fp_plan_create left a plan");
      return 0;
    }
    FP_FUZZ_CHECK(plan != nullptr, "");
    checkWorkspaceQueries(in, plan);
  }
  std::unique_ptr<fp_plan_t, void (*)(fp_plan_t *)> owner(plan,
                                                          fp_plan_destroy);
  const fp_plan_spec_t &ps = cppPlan ? cppPlan->spec() : spec;
  if (varlenCalls)
    return fuzzVarlen(in, plan, cppPlan.get(), ps);

  // The problem: mostly within the plan.
  int64_t b = in.byte() < 240 ? in.range(1, std::min<int64_t>(ps.max_batch, 3))
                              : in.range(-1, 4);
  int64_t s = in.byte() < 240
                  ? in.range(1, std::min<int64_t>(ps.max_seq_len, 600))
                  : in.range(-1, 700);
  int64_t hq = ps.num_q_heads, hkv = ps.num_kv_heads, d = ps.head_dim;
  int64_t work;
  if (!product({std::max<int64_t>(b, 0), hq, std::max<int64_t>(s, 0),
                std::max<int64_t>(s, 0), d},
               kMaxWork, &work)) {
    return 0;
  }
  int64_t nb = s > 0 ? (s + ps.block_size - 1) / ps.block_size : 0;

  Filler filler{in.raw<uint64_t>() | 1, int(in.range(0, 2))};
  TensorArg q, k, v, out;
  makeTensor(in, q, b, s, hq, d, ps.dtype, filler);
  makeTensor(in, k, b, s, hkv, d, ps.dtype, filler);
  makeTensor(in, v, b, s, hkv, d, ps.dtype, filler);
  makeTensor(in, out, b, s, hq, d, ps.dtype, filler);
  int32_t varlen[4] = {0, 1, 2, 3};
  fp_params_t params = decodeParams(in, varlen);
  bool nullParams = in.byte() >= 250;

  // Optional outputs: lse sized from q's declared shape (the problem, when q
  // is accepted), the kept-block counter.
  std::unique_ptr<float[]> lse;
  int64_t lseCount = 0;
  if (in.flag() &&
      product({q.view.shape[0], hq, q.view.shape[1]}, kMaxElements,
              &lseCount) &&
      lseCount > 0) {
    lse.reset(new float[lseCount]);
    std::fill_n(lse.get(), lseCount, -7.0f);
    params.lse = lse.get();
  }
  unsigned long long kept = in.flag() ? in.raw<uint64_t>() : 0;
  if (in.flag())
    params.kept_counter = &kept;

  // The mask: declared dims mostly the problem's, buffers exactly that size.
  fp_mask_t mask{nullptr, nullptr, b, hq, nb};
  if (in.byte() >= 224) {
    switch (in.range(0, 2)) {
    case 0:
      mask.batch = int64Value(in);
      break;
    case 1:
      mask.heads = int64Value(in);
      break;
    default:
      mask.num_blocks = in.flag() ? nb + in.range(-1, 1) : int64Value(in);
    }
  }
  int64_t rows = 0, cells = 0;
  bool maskBacked =
      product({mask.batch, mask.heads, mask.num_blocks}, kMaxElements, &rows) &&
      product({rows, mask.num_blocks}, kMaxElements, &cells);
  std::unique_ptr<int32_t[]> counts(new int32_t[maskBacked ? rows + 1 : 1]);
  std::unique_ptr<int32_t[]> ids(new int32_t[maskBacked ? cells + 1 : 1]);
  // Exactly-sized views: the +1 above only avoids zero-length arrays.
  uint8_t maskNulls = in.byte();
  mask.counts = maskNulls >= 250 ? nullptr : counts.get();
  mask.ids = maskNulls >= 245 && maskNulls < 250 ? nullptr : ids.get();
  if (!maskBacked && mask.counts && mask.ids && mask.batch > 0 &&
      mask.heads > 0 && mask.num_blocks > 0) {
    return 0; // might be accepted but cannot be backed
  }
  // Mask contents for fp_attend: random (validation must catch bad ids) or
  // a plausible causal pattern.
  bool plausibleMask = in.flag();
  int64_t maskRows = maskBacked ? rows : 1, maskCells = maskBacked ? cells : 1;
  for (int64_t r = 0; r < maskRows; ++r) {
    int64_t i = mask.num_blocks > 0 ? r % mask.num_blocks : 0;
    counts[r] = plausibleMask ? int32_t(i + 1) : int32_t(in.range(-2, 66));
  }
  for (int64_t c = 0; c < maskCells; ++c) {
    int64_t j = mask.num_blocks > 0 ? c % mask.num_blocks : 0;
    ids[c] = plausibleMask ? int32_t(j) : int32_t(in.range(-2, 66));
  }
  bool nullMask = in.byte() >= 250;

  // Workspace: the required size, mostly; sometimes off by a little or a lot.
  int op = int(in.range(0, 3));
  uint64_t required = 0;
  if (b >= 1 && b <= ps.max_batch && s >= 1 && s <= ps.max_seq_len) {
    auto bytes = cppPlan
                     ? (op == 0 ? cppPlan->selectWorkspaceBytes(b, s)
                                : cppPlan->workspaceBytes(b, s))
                     : fp::StatusOr<size_t>(
                           op == 0 ? fp_plan_select_workspace_bytes(plan, b, s)
                                   : fp_plan_workspace_bytes(plan, b, s));
    required = bytes.isOk() ? *bytes : 0;
  }
  uint64_t claimed = required;
  uint8_t wsKind = in.byte();
  if (wsKind >= 240)
    claimed = in.raw<uint64_t>();
  else if (wsKind >= 220)
    claimed = required + uint64_t(in.range(-256, 256));
  // The library writes at most `required` bytes; a larger claim is backed up
  // to kMaxWorkspace (every problem here needs far less).
  uint64_t backedBytes = std::min<uint64_t>(claimed, kMaxWorkspace);
  if (required > backedBytes && claimed >= required)
    fp::fuzz::fail("harness: workspace larger than kMaxWorkspace");
  std::unique_ptr<char[]> workspace(new char[backedBytes ? backedBytes : 1]);
  bool nullWorkspace = in.byte() >= 250;
  void *ws = nullWorkspace ? nullptr : workspace.get();

  if (q.tooLargeToBack || k.tooLargeToBack || v.tooLargeToBack ||
      out.tooLargeToBack) {
    return 0;
  }

  // Snapshot what an error must not touch.
  Snapshot before;
  before.out.assign(out.storage.get(), out.storage.get() + out.elements);
  if (lse)
    before.lse.assign(lse.get(), lse.get() + lseCount);
  before.counts.assign(counts.get(), counts.get() + maskRows);
  before.ids.assign(ids.get(), ids.get() + maskCells);
  before.kept = kept;

  const fp_params_t *pp = nullParams ? nullptr : &params;
  fp_mask_t *mp = nullMask ? nullptr : &mask;
  const fp_plan_t *cp = in.byte() >= 252 ? nullptr : plan;
  int status = FP_OK;
  std::string message;
  auto run = [&](auto cFn, auto cppFn) {
    if (cppPlan) {
      fp::Status st = cppFn();
      status = int(st.code());
      message = st.message();
      FP_FUZZ_CHECK(st.isOk() == message.empty(), message);
    } else {
      status = cFn();
      checkStatus(status, callName(op));
      message = fp_last_error();
    }
  };
  auto select = [&] {
    run(
        [&] {
          return fp_select(cp, q.ptr(), k.ptr(), pp, mp, ws, claimed, nullptr);
        },
        [&] {
          return cppPlan->select(q.ptr(), k.ptr(), pp, mp, ws, claimed,
                                 nullptr);
        });
  };
  auto attend = [&] {
    run(
        [&] {
          return fp_attend(cp, q.ptr(), k.ptr(), v.ptr(), mp, out.ptr(), pp,
                           nullptr);
        },
        [&] {
          return cppPlan->attend(q.ptr(), k.ptr(), v.ptr(), mp, out.ptr(), pp,
                                 nullptr);
        });
  };
  switch (op) {
  case 0:
    select();
    break;
  case 1:
    attend();
    break;
  case 2:
    run(
        [&] {
          return fp_prefill(cp, q.ptr(), k.ptr(), v.ptr(), out.ptr(), pp, ws,
                            claimed, nullptr);
        },
        [&] {
          return cppPlan->prefill(q.ptr(), k.ptr(), v.ptr(), out.ptr(), pp, ws,
                                  claimed, nullptr);
        });
    break;
  default:
    select();
    if (status == FP_OK) {
      // The selected mask is valid: attend must accept it.
      before.counts.assign(counts.get(), counts.get() + maskRows);
      before.ids.assign(ids.get(), ids.get() + maskCells);
      before.kept = kept;
      attend();
      // Select accepted plan, q, k, params and the mask: attend may only
      // reject v or out (validated in that order after q and k).
      if (status != FP_OK)
        FP_FUZZ_CHECK(message.rfind("v", 0) == 0 ||
                          message.rfind("out", 0) == 0,
                      "attend rejected what select accepted: " + message);
    }
  }

  // FP_FUZZ_CAPI_TRACE=1: one line per input, to see what a corpus reaches.
  static const bool trace = std::getenv("FP_FUZZ_CAPI_TRACE") != nullptr;
  if (trace)
    std::fprintf(stderr, "trace: %s%s b=%lld s=%lld hq=%lld d=%lld -> %d %s\n",
                 callName(op).c_str(), cppPlan ? " (C++)" : "", (long long)b,
                 (long long)s, (long long)hq, (long long)d, status,
                 message.substr(0, 60).c_str());

  if (status != FP_OK) {
    FP_FUZZ_CHECK(!message.empty(), callName(op));
    FP_FUZZ_CHECK(
        std::equal(before.out.begin(), before.out.end(), out.storage.get()),
        callName(op) + " wrote out despite: " + message);
    if (lse)
      FP_FUZZ_CHECK(std::equal(before.lse.begin(), before.lse.end(), lse.get()),
                    callName(op) + " wrote lse despite: " + message);
    FP_FUZZ_CHECK(kept == before.kept,
                  callName(op) + " counted kept blocks despite: " + message);
    if (op == 0)
      FP_FUZZ_CHECK(
          std::equal(before.counts.begin(), before.counts.end(),
                     counts.get()) &&
              std::equal(before.ids.begin(), before.ids.end(), ids.get()),
          "fp_select wrote the mask despite: " + message);
  }
  return 0;
}
