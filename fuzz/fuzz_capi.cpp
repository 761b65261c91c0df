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
//  - params.mean_correction other than 0 / 1 (version 3) is an error, and
//    fields past a caller's struct_size are never read;
//  - no crash, no sanitizer report, no C++ exception escapes.
// Other modes (picked by the byte after the spec): the varlen calls and
// fp_pool_keys_varlen (fuzzVarlen), fp_merge_states (fuzzMergeStates) and
// the struct initialisers (fuzzInitSized), each with its own invariants.
// Fields added after a mode's first seeds are decoded last, so that older
// seeds (which end before them: zeros) decode as they did.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"

#include "flashprefill/flashprefill.h"
#include "flashprefill/flashprefill.hpp"
#include "flashprefill/reference.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
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
  uint64_t advance() { // xorshift64
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
  uint16_t next(fp_dtype_t dtype) {
    advance();
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

/// Where each version of the versioned structs ends (flashprefill.h says
/// which fields each version appended); the library reads no byte past a
/// caller's struct_size, so fields past it must be ignored.
constexpr size_t kParamsV1Size =
    offsetof(fp_params_t, max_seqlen_k) + sizeof(int64_t);
constexpr size_t kParamsV2Size =
    offsetof(fp_params_t, dense_below_tokens) + sizeof(int64_t);
constexpr size_t kParamsV3Size =
    offsetof(fp_params_t, mean_correction) + sizeof(int32_t);
constexpr size_t kSpecV1Size =
    offsetof(fp_plan_spec_t, max_workspace_bytes) + sizeof(uint64_t);
constexpr size_t kVarlenV2Size =
    offsetof(fp_varlen_t, pooled_k) + sizeof(const void *);

/// Does the library read the field of `params` that ends at `end`? (A
/// struct_size past this library's sizeof is an error anyway.)
bool readsField(const fp_params_t *params, size_t end) {
  return params && params->struct_size >= end &&
         params->struct_size <= sizeof(fp_params_t);
}

/// Version 3's mean_correction, and older callers' structs, from a byte
/// decoded after everything else, so that an exhausted input (0) keeps the
/// defaults and the seeds made before version 3 decode as they did:
///   128..223 on; 224..239 a version 1 or 2 struct (struct_size) whose
///   later fields hold values that would be errors if read; 240..255 any int.
void decodeVersion3(FuzzInput &in, fp_params_t &p) {
  uint8_t kind = in.byte();
  if (kind >= 240) {
    p.mean_correction = int32Value(in);
  } else if (kind >= 224) {
    p.struct_size = in.flag() ? kParamsV2Size : kParamsV1Size;
    p.mean_correction = int32_t(in.range(2, 1000)) * (in.flag() ? 1 : -1);
    if (p.struct_size < kParamsV2Size)
      p.dense_below_tokens = -int64_t(in.range(2, 1000));
  } else if (kind >= 128) {
    p.mean_correction = 1;
    // A dense fall-back keeps every causal block: nothing left to correct.
    if (kind >= 192)
      p.dense_below_tokens = in.range(-1, 700);
  }
}

/// Selection that prunes even the few key blocks of the short sequences
/// here (the defaults keep them all through sink, window and last_n), so
/// that pooled keys and mean correction change the result: from a byte
/// decoded after everything else (below 128, an exhausted input included,
/// keeps the decoded params).
void decodePruning(FuzzInput &in, fp_params_t &p) {
  if (in.byte() < 128)
    return;
  p.sink = 0;
  p.window = 1;
  p.last_n = 0;
  p.min_budget = 0;
  p.alpha = float(in.range(0, 100)) / 100.0f;
}

/// params.mean_correction other than 0 / 1 is an error when the caller's
/// struct has it; a field past struct_size is never read, so never named.
/// `rerunWithout` repeats the call with mean_correction 0 (outputs may be
/// written): if that succeeds, mean_correction was the only bad argument,
/// so the message must have named it.
template <typename Rerun>
void checkMeanCorrectionVerdict(fp_params_t *params, int status,
                                const std::string &message,
                                const std::string &what, Rerun rerunWithout) {
  if (!params)
    return;
  const int32_t value = params->mean_correction;
  if (readsField(params, kParamsV3Size) && value != 0 && value != 1) {
    FP_FUZZ_CHECK(status != FP_OK, what + " accepted params.mean_correction = " +
                                       std::to_string(value));
    if (message.rfind("params.mean_correction: ", 0) != 0) {
      params->mean_correction = 0;
      const int again = rerunWithout();
      params->mean_correction = value;
      FP_FUZZ_CHECK(again != FP_OK,
                    what + ": mean_correction = " + std::to_string(value) +
                        " was the only bad argument, but the message is: " +
                        message);
    }
  }
  if (params->struct_size >= kParamsV1Size &&
      params->struct_size < kParamsV3Size)
    FP_FUZZ_CHECK(message.rfind("params.mean_correction", 0) != 0,
                  what + " read mean_correction past struct_size " +
                      std::to_string(params->struct_size) + ": " + message);
  if (params->struct_size >= kParamsV1Size &&
      params->struct_size < kParamsV2Size)
    FP_FUZZ_CHECK(message.rfind("params.dense_below_tokens", 0) != 0,
                  what + " read dense_below_tokens past struct_size " +
                      std::to_string(params->struct_size) + ": " + message);
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
void checkVarlenWorkspaceQueries(FuzzInput &in, const fp_plan_t *plan,
                                 const fp_plan_spec_t &ps) {
  int count = int(in.range(0, 3));
  for (int i = 0; i < count; ++i) {
    int64_t batch = in.flag() ? in.range(-1, 4) : int64Value(in);
    int64_t totalQ = in.flag() ? in.range(-1, 1300) : int64Value(in);
    int64_t maxQ = in.flag() ? in.range(-1, 700) : int64Value(in);
    int64_t maxK = in.flag() ? in.range(-1, 700) : int64Value(in);
    const fp_plan_t *p = in.byte() < 245 ? plan : nullptr;
    size_t bytes = 0;
    const int query = int(in.range(0, 3));
    switch (query) {
    case 0:
      bytes = fp_plan_varlen_workspace_bytes(p, batch, totalQ, maxQ, maxK);
      break;
    case 1:
      bytes =
          fp_plan_varlen_select_workspace_bytes(p, batch, totalQ, maxQ, maxK);
      break;
    case 2:
      bytes = fp_plan_varlen_mask_bytes(p, batch, totalQ, maxK);
      break;
    default:
      bytes = fp_plan_varlen_pooled_keys_bytes(p, batch, maxK);
      break;
    }
    bool error = *fp_last_error() != '\0';
    FP_FUZZ_CHECK(error == (bytes == 0),
                  "varlen bytes query: " + std::to_string(bytes) +
                      " with error '" + fp_last_error() + "'");
    if (error)
      checkNamesArgument(fp_last_error(), "varlen bytes query");
    // The pooled keys: [b, h_kv, ceil(max_seqlen_k / B), d] of the dtype.
    if (query == 3 && !error) {
      FP_FUZZ_CHECK(bytes == size_t(batch) * size_t(ps.num_kv_heads) *
                                 size_t((maxK + ps.block_size - 1) /
                                        ps.block_size) *
                                 size_t(ps.head_dim) * 2,
                    "fp_plan_varlen_pooled_keys_bytes: " +
                        std::to_string(bytes));
    }
  }
}

/// Bitwise equality of two arrays: NaN payloads must repeat too.
template <typename T>
bool sameBits(const std::vector<T> &a, const std::vector<T> &b) {
  return a.size() == b.size() &&
         (a.empty() ||
          std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

/// Everything a varlen call may write, for the error and determinism checks.
struct VarlenOutputs {
  std::vector<uint16_t> out;
  std::vector<float> lse;
  std::vector<int32_t> counts, ids;
  unsigned long long kept = 0;
  bool operator==(const VarlenOutputs &o) const {
    return sameBits(out, o.out) && sameBits(lse, o.lse) &&
           sameBits(counts, o.counts) && sameBits(ids, o.ids) &&
           kept == o.kept;
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
    checkVarlenWorkspaceQueries(in, plan, ps);
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

  // Decoded last (0, i.e. an exhausted input, changes nothing, so the
  // seeds made before these fields decode as they did): params version 3
  // (mean_correction), fp_varlen_t version 2 (pooled_k), then pruning
  // params (decodePruning). pooled_k:
  //   128..207 pooled_k from fp_pool_keys_varlen: the call with it must
  //            equal the call without, bit for bit;
  //   208..231 the call is fp_pool_keys_varlen itself (its pooled_k
  //            argument NULL, or varlen.pooled_k set, now and then);
  //   232..255 pooled_k holding anything (any bits, NaN included): the
  //            mask is then any valid mask, which attend must accept.
  decodeVersion3(in, params);
  const uint8_t pooledKind = in.byte();
  decodePruning(in, params);
  const uint8_t poolArgs = pooledKind >= 208 && pooledKind < 232 ? in.byte() : 0;
  // The pooled keys' buffer: exactly fp_plan_varlen_pooled_keys_bytes (0
  // when the sizes exceed the plan: then every call reading it fails).
  size_t pooledBytes = 0;
  if (pooledKind >= 128) {
    std::string error;
    if (cppPlan) {
      auto bytes = cppPlan->varlenPooledKeysBytes(b, vl.max_seqlen_k);
      pooledBytes = bytes.isOk() ? *bytes : 0;
      error = bytes.isOk() ? "" : bytes.status().message();
    } else {
      pooledBytes = fp_plan_varlen_pooled_keys_bytes(plan, b, vl.max_seqlen_k);
      error = fp_last_error();
    }
    FP_FUZZ_CHECK(error.empty() == (pooledBytes != 0),
                  "pooled keys bytes " + std::to_string(pooledBytes) +
                      " with error '" + error + "'");
    if (!error.empty())
      checkNamesArgument(error, "fp_plan_varlen_pooled_keys_bytes");
  }
  const size_t pooledCount = pooledBytes / 2;
  std::unique_ptr<uint16_t[]> pooled(new uint16_t[pooledCount]);
  for (size_t e = 0; e < pooledCount; ++e) // poison: any bits
    pooled[e] = uint16_t(filler.advance() >> 40);
  if (pooledKind >= 232)
    vl.pooled_k = pooled.get();

  // fp_pool_keys_varlen into `dst` (pooled or NULL), checked: an error names
  // an argument and writes nothing; a success writes no block past a
  // sequence's keys, and each block it writes is the mean of its keys (fp32
  // sums in ascending key order, rounded once: docs/semantics.md step 1).
  auto poolKeys = [&](uint16_t *dst) -> int {
    const std::vector<uint16_t> prior(pooled.get(),
                                      pooled.get() + pooledCount);
    int st;
    std::string msg;
    if (cppPlan) {
      fp::Status r = cppPlan->poolKeysVarlen(q.ptr(), k.ptr(), vp, dst, nullptr);
      st = int(r.code());
      msg = r.message();
      FP_FUZZ_CHECK(r.isOk() == msg.empty(), msg);
    } else {
      st = fp_pool_keys_varlen(cp, q.ptr(), k.ptr(), vp, dst, nullptr);
      checkStatus(st, "fp_pool_keys_varlen");
      msg = fp_last_error();
    }
    static const bool trace = std::getenv("FP_FUZZ_CAPI_TRACE") != nullptr;
    if (trace)
      std::fprintf(stderr, "trace: fp_pool_keys_varlen%s%s b=%lld -> %d %s\n",
                   vl.cu_seqlens_k ? " packed" : " paged",
                   cppPlan ? " (C++)" : "", (long long)b, st,
                   msg.substr(0, 60).c_str());
    const std::vector<uint16_t> after(pooled.get(), pooled.get() + pooledCount);
    if (st != FP_OK) {
      checkNamesArgument(msg, "fp_pool_keys_varlen");
      FP_FUZZ_CHECK(sameBits(after, prior),
                    "fp_pool_keys_varlen wrote pooled_k despite: " + msg);
      return st;
    }
    FP_FUZZ_CHECK(dst && vp, "fp_pool_keys_varlen accepted a NULL pointer");
    FP_FUZZ_CHECK(vl.struct_size < kVarlenV2Size || !vl.pooled_k,
                  "fp_pool_keys_varlen accepted varlen.pooled_k set");
    const int64_t blocks = (vl.max_seqlen_k + blockSize - 1) / blockSize;
    FP_FUZZ_CHECK(int64_t(pooledCount) == b * hkv * blocks * d,
                  "fp_pool_keys_varlen accepted sizes its bytes query refused");
    const bool f16 = ps.dtype == FP_DTYPE_F16;
    const fp_tensor_t &kv = k.view;
    std::vector<float> acc(static_cast<size_t>(d));
    for (int64_t i = 0; i < b; ++i) {
      const int64_t kLen =
          vl.cu_seqlens_k ? vl.cu_seqlens_k[i + 1] - vl.cu_seqlens_k[i]
                          : vl.k_lens[i];
      for (int64_t h = 0; h < hkv; ++h)
        for (int64_t j = 0; j < blocks; ++j) {
          const int64_t at = ((i * hkv + h) * blocks + j) * d;
          const int64_t first = j * blockSize;
          const int64_t last = std::min(first + blockSize, kLen);
          if (first >= kLen) {
            FP_FUZZ_CHECK(std::equal(prior.begin() + at,
                                     prior.begin() + at + d,
                                     after.begin() + at),
                          "fp_pool_keys_varlen wrote block " +
                              std::to_string(j) + " of sequence " +
                              std::to_string(i) + ", past its " +
                              std::to_string(kLen) + " keys");
            continue;
          }
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t t = first; t < last; ++t) {
            int64_t row;
            if (vl.cu_seqlens_k) {
              row = (vl.cu_seqlens_k[i] + t) * kv.strides[1];
            } else {
              const int64_t pageSize = kv.shape[1];
              row = vl.page_table[i * vl.max_pages + t / pageSize] *
                        kv.strides[0] +
                    (t % pageSize) * kv.strides[1];
            }
            const uint16_t *src = k.storage.get() + row + h * kv.strides[2];
            for (int64_t c = 0; c < d; ++c)
              acc[c] += f16 ? fp::f16BitsToFloat(src[c])
                            : fp::bf16BitsToFloat(src[c]);
          }
          for (int64_t c = 0; c < d; ++c) {
            const float mean = acc[c] / float(last - first);
            const uint16_t want =
                f16 ? fp::floatToF16Bits(mean) : fp::floatToBF16Bits(mean);
            const uint16_t got = after[at + c];
            const bool bothNaN =
                std::isnan(mean) && std::isnan(f16 ? fp::f16BitsToFloat(got)
                                                   : fp::bf16BitsToFloat(got));
            FP_FUZZ_CHECK(got == want || bothNaN,
                          "fp_pool_keys_varlen: block " + std::to_string(j) +
                              " of sequence " + std::to_string(i) +
                              " is not the mean of its keys");
          }
        }
    }
    return st;
  };

  if (pooledKind >= 208 && pooledKind < 232) {
    // The call is fp_pool_keys_varlen: sometimes with its pooled_k argument
    // NULL, or with varlen.pooled_k set (which it must refuse: it writes
    // them), else twice on the same buffer, giving the same bits.
    const uint16_t other = 0;
    if (poolArgs >= 224 && poolArgs < 240)
      vl.pooled_k = &other;
    const bool argNull = poolArgs >= 240;
    const int st = poolKeys(argNull ? nullptr : pooled.get());
    if (argNull)
      FP_FUZZ_CHECK(st != FP_OK, "fp_pool_keys_varlen accepted pooled_k NULL");
    if (st == FP_OK) {
      const std::vector<uint16_t> first(pooled.get(),
                                        pooled.get() + pooledCount);
      FP_FUZZ_CHECK(poolKeys(pooled.get()) == FP_OK,
                    "fp_pool_keys_varlen failed on a repeat");
      FP_FUZZ_CHECK(sameBits(first, std::vector<uint16_t>(
                                        pooled.get(),
                                        pooled.get() + pooledCount)),
                    "fp_pool_keys_varlen: a second call gave other bits");
    }
    return 0;
  }

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
  // pooled_k from fp_pool_keys_varlen (the poison it leaves in the blocks
  // past a sequence's keys included) must not change any bit.
  const bool poolReady =
      pooledKind >= 128 && pooledKind < 208 && poolKeys(pooled.get()) == FP_OK;
  call();

  static const bool trace = std::getenv("FP_FUZZ_CAPI_TRACE") != nullptr;
  if (trace)
    std::fprintf(stderr,
                 "trace: %s%s%s%s%s b=%lld total_q=%lld hq=%lld d=%lld -> %d "
                 "%s\n",
                 name.c_str(), paged ? " paged" : " packed",
                 cppPlan ? " (C++)" : "", vl.pooled_k ? " pooled_k" : "",
                 readsField(pp, kParamsV3Size) && params.mean_correction
                     ? " mean_correction"
                     : "",
                 (long long)b, (long long)totalQ, (long long)hq, (long long)d,
                 status, message.substr(0, 60).c_str());

  if (poolReady) {
    const VarlenOutputs without = snapshot();
    const int statusWithout = status;
    const std::string messageWithout = message;
    restore(before);
    vl.pooled_k = pooled.get();
    call();
    if (trace)
      std::fprintf(stderr, "trace: %s with pooled_k -> %d\n", name.c_str(),
                   status);
    FP_FUZZ_CHECK(status == statusWithout && message == messageWithout,
                  name + " with pooled_k from fp_pool_keys_varlen: '" +
                      message + "', without: '" + messageWithout + "'");
    FP_FUZZ_CHECK(snapshot() == without,
                  name + ": pooled_k from fp_pool_keys_varlen changed the "
                         "outputs");
    vl.pooled_k = nullptr;
  }

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
    checkMeanCorrectionVerdict(pp ? &params : nullptr, status, message, name,
                               [&] {
                                 call();
                                 return status;
                               });
    return 0;
  }
  checkMeanCorrectionVerdict(pp ? &params : nullptr, status, message, name,
                             [] { return int(FP_OK); });

  // Success: the rows past cu_seqlens_q[b] are the caller's. total_q is q's
  // declared rows (the library takes it from there).
  const int64_t firstFree = cuQ[b], effectiveTotalQ = q.view.shape[1];
  if (op != 0) {
    const fp_tensor_t &o = out.view;
    // A view may alias its rows (stride 0 is valid): an element that is
    // also one of a sequence's rows is written through that row.
    std::vector<char> ofSequence(size_t(out.elements), 0);
    for (int64_t t = 0; t < firstFree; ++t)
      for (int64_t h = 0; h < hq; ++h)
        for (int64_t e = 0; e < d; ++e)
          ofSequence[t * o.strides[1] + h * o.strides[2] + e] = 1;
    for (int64_t t = firstFree; t < effectiveTotalQ; ++t)
      for (int64_t h = 0; h < hq; ++h)
        for (int64_t e = 0; e < d; ++e) {
          int64_t at = t * o.strides[1] + h * o.strides[2] + e;
          FP_FUZZ_CHECK(ofSequence[at] || out.storage[at] == before.out[at],
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

  // Mean correction adds the blocks a row sees whole but the mask prunes;
  // below dense_below_tokens fp_prefill_varlen keeps every causal block,
  // so the result is the one without it, bit for bit.
  if (op == 2 && readsField(pp, kParamsV3Size) &&
      params.mean_correction == 1) {
    const int64_t denseBelow =
        readsField(pp, kParamsV2Size) &&
                params.dense_below_tokens != FP_DENSE_BELOW_AUTO
            ? params.dense_below_tokens
            : (cppPlan ? cppPlan->info().denseBelowTokens
                       : fp_plan_dense_below_tokens(plan));
    if (vl.max_seqlen_k < denseBelow) {
      restore(before);
      params.mean_correction = 0;
      call();
      params.mean_correction = 1;
      FP_FUZZ_CHECK(status == FP_OK,
                    name + " failed without mean correction: " + message);
      const VarlenOutputs without = snapshot();
      FP_FUZZ_CHECK(sameBits(without.out, first.out) &&
                        sameBits(without.lse, first.lse),
                    name + ": mean correction changed a dense prefill");
    }
  }
  return 0;
}


//===----------------------------------------------------------------------===//
// fp_merge_states (docs/merge-states.md)
//===----------------------------------------------------------------------===//

/// Largest buffer the merge half backs (bytes) and most elements it
/// merges (a broadcast view can reach few bytes with many elements); its
/// shapes need far less.
constexpr int64_t kMaxMergeBytes = int64_t(1) << 22;
constexpr int64_t kMaxMergeElements = int64_t(1) << 18;

/// Elements of a shape: -1 when an extent is negative or there are more
/// than kMaxMergeElements.
int64_t elementsOf(const int64_t *extents, int rank) {
  for (int i = 0; i < rank; ++i)
    if (extents[i] < 0)
      return -1;
  for (int i = 0; i < rank; ++i)
    if (extents[i] == 0)
      return 0;
  int64_t n = 1;
  for (int i = 0; i < rank; ++i)
    if (__builtin_mul_overflow(n, extents[i], &n) || n > kMaxMergeElements)
      return -1;
  return n;
}

int64_t stateElementBytes(int32_t dtype) {
  return dtype == FP_DTYPE_F32 ? 4 : 2;
}

/// Elements a view can reach, 1 + sum (extent - 1) * stride: 0 when an
/// extent is 0; -1 when an extent or stride is negative or the sum
/// overflows.
int64_t reachOf(const int64_t *extents, const int64_t *strides, int rank) {
  for (int i = 0; i < rank; ++i)
    if (extents[i] < 0 || strides[i] < 0)
      return -1;
  for (int i = 0; i < rank; ++i)
    if (extents[i] == 0)
      return 0;
  int64_t last = 0;
  for (int i = 0; i < rank; ++i) {
    int64_t step;
    if (__builtin_mul_overflow(extents[i] - 1, strides[i], &step) ||
        __builtin_add_overflow(last, step, &last))
      return -1;
  }
  return last == INT64_MAX ? -1 : last + 1;
}

/// docs/merge-states.md's rule for out's views: no two elements share
/// memory, judged as "each stride at least the extent of the dimensions
/// inside it" (dimensions of extent 1 have no stride to judge; an empty
/// view has no elements).
bool overlapsItself(const int64_t *extents, const int64_t *strides, int rank) {
  for (int i = 0; i < rank; ++i)
    if (extents[i] == 0)
      return false;
  int order[4], n = 0;
  for (int i = 0; i < rank; ++i)
    if (extents[i] > 1)
      order[n++] = i;
  std::sort(order, order + n,
            [&](int x, int y) { return strides[x] < strides[y]; });
  int64_t inner = 1;
  for (int k = 0; k < n; ++k) {
    if (strides[order[k]] < inner)
      return true;
    if (__builtin_mul_overflow(strides[order[k]], extents[order[k]], &inner))
      return false; // the view's reach overflows too: refused for that
  }
  return false;
}

/// An element of a state's O as float (bf16 / f16 exact).
float loadState(int32_t dtype, const unsigned char *p) {
  if (dtype == FP_DTYPE_F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return dtype == FP_DTYPE_BF16 ? fp::bf16BitsToFloat(bits)
                                : fp::f16BitsToFloat(bits);
}

/// `value` rounded to `dtype` (nearest, ties to even), as raw bits.
uint32_t stateBits(int32_t dtype, float value) {
  if (dtype == FP_DTYPE_F32) {
    uint32_t bits;
    std::memcpy(&bits, &value, 4);
    return bits;
  }
  return dtype == FP_DTYPE_BF16 ? fp::floatToBF16Bits(value)
                                : fp::floatToF16Bits(value);
}

uint32_t rawStateBits(int32_t dtype, const unsigned char *p) {
  if (dtype == FP_DTYPE_F32) {
    uint32_t bits;
    std::memcpy(&bits, p, 4);
    return bits;
  }
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return bits;
}

/// An LSE value: finite in [-20, 20]; with -inf / +inf / NaN / huge /
/// subnormal values sprinkled in; any bits; or a few values shared by both
/// states (equal LSEs, w_a = w_b = 1).
float lseValue(Filler &filler, int mode) {
  const uint64_t r = filler.advance();
  const float inf = std::numeric_limits<float>::infinity();
  const float special[] = {-inf,    inf,      std::nanf(""), -3.4e38f,
                           3.4e38f, 1e-40f,   -0.0f,         88.7f,
                           -88.7f,  -1e30f};
  if (mode == 2) {
    const uint32_t bits = uint32_t(r >> 32);
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  if (mode == 3) {
    const float few[] = {0.0f, 1.0f, -1.0f, 0.5f, -inf};
    return few[(r >> 20) % 5];
  }
  if (mode == 1 && (r & 3) == 0)
    return special[(r >> 8) % 10];
  return float(int64_t((r >> 16) % 4001) - 2000) / 100.0f;
}

/// Where one of the six views of a merge lives: buffer `group` at `offset`
/// bytes from the buffer's origin, reaching `bytes` bytes (0: empty, or a
/// view too large to back, which must be refused).
struct Placement {
  int group = 0;
  int64_t offset = 0;
  int64_t bytes = 0;
  bool backed = false;
};

/// One buffer of the merge: its origin is `lo` bytes below offset 0.
struct MergeBuffer {
  int64_t lo = 0;
  std::vector<unsigned char> bytes;
};

/// fp_merge_states (or fp::Plan::mergeStates) on a CPU plan: any shape
/// (zero extents included), bf16 / f16 / f32 states, O and LSE strides
/// (contiguous, padded, head-major O, the varlen / FlashInfer / padded LSE
/// layouts, zero, negative or huge strides), NULL and misaligned pointers,
/// shapes that differ, out in place on a or b (exactly, or overlapping in
/// other ways), b the same state as a, LSE values including -inf, +inf and
/// NaN. Each view has its own buffer of exactly its reach unless it aliases
/// another (then the two share one that covers both). Invariants:
///  - an error iff docs/merge-states.md's rules say so (checked here, not by
///    the library's validation), its message naming an argument, the
///    reference's validation giving the same message, and no byte of any
///    buffer written;
///  - a success equals ref::mergeStates (single-threaded) on copies of the
///    buffers, bit for bit, every byte of every buffer; each row is what the
///    documented formula and edge rows give, computed here; no byte outside
///    out's elements changes; a second call gives the same bits.
int fuzzMergeStates(FuzzInput &in, const fp_plan_t *plan,
                    const fp::Plan *cppPlan) {
  // The shape: any (b, s, h, d), not the plan's; 0 now and then.
  const int64_t dChoices[] = {1, 2, 3, 8, 16, 24, 40, 64};
  int64_t dims[4];
  dims[0] = in.byte() < 12 ? 0 : in.range(1, 3);
  dims[1] = in.byte() < 12 ? 0 : in.range(1, 24);
  dims[2] = in.byte() < 12 ? 0 : in.range(1, 4);
  dims[3] = in.byte() < 12 ? 0 : in.pick(dChoices);
  const int64_t B = dims[0], S = dims[1], H = dims[2], D = dims[3];

  enum { kAO, kALse, kBO, kBLse, kOutO, kOutLse, kViews };
  fp_attn_state_t st[3] = {}; // a, b, out
  int32_t dtypes[3];
  bool oNull[3] = {}, lseNull[3] = {};
  Placement at[kViews];
  for (int v = 0; v < kViews; ++v)
    at[v].group = v; // its own buffer unless it aliases another
  for (int x = 0; x < 3; ++x) {
    fp_attn_state_t &s = st[x];
    dtypes[x] = in.byte() < 248 ? int32_t(in.range(0, 2)) : int32Value(in);
    std::memcpy(&s.dtype, &dtypes[x], sizeof(int32_t)); // any int, as C allows
    std::memcpy(s.o.shape, dims, sizeof(dims));
    if (in.byte() >= 244) {
      const int i = int(in.range(0, 3));
      s.o.shape[i] = in.flag() ? s.o.shape[i] + in.range(-2, 2)
                               : int64Value(in);
    }
    int64_t *os = s.o.strides;
    const uint8_t layout = in.byte();
    const int64_t contiguous[4] = {S * H * D, H * D, D, 1};
    std::memcpy(os, contiguous, sizeof(contiguous));
    if (layout >= 120 && layout < 160) { // padded rows
      os[2] = D + in.range(0, 8);
      os[1] = H * os[2] + in.range(0, 16);
      os[0] = S * os[1] + in.range(0, 16);
    } else if (layout >= 160 && layout < 200) { // head-major [b, h, s, d]
      os[1] = D;
      os[2] = S * D;
    } else if (layout >= 200 && layout < 220) { // broadcast dims
      const uint8_t zeros = in.byte();
      for (int i = 0; i < 3; ++i)
        if (zeros & (1 << i))
          os[i] = 0;
    } else if (layout >= 220) { // one stride broken
      os[in.range(0, 3)] = in.flag() ? in.range(-2, 2) : int64Value(in);
    }
    // LSE strides, [batch, head, seq].
    int64_t *ls = s.lse_strides;
    const uint8_t lseLayout = in.byte();
    const int64_t dense[3] = {H * S, S, 1};
    std::memcpy(ls, dense, sizeof(dense));
    if (lseLayout >= 100 && lseLayout < 140) { // varlen [h, total_q]
      ls[0] = 0;
    } else if (lseLayout >= 140 && lseLayout < 180) { // FlashInfer [s, h]
      ls[0] = in.flag() ? 0 : S * H;
      ls[1] = 1;
      ls[2] = H;
    } else if (lseLayout >= 180 && lseLayout < 200) { // padded
      ls[1] = S + in.range(0, 8);
      ls[0] = H * ls[1] + in.range(0, 8);
    } else if (lseLayout >= 200 && lseLayout < 220) {
      const uint8_t zeros = in.byte();
      for (int i = 0; i < 3; ++i)
        if (zeros & (1 << i))
          ls[i] = 0;
    } else if (lseLayout >= 220) {
      ls[in.range(0, 2)] = in.flag() ? in.range(-2, 2) : int64Value(in);
    }
    const uint8_t pointers = in.byte();
    oNull[x] = pointers >= 252;
    lseNull[x] = pointers >= 244 && pointers < 252;
    const uint8_t misalign = in.byte(); // bytes past an aligned address
    at[2 * x].offset = misalign >= 248 ? in.range(1, 3) : 0;
    at[2 * x + 1].offset = misalign >= 240 && misalign < 248 ? in.range(1, 3) : 0;
  }

  // Aliasing: b the same state as a (a state merged with itself); out's
  // views exactly an input's (merging in place) or overlapping one in
  // other ways.
  auto sameO = [&](int to, int from) {
    dtypes[to] = dtypes[from];
    std::memcpy(&st[to].dtype, &dtypes[from], sizeof(int32_t)); // any int
    std::memcpy(st[to].o.strides, st[from].o.strides, sizeof(st[to].o.strides));
    oNull[to] = oNull[from];
    at[2 * to] = at[2 * from];
  };
  auto sameLse = [&](int to, int from) {
    std::memcpy(st[to].lse_strides, st[from].lse_strides,
                sizeof(st[to].lse_strides));
    lseNull[to] = lseNull[from];
    at[2 * to + 1] = at[2 * from + 1];
  };
  // Inside view `host`'s buffer, `delta` 4-byte steps from its start.
  auto inside = [&](int view, int host, int64_t delta) {
    at[view].group = at[host].group;
    at[view].offset = at[host].offset + 4 * delta + at[view].offset;
  };
  if (in.byte() >= 232)
    sameO(1, 0);
  if (in.byte() >= 232)
    sameLse(1, 0);
  const uint8_t outO = in.byte();
  if (outO >= 150 && outO < 175) {
    sameO(2, 0);
  } else if (outO >= 175 && outO < 195) {
    sameO(2, 1);
  } else if (outO >= 195 && outO < 215) {
    inside(kOutO, kAO, in.range(-8, 64));
  } else if (outO >= 215 && outO < 225) {
    inside(kOutO, kAO, 0); // a.o's pointer, out's own dtype and strides
  } else if (outO >= 225 && outO < 240) {
    inside(kOutO, in.flag() ? kALse : kBLse, in.range(0, 32));
  }
  const uint8_t outLse = in.byte();
  if (outLse >= 150 && outLse < 175) {
    sameLse(2, 0);
  } else if (outLse >= 175 && outLse < 195) {
    sameLse(2, 1);
  } else if (outLse >= 195 && outLse < 210) {
    inside(kOutLse, kALse, in.range(-8, 64));
  } else if (outLse >= 210 && outLse < 222) {
    inside(kOutLse, kALse, 0);
  } else if (outLse >= 222 && outLse < 236) {
    inside(kOutLse, kOutO, in.range(0, 32));
  } else if (outLse >= 236 && outLse < 246) {
    inside(kOutLse, in.flag() ? kAO : kBO, in.range(0, 32));
  }
  const uint8_t nulls = in.byte(); // NULL plan or state pointers
  const fp_plan_t *cp = nulls >= 252 ? nullptr : plan; // C API only
  const int nullState = nulls >= 244 && nulls < 252 ? int(nulls % 3) : -1;
  Filler filler{in.raw<uint64_t>() | 1, int(in.range(0, 2))};
  const int lseMode = int(in.range(0, 3));

  // Reach of each view (in bytes), and what the documented rules refuse.
  const int64_t lseExtents[3] = {st[0].o.shape[0], st[0].o.shape[2],
                                 st[0].o.shape[1]};
  bool refused = (!cppPlan && !cp) || nullState >= 0;
  bool dtypeOk[3];
  for (int x = 0; x < 3; ++x) {
    dtypeOk[x] = dtypes[x] >= FP_DTYPE_BF16 && dtypes[x] <= FP_DTYPE_F32;
    refused |= !dtypeOk[x];
  }
  for (int i = 0; i < 4; ++i) {
    refused |= st[0].o.shape[i] < 0;
    refused |= st[1].o.shape[i] != st[0].o.shape[i];
    refused |= st[2].o.shape[i] != st[0].o.shape[i];
  }
  bool tooLarge = false;
  for (int x = 0; x < 3; ++x) {
    const int64_t eb = stateElementBytes(dtypes[x]);
    Placement &o = at[2 * x], &l = at[2 * x + 1];
    refused |= oNull[x] || o.offset % eb != 0 || st[x].o.strides[3] != 1;
    refused |= (x < 2 && lseNull[x]) || (!lseNull[x] && l.offset % 4 != 0);
    const int64_t oReach = reachOf(st[x].o.shape, st[x].o.strides, 4);
    int64_t oBytes = -1, lseBytes = -1;
    // (__builtin_mul_overflow stores the wrapped product: reset it.)
    if (oReach < 0 || __builtin_mul_overflow(oReach, eb, &oBytes)) {
      refused = true;
      oBytes = -1;
    }
    const int64_t lReach = reachOf(lseExtents, st[x].lse_strides, 3);
    if (!lseNull[x] &&
        (lReach < 0 || __builtin_mul_overflow(lReach, int64_t(4), &lseBytes))) {
      refused = true;
      lseBytes = -1;
    }
    o.backed = !oNull[x] && oBytes >= 0 && oBytes <= kMaxMergeBytes;
    o.bytes = o.backed ? oBytes : 0;
    l.backed = !lseNull[x] && lseBytes >= 0 && lseBytes <= kMaxMergeBytes;
    l.bytes = l.backed ? lseBytes : 0;
    tooLarge |= (!oNull[x] && oBytes > kMaxMergeBytes) ||
                (!lseNull[x] && lseBytes > kMaxMergeBytes);
  }
  // out's views: no element overlapping another; exactly an input's view
  // or disjoint from it (judged by the bytes each view can reach).
  refused |= overlapsItself(st[2].o.shape, st[2].o.strides, 4);
  if (!lseNull[2])
    refused |= overlapsItself(lseExtents, st[2].lse_strides, 3);
  auto intersect = [&](int v, int w) {
    return at[v].backed && at[w].backed && at[v].bytes > 0 &&
           at[w].bytes > 0 && at[v].group == at[w].group &&
           at[v].offset < at[w].offset + at[w].bytes &&
           at[w].offset < at[v].offset + at[v].bytes;
  };
  auto sameStrides = [](const int64_t *extents, const int64_t *x,
                        const int64_t *y, int rank) {
    for (int i = 0; i < rank; ++i)
      if (extents[i] > 1 && x[i] != y[i])
        return false;
    return true;
  };
  for (int x = 0; x < 2; ++x) {
    const bool exactO = at[2 * x].group == at[kOutO].group &&
                        at[2 * x].offset == at[kOutO].offset &&
                        dtypes[x] == dtypes[2] &&
                        sameStrides(st[0].o.shape, st[x].o.strides,
                                    st[2].o.strides, 3);
    refused |= intersect(kOutO, 2 * x) && !exactO;
    refused |= intersect(kOutO, 2 * x + 1);
    if (!lseNull[2]) {
      const bool exactLse = at[2 * x + 1].group == at[kOutLse].group &&
                            at[2 * x + 1].offset == at[kOutLse].offset &&
                            sameStrides(lseExtents, st[x].lse_strides,
                                        st[2].lse_strides, 3);
      refused |= intersect(kOutLse, 2 * x + 1) && !exactLse;
      refused |= intersect(kOutLse, 2 * x);
    }
  }
  if (!lseNull[2])
    refused |= intersect(kOutLse, kOutO);
  const int64_t lseRows = elementsOf(lseExtents, 3);
  if (!refused && (tooLarge || lseRows < 0 || elementsOf(st[0].o.shape, 4) < 0))
    return 0; // might be accepted but cannot be backed, or run too long

  // The buffers: each covers its views (origin rounded down to 16 bytes so
  // that every view keeps the alignment its offset gives it).
  MergeBuffer buffers[kViews];
  {
    int64_t lo[kViews], hi[kViews];
    std::fill(lo, lo + kViews, INT64_MAX);
    std::fill(hi, hi + kViews, INT64_MIN);
    for (int v = 0; v < kViews; ++v) {
      lo[at[v].group] = std::min(lo[at[v].group], at[v].offset);
      hi[at[v].group] = std::max(hi[at[v].group], at[v].offset + at[v].bytes);
    }
    for (int g = 0; g < kViews; ++g) {
      if (lo[g] > hi[g])
        continue; // no view lives here
      buffers[g].lo = lo[g] >= 0 ? lo[g] / 16 * 16 : -((15 - lo[g]) / 16 * 16);
      // At least one byte, so that even an empty view has an address.
      buffers[g].bytes.assign(
          size_t(std::max<int64_t>(hi[g] - buffers[g].lo, 1)), 0);
      for (auto &byte : buffers[g].bytes)
        byte = uint8_t(filler.advance() >> 32); // poison
    }
  }
  auto address = [&](MergeBuffer *mem, int v) -> unsigned char * {
    return mem[at[v].group].bytes.data() + (at[v].offset - mem[at[v].group].lo);
  };
  auto bind = [&](MergeBuffer *mem, fp_attn_state_t *states) {
    for (int x = 0; x < 3; ++x) {
      states[x] = st[x];
      states[x].o.data = oNull[x] ? nullptr : address(mem, 2 * x);
      states[x].lse =
          lseNull[x] ? nullptr
                     : reinterpret_cast<float *>(address(mem, 2 * x + 1));
    }
  };
  // Element offsets (elements, not bytes) of row (b, s, h) in each view.
  auto oIndex = [&](int x, int64_t bi, int64_t si, int64_t hi) {
    const int64_t *t = st[x].o.strides;
    return bi * t[0] + si * t[1] + hi * t[2];
  };
  auto lseIndex = [&](int x, int64_t bi, int64_t si, int64_t hi) {
    const int64_t *t = st[x].lse_strides;
    return bi * t[0] + hi * t[1] + si * t[2];
  };
  // The inputs' contents (out's views keep the poison unless they alias).
  // O in each state's own shape, the LSE in a's (the library's too), each
  // within the bytes backed for it.
  for (int x = 0; x < 2; ++x) {
    const int64_t *shape = st[x].o.shape;
    if (at[2 * x].backed && at[2 * x].bytes > 0 && dtypeOk[x] &&
        elementsOf(shape, 4) > 0) {
      const int64_t eb = stateElementBytes(dtypes[x]);
      for (int64_t bi = 0; bi < shape[0]; ++bi)
        for (int64_t si = 0; si < shape[1]; ++si)
          for (int64_t hi = 0; hi < shape[2]; ++hi)
            for (int64_t c = 0; c < shape[3]; ++c) {
              // strides[3] as given (its reach was backed), though any
              // value but 1 is refused.
              unsigned char *p =
                  address(buffers, 2 * x) +
                  (oIndex(x, bi, si, hi) + c * st[x].o.strides[3]) * eb;
              if (dtypes[x] == FP_DTYPE_F32) {
                const uint32_t bits =
                    uint32_t(filler.next(FP_DTYPE_BF16)) << 16 |
                    uint32_t(filler.advance() >> 48);
                std::memcpy(p, &bits, 4);
              } else {
                const uint16_t bits = filler.next(fp_dtype_t(dtypes[x]));
                std::memcpy(p, &bits, 2);
              }
            }
    }
    if (at[2 * x + 1].backed && at[2 * x + 1].bytes > 0 && lseRows > 0)
      for (int64_t bi = 0; bi < lseExtents[0]; ++bi)
        for (int64_t hi = 0; hi < lseExtents[1]; ++hi)
          for (int64_t si = 0; si < lseExtents[2]; ++si) {
            const float value = lseValue(filler, lseMode);
            std::memcpy(address(buffers, 2 * x + 1) +
                            lseIndex(x, bi, si, hi) * 4,
                        &value, 4);
          }
  }

  MergeBuffer before[kViews];
  std::copy(buffers, buffers + kViews, before);
  fp_attn_state_t states[3];
  bind(buffers, states);
  const fp_attn_state_t *pa = nullState == 0 ? nullptr : &states[0];
  const fp_attn_state_t *pb = nullState == 1 ? nullptr : &states[1];
  fp_attn_state_t *po = nullState == 2 ? nullptr : &states[2];
  int status = FP_OK;
  std::string message;
  auto call = [&] {
    if (cppPlan) {
      fp::Status r = cppPlan->mergeStates(pa, pb, po, nullptr);
      status = int(r.code());
      message = r.message();
      FP_FUZZ_CHECK(r.isOk() == message.empty(), message);
    } else {
      status = fp_merge_states(cp, pa, pb, po, nullptr);
      checkStatus(status, "fp_merge_states");
      message = fp_last_error();
    }
  };
  auto sameBuffers = [&](const MergeBuffer *x, const MergeBuffer *y) {
    for (int g = 0; g < kViews; ++g)
      if (x[g].bytes != y[g].bytes)
        return false;
    return true;
  };
  call();

  static const bool trace = std::getenv("FP_FUZZ_CAPI_TRACE") != nullptr;
  if (trace)
    std::fprintf(stderr,
                 "trace: fp_merge_states%s [%lld, %lld, %lld, %lld] dtypes "
                 "%d %d %d%s%s -> %d %s\n",
                 cppPlan ? " (C++)" : "", (long long)B, (long long)S,
                 (long long)H, (long long)D, dtypes[0], dtypes[1], dtypes[2],
                 at[kOutO].group == at[kAO].group ||
                         at[kOutO].group == at[kBO].group
                     ? " out.o aliased"
                     : "",
                 refused ? " (refused by the rules)" : "", status,
                 message.substr(0, 60).c_str());

  // The reference's verdict on the same views (its pointers into copies).
  const bool referable =
      !refused || (cp && nullState < 0 && dtypeOk[0] && dtypeOk[1] &&
                   dtypeOk[2]);
  auto refState = [&](const fp_attn_state_t &s, int32_t dtype) {
    fp::ref::AttentionState r;
    r.o = s.o.data;
    r.type = dtype == FP_DTYPE_BF16  ? fp::ref::StateType::kBF16
             : dtype == FP_DTYPE_F16 ? fp::ref::StateType::kF16
                                     : fp::ref::StateType::kF32;
    std::memcpy(r.shape, s.o.shape, sizeof(r.shape));
    std::memcpy(r.strides, s.o.strides, sizeof(r.strides));
    r.lse = s.lse;
    std::memcpy(r.lseStrides, s.lse_strides, sizeof(r.lseStrides));
    return r;
  };
  MergeBuffer oracle[kViews];
  std::copy(before, before + kViews, oracle);
  fp_attn_state_t oracleStates[3];
  bind(oracle, oracleStates);
  const fp::ref::AttentionState ra = refState(oracleStates[0], dtypes[0]),
                                rb = refState(oracleStates[1], dtypes[1]),
                                ro = refState(oracleStates[2], dtypes[2]);

  if (status != FP_OK) {
    checkNamesArgument(message, "fp_merge_states");
    FP_FUZZ_CHECK(refused, "fp_merge_states refused a merge that "
                           "docs/merge-states.md allows: " +
                               message);
    FP_FUZZ_CHECK(sameBuffers(buffers, before),
                  "fp_merge_states wrote despite: " + message);
    if (referable) {
      const fp::Status verdict = fp::ref::validateMergeStates(ra, rb, ro);
      FP_FUZZ_CHECK(verdict.message() == message,
                    "fp_merge_states: '" + message + "', the reference: '" +
                        verdict.message() + "'");
    }
    return 0;
  }
  FP_FUZZ_CHECK(!refused, "fp_merge_states accepted a merge that "
                          "docs/merge-states.md refuses");

  // The reference, single-threaded, on copies: every byte the same.
  const fp::Status reference = fp::ref::mergeStates(ra, rb, ro, 1);
  FP_FUZZ_CHECK(reference.isOk(), "the reference refused what "
                                  "fp_merge_states accepted: " +
                                      reference.message());
  FP_FUZZ_CHECK(sameBuffers(buffers, oracle),
                "fp_merge_states differs from ref::mergeStates");

  // Each row from the documented definition, on the inputs as they were;
  // every byte that is not an element of out's views unchanged.
  std::vector<std::vector<unsigned char>> written(kViews);
  for (int g = 0; g < kViews; ++g)
    written[g].assign(buffers[g].bytes.size(), 0);
  auto mark = [&](int v, int64_t element, int64_t bytes) {
    const int64_t from = at[v].offset - buffers[at[v].group].lo +
                         element * bytes;
    std::fill_n(written[at[v].group].begin() + from, bytes, 1);
  };
  // Accepted: every state has a's shape.
  const int64_t nB = st[0].o.shape[0], nS = st[0].o.shape[1],
                nH = st[0].o.shape[2], nD = st[0].o.shape[3];
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t ebA = stateElementBytes(dtypes[0]),
                ebB = stateElementBytes(dtypes[1]),
                ebO = stateElementBytes(dtypes[2]);
  auto expectBits = [&](bool nan, uint32_t want, const unsigned char *got,
                        int32_t dtype, const std::string &what) {
    if (nan)
      FP_FUZZ_CHECK(std::isnan(loadState(dtype, got)),
                    "fp_merge_states: " + what + " is not NaN");
    else
      FP_FUZZ_CHECK(rawStateBits(dtype, got) == want,
                    "fp_merge_states: " + what + " is not the definition's");
  };
  for (int64_t bi = 0; bi < nB; ++bi)
    for (int64_t si = 0; si < nS; ++si)
      for (int64_t hi = 0; hi < nH; ++hi) {
        const std::string row = "row [" + std::to_string(bi) + ", " +
                                std::to_string(si) + ", " +
                                std::to_string(hi) + "]";
        float la, lb;
        std::memcpy(&la, address(before, kALse) + lseIndex(0, bi, si, hi) * 4,
                    4);
        std::memcpy(&lb, address(before, kBLse) + lseIndex(1, bi, si, hi) * 4,
                    4);
        const unsigned char *oa =
            address(before, kAO) + oIndex(0, bi, si, hi) * ebA;
        const unsigned char *ob =
            address(before, kBO) + oIndex(1, bi, si, hi) * ebB;
        const int64_t io = oIndex(2, bi, si, hi);
        const unsigned char *oo = address(buffers, kOutO) + io * ebO;
        const bool nan = std::isnan(la) || std::isnan(lb);
        const bool emptyA = std::isinf(la), emptyB = std::isinf(lb);
        float wa = 0, wb = 0, sum = 1, lse;
        if (nan) {
          lse = std::nanf("");
        } else if (emptyA && emptyB) {
          lse = -inf;
        } else if (emptyB) {
          lse = la;
        } else if (emptyA) {
          lse = lb;
        } else {
          const float m = std::max(la, lb);
          wa = std::exp(la - m);
          wb = std::exp(lb - m);
          sum = wa + wb;
          lse = m + std::log(sum);
        }
        for (int64_t c = 0; c < nD; ++c) {
          mark(kOutO, io + c, ebO);
          const unsigned char *got = oo + c * ebO;
          const std::string what = row + " O[" + std::to_string(c) + "]";
          if (nan) {
            expectBits(true, 0, got, dtypes[2], what);
          } else if (emptyA && emptyB) {
            expectBits(false, stateBits(dtypes[2], 0.0f), got, dtypes[2], what);
          } else if (emptyA || emptyB) {
            // The other state's element: its bits when the dtypes agree.
            const int x = emptyB ? 0 : 1;
            const unsigned char *src = (x == 0 ? oa : ob) + c * (x == 0 ? ebA : ebB);
            if (dtypes[x] == dtypes[2]) {
              expectBits(false, rawStateBits(dtypes[x], src), got, dtypes[2],
                         what);
            } else {
              const float value = loadState(dtypes[x], src);
              expectBits(std::isnan(value), stateBits(dtypes[2], value), got,
                         dtypes[2], what);
            }
          } else {
            // fp32, one operation at a time (the target has no FMA
            // contraction): (w_a O_a + w_b O_b) / (w_a + w_b).
            const float pa = wa * loadState(dtypes[0], oa + c * ebA);
            const float pb = wb * loadState(dtypes[1], ob + c * ebB);
            const float total = pa + pb;
            const float value = total / sum;
            expectBits(std::isnan(value), stateBits(dtypes[2], value), got,
                       dtypes[2], what);
          }
        }
        if (!lseNull[2]) {
          const int64_t il = lseIndex(2, bi, si, hi);
          mark(kOutLse, il, 4);
          float got;
          std::memcpy(&got, address(buffers, kOutLse) + il * 4, 4);
          if (std::isnan(lse))
            FP_FUZZ_CHECK(std::isnan(got), "fp_merge_states: " + row +
                                               " LSE is not NaN");
          else
            FP_FUZZ_CHECK(std::memcmp(&got, &lse, 4) == 0,
                          "fp_merge_states: " + row + " LSE " +
                              std::to_string(got) + ", the definition's " +
                              std::to_string(lse));
        }
      }
  for (int g = 0; g < kViews; ++g)
    for (size_t i = 0; i < buffers[g].bytes.size(); ++i)
      FP_FUZZ_CHECK(written[g][i] || buffers[g].bytes[i] == before[g].bytes[i],
                    "fp_merge_states wrote a byte outside out's elements");

  // A second call from the same state gives the same bits.
  MergeBuffer first[kViews];
  std::copy(buffers, buffers + kViews, first);
  for (int g = 0; g < kViews; ++g) // in place: the views keep pointing here
    std::copy(before[g].bytes.begin(), before[g].bytes.end(),
              buffers[g].bytes.begin());
  call();
  FP_FUZZ_CHECK(status == FP_OK, "fp_merge_states failed on a repeat: " +
                                     message);
  FP_FUZZ_CHECK(sameBuffers(buffers, first),
                "fp_merge_states: a second identical call gave other bits");
  return 0;
}

//===----------------------------------------------------------------------===//
// fp_params_init_sized / fp_plan_spec_init_sized
//===----------------------------------------------------------------------===//

/// A field of a versioned struct: where it is and how large.
struct Field {
  size_t offset, size;
};
#define FP_FUZZ_FIELD(T, f) Field{offsetof(T, f), sizeof(((T *)nullptr)->f)}

/// The initialisers with any size, each on a heap buffer of exactly that
/// size (up to the struct plus 64 bytes: a caller claiming more owns more,
/// and the library writes at most its sizeof), or the exported functions
/// that binaries built against older headers call. Invariants: below
/// version 1's size nothing is written; otherwise exactly the first
/// min(size, sizeof) bytes are, every whole field there holding its default
/// (struct_size the bytes written) and a field cut by the size its default's
/// first bytes; no byte past them changes (ASan sees a write past the
/// buffer). A NULL pointer is a no-op.
int fuzzInitSized(FuzzInput &in) {
  static const Field paramsFields[] = {
      FP_FUZZ_FIELD(fp_params_t, struct_size),
      FP_FUZZ_FIELD(fp_params_t, alpha),
      FP_FUZZ_FIELD(fp_params_t, sink),
      FP_FUZZ_FIELD(fp_params_t, window),
      FP_FUZZ_FIELD(fp_params_t, last_n),
      FP_FUZZ_FIELD(fp_params_t, min_budget),
      FP_FUZZ_FIELD(fp_params_t, threshold_kind),
      FP_FUZZ_FIELD(fp_params_t, scale),
      FP_FUZZ_FIELD(fp_params_t, lse),
      FP_FUZZ_FIELD(fp_params_t, kept_counter),
      FP_FUZZ_FIELD(fp_params_t, cu_seqlens_q),
      FP_FUZZ_FIELD(fp_params_t, cu_seqlens_k),
      FP_FUZZ_FIELD(fp_params_t, max_seqlen_q),
      FP_FUZZ_FIELD(fp_params_t, max_seqlen_k),
      FP_FUZZ_FIELD(fp_params_t, dense_below_tokens),
      FP_FUZZ_FIELD(fp_params_t, mean_correction)};
  static const Field specFields[] = {
      FP_FUZZ_FIELD(fp_plan_spec_t, struct_size),
      FP_FUZZ_FIELD(fp_plan_spec_t, dtype),
      FP_FUZZ_FIELD(fp_plan_spec_t, head_dim),
      FP_FUZZ_FIELD(fp_plan_spec_t, head_dim_v),
      FP_FUZZ_FIELD(fp_plan_spec_t, num_q_heads),
      FP_FUZZ_FIELD(fp_plan_spec_t, num_kv_heads),
      FP_FUZZ_FIELD(fp_plan_spec_t, block_size),
      FP_FUZZ_FIELD(fp_plan_spec_t, causal),
      FP_FUZZ_FIELD(fp_plan_spec_t, pooled_queries),
      FP_FUZZ_FIELD(fp_plan_spec_t, max_batch),
      FP_FUZZ_FIELD(fp_plan_spec_t, max_seq_len),
      FP_FUZZ_FIELD(fp_plan_spec_t, device),
      FP_FUZZ_FIELD(fp_plan_spec_t, max_workspace_bytes)};
  const int calls = int(in.range(1, 4));
  for (int n = 0; n < calls; ++n) {
    const bool spec = in.flag();
    const size_t full = spec ? sizeof(fp_plan_spec_t) : sizeof(fp_params_t);
    const size_t v1 = spec ? kSpecV1Size : kParamsV1Size;
    const size_t marks[] = {0,     1,     8,         v1 - 1,        v1,
                            v1 + 1, kParamsV2Size - 1, kParamsV2Size,
                            kParamsV3Size, full - 1, full, full + 1,
                            full + 64, SIZE_MAX};
    const uint8_t kind = in.byte();
    // exported: the function of that name, not the macro (older binaries).
    const bool exported = kind >= 240;
    size_t size = exported ? (spec ? kSpecV1Size : kParamsV2Size)
                  : kind < 100 ? size_t(in.range(0, int64_t(full) + 32))
                  : kind < 200 ? in.pick(marks)
                               : in.raw<uint64_t>();
    const size_t backed = std::min<size_t>(size, full + 64);
    std::unique_ptr<unsigned char[]> buffer(new unsigned char[backed]);
    for (size_t i = 0; i < backed; ++i)
      buffer[i] = uint8_t(in.byte() ^ 0xa5);
    const std::vector<unsigned char> before(buffer.get(),
                                            buffer.get() + backed);
    const bool null = in.byte() >= 248;
    if (spec) {
      auto *s = null ? nullptr : reinterpret_cast<fp_plan_spec_t *>(buffer.get());
      if (exported)
        (fp_plan_spec_init)(s); // parenthesised: the function, not the macro
      else
        fp_plan_spec_init_sized(s, size);
    } else {
      auto *p = null ? nullptr : reinterpret_cast<fp_params_t *>(buffer.get());
      if (exported)
        (fp_params_init)(p);
      else
        fp_params_init_sized(p, size);
    }
    const size_t written = null || size < v1 ? 0 : std::min(size, full);
    const std::string what =
        std::string(spec ? "fp_plan_spec_init" : "fp_params_init") +
        (exported ? "(" : "_sized(") + (null ? "NULL" : "p") +
        (exported ? "" : ", " + std::to_string(size)) + ")";
    static const bool trace = std::getenv("FP_FUZZ_CAPI_TRACE") != nullptr;
    if (trace)
      std::fprintf(stderr, "trace: %s -> %zu bytes\n", what.c_str(), written);
    for (size_t i = written; i < backed; ++i)
      FP_FUZZ_CHECK(buffer[i] == before[i],
                    what + " wrote byte " + std::to_string(i));
    if (!written)
      continue;
    // The defaults, from this header's initialiser on a whole struct.
    union {
      fp_params_t params;
      fp_plan_spec_t spec;
      unsigned char bytes[sizeof(fp_params_t) + sizeof(fp_plan_spec_t)];
    } want;
    if (spec) {
      fp_plan_spec_init(&want.spec);
      want.spec.struct_size = written;
    } else {
      fp_params_init(&want.params);
      want.params.struct_size = written;
    }
    const Field *fields = spec ? specFields : paramsFields;
    const size_t count = spec ? std::size(specFields) : std::size(paramsFields);
    for (size_t f = 0; f < count; ++f) {
      if (fields[f].offset >= written)
        continue;
      const size_t bytes = std::min(fields[f].size, written - fields[f].offset);
      FP_FUZZ_CHECK(std::memcmp(buffer.get() + fields[f].offset,
                                want.bytes + fields[f].offset, bytes) == 0,
                    what + ": the field at byte " +
                        std::to_string(fields[f].offset) +
                        " is not its default");
    }
  }
  return 0;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FuzzInput in(data, size);
  fp_plan_spec_t spec = decodeSpec(in);
  // The C++ fp::Plan instead of the C API; the varlen calls instead of the
  // whole-prompt ones (C API for 160..191, C++ for 240..255); fp_merge_states
  // (C API for 144..159, C++ for 232..239); the struct initialisers with any
  // size (136..143, no plan).
  uint8_t apiKind = in.byte();
  bool useCpp = apiKind >= 192;
  bool varlenCalls = (apiKind >= 160 && apiKind < 192) || apiKind >= 240;
  bool mergeCalls =
      (apiKind >= 144 && apiKind < 160) || (apiKind >= 232 && apiKind < 240);
  if (apiKind >= 136 && apiKind < 144)
    return fuzzInitSized(in);

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
    if (!mergeCalls)
      checkWorkspaceQueries(in, plan);
  }
  std::unique_ptr<fp_plan_t, void (*)(fp_plan_t *)> owner(plan,
                                                          fp_plan_destroy);
  if (mergeCalls)
    return fuzzMergeStates(in, plan, cppPlan.get());
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
  decodeVersion3(in, params); // last: see its comment
  decodePruning(in, params);

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
  auto call = [&] {
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
            return cppPlan->prefill(q.ptr(), k.ptr(), v.ptr(), out.ptr(), pp,
                                    ws, claimed, nullptr);
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
  };
  call();

  // FP_FUZZ_CAPI_TRACE=1: one line per input, to see what a corpus reaches.
  static const bool trace = std::getenv("FP_FUZZ_CAPI_TRACE") != nullptr;
  if (trace)
    std::fprintf(stderr,
                 "trace: %s%s%s b=%lld s=%lld hq=%lld d=%lld -> %d %s\n",
                 callName(op).c_str(), cppPlan ? " (C++)" : "",
                 readsField(pp, kParamsV3Size) && params.mean_correction
                     ? " mean_correction"
                     : "",
                 (long long)b, (long long)s, (long long)hq, (long long)d,
                 status, message.substr(0, 60).c_str());

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
    checkMeanCorrectionVerdict(nullParams ? nullptr : &params, status, message,
                               callName(op), [&] {
                                 call();
                                 return status;
                               });
    return 0;
  }
  checkMeanCorrectionVerdict(nullParams ? nullptr : &params, status, message,
                             callName(op), [] { return int(FP_OK); });

  // Mean correction adds the blocks a row sees whole but the mask prunes:
  // with every causal block kept (fp_attend's mask, or fp_prefill below
  // dense_below_tokens) the result is the one without it, bit for bit.
  if (op != 0 && readsField(pp, kParamsV3Size) &&
      params.mean_correction == 1) {
    bool everyBlock = true;
    if (op == 2) {
      const int64_t denseBelow =
          readsField(pp, kParamsV2Size) &&
                  params.dense_below_tokens != FP_DENSE_BELOW_AUTO
              ? params.dense_below_tokens
              : (cppPlan ? cppPlan->info().denseBelowTokens
                         : fp_plan_dense_below_tokens(plan));
      everyBlock = q.view.shape[1] < denseBelow; // the problem's length
    } else {
      // Success: the mask's declared shape is the problem's.
      const int64_t blocks = mask.num_blocks;
      for (int64_t r = 0; r < mask.batch * mask.heads * blocks && everyBlock;
           ++r) {
        const int64_t i = r % blocks;
        everyBlock = counts[r] == i + 1;
        for (int64_t e = 0; e <= i && everyBlock; ++e)
          everyBlock = ids[r * blocks + e] == e;
      }
    }
    if (everyBlock) {
      const std::vector<uint16_t> with(out.storage.get(),
                                       out.storage.get() + out.elements);
      const std::vector<float> lseWith(lse.get(), lse.get() + lseCount);
      params.mean_correction = 0;
      call();
      params.mean_correction = 1;
      FP_FUZZ_CHECK(status == FP_OK, callName(op) +
                                         " failed without mean correction: " +
                                         message);
      FP_FUZZ_CHECK(
          sameBits(with, std::vector<uint16_t>(
                             out.storage.get(),
                             out.storage.get() + out.elements)) &&
              sameBits(lseWith,
                       std::vector<float>(lse.get(), lse.get() + lseCount)),
          callName(op) + ": mean correction changed a result that keeps "
                         "every causal block");
    }
  }
  return 0;
}
