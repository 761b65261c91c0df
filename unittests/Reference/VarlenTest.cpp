//===- VarlenTest.cpp - Engine shapes in the reference ----------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// docs/semantics.md section 2, "Consequences", one test each: prefix 0 is
// rule v1 bit for bit; B-aligned chunks (last_n on the final chunk only)
// keep the whole prompt's blocks and outputs; paged equals packed for every
// page size and page order; a packed batch equals one call per sequence.
// Non-aligned prefixes are checked against brute-force restatements of the
// visibility rule and against the fp64 truth. Every bad input is a named
// error. Inputs are structured (attention-like), never zeros.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"

#include "flashprefill/structured_inputs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>

using namespace fp;
using namespace fp::ref;
using namespace fp::ref::test;

namespace {

using Ids = std::vector<int32_t>;

constexpr int kBlock = 16;
constexpr int64_t kQHeads = 4, kKvHeads = 2, kDim = 64;

/// A whole prompt [1, len, h, d] of structured inputs.
struct Prompt {
  int64_t len = 0;
  std::vector<uint16_t> q, k, v;

  explicit Prompt(int64_t length, uint64_t seed) : len(length) {
    fp::testing::StructuredConfig c;
    c.seqLen = length;
    c.numQHeads = kQHeads;
    c.numKvHeads = kKvHeads;
    c.headDim = kDim;
    c.blockSize = kBlock;
    c.segmentTokens = 64;
    c.localWidth = 16;
    c.seed = seed;
    fp::testing::StructuredInputs in = fp::testing::makeStructuredInputs(c);
    q = std::move(in.q);
    k = std::move(in.k);
    v = std::move(in.v);
  }
  TensorView view(const std::vector<uint16_t> &x, int64_t heads) const {
    return {x.data(), DType::kBF16, 1,           len,      heads,
            kDim,     len * heads * kDim, heads * kDim, kDim};
  }
  TensorView qView() const { return view(q, kQHeads); }
  TensorView kView() const { return view(k, kKvHeads); }
  TensorView vView() const { return view(v, kKvHeads); }
};

/// Sequence of a call: the keys [0, keyEnd) of `prompt`, whose last qLen
/// are the queries.
struct Piece {
  const Prompt *prompt;
  int64_t keyEnd, qLen;
};

/// A varlen call owning its buffers. Copying would leave the views pointing
/// at the source's buffers, so cases are only moved (vectors keep their
/// heap storage when moved).
struct Case {
  std::vector<uint16_t> q, k, v;
  VarlenProblem problem;
  Case() = default;
  Case(Case &&) = default;
  Case(const Case &) = delete;
};

void appendRows(std::vector<uint16_t> &dst, const std::vector<uint16_t> &src,
                int64_t first, int64_t count, int64_t heads) {
  const int64_t row = heads * kDim;
  dst.insert(dst.end(), src.begin() + first * row,
             src.begin() + (first + count) * row);
}

TensorView packedView(const std::vector<uint16_t> &x, int64_t rows,
                      int64_t heads) {
  return {x.data(), DType::kBF16, 1,           rows,     heads,
          kDim,     rows * heads * kDim, heads * kDim, kDim};
}

/// Queries of every piece packed, then `extraRows` rows of noise that belong
/// to no sequence.
void packQueries(Case &c, const std::vector<Piece> &pieces,
                 int64_t extraRows) {
  c.problem.cuSeqlensQ = {0};
  for (const Piece &p : pieces) {
    appendRows(c.q, p.prompt->q, p.keyEnd - p.qLen, p.qLen, kQHeads);
    c.problem.cuSeqlensQ.push_back(
        static_cast<int32_t>(c.problem.cuSeqlensQ.back() + p.qLen));
  }
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  for (int64_t e = 0; e < extraRows * kQHeads * kDim; ++e)
    c.q.push_back(floatToBits(DType::kBF16, normal(rng)));
}

Case packedCase(const std::vector<Piece> &pieces, int64_t extraRows = 0) {
  Case c;
  packQueries(c, pieces, extraRows);
  c.problem.cuSeqlensK = {0};
  for (const Piece &p : pieces) {
    appendRows(c.k, p.prompt->k, 0, p.keyEnd, kKvHeads);
    appendRows(c.v, p.prompt->v, 0, p.keyEnd, kKvHeads);
    c.problem.cuSeqlensK.push_back(
        static_cast<int32_t>(c.problem.cuSeqlensK.back() + p.keyEnd));
  }
  const int64_t totalQ = c.problem.cuSeqlensQ.back() + extraRows;
  const int64_t totalK = c.problem.cuSeqlensK.back();
  c.problem.q = packedView(c.q, totalQ, kQHeads);
  c.problem.k = packedView(c.k, totalK, kKvHeads);
  c.problem.v = packedView(c.v, totalK, kKvHeads);
  return c;
}

/// Paged K/V: every sequence's pages drawn from a shuffled pool with spare
/// pages of noise; table entries past a sequence's pages hold a bad id that
/// must never be read.
Case pagedCase(const std::vector<Piece> &pieces, int64_t pageSize,
               uint32_t seed, int64_t extraRows = 0) {
  Case c;
  packQueries(c, pieces, extraRows);
  int64_t needed = 0, maxPages = 1;
  for (const Piece &p : pieces) {
    const int64_t pages = (p.keyEnd + pageSize - 1) / pageSize;
    needed += pages;
    maxPages = std::max(maxPages, pages + 1);
  }
  const int64_t numPages = needed + 3;
  std::vector<int32_t> order(static_cast<size_t>(numPages));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t slot = kKvHeads * kDim;
  std::normal_distribution<float> normal;
  c.k.resize(static_cast<size_t>(numPages * pageSize * slot));
  c.v.resize(c.k.size());
  for (size_t e = 0; e < c.k.size(); ++e) {
    c.k[e] = floatToBits(DType::kBF16, normal(rng));
    c.v[e] = floatToBits(DType::kBF16, normal(rng));
  }
  c.problem.maxPages = maxPages;
  c.problem.pageTable.assign(pieces.size() * size_t(maxPages),
                             static_cast<int32_t>(numPages + 7));
  size_t next = 0;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece &p = pieces[i];
    c.problem.kLens.push_back(static_cast<int32_t>(p.keyEnd));
    for (int64_t t = 0; t < p.keyEnd; ++t) {
      if (t % pageSize == 0)
        c.problem.pageTable[i * size_t(maxPages) + size_t(t / pageSize)] =
            order[next++];
      const int64_t page =
          c.problem.pageTable[i * size_t(maxPages) + size_t(t / pageSize)];
      const int64_t dst = (page * pageSize + t % pageSize) * slot;
      std::copy_n(p.prompt->k.begin() + t * slot, slot, c.k.begin() + dst);
      std::copy_n(p.prompt->v.begin() + t * slot, slot, c.v.begin() + dst);
    }
  }
  const int64_t totalQ = c.problem.cuSeqlensQ.back() + extraRows;
  c.problem.q = packedView(c.q, totalQ, kQHeads);
  c.problem.k = {c.k.data(), DType::kBF16, numPages, pageSize, kKvHeads,
                 kDim,       pageSize * slot, slot,   kDim};
  c.problem.v = c.problem.k;
  c.problem.v.data = c.v.data();
  return c;
}

/// Sparse enough that the tests are about something: alpha 0.3, small
/// window, a dense tail of 2 blocks.
Options sparseOptions() {
  Options o;
  o.blockSize = kBlock;
  o.alpha = 0.3f;
  o.sink = 1;
  o.window = 2;
  o.lastN = 2;
  o.numThreads = 2;
  return o;
}

uint16_t outBits(const VarlenOutput &o, int64_t row, int64_t h, int64_t c) {
  return o.out.storage()[size_t((row * kQHeads + h) * kDim + c)];
}

/// Sequence `i` of call `a` and sequence `j` of call `b` give the same mask
/// rows (query blocks offset by `blockOffset` in b), outputs and LSE, bit
/// for bit.
void expectSameSequence(const VarlenProblem &pa, const VarlenOutput &a,
                        int64_t i, const VarlenProblem &pb,
                        const VarlenOutput &b, int64_t j,
                        int64_t blockOffset = 0, int64_t rowOffset = 0) {
  const int64_t qLen = pa.queryLen(i);
  const int64_t nq = (qLen + kBlock - 1) / kBlock;
  for (int64_t h = 0; h < kQHeads; ++h)
    for (int64_t qb = 0; qb < nq; ++qb)
      ASSERT_EQ(a.mask.kept(pa.cuSeqlensQ, i, h, qb),
                b.mask.kept(pb.cuSeqlensQ, j, h, qb + blockOffset))
          << "sequence " << i << " h=" << h << " I=" << qb;
  const int64_t ra = pa.queryStart(i), rb = pb.queryStart(j) + rowOffset;
  for (int64_t r = 0; r < qLen; ++r)
    for (int64_t h = 0; h < kQHeads; ++h) {
      ASSERT_EQ(a.lse[size_t(h * pa.totalQ() + ra + r)],
                b.lse[size_t(h * pb.totalQ() + rb + r)])
          << "row " << r << " h=" << h;
      for (int64_t c = 0; c < kDim; ++c)
        ASSERT_EQ(outBits(a, ra + r, h, c), outBits(b, rb + r, h, c))
            << "row " << r << " h=" << h << " c=" << c;
    }
}

/// At least one kept block was dropped somewhere: the rule did prune.
void expectSparse(const VarlenProblem &p, const VarlenMask &mask) {
  int64_t candidates = 0;
  for (int64_t i = 0; i < p.batch(); ++i) {
    CausalGeometry g = p.geometry(i, kBlock);
    for (int64_t qb = 0; qb < g.numQueryBlocks(); ++qb)
      candidates += kQHeads * (g.lastKeyBlock(qb) + 1);
  }
  EXPECT_LT(mask.keptBlocks(), candidates);
  EXPECT_GT(mask.keptBlocks(), 0);
}

//===----------------------------------------------------------------------===//
// Prefix 0 is rule v1
//===----------------------------------------------------------------------===//

void expectEqualsPrefill(const Prompt &prompt, const Options &options) {
  StatusOr<PrefillOutput> whole = prefill(prompt.qView(), prompt.kView(),
                                          prompt.vView(), options);
  ASSERT_TRUE(whole.isOk()) << whole.status().toString();
  Case c = packedCase({{&prompt, prompt.len, prompt.len}});
  StatusOr<VarlenOutput> got = prefillVarlen(c.problem, options);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  const int64_t nb = whole->mask.numBlocks;
  ASSERT_EQ(got->mask.numRows, prompt.len / kBlock + 1);
  ASSERT_EQ(got->mask.maxKeyBlocks, nb);
  for (int64_t h = 0; h < kQHeads; ++h)
    for (int64_t qb = 0; qb < nb; ++qb) {
      // Row I of a single sequence starting at 0 is row I: the whole padded
      // row, -1 tail included, is the same.
      ASSERT_EQ(got->mask.count(qb, h), whole->mask.count(0, h, qb));
      ASSERT_TRUE(std::equal(got->mask.rowIds(qb, h),
                             got->mask.rowIds(qb, h) + nb,
                             whole->mask.rowIds(0, h, qb)))
          << "h=" << h << " I=" << qb;
    }
  EXPECT_EQ(got->out.storage(), whole->attention.out.storage());
  EXPECT_EQ(got->lse, whole->attention.lse); // [1, h, s] == [h, total_q]
  expectSparse(c.problem, got->mask);
}

TEST(Varlen, PrefixZeroEqualsPrefillBitForBit) {
  Prompt prompt(517, 11);
  expectEqualsPrefill(prompt, sparseOptions());
  Options variant = sparseOptions();
  variant.minBudget = 3;
  variant.thresholdKind = ThresholdKind::kMinMax;
  expectEqualsPrefill(prompt, variant);
}

TEST(Varlen, PrefixZeroEqualsPrefillWithPooledQueries) {
  Prompt prompt(300, 12);
  Options options = sparseOptions();
  options.scoreQuery = ScoreQuery::kPooled;
  expectEqualsPrefill(prompt, options);
}

//===----------------------------------------------------------------------===//
// Chunked prefill
//===----------------------------------------------------------------------===//

/// The prompt cut at B-aligned `ends`; each chunk a sequence of one packed
/// call (or paged, with `pageSize` > 0).
void expectChunksEqualWholePrompt(const Options &options, int64_t pageSize) {
  Prompt prompt(517, 13);
  const std::vector<int64_t> ends = {128, 320, 336, 517};
  std::vector<Piece> pieces;
  int64_t start = 0;
  for (int64_t end : ends) {
    pieces.push_back({&prompt, end, end - start});
    start = end;
  }
  Case whole = packedCase({{&prompt, prompt.len, prompt.len}});
  StatusOr<VarlenOutput> truth = prefillVarlen(whole.problem, options);
  ASSERT_TRUE(truth.isOk()) << truth.status().toString();

  Case chunks = pageSize > 0 ? pagedCase(pieces, pageSize, 3)
                             : packedCase(pieces);
  chunks.problem.applyLastN = {0, 0, 0, 1}; // the final chunk only
  StatusOr<VarlenOutput> got = prefillVarlen(chunks.problem, options);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  for (size_t i = 0; i < pieces.size(); ++i) {
    const int64_t prefix = pieces[i].keyEnd - pieces[i].qLen;
    // Chunk row r is prompt row prefix + r; its block I is prompt block
    // prefix / B + I.
    SCOPED_TRACE("chunk " + std::to_string(i));
    expectSameSequence(chunks.problem, *got, int64_t(i), whole.problem,
                       *truth, 0, prefix / kBlock, prefix);
  }

  // The flag matters: last_n on every chunk makes the last blocks of the
  // first chunk dense, which the whole prompt does not keep.
  chunks.problem.applyLastN.clear();
  StatusOr<VarlenOutput> everyChunk = prefillVarlen(chunks.problem, options);
  ASSERT_TRUE(everyChunk.isOk());
  int64_t differing = 0;
  for (int64_t h = 0; h < kQHeads; ++h)
    differing += everyChunk->mask.kept(chunks.problem.cuSeqlensQ, 0, h, 7) !=
                 truth->mask.kept(whole.problem.cuSeqlensQ, 0, h, 7);
  EXPECT_GT(differing, 0);
}

TEST(Varlen, AlignedChunksEqualWholePrompt) {
  expectChunksEqualWholePrompt(sparseOptions(), 0);
}

TEST(Varlen, AlignedChunksEqualWholePromptPooledMinBudget) {
  Options options = sparseOptions();
  options.scoreQuery = ScoreQuery::kPooled;
  options.minBudget = 2;
  expectChunksEqualWholePrompt(options, 0);
}

TEST(Varlen, AlignedChunksOverPagesEqualWholePrompt) {
  expectChunksEqualWholePrompt(sparseOptions(), 16);
}

//===----------------------------------------------------------------------===//
// Paged and packed, batch and single calls
//===----------------------------------------------------------------------===//

/// Prefixes aligned and not, a whole prompt, a tiny chunk and an empty one.
std::vector<Piece> mixedPieces(const Prompt &a, const Prompt &b) {
  return {{&a, 300, 77}, {&b, 517, 517}, {&a, 45, 3},
          {&b, 200, 0},  {&b, 260, 100}, {&a, 33, 33}};
}

TEST(Varlen, PagedEqualsPackedForEveryPageSizeAndOrder) {
  Prompt a(300, 21), b(517, 22);
  const std::vector<Piece> pieces = mixedPieces(a, b);
  const Options options = sparseOptions();
  Case packed = packedCase(pieces);
  StatusOr<VarlenOutput> expected = prefillVarlen(packed.problem, options);
  ASSERT_TRUE(expected.isOk()) << expected.status().toString();
  expectSparse(packed.problem, expected->mask);
  for (int64_t pageSize : {1, 16, 64, 128, 256})
    for (uint32_t seed : {1u, 2u}) {
      SCOPED_TRACE("page size " + std::to_string(pageSize) + ", order " +
                   std::to_string(seed));
      Case paged = pagedCase(pieces, pageSize, seed);
      StatusOr<VarlenOutput> got = prefillVarlen(paged.problem, options);
      ASSERT_TRUE(got.isOk()) << got.status().toString();
      EXPECT_EQ(got->mask.counts, expected->mask.counts);
      EXPECT_EQ(got->mask.ids, expected->mask.ids);
      EXPECT_EQ(got->out.storage(), expected->out.storage());
      EXPECT_EQ(got->lse, expected->lse);
    }
}

TEST(Varlen, PackedBatchEqualsOneCallPerSequence) {
  Prompt a(300, 31), b(517, 32);
  const std::vector<Piece> pieces = mixedPieces(a, b);
  Options options = sparseOptions();
  options.minBudget = 2;
  Case batch = packedCase(pieces);
  batch.problem.applyLastN = {1, 0, 1, 0, 0, 1};
  StatusOr<VarlenOutput> all = prefillVarlen(batch.problem, options);
  ASSERT_TRUE(all.isOk()) << all.status().toString();
  for (size_t i = 0; i < pieces.size(); ++i) {
    SCOPED_TRACE("sequence " + std::to_string(i));
    Case one = packedCase({pieces[i]});
    one.problem.applyLastN = {batch.problem.applyLastN[i]};
    StatusOr<VarlenOutput> alone = prefillVarlen(one.problem, options);
    ASSERT_TRUE(alone.isOk()) << alone.status().toString();
    expectSameSequence(batch.problem, *all, int64_t(i), one.problem, *alone,
                       0);
  }
}

// select then attend equals prefill; attend over a hand-edited mask uses
// exactly that mask.
TEST(Varlen, SelectThenAttendEqualsPrefill) {
  Prompt a(300, 41), b(517, 42);
  Case c = packedCase(mixedPieces(a, b));
  const Options options = sparseOptions();
  StatusOr<VarlenMask> mask = selectVarlen(c.problem, options);
  ASSERT_TRUE(mask.isOk()) << mask.status().toString();
  StatusOr<VarlenOutput> attended = attendVarlen(c.problem, *mask, options);
  StatusOr<VarlenOutput> whole = prefillVarlen(c.problem, options);
  ASSERT_TRUE(attended.isOk() && whole.isOk());
  EXPECT_EQ(attended->out.storage(), whole->out.storage());
  EXPECT_EQ(attended->lse, whole->lse);
  EXPECT_EQ(mask->ids, whole->mask.ids);
}

// Rows past cu_seqlens_q[b] belong to no sequence: 0 and LSE -inf in the
// reference's output, counts 0 in the mask rows of no query block.
TEST(Varlen, RowsOfNoSequenceAreLeftEmpty) {
  Prompt a(300, 51);
  Case c = packedCase({{&a, 300, 40}, {&a, 100, 20}}, /*extraRows=*/37);
  StatusOr<VarlenOutput> got = prefillVarlen(c.problem, sparseOptions());
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  const int64_t totalQ = c.problem.totalQ();
  ASSERT_EQ(totalQ, 97);
  ASSERT_EQ(got->mask.numRows, totalQ / kBlock + 2);
  for (int64_t r = 60; r < totalQ; ++r)
    for (int64_t h = 0; h < kQHeads; ++h) {
      EXPECT_EQ(got->lse[size_t(h * totalQ + r)], -INFINITY);
      for (int64_t x = 0; x < kDim; ++x)
        EXPECT_EQ(outBits(*got, r, h, x), 0);
    }
  // Sequence 0 uses rows 0..2, sequence 1 rows 3..4 (floor(40/16) + 1 + I).
  for (int64_t row = 5; row < got->mask.numRows; ++row)
    for (int64_t h = 0; h < kQHeads; ++h)
      EXPECT_EQ(got->mask.count(row, h), 0) << row;
  EXPECT_EQ(VarlenMask::rowOf(c.problem.cuSeqlensQ, 1, 0, kBlock), 3);
  for (int64_t h = 0; h < kQHeads; ++h)
    EXPECT_GT(got->mask.count(4, h), 0);
}

//===----------------------------------------------------------------------===//
// Non-aligned prefixes: the rule restated by brute force
//===----------------------------------------------------------------------===//

// Every fact of CausalGeometry against its definition on small sizes: key
// positions <= prefix + r are visible to local row r.
TEST(Varlen, GeometryMatchesBruteForceVisibility) {
  for (int64_t blockSize : {1, 2, 4, 8})
    for (int64_t qLen = 1; qLen <= 13; ++qLen)
      for (int64_t prefix = 0; prefix <= 14; ++prefix) {
        const CausalGeometry g{qLen, qLen + prefix, blockSize};
        const int64_t kLen = qLen + prefix;
        auto sees = [&](int64_t r, int64_t c) {
          return c < kLen && c <= prefix + r;
        };
        auto keysOf = [&](int64_t j) {
          std::vector<int64_t> keys;
          for (int64_t c = j * blockSize;
               c < std::min((j + 1) * blockSize, kLen); ++c)
            keys.push_back(c);
          return keys;
        };
        ASSERT_EQ(g.numKeyBlocks(), (kLen + blockSize - 1) / blockSize);
        for (int64_t qb = 0; qb < g.numQueryBlocks(); ++qb) {
          std::vector<int64_t> rows;
          for (int64_t r = qb * blockSize;
               r < std::min((qb + 1) * blockSize, qLen); ++r)
            rows.push_back(r);
          // J(I): the last key block any row of I sees a key of.
          int64_t lastSeen = -1;
          for (int64_t j = 0; j < g.numKeyBlocks(); ++j)
            for (int64_t r : rows)
              for (int64_t c : keysOf(j))
                if (sees(r, c))
                  lastSeen = j;
          ASSERT_EQ(g.lastKeyBlock(qb), lastSeen)
              << "B=" << blockSize << " q=" << qLen << " p=" << prefix;
          for (int64_t j = 0; j <= lastSeen; ++j) {
            bool partial = false;
            for (int64_t r : rows) {
              bool all = true;
              int64_t visible = 0;
              for (int64_t c : keysOf(j)) {
                all = all && sees(r, c);
                visible += sees(r, c);
              }
              partial = partial || !all;
              ASSERT_EQ(g.rowScoresBlock(r, j), all);
              ASSERT_EQ(g.visibleKeys(r, j), visible);
            }
            ASSERT_EQ(g.needsTokenMask(qb, j), partial)
                << "B=" << blockSize << " q=" << qLen << " p=" << prefix
                << " I=" << qb << " j=" << j;
          }
        }
      }
}

/// Step 2 and 3 restated for one (sequence, head, query block), straight
/// from docs/semantics.md: rows that see all of block j's keys score it;
/// one shared max; energies summed over rows ascending; the threshold and
/// the forced blocks. Returns the kept ids.
Ids bruteForceRow(const TensorView &q, const TensorView &kbar, int64_t prefix,
                  int64_t kLen, int64_t h, int64_t qb, const Options &o,
                  bool lastN) {
  const int64_t qLen = q.seq, blockSize = o.blockSize;
  const int64_t nq = (qLen + blockSize - 1) / blockSize;
  const int64_t hk = h / (q.heads / kbar.heads);
  const float scale = 1.0f / std::sqrt(float(q.dim));
  const int64_t firstRow = qb * blockSize;
  const int64_t endRow = std::min(firstRow + blockSize, qLen);
  // Candidates: key blocks some row of I sees a key of.
  int64_t numJ = (prefix + endRow - 1) / blockSize + 1;
  auto lastKeyOf = [&](int64_t j) {
    return std::min((j + 1) * blockSize, kLen) - 1;
  };
  std::vector<float> qf(size_t(q.dim)), kf(size_t(q.dim));
  std::vector<std::vector<float>> logit(size_t(endRow - firstRow),
                                        std::vector<float>(size_t(numJ)));
  float m = -INFINITY;
  for (int64_t r = firstRow; r < endRow; ++r)
    for (int64_t j = 0; j < numJ; ++j) {
      if (lastKeyOf(j) > prefix + r)
        continue;
      for (int64_t x = 0; x < q.dim; ++x) {
        qf[size_t(x)] = q.at(0, r, h, x);
        kf[size_t(x)] = kbar.at(0, j, hk, x);
      }
      logit[size_t(r - firstRow)][size_t(j)] =
          dotF32(qf.data(), kf.data(), q.dim) * scale;
      m = std::max(m, logit[size_t(r - firstRow)][size_t(j)]);
    }
  std::vector<float> energy(static_cast<size_t>(numJ), 0.0f);
  std::vector<float> score(static_cast<size_t>(numJ));
  for (int64_t j = 0; j < numJ; ++j)
    for (int64_t r = firstRow; r < endRow; ++r)
      if (lastKeyOf(j) <= prefix + r)
        energy[size_t(j)] +=
            std::exp(logit[size_t(r - firstRow)][size_t(j)] - m);
  float total = 0.0f;
  for (float e : energy)
    total += e;
  float best = 0.0f;
  for (int64_t j = 0; j < numJ; ++j) {
    score[size_t(j)] = energy[size_t(j)] / (total + 1e-9f);
    best = std::max(best, score[size_t(j)]);
  }
  Ids kept;
  for (int64_t j = 0; j < numJ; ++j)
    if (score[size_t(j)] >= o.alpha * best || j < o.sink ||
        (numJ - 1) - j < o.window || (lastN && qb >= nq - o.lastN))
      kept.push_back(int32_t(j));
  return kept;
}

TEST(Varlen, NonAlignedPrefixKeepsTheBruteForceBlocks) {
  Prompt a(300, 61), b(517, 62);
  // Prefixes 223, 0, 42, 160, 0, 501: none of the non-zero ones B-aligned.
  const std::vector<Piece> pieces = {{&a, 300, 77}, {&b, 517, 517},
                                     {&a, 45, 3},   {&b, 260, 100},
                                     {&a, 33, 33},  {&b, 517, 16}};
  Options options = sparseOptions();
  Case c = packedCase(pieces);
  c.problem.applyLastN = {1, 1, 0, 1, 0, 1};
  StatusOr<VarlenMask> mask = selectVarlen(c.problem, options);
  ASSERT_TRUE(mask.isOk()) << mask.status().toString();
  expectSparse(c.problem, *mask);
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece &p = pieces[i];
    TensorView q = p.prompt->qView();
    q.data += (p.keyEnd - p.qLen) * q.seqStride;
    q.seq = p.qLen;
    TensorView k = p.prompt->kView();
    k.seq = p.keyEnd;
    StatusOr<Tensor> kbar = blockPool(k, options);
    ASSERT_TRUE(kbar.isOk());
    for (int64_t h = 0; h < kQHeads; ++h)
      for (int64_t qb = 0; qb < (p.qLen + kBlock - 1) / kBlock; ++qb)
        ASSERT_EQ(mask->kept(c.problem.cuSeqlensQ, int64_t(i), h, qb),
                  bruteForceRow(q, kbar->view(), p.keyEnd - p.qLen, p.keyEnd,
                                h, qb, options,
                                c.problem.applyLastN[i] != 0))
            << "sequence " << i << " h=" << h << " I=" << qb;
  }
}

/// fp64 attention of local row r, written from the definition: softmax over
/// the keys c <= prefix + r whose block `kept` says is kept.
double bruteForceLse(const Piece &p, int64_t r, int64_t h,
                     const std::function<bool(int64_t)> &kept,
                     std::vector<double> &out) {
  const int64_t prefix = p.keyEnd - p.qLen, hk = h / (kQHeads / kKvHeads);
  const TensorView q = p.prompt->qView(), k = p.prompt->kView(),
                   v = p.prompt->vView();
  const double scale = 1.0f / std::sqrt(float(kDim));
  std::vector<double> s;
  std::vector<int64_t> keys;
  for (int64_t c = 0; c <= prefix + r; ++c) {
    if (!kept(c / kBlock))
      continue;
    double dot = 0;
    for (int64_t x = 0; x < kDim; ++x)
      dot += double(q.at(0, prefix + r, h, x)) * double(k.at(0, c, hk, x));
    s.push_back(dot * scale);
    keys.push_back(c);
  }
  const double m = *std::max_element(s.begin(), s.end());
  double l = 0;
  out.assign(size_t(kDim), 0.0);
  for (size_t e = 0; e < s.size(); ++e) {
    const double w = std::exp(s[e] - m);
    l += w;
    for (int64_t x = 0; x < kDim; ++x)
      out[size_t(x)] += w * double(v.at(0, keys[e], hk, x));
  }
  for (double &x : out)
    x /= l;
  return m + std::log(l);
}

TEST(Varlen, NonAlignedPrefixMatchesFp64Truth) {
  Prompt a(300, 71), b(517, 72);
  const std::vector<Piece> pieces = {
      {&a, 300, 77}, {&b, 517, 40}, {&a, 45, 3}, {&b, 260, 100}};
  const Options options = sparseOptions();
  Case c = packedCase(pieces);
  StatusOr<VarlenOutput> got = prefillVarlen(c.problem, options);
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  StatusOr<NaiveAttentionOutput> truth =
      naiveAttentionVarlen(c.problem, options, &got->mask);
  ASSERT_TRUE(truth.isOk()) << truth.status().toString();
  StatusOr<NaiveAttentionOutput> dense =
      naiveAttentionVarlen(c.problem, options);
  ASSERT_TRUE(dense.isOk());
  const int64_t totalQ = c.problem.totalQ();
  double maskMatters = 0;
  std::vector<double> row;
  for (size_t i = 0; i < pieces.size(); ++i)
    for (int64_t r = 0; r < pieces[i].qLen; ++r)
      for (int64_t h = 0; h < kQHeads; ++h) {
        const int64_t t = c.problem.queryStart(int64_t(i)) + r;
        const Ids kept = got->mask.kept(c.problem.cuSeqlensQ, int64_t(i), h,
                                        r / kBlock);
        const double lse = bruteForceLse(
            pieces[i], r, h,
            [&](int64_t j) {
              return std::binary_search(kept.begin(), kept.end(), int32_t(j));
            },
            row);
        const double naiveLse = truth->lse[size_t(h * totalQ + t)];
        ASSERT_NEAR(naiveLse, lse, 1e-9) << "t=" << t << " h=" << h;
        EXPECT_NEAR(got->lse[size_t(h * totalQ + t)], lse, 1e-4);
        for (int64_t x = 0; x < kDim; ++x) {
          const double want = row[size_t(x)];
          ASSERT_NEAR(truth->out[size_t((t * kQHeads + h) * kDim + x)], want,
                      1e-9);
          // bf16 output: P and O rounded to 8 bits of mantissa.
          EXPECT_NEAR(bitsToFloat(DType::kBF16, outBits(*got, t, h, x)), want,
                      std::fabs(want) * std::ldexp(1.0, -7) + 2e-3)
              << "t=" << t << " h=" << h << " x=" << x;
          maskMatters = std::max(
              maskMatters,
              std::fabs(dense->out[size_t((t * kQHeads + h) * kDim + x)] -
                        want));
        }
      }
  // Pruning changed the result somewhere (else the check above proves
  // little about which keys were attended).
  EXPECT_GT(maskMatters, 1e-3);
}

//===----------------------------------------------------------------------===//
// Bad inputs: every one a named error
//===----------------------------------------------------------------------===//

void expectError(const VarlenProblem &problem, const std::string &fragment,
                 const Options &options = sparseOptions()) {
  Status status = validateVarlen(problem, options);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << fragment;
  EXPECT_NE(status.message().find(fragment), std::string::npos)
      << "expected '" << fragment << "' in: " << status.message();
  // Every op reports it before computing anything.
  EXPECT_EQ(selectVarlen(problem, options).status().message(),
            status.message());
  EXPECT_EQ(prefillVarlen(problem, options).status().message(),
            status.message());
  EXPECT_EQ(naiveAttentionVarlen(problem, options).status().message(),
            status.message());
}

TEST(Varlen, BadPackedInputsAreNamed) {
  Prompt a(300, 81);
  auto fresh = [&] {
    return packedCase({{&a, 300, 77}, {&a, 100, 50}, {&a, 20, 20}});
  };
  ASSERT_TRUE(validateVarlen(fresh().problem, sparseOptions()).isOk());
  {
    Case c = fresh();
    c.problem.cuSeqlensQ[0] = 1;
    expectError(c.problem, "cu_seqlens_q[0]: expected 0, got 1");
  }
  {
    Case c = fresh();
    c.problem.cuSeqlensQ[2] = 10; // below [1] = 77
    expectError(c.problem, "cu_seqlens_q[2]: expected non-decreasing offsets "
                           "(>= cu_seqlens_q[1] = 77), got 10");
  }
  {
    Case c = fresh();
    c.problem.cuSeqlensQ[3] = 200; // total_q is 147
    expectError(c.problem,
                "cu_seqlens_q[3]: expected <= total_q (q.seq) = 147, got 200");
  }
  {
    Case c = fresh();
    c.problem.cuSeqlensQ = {0};
    expectError(c.problem, "cu_seqlens_q: expected b + 1 >= 2 offsets, got 1");
  }
  {
    Case c = fresh();
    c.problem.cuSeqlensK.pop_back();
    expectError(c.problem,
                "cu_seqlens_k: expected b + 1 = 4 offsets, got 3");
  }
  {
    Case c = fresh();
    c.problem.cuSeqlensK[1] = 500;
    expectError(c.problem, "cu_seqlens_k[2]: expected non-decreasing offsets");
  }
  {
    Case c = fresh();
    c.problem.cuSeqlensK[3] = 421; // total_k is 420
    expectError(c.problem,
                "cu_seqlens_k[3]: expected <= total_k (k.seq) = 420, got 421");
  }
  {
    Case c = fresh();
    c.problem.cuSeqlensK[2] = 340; // sequence 1: 40 keys < 50 queries
    expectError(c.problem,
                "cu_seqlens_k[2] - cu_seqlens_k[1] (k_len of sequence 1): "
                "expected >= q_len = 50 (the queries are the last q_len "
                "keys), got 40");
  }
  {
    Case c = fresh();
    c.problem.maxSeqlenQ = 76;
    expectError(c.problem, "max_seqlen_q: expected >= every q_len, got 76 < "
                           "the q_len 77 of sequence 0");
  }
  {
    Case c = fresh();
    c.problem.maxSeqlenK = 299;
    expectError(c.problem, "max_seqlen_k: expected >= every k_len, got 299 < "
                           "the k_len 300 of sequence 0");
  }
  {
    Case c = fresh();
    c.problem.maxSeqlenK = -1;
    expectError(c.problem, "max_seqlen_k: expected >= 0");
  }
  {
    Case c = fresh();
    c.problem.applyLastN = {1, 0};
    expectError(c.problem, "apply_last_n: expected b = 3 flags (or none: "
                           "every sequence), got 2");
  }
  {
    Case c = fresh();
    c.problem.kLens = {300, 100, 20};
    expectError(c.problem, "cu_seqlens_k, page_table: expected packed K/V "
                           "(cu_seqlens_k) or paged K/V (page_table and "
                           "k_lens), not both");
  }
  {
    Case c = fresh();
    c.problem.q.batch = 2;
    expectError(c.problem, "q.batch: expected 1");
  }
  {
    Case c = fresh();
    c.problem.v.heads = 4;
    expectError(c.problem, "v: expected [1, 420, 2, d_v]");
  }
  {
    Case c = fresh();
    c.problem.k.dtype = DType::kF16;
    expectError(c.problem, "k.dtype: expected bf16");
  }
  {
    Case c = fresh();
    c.problem.q.heads = 3;
    expectError(c.problem, "q.heads: expected a multiple of k.heads (2)");
  }
  {
    Case c = fresh();
    Options bad = sparseOptions();
    bad.alpha = 2.0f;
    expectError(c.problem, "alpha: expected a value in [0, 1]", bad);
  }
}

TEST(Varlen, BadPagedInputsAreNamed) {
  Prompt a(300, 82);
  auto fresh = [&](int64_t pageSize = 16) {
    return pagedCase({{&a, 300, 77}, {&a, 100, 50}}, pageSize, 4);
  };
  ASSERT_TRUE(validateVarlen(fresh().problem, sparseOptions()).isOk());
  // fresh(16): 19 + 7 pages needed, 3 spare: 29 pages, max_pages 20.
  {
    Case c = fresh();
    c.problem.pageTable[20 + 3] = 29;
    expectError(c.problem, "page_table[1][3]: expected a page id in [0, 29) "
                           "(k.shape[0]), got 29");
  }
  {
    Case c = fresh();
    c.problem.pageTable[0] = -1;
    expectError(c.problem, "page_table[0][0]: expected a page id in [0, 29)");
  }
  {
    Case c = fresh();
    c.problem.kLens[1] = 321; // 21 pages > max_pages 20
    expectError(c.problem, "k_lens[1]: 321 keys need ceil(321 / 16) = 21 "
                           "pages; expected at most max_pages = 20 (the page "
                           "table is too narrow)");
  }
  {
    Case c = fresh();
    c.problem.kLens[1] = 49;
    expectError(c.problem, "k_lens[1] (k_len of sequence 1): expected >= "
                           "q_len = 50");
  }
  {
    Case c = fresh();
    c.problem.kLens[0] = -3;
    expectError(c.problem, "k_lens[0]: expected >= 0, got -3");
  }
  {
    Case c = fresh();
    c.problem.kLens.pop_back();
    expectError(c.problem, "k_lens: expected b = 2 lengths, got 1");
  }
  {
    Case c = fresh();
    c.problem.kLens.clear();
    expectError(c.problem, "cu_seqlens_k, page_table, k_lens: expected "
                           "cu_seqlens_k (packed K/V) or page_table and "
                           "k_lens (paged K/V), got no k_lens");
  }
  {
    Case c = fresh();
    c.problem.pageTable.pop_back();
    expectError(c.problem,
                "page_table: expected b * max_pages = 40 entries, got 39");
  }
  {
    Case c = fresh();
    c.problem.maxPages = 0;
    expectError(c.problem, "max_pages: expected >= 1");
  }
  {
    // Page size 48 is not a power of two; 512 is above 256.
    Case c = fresh();
    c.problem.k.seq = c.problem.v.seq = 48;
    expectError(c.problem, "k.seq (page_size): expected a power of two in "
                           "[1, 256], got 48");
    c.problem.k.seq = c.problem.v.seq = 512;
    expectError(c.problem, "k.seq (page_size): expected a power of two in "
                           "[1, 256], got 512");
  }
  {
    Case c = fresh();
    c.problem.v.batch = 28;
    expectError(c.problem, "v: expected [29, 16, 2, d_v]");
  }
  // Entries past a sequence's pages are never read (they hold a bad id in
  // every paged case of this file), so they are not checked either.
  {
    Case c = fresh();
    EXPECT_EQ(c.problem.pageTable[20 + 7], 29 + 7);
    EXPECT_TRUE(prefillVarlen(c.problem, sparseOptions()).isOk());
  }
}

TEST(Varlen, BadMasksAreNamed) {
  Prompt a(300, 83);
  Case c = packedCase({{&a, 300, 77}, {&a, 100, 50}});
  const Options options = sparseOptions();
  StatusOr<VarlenMask> good = selectVarlen(c.problem, options);
  ASSERT_TRUE(good.isOk());
  auto expectMaskError = [&](const VarlenMask &mask,
                             const std::string &fragment) {
    Status status = attendVarlen(c.problem, mask, options).status();
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(status.message().find(fragment), std::string::npos)
        << "expected '" << fragment << "' in: " << status.message();
    EXPECT_EQ(naiveAttentionVarlen(c.problem, options, &mask).status().message(),
              status.message());
  };
  {
    // Sequence 1, I = 0 is row floor(77 / 16) + 1 = 5; p = 50, J(0) = 4.
    VarlenMask m = *good;
    m.ids[size_t((5 * kQHeads + 1) * m.maxKeyBlocks)] = 5;
    m.counts[size_t(5 * kQHeads + 1)] = 1;
    expectMaskError(m, "mask.ids[row=5, h=1] (sequence 1, I=0): expected "
                       "strictly ascending block ids in [0, 4], got 5");
  }
  {
    VarlenMask m = *good;
    m.counts[size_t(5 * kQHeads + 2)] = 6;
    expectMaskError(m, "mask.counts[row=5, h=2] (sequence 1, I=0): expected "
                       "a value in [0, 5], got 6");
  }
  {
    VarlenMask m = *good;
    m.maxKeyBlocks = 18;
    expectMaskError(m, "mask.max_key_blocks: expected 19 (ceil(max_seqlen_k "
                       "/ B)), got 18");
  }
  {
    VarlenMask m = *good;
    m.numRows = 8;
    expectMaskError(m, "mask.num_rows: expected 9 (floor(total_q / B) + b), "
                       "got 8");
  }
}

} // namespace
