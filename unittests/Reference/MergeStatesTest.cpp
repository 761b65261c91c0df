//===- MergeStatesTest.cpp - Merging two attention states -------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// ref::mergeStates (docs/merge-states.md): attention split over two key sets
// and merged equals attention over their union; the per-row formula
// restated bit for bit for every dtype combination; the edge rows (-inf,
// +inf, NaN) exactly; in place; every LSE layout; bad inputs named with
// nothing written.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace fp::ref {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

/// An owning state: O [b, s, h, d] contiguous in `type`, LSE [b, h, s].
struct OwnedState {
  StateType type;
  int64_t b, s, h, d;
  std::vector<uint16_t> o16;
  std::vector<float> o32, lse;

  OwnedState(StateType t, int64_t batch, int64_t seq, int64_t heads,
             int64_t dim)
      : type(t), b(batch), s(seq), h(heads), d(dim) {
    const size_t n = size_t(b * s * h * d);
    if (type == StateType::kF32)
      o32.assign(n, 0.0f);
    else
      o16.assign(n, 0);
    lse.assign(size_t(b * h * s), 0.0f);
  }
  DType dtype() const {
    return type == StateType::kBF16 ? DType::kBF16 : DType::kF16;
  }
  int64_t index(int64_t bi, int64_t si, int64_t hi, int64_t c) const {
    return ((bi * s + si) * h + hi) * d + c;
  }
  float get(int64_t bi, int64_t si, int64_t hi, int64_t c) const {
    const int64_t i = index(bi, si, hi, c);
    return type == StateType::kF32 ? o32[size_t(i)]
                                   : bitsToFloat(dtype(), o16[size_t(i)]);
  }
  uint32_t bits(int64_t bi, int64_t si, int64_t hi, int64_t c) const {
    const int64_t i = index(bi, si, hi, c);
    if (type != StateType::kF32)
      return o16[size_t(i)];
    uint32_t x;
    std::memcpy(&x, &o32[size_t(i)], 4);
    return x;
  }
  void set(int64_t bi, int64_t si, int64_t hi, int64_t c, float v) {
    const int64_t i = index(bi, si, hi, c);
    if (type == StateType::kF32)
      o32[size_t(i)] = v;
    else
      o16[size_t(i)] = floatToBits(dtype(), v);
  }
  float &lseAt(int64_t bi, int64_t si, int64_t hi) {
    return lse[size_t((bi * h + hi) * s + si)];
  }
  AttentionState view() {
    AttentionState st;
    st.o = type == StateType::kF32 ? static_cast<void *>(o32.data())
                                   : static_cast<void *>(o16.data());
    st.type = type;
    const int64_t shape[4] = {b, s, h, d};
    const int64_t strides[4] = {s * h * d, h * d, d, 1};
    std::copy(shape, shape + 4, st.shape);
    std::copy(strides, strides + 4, st.strides);
    st.lse = lse.data();
    st.lseStrides[0] = h * s;
    st.lseStrides[1] = s;
    st.lseStrides[2] = 1;
    return st;
  }
};

/// Seeded O values and LSEs in a realistic range (|lse| up to ~30).
void fillRandom(OwnedState &x, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t bi = 0; bi < x.b; ++bi)
    for (int64_t si = 0; si < x.s; ++si)
      for (int64_t hi = 0; hi < x.h; ++hi) {
        x.lseAt(bi, si, hi) = 8.0f * normal(rng);
        for (int64_t c = 0; c < x.d; ++c)
          x.set(bi, si, hi, c, normal(rng));
      }
}

uint32_t floatBits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, 4);
  return b;
}

//===----------------------------------------------------------------------===//
// Against attention over the union of the keys
//===----------------------------------------------------------------------===//

/// A block mask keeping, in each row I, the causal blocks j <= I with
/// keep(I, j).
template <typename Keep>
BlockMask maskWhere(int64_t heads, int64_t nb, Keep keep) {
  BlockMask m = BlockMask::empty(1, heads, nb);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < nb; ++i) {
      int32_t n = 0;
      for (int64_t j = 0; j <= i; ++j)
        if (keep(i, j))
          m.ids[size_t(((h * nb) + i) * nb + n++)] = int32_t(j);
      m.counts[size_t(h * nb + i)] = n;
    }
  return m;
}

AttentionState stateOf(AttentionOutput &x, int64_t heads) {
  AttentionState st;
  Tensor &t = x.out;
  st.o = t.storage().data();
  st.type = t.dtype() == DType::kBF16 ? StateType::kBF16 : StateType::kF16;
  const int64_t shape[4] = {t.batch(), t.seq(), t.heads(), t.dim()};
  const int64_t strides[4] = {t.seq() * t.heads() * t.dim(),
                              t.heads() * t.dim(), t.dim(), 1};
  std::copy(shape, shape + 4, st.shape);
  std::copy(strides, strides + 4, st.strides);
  st.lse = x.lse.data();
  st.lseStrides[0] = heads * t.seq();
  st.lseStrides[1] = t.seq();
  st.lseStrides[2] = 1;
  return st;
}

// Keys split into an early set (blocks below `split`, and a scattered set
// of later blocks) and the rest; each half attended with a hand-made mask,
// merged, equals attention over every causal key. The rows of the first
// blocks see no key of the second set (LSE -inf there): they must come out
// as the first set's attention exactly.
//
// Tolerance, per element: both sides round P to bf16 before PV (at most
// 2^-9 max|v| each), the partial outputs are rounded to bf16 (2^-9 |O_x| <=
// 2^-9 max|v|) and both results are rounded once more (2^-9 |O| each):
// |merged - unsplit| <= 5 * 2^-9 * max|v|; 6 * 2^-9 leaves room for the fp32
// sums. LSEs are fp32 sums of the same terms in another grouping: relative
// 1e-5.
TEST(MergeStates, SplitKeysMergedEqualUnsplitAttention) {
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    const int64_t seq = 200, hq = 4, hkv = 2, d = 32, block = 16;
    Options o = test::plainOptions(int(block), 0.0f);
    Tensor q = test::randomTensor(dtype, 1, seq, hq, d, 1, 1.5f);
    Tensor k = test::randomTensor(dtype, 1, seq, hkv, d, 2, 1.5f);
    Tensor v = test::randomTensor(dtype, 1, seq, hkv, d, 3);
    const int64_t nb = numBlocks(seq, block), split = 3;
    auto inFirst = [&](int64_t, int64_t j) { return j < split || j % 4 == 1; };
    BlockMask first = maskWhere(hq, nb, inFirst);
    BlockMask second = maskWhere(
        hq, nb, [&](int64_t i, int64_t j) { return !inFirst(i, j); });
    BlockMask all = maskWhere(hq, nb, [](int64_t, int64_t) { return true; });
    auto a = maskedAttention(q.view(), k.view(), v.view(), first, o);
    auto b = maskedAttention(q.view(), k.view(), v.view(), second, o);
    auto whole = maskedAttention(q.view(), k.view(), v.view(), all, o);
    ASSERT_TRUE(a.isOk() && b.isOk() && whole.isOk());

    OwnedState merged(dtype == DType::kBF16 ? StateType::kBF16
                                            : StateType::kF16,
                      1, seq, hq, d);
    ASSERT_TRUE(
        mergeStates(stateOf(*a, hq), stateOf(*b, hq), merged.view()).isOk());

    float maxV = 0;
    for (uint16_t x : v.storage())
      maxV = std::max(maxV, std::fabs(bitsToFloat(dtype, x)));
    const float tol = 6.0f * std::ldexp(1.0f, -9) * maxV;
    int onlyFirstRows = 0;
    for (int64_t s = 0; s < seq; ++s)
      for (int64_t h = 0; h < hq; ++h) {
        const float lseB = b->lse[size_t(h * seq + s)];
        const float lseW = whole->lse[size_t(h * seq + s)];
        if (std::isinf(lseB)) { // no key of the second set: a, exactly
          ++onlyFirstRows;
          EXPECT_EQ(floatBits(merged.lseAt(0, s, h)),
                    floatBits(a->lse[size_t(h * seq + s)]));
          for (int64_t c = 0; c < d; ++c)
            ASSERT_EQ(merged.bits(0, s, h, c),
                      a->out.storage()[size_t((s * hq + h) * d + c)]);
          continue;
        }
        EXPECT_NEAR(merged.lseAt(0, s, h), lseW,
                    1e-5f * std::max(1.0f, std::fabs(lseW)))
            << "row " << s << " head " << h;
        for (int64_t c = 0; c < d; ++c)
          ASSERT_NEAR(merged.get(0, s, h, c), whole->out.at(0, s, h, c), tol)
              << dtypeName(dtype) << " row " << s << " head " << h << " c "
              << c;
      }
    // The rows of the first `split` query blocks see no key of the second
    // set: the edge case is exercised, not just possible.
    EXPECT_GE(onlyFirstRows, int(block * hq));
  }
}

//===----------------------------------------------------------------------===//
// The formula, restated
//===----------------------------------------------------------------------===//

/// out's element as the documented formula gives it (-ffp-contract=off).
float formula(float la, float lb, float va, float vb) {
  const float m = std::max(la, lb);
  const float wa = std::exp(la - m), wb = std::exp(lb - m);
  return (wa * va + wb * vb) / (wa + wb);
}

// Every combination of bf16 / f16 / f32 for a, b and out: each element is
// the formula rounded once to out's type, each LSE m + log(wa + wb), bit for
// bit.
TEST(MergeStates, FormulaBitForBitForEveryTypeCombination) {
  const StateType types[] = {StateType::kBF16, StateType::kF16,
                             StateType::kF32};
  for (StateType ta : types)
    for (StateType tb : types)
      for (StateType to : types) {
        OwnedState a(ta, 2, 7, 3, 24), b(tb, 2, 7, 3, 24),
            out(to, 2, 7, 3, 24);
        fillRandom(a, 11);
        fillRandom(b, 12);
        ASSERT_TRUE(mergeStates(a.view(), b.view(), out.view(), 3).isOk());
        for (int64_t bi = 0; bi < 2; ++bi)
          for (int64_t si = 0; si < 7; ++si)
            for (int64_t hi = 0; hi < 3; ++hi) {
              const float la = a.lseAt(bi, si, hi), lb = b.lseAt(bi, si, hi);
              const float m = std::max(la, lb);
              const float sum = std::exp(la - m) + std::exp(lb - m);
              ASSERT_EQ(floatBits(out.lseAt(bi, si, hi)),
                        floatBits(m + std::log(sum)));
              for (int64_t c = 0; c < 24; ++c) {
                OwnedState expect(to, 1, 1, 1, 1);
                expect.set(0, 0, 0, 0,
                           formula(la, lb, a.get(bi, si, hi, c),
                                   b.get(bi, si, hi, c)));
                ASSERT_EQ(out.bits(bi, si, hi, c), expect.bits(0, 0, 0, 0))
                    << stateTypeName(ta) << "+" << stateTypeName(tb) << "->"
                    << stateTypeName(to);
              }
            }
      }
}

// Equal LSEs: O is the plain mean and LSE grows by log 2; a state merged
// with itself gives itself back (for bf16 exactly: (x + x) / 2 = x).
TEST(MergeStates, EqualWeightsAndSelfMerge) {
  OwnedState a(StateType::kBF16, 1, 5, 2, 16), out(StateType::kBF16, 1, 5, 2,
                                                    16);
  fillRandom(a, 5);
  ASSERT_TRUE(mergeStates(a.view(), a.view(), out.view()).isOk());
  for (int64_t si = 0; si < 5; ++si)
    for (int64_t hi = 0; hi < 2; ++hi) {
      EXPECT_EQ(out.lseAt(0, si, hi),
                a.lseAt(0, si, hi) + std::log(2.0f));
      for (int64_t c = 0; c < 16; ++c)
        ASSERT_EQ(out.bits(0, si, hi, c), a.bits(0, si, hi, c));
    }
}

//===----------------------------------------------------------------------===//
// Edge rows
//===----------------------------------------------------------------------===//

// Row by row: both -inf (or +inf, FlashAttention-2's empty row) -> O = 0,
// LSE = -inf; one empty -> the other exactly, with the empty side's O never
// read (NaN there stays out); NaN -> NaN; never NaN otherwise.
TEST(MergeStates, EdgeRowsAreExact) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Row {
    float la, lb;
  } rows[] = {{-kInf, -kInf}, {kInf, kInf},  {-kInf, kInf}, {-kInf, 2.5f},
              {3.0f, -kInf},  {kInf, -1.0f}, {4.0f, kInf},  {nan, 1.0f},
              {1.0f, nan},    {nan, -kInf},  {1e30f, -1e30f}};
  const int64_t n = int64_t(std::size(rows)), d = 8;
  for (StateType to : {StateType::kBF16, StateType::kF32}) {
    OwnedState a(StateType::kBF16, 1, n, 1, d), b(StateType::kF32, 1, n, 1, d),
        out(to, 1, n, 1, d);
    for (int64_t r = 0; r < n; ++r) {
      a.lseAt(0, r, 0) = rows[r].la;
      b.lseAt(0, r, 0) = rows[r].lb;
      for (int64_t c = 0; c < d; ++c) {
        // The empty side holds garbage: NaN, what an unwritten row may hold.
        a.set(0, r, 0, c, std::isinf(rows[r].la) ? nan : 0.5f + float(c));
        b.set(0, r, 0, c,
              std::isinf(rows[r].lb) ? nan : 1.0f / 3.0f + float(c));
      }
    }
    ASSERT_TRUE(mergeStates(a.view(), b.view(), out.view()).isOk());
    for (int64_t r = 0; r < n; ++r) {
      const float la = rows[r].la, lb = rows[r].lb;
      const float lse = out.lseAt(0, r, 0);
      for (int64_t c = 0; c < d; ++c) {
        const float o = out.get(0, r, 0, c);
        if (std::isnan(la) || std::isnan(lb)) {
          EXPECT_TRUE(std::isnan(o) && std::isnan(lse)) << r;
        } else if (std::isinf(la) && std::isinf(lb)) {
          EXPECT_EQ(out.bits(0, r, 0, c), 0u) << r; // +0
          EXPECT_EQ(lse, -kInf) << r;
        } else if (std::isinf(lb)) {
          EXPECT_EQ(o, a.get(0, r, 0, c)) << r; // bf16 fits any out type
          EXPECT_EQ(floatBits(lse), floatBits(la)) << r;
        } else if (std::isinf(la)) {
          OwnedState rounded(to, 1, 1, 1, 1);
          rounded.set(0, 0, 0, 0, b.get(0, r, 0, c));
          EXPECT_EQ(out.bits(0, r, 0, c), rounded.bits(0, 0, 0, 0)) << r;
          EXPECT_EQ(floatBits(lse), floatBits(lb)) << r;
        } else {
          EXPECT_FALSE(std::isnan(o) || std::isnan(lse)) << r;
          EXPECT_EQ(lse, la); // lb is 2e30 below: its weight is 0
        }
      }
    }
  }
}

// One side empty, same types: O is copied bit for bit (NaN payloads and
// signed zeros included), whatever the other side holds.
TEST(MergeStates, EmptySideCopiesTheOtherBitForBit) {
  OwnedState a(StateType::kF16, 1, 3, 1, 4), b(StateType::kF16, 1, 3, 1, 4),
      out(StateType::kF16, 1, 3, 1, 4);
  const uint16_t payloads[] = {0x7d01, 0x8000, 0x0001, 0xfc00};
  for (int64_t r = 0; r < 3; ++r) {
    a.lseAt(0, r, 0) = 0.25f * float(r);
    b.lseAt(0, r, 0) = -kInf;
    for (int64_t c = 0; c < 4; ++c)
      a.o16[size_t(a.index(0, r, 0, c))] = payloads[c];
  }
  ASSERT_TRUE(mergeStates(a.view(), b.view(), out.view()).isOk());
  EXPECT_EQ(out.o16, a.o16);
  EXPECT_EQ(out.lse, a.lse);
}

//===----------------------------------------------------------------------===//
// In place, layouts, threads
//===----------------------------------------------------------------------===//

// out == a (O and LSE) gives the out-of-place result bit for bit; so does
// out == b.
TEST(MergeStates, InPlaceEqualsOutOfPlace) {
  for (int side = 0; side < 2; ++side) {
    OwnedState a(StateType::kBF16, 2, 33, 4, 40),
        b(StateType::kBF16, 2, 33, 4, 40), expect(StateType::kBF16, 2, 33, 4, 40);
    fillRandom(a, 21);
    fillRandom(b, 22);
    a.lseAt(1, 3, 2) = -kInf;
    b.lseAt(0, 5, 1) = -kInf;
    ASSERT_TRUE(mergeStates(a.view(), b.view(), expect.view(), 4).isOk());
    OwnedState &acc = side == 0 ? a : b;
    ASSERT_TRUE(mergeStates(a.view(), b.view(), acc.view(), 4).isOk());
    EXPECT_EQ(acc.o16, expect.o16) << "side " << side;
    EXPECT_EQ(acc.lse, expect.lse) << "side " << side;
  }
}

// The LSE layouts of the library's calls, through strides: varlen
// [h, total_q] (batch 1), dense [b, h, s], and FlashInfer's token-major
// [total_q, h]; strided (non-contiguous) O views too. Same numbers in each.
TEST(MergeStates, LseLayoutsAndStridedViews) {
  const int64_t n = 37, h = 3, d = 16;
  OwnedState a(StateType::kF32, 1, n, h, d), b(StateType::kF32, 1, n, h, d),
      expect(StateType::kF32, 1, n, h, d);
  fillRandom(a, 31);
  fillRandom(b, 32);
  ASSERT_TRUE(mergeStates(a.view(), b.view(), expect.view()).isOk());

  // Token-major LSE [n, h] and O interleaved in a [n, h, 2d] buffer.
  std::vector<float> laT(size_t(n * h)), lbT(size_t(n * h)),
      outLse(size_t(n * h), 7.0f), outO(size_t(n * h * 2 * d), 7.0f);
  for (int64_t s = 0; s < n; ++s)
    for (int64_t hi = 0; hi < h; ++hi) {
      laT[size_t(s * h + hi)] = a.lseAt(0, s, hi);
      lbT[size_t(s * h + hi)] = b.lseAt(0, s, hi);
    }
  AttentionState sa = a.view(), sb = b.view(), so;
  sa.lse = laT.data();
  sb.lse = lbT.data();
  for (AttentionState *st : {&sa, &sb}) {
    st->lseStrides[0] = 0;
    st->lseStrides[1] = 1;
    st->lseStrides[2] = h;
  }
  so = sa;
  so.o = outO.data() + d; // the second half of each [2d] row
  so.strides[0] = 0;
  so.strides[1] = h * 2 * d;
  so.strides[2] = 2 * d;
  so.lse = outLse.data();
  ASSERT_TRUE(mergeStates(sa, sb, so).isOk());
  for (int64_t s = 0; s < n; ++s)
    for (int64_t hi = 0; hi < h; ++hi) {
      EXPECT_EQ(outLse[size_t(s * h + hi)], expect.lseAt(0, s, hi));
      for (int64_t c = 0; c < d; ++c) {
        EXPECT_EQ(outO[size_t((s * h + hi) * 2 * d + d + c)],
                  expect.get(0, s, hi, c));
        EXPECT_EQ(outO[size_t((s * h + hi) * 2 * d + c)], 7.0f); // untouched
      }
    }
}

// Results do not depend on the thread count.
TEST(MergeStates, ThreadCountDoesNotMatter) {
  OwnedState a(StateType::kF16, 3, 50, 2, 8), b(StateType::kBF16, 3, 50, 2, 8);
  fillRandom(a, 41);
  fillRandom(b, 42);
  OwnedState one(StateType::kBF16, 3, 50, 2, 8), many(StateType::kBF16, 3, 50,
                                                      2, 8);
  ASSERT_TRUE(mergeStates(a.view(), b.view(), one.view(), 1).isOk());
  ASSERT_TRUE(mergeStates(a.view(), b.view(), many.view(), 7).isOk());
  EXPECT_EQ(one.o16, many.o16);
  EXPECT_EQ(one.lse, many.lse);
}

// Cascade: merging three fp32 states in either grouping agrees to fp32
// rounding (the merge is associative in exact arithmetic).
TEST(MergeStates, CascadeOrderAgrees) {
  OwnedState a(StateType::kF32, 1, 20, 2, 8), b(StateType::kF32, 1, 20, 2, 8),
      c(StateType::kF32, 1, 20, 2, 8);
  fillRandom(a, 51);
  fillRandom(b, 52);
  fillRandom(c, 53);
  OwnedState ab(StateType::kF32, 1, 20, 2, 8), abc1(StateType::kF32, 1, 20, 2,
                                                    8),
      bc(StateType::kF32, 1, 20, 2, 8), abc2(StateType::kF32, 1, 20, 2, 8);
  ASSERT_TRUE(mergeStates(a.view(), b.view(), ab.view()).isOk());
  ASSERT_TRUE(mergeStates(ab.view(), c.view(), abc1.view()).isOk());
  ASSERT_TRUE(mergeStates(b.view(), c.view(), bc.view()).isOk());
  ASSERT_TRUE(mergeStates(a.view(), bc.view(), abc2.view()).isOk());
  for (size_t i = 0; i < abc1.o32.size(); ++i)
    EXPECT_NEAR(abc1.o32[i], abc2.o32[i], 1e-5f);
  for (size_t i = 0; i < abc1.lse.size(); ++i)
    EXPECT_NEAR(abc1.lse[i], abc2.lse[i], 1e-5f * std::fabs(abc1.lse[i]) + 1e-6f);
}

//===----------------------------------------------------------------------===//
// Bad inputs
//===----------------------------------------------------------------------===//

// Every rule of validateMergeStates names the argument; out and out.lse
// keep their poison.
TEST(MergeStates, BadInputsAreNamedAndNothingIsWritten) {
  OwnedState a(StateType::kBF16, 1, 6, 2, 8), b(StateType::kBF16, 1, 6, 2, 8),
      out(StateType::kF32, 1, 6, 2, 8);
  fillRandom(a, 61);
  fillRandom(b, 62);
  std::fill(out.o32.begin(), out.o32.end(), 99.0f);
  std::fill(out.lse.begin(), out.lse.end(), 99.0f);
  struct Case {
    const char *what;
    std::function<void(AttentionState &, AttentionState &, AttentionState &)>
        edit;
    const char *message;
  };
  const Case cases[] = {
      {"shape", [](auto &, auto &sb, auto &) { sb.shape[1] = 5; },
       "b.o.shape[1]: expected 6 (a.o.shape[1]), got 5"},
      {"out shape", [](auto &, auto &, auto &so) { so.shape[3] = 9; },
       "out.o.shape[3]: expected 8 (a.o.shape[3]), got 9"},
      {"negative", [](auto &sa, auto &sb, auto &so) {
         sa.shape[0] = sb.shape[0] = so.shape[0] = -1; },
       "a.o.shape[0]: expected >= 0, got -1"},
      {"dtype", [](auto &sa, auto &, auto &) { sa.type = StateType(3); },
       "a.dtype: expected FP_DTYPE_BF16 (0), FP_DTYPE_F16 (1) or "
       "FP_DTYPE_F32 (2), got 3"},
      {"null o", [](auto &, auto &sb, auto &) { sb.o = nullptr; },
       "b.o.data: expected a pointer, got NULL"},
      {"null lse", [](auto &sa, auto &, auto &) { sa.lse = nullptr; },
       "a.lse: expected a pointer to the [b, h, s] fp32 log-sum-exp, got NULL"},
      {"misaligned", [](auto &, auto &, auto &so) {
         so.o = static_cast<char *>(so.o) + 2; },
       "out.o.data: expected a pointer aligned to 4 bytes (one f32 element)"},
      {"misaligned lse", [](auto &, auto &sb, auto &) {
         sb.lse = reinterpret_cast<float *>(reinterpret_cast<char *>(sb.lse) + 1); },
       "b.lse: expected a 4-byte aligned pointer"},
      {"inner stride", [](auto &sa, auto &, auto &) { sa.strides[3] = 2; },
       "a.o.strides[3]: expected 1 (contiguous head dim), got 2"},
      {"negative stride", [](auto &, auto &, auto &so) { so.strides[1] = -16; },
       "out.o.strides[1]: expected >= 0, got -16"},
      {"lse stride", [](auto &, auto &sb, auto &) { sb.lseStrides[2] = -1; },
       "b.lse_strides[2]: expected >= 0, got -1"},
      {"self overlap", [](auto &, auto &, auto &so) { so.strides[2] = 4; },
       "out.o: expected a view whose elements do not overlap"},
      {"lse self overlap", [](auto &, auto &, auto &so) { so.lseStrides[1] = 0; },
       "out.lse: expected a view whose elements do not overlap"},
      {"overflow", [](auto &sa, auto &sb, auto &so) {
         sa.shape[0] = sb.shape[0] = so.shape[0] = 3; sa.strides[0] = int64_t(1) << 62; },
       "a.o: expected a view within 2^63 elements"},
  };
  for (const Case &c : cases) {
    AttentionState sa = a.view(), sb = b.view(), so = out.view();
    c.edit(sa, sb, so);
    Status st = mergeStates(sa, sb, so);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(st.message().find(c.message), std::string::npos)
        << c.what << ": " << st.message();
  }
  for (float x : out.o32)
    ASSERT_EQ(x, 99.0f);
  for (float x : out.lse)
    ASSERT_EQ(x, 99.0f);
}

// Aliasing: in place needs the exact view; any other overlap is named.
TEST(MergeStates, OverlapOtherThanInPlaceIsNamed) {
  OwnedState a(StateType::kF32, 1, 6, 2, 8), b(StateType::kF32, 1, 6, 2, 8);
  fillRandom(a, 71);
  fillRandom(b, 72);
  const std::vector<float> aO = a.o32, aL = a.lse;
  struct Case {
    const char *what;
    std::function<void(AttentionState &, const AttentionState &,
                       const AttentionState &)>
        make;
    const char *message;
  };
  const Case cases[] = {
      {"shifted by one row", [](auto &so, const auto &sa, const auto &) {
         so = sa; so.o = static_cast<float *>(sa.o) + 8; so.lse = nullptr; },
       "out.o: expected memory disjoint from a.o, or exactly a.o"},
      {"other dtype in place", [](auto &so, const auto &, const auto &sb) {
         so = sb; so.type = StateType::kBF16; so.lse = nullptr; },
       "out.o: expected memory disjoint from b.o, or exactly b.o"},
      {"other strides in place", [](auto &so, const auto &sa, const auto &) {
         so = sa; so.strides[1] = 8; so.strides[2] = 48; so.lse = nullptr; },
       "out.o: expected memory disjoint from a.o, or exactly a.o"},
      {"lse shifted", [](auto &so, const auto &sa, const auto &) {
         so.lse = sa.lse + 1; },
       "out.lse: expected memory disjoint from a.lse, or exactly a.lse"},
      {"o over lse", [](auto &so, const auto &sa, const auto &) {
         so.o = sa.lse; so.lse = nullptr; },
       "out.o: expected memory disjoint from a.lse"},
      {"lse over o", [](auto &so, const auto &, const auto &sb) {
         so.lse = static_cast<float *>(sb.o) + 3; },
       "out.lse: expected memory disjoint from b.o"},
      {"lse over own o", [](auto &so, const auto &, const auto &) {
         so.lse = static_cast<float *>(so.o); },
       "out.lse: expected memory disjoint from out.o"},
  };
  for (const Case &c : cases) {
    OwnedState scratch(StateType::kF32, 1, 6, 2, 8);
    AttentionState sa = a.view(), sb = b.view(), so = scratch.view();
    c.make(so, sa, sb);
    Status st = mergeStates(sa, sb, so);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(st.message().find(c.message), std::string::npos)
        << c.what << ": " << st.message();
  }
  EXPECT_EQ(a.o32, aO);
  EXPECT_EQ(a.lse, aL);
}

// An empty view has no elements to overlap: an out with a zero extent is
// accepted whatever its strides (a 0 stride, or INT64_MAX ones whose
// products used to overflow in the self-overlap check: undefined
// behaviour, found by fp-fuzz-capi, corpus/capi/regression-merge-empty-
// huge-strides), and nothing is written.
TEST(MergeStates, EmptyOutAcceptsAnyStrides) {
  OwnedState a(StateType::kBF16, 1, 2, 2, 3), b(StateType::kBF16, 1, 2, 2, 3),
      out(StateType::kBF16, 1, 2, 2, 3);
  std::fill(out.o16.begin(), out.o16.end(), uint16_t(0x7777));
  std::fill(out.lse.begin(), out.lse.end(), 7.0f);
  const int64_t huge = std::numeric_limits<int64_t>::max();
  for (int64_t stride : {int64_t(0), huge}) {
    AttentionState sa = a.view(), sb = b.view(), so = out.view();
    for (AttentionState *x : {&sa, &sb, &so})
      x->shape[0] = 0;
    so.strides[1] = stride;
    so.strides[2] = stride;
    so.lseStrides[1] = stride;
    so.lseStrides[2] = stride;
    Status st = mergeStates(sa, sb, so);
    EXPECT_TRUE(st.isOk()) << "stride " << stride << ": " << st.message();
  }
  for (uint16_t x : out.o16)
    EXPECT_EQ(x, 0x7777);
  for (float x : out.lse)
    EXPECT_EQ(x, 7.0f);
}

} // namespace
} // namespace fp::ref
