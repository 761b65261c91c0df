//===- MergeStates.cpp - Merging two partial attention states ---*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Attention over the union of two disjoint key sets from the attention over
// each (docs/merge-states.md). The oracle of fp_merge_states: the C API
// runs it on CPU plans and checks every call's arguments with
// validateMergeStates on both backends, and the GPU kernel
// (fp/merge_states.cuh) restates mergeRow.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/reference.h"

#include "Parallel.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

namespace fp::ref {

namespace {

std::string str(int64_t value) { return std::to_string(value); }

int64_t elementBytes(StateType type) { return type == StateType::kF32 ? 4 : 2; }

float loadElement(StateType type, const void *base, int64_t index) {
  if (type == StateType::kF32)
    return static_cast<const float *>(base)[index];
  const uint16_t bits = static_cast<const uint16_t *>(base)[index];
  return bitsToFloat(type == StateType::kBF16 ? DType::kBF16 : DType::kF16,
                     bits);
}

void storeElement(StateType type, void *base, int64_t index, float value) {
  if (type == StateType::kF32)
    static_cast<float *>(base)[index] = value;
  else
    static_cast<uint16_t *>(base)[index] = floatToBits(
        type == StateType::kBF16 ? DType::kBF16 : DType::kF16, value);
}

/// Copies element `index` of `src` to `dst`: the raw bits when the types
/// agree (bit for bit, NaN payloads included), else rounded through float.
void copyElement(StateType srcType, const void *src, int64_t srcIndex,
                 StateType dstType, void *dst, int64_t dstIndex) {
  if (srcType == dstType) {
    const int64_t bytes = elementBytes(srcType);
    // memmove: merging in place copies an element onto itself.
    std::memmove(static_cast<char *>(dst) + dstIndex * bytes,
                static_cast<const char *>(src) + srcIndex * bytes, bytes);
    return;
  }
  storeElement(dstType, dst, dstIndex, loadElement(srcType, src, srcIndex));
}

/// A view's name for messages: "a.o", "out.lse".
struct Named {
  const AttentionState *state;
  const char *name; // "a", "b", "out"
};

/// Bytes [first, last] a view can touch; empty when an extent is 0.
struct Span {
  uintptr_t first = 0, last = 0;
  bool empty = true;
  bool overlaps(const Span &other) const {
    return !empty && !other.empty && first <= other.last &&
           other.first <= last;
  }
};

/// The span of `rank` dimensions of `extents` / `strides` (elements of
/// `bytes` bytes) from `data`, or an error naming `name` when it does not fit
/// in 63 bits (strides and extents were checked to be >= 0).
StatusOr<Span> spanOf(const void *data, const int64_t *extents,
                      const int64_t *strides, int rank, int64_t bytes,
                      const std::string &name) {
  Span span;
  for (int i = 0; i < rank; ++i)
    if (extents[i] == 0)
      return span;
  int64_t lastElement = 0;
  for (int i = 0; i < rank; ++i) {
    int64_t step;
    if (__builtin_mul_overflow(extents[i] - 1, strides[i], &step) ||
        __builtin_add_overflow(lastElement, step, &lastElement))
      return invalidArgument(name + ": expected a view within 2^63 elements, "
                                    "got shape and strides that reach past it");
  }
  int64_t lastByte;
  if (__builtin_add_overflow(lastElement, 1, &lastElement) ||
      __builtin_mul_overflow(lastElement, bytes, &lastByte) ||
      uintptr_t(lastByte) > std::numeric_limits<uintptr_t>::max() -
                                reinterpret_cast<uintptr_t>(data))
    return invalidArgument(name + ": expected a view within the address "
                                  "space, got shape and strides that reach "
                                  "past it");
  span.first = reinterpret_cast<uintptr_t>(data);
  span.last = span.first + uintptr_t(lastByte) - 1;
  span.empty = false;
  return span;
}

std::string listOf(const int64_t *values, int rank) {
  std::string text = "[";
  for (int i = 0; i < rank; ++i)
    text += (i ? ", " : "") + str(values[i]);
  return text + "]";
}

/// No two elements of the view share memory: ordered by stride, every
/// dimension of extent > 1 steps at least over the dimensions inside it.
/// (A sufficient condition; views that interleave without it are refused.)
Status checkNoSelfOverlap(const int64_t *extents, const int64_t *strides,
                          int rank, const std::string &name) {
  // An empty view has no elements to overlap; its span is empty too, so
  // nothing bounds its strides and stride * extent below could overflow.
  for (int i = 0; i < rank; ++i)
    if (extents[i] == 0)
      return Status::ok();
  int order[4];
  int n = 0;
  for (int i = 0; i < rank; ++i)
    if (extents[i] > 1)
      order[n++] = i;
  for (int k = 1; k < n; ++k) // insertion sort of at most 4 dimensions
    for (int m = k; m > 0 && (strides[order[m]] < strides[order[m - 1]] ||
                              (strides[order[m]] == strides[order[m - 1]] &&
                               order[m] > order[m - 1]));
         --m)
      std::swap(order[m], order[m - 1]);
  int64_t inner = 1; // elements spanned by the dimensions inside
  for (int k = 0; k < n; ++k) {
    const int i = order[k];
    if (strides[i] < inner)
      return invalidArgument(
          name + ": expected a view whose elements do not overlap (each "
                 "stride at least the extent of the dimensions inside it), "
                 "got shape " +
          listOf(extents, rank) + " with strides " + listOf(strides, rank));
    inner = strides[i] * extents[i]; // fits: the span (not empty) was computed
  }
  return Status::ok();
}

bool sameStrides(const int64_t *extents, const int64_t *a, const int64_t *b,
                 int rank) {
  for (int i = 0; i < rank; ++i)
    if (extents[i] > 1 && a[i] != b[i])
      return false;
  return true;
}

/// The dimensions of an LSE view in its [batch, heads, seq] order.
void lseExtents(const AttentionState &s, int64_t extents[3]) {
  extents[0] = s.shape[0];
  extents[1] = s.shape[2];
  extents[2] = s.shape[1];
}

Status checkState(const Named &x, bool isOutput) {
  const AttentionState &s = *x.state;
  const std::string n = x.name;
  if (static_cast<uint8_t>(s.type) > static_cast<uint8_t>(StateType::kF32))
    return invalidArgument(n + ".dtype: expected FP_DTYPE_BF16 (0), "
                               "FP_DTYPE_F16 (1) or FP_DTYPE_F32 (2), got " +
                           str(static_cast<uint8_t>(s.type)));
  if (!s.o)
    return invalidArgument(n + ".o.data: expected a pointer, got NULL");
  if (reinterpret_cast<uintptr_t>(s.o) % uintptr_t(elementBytes(s.type)))
    return invalidArgument(n + ".o.data: expected a pointer aligned to " +
                           str(elementBytes(s.type)) + " bytes (one " +
                           stateTypeName(s.type) + " element)");
  if (s.strides[3] != 1)
    return invalidArgument(n + ".o.strides[3]: expected 1 (contiguous head "
                               "dim), got " +
                           str(s.strides[3]));
  for (int i = 0; i < 3; ++i)
    if (s.strides[i] < 0)
      return invalidArgument(n + ".o.strides[" + str(i) +
                             "]: expected >= 0, got " + str(s.strides[i]));
  if (!s.lse && !isOutput)
    return invalidArgument(n + ".lse: expected a pointer to the [b, h, s] "
                               "fp32 log-sum-exp, got NULL");
  if (s.lse && reinterpret_cast<uintptr_t>(s.lse) % 4)
    return invalidArgument(n + ".lse: expected a 4-byte aligned pointer");
  for (int i = 0; i < 3; ++i)
    if (s.lseStrides[i] < 0)
      return invalidArgument(n + ".lse_strides[" + str(i) +
                             "]: expected >= 0, got " +
                             str(s.lseStrides[i]));
  return Status::ok();
}

} // namespace

const char *stateTypeName(StateType type) {
  switch (type) {
  case StateType::kBF16:
    return "bf16";
  case StateType::kF16:
    return "f16";
  case StateType::kF32:
    return "f32";
  }
  return "unknown";
}

MergeRow mergeRow(float lseA, float lseB) {
  MergeRow row;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  if (std::isnan(lseA) || std::isnan(lseB)) {
    row.kind = MergeRow::kNaN;
    row.lse = nan;
    return row;
  }
  // +inf and -inf both mean "no key" (FlashAttention-2 writes +inf there,
  // FlashAttention-3 and this library -inf); a finite LSE never is either.
  const bool emptyA = std::isinf(lseA), emptyB = std::isinf(lseB);
  if (emptyA && emptyB) {
    row.kind = MergeRow::kEmpty;
    row.lse = -std::numeric_limits<float>::infinity();
  } else if (emptyB) {
    row.kind = MergeRow::kOnlyA;
    row.lse = lseA;
  } else if (emptyA) {
    row.kind = MergeRow::kOnlyB;
    row.lse = lseB;
  } else {
    row.kind = MergeRow::kBoth;
    const float m = std::max(lseA, lseB);
    row.wA = std::exp(lseA - m); // one of the two is exp(0) = 1
    row.wB = std::exp(lseB - m);
    row.sum = row.wA + row.wB; // in [1, 2]
    row.lse = m + std::log(row.sum);
  }
  return row;
}

Status validateMergeStates(const AttentionState &a, const AttentionState &b,
                           const AttentionState &out) {
  const Named named[3] = {{&a, "a"}, {&b, "b"}, {&out, "out"}};
  for (int i = 0; i < 4; ++i)
    if (a.shape[i] < 0)
      return invalidArgument("a.o.shape[" + str(i) + "]: expected >= 0, got " +
                             str(a.shape[i]));
  for (const Named &x : {named[1], named[2]})
    for (int i = 0; i < 4; ++i)
      if (x.state->shape[i] != a.shape[i])
        return invalidArgument(std::string(x.name) + ".o.shape[" + str(i) +
                               "]: expected " + str(a.shape[i]) +
                               " (a.o.shape[" + str(i) + "]), got " +
                               str(x.state->shape[i]));
  for (int k = 0; k < 3; ++k)
    FP_RETURN_IF_ERROR(checkState(named[k], /*isOutput=*/k == 2));

  // Spans: O of each state, LSE of each (out's may be absent).
  int64_t lseExt[3];
  lseExtents(a, lseExt);
  Span oSpan[3], lseSpan[3];
  for (int k = 0; k < 3; ++k) {
    const AttentionState &s = *named[k].state;
    const std::string n = named[k].name;
    auto o = spanOf(s.o, s.shape, s.strides, 4,
                    elementBytes(s.type), n + ".o");
    if (!o.isOk())
      return o.status();
    oSpan[k] = *o;
    if (s.lse) {
      auto l = spanOf(s.lse, lseExt, s.lseStrides, 3, 4, n + ".lse");
      if (!l.isOk())
        return l.status();
      lseSpan[k] = *l;
    }
  }
  FP_RETURN_IF_ERROR(checkNoSelfOverlap(out.shape, out.strides, 4, "out.o"));
  if (out.lse)
    FP_RETURN_IF_ERROR(
        checkNoSelfOverlap(lseExt, out.lseStrides, 3, "out.lse"));

  // out.o: exactly a.o / b.o (in place), else disjoint from every view.
  for (int k = 0; k < 2; ++k) {
    const AttentionState &s = *named[k].state;
    const bool same = s.o == out.o && s.type == out.type &&
                      sameStrides(out.shape, s.strides, out.strides, 3);
    if (!same && oSpan[k].overlaps(oSpan[2]))
      return invalidArgument(
          std::string("out.o: expected memory disjoint from ") + named[k].name +
          ".o, or exactly " + named[k].name +
          ".o (merging in place: the same data, dtype and strides), got an "
          "overlapping view");
    if (lseSpan[k].overlaps(oSpan[2]))
      return invalidArgument(std::string("out.o: expected memory disjoint "
                                         "from ") +
                             named[k].name + ".lse, got an overlapping view");
  }
  if (out.lse) {
    if (lseSpan[2].overlaps(oSpan[2]))
      return invalidArgument("out.lse: expected memory disjoint from out.o, "
                             "got an overlapping view");
    for (int k = 0; k < 2; ++k) {
      const AttentionState &s = *named[k].state;
      const bool same = s.lse == out.lse &&
                        sameStrides(lseExt, s.lseStrides, out.lseStrides, 3);
      if (!same && lseSpan[k].overlaps(lseSpan[2]))
        return invalidArgument(
            std::string("out.lse: expected memory disjoint from ") +
            named[k].name + ".lse, or exactly " + named[k].name +
            ".lse (merging in place: the same pointer and strides), got an "
            "overlapping view");
      if (oSpan[k].overlaps(lseSpan[2]))
        return invalidArgument(std::string("out.lse: expected memory "
                                           "disjoint from ") +
                               named[k].name + ".o, got an overlapping view");
    }
  }
  return Status::ok();
}

Status mergeStates(const AttentionState &a, const AttentionState &b,
                   const AttentionState &out, int numThreads) {
  FP_RETURN_IF_ERROR(validateMergeStates(a, b, out));
  const int64_t batch = a.shape[0], seq = a.shape[1], heads = a.shape[2],
                dim = a.shape[3];
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto oIndex = [](const AttentionState &s, int64_t bi, int64_t si,
                   int64_t hi) {
    return bi * s.strides[0] + si * s.strides[1] + hi * s.strides[2];
  };
  auto lseIndex = [](const AttentionState &s, int64_t bi, int64_t si,
                     int64_t hi) {
    return bi * s.lseStrides[0] + hi * s.lseStrides[1] + si * s.lseStrides[2];
  };
  // One task per (batch, seq) position; rows are independent, and a row
  // reads every input it needs before writing (in-place merging).
  detail::parallelFor(batch * seq, numThreads, [&](int64_t task, int) {
    const int64_t bi = task / seq, si = task % seq;
    for (int64_t hi = 0; hi < heads; ++hi) {
      const MergeRow row = mergeRow(a.lse[lseIndex(a, bi, si, hi)],
                                    b.lse[lseIndex(b, bi, si, hi)]);
      const int64_t ia = oIndex(a, bi, si, hi), ib = oIndex(b, bi, si, hi),
                    io = oIndex(out, bi, si, hi);
      for (int64_t c = 0; c < dim; ++c) {
        switch (row.kind) {
        case MergeRow::kNaN:
          storeElement(out.type, out.o, io + c, nan);
          break;
        case MergeRow::kEmpty:
          storeElement(out.type, out.o, io + c, 0.0f);
          break;
        case MergeRow::kOnlyA:
          copyElement(a.type, a.o, ia + c, out.type, out.o, io + c);
          break;
        case MergeRow::kOnlyB:
          copyElement(b.type, b.o, ib + c, out.type, out.o, io + c);
          break;
        case MergeRow::kBoth: {
          const float va = loadElement(a.type, a.o, ia + c);
          const float vb = loadElement(b.type, b.o, ib + c);
          storeElement(out.type, out.o, io + c,
                       (row.wA * va + row.wB * vb) / row.sum);
          break;
        }
        }
      }
      if (out.lse)
        out.lse[lseIndex(out, bi, si, hi)] = row.lse;
    }
  });
  return Status::ok();
}

} // namespace fp::ref
