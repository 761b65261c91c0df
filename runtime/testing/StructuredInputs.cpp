//===- StructuredInputs.cpp - Attention-like inputs -------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Logits are built from orthogonal-ish random directions in a head-dim
// space: q . k = sum over components, each component contributing the
// strength it names (in units of the default 1/sqrt(d) scale).
//
//===----------------------------------------------------------------------===//
#include "flashprefill/structured_inputs.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <thread>

namespace fp::testing {
namespace {

using Vec = std::vector<float>;

Vec randomUnit(std::mt19937_64 &rng, int64_t dim) {
  std::normal_distribution<float> normal;
  Vec v(dim);
  double norm = 0;
  for (float &x : v) {
    x = normal(rng);
    norm += double(x) * x;
  }
  for (float &x : v)
    x = float(x / std::sqrt(norm));
  return v;
}

void axpy(Vec &y, float a, const Vec &x) {
  for (size_t i = 0; i < y.size(); ++i)
    y[i] += a * x[i];
}

} // namespace

StructuredInputs makeStructuredInputs(const StructuredConfig &c) {
  const int64_t d = c.headDim, s = c.seqLen;
  const int64_t group = c.numQHeads / c.numKvHeads;
  // Component magnitudes: q . k = (aq * ak) for aligned unit directions; the
  // kernel scales by 1/sqrt(d), so a logit boost L needs aq * ak = L sqrt(d).
  const float root = std::sqrt(float(d));
  auto split = [&](float logit) { return std::sqrt(logit * root); };

  StructuredInputs out;
  out.q.resize(size_t(c.batch * s * c.numQHeads * d));
  out.k.resize(size_t(c.batch * s * c.numKvHeads * d));
  out.v.resize(out.k.size());

  // Positional band: pairs of dims rotate with frequencies spread over
  // [1/localWidth, 1/(4*localWidth)], so cos((tq - tk) w) sums to a peak at
  // tq = tk that decays over ~localWidth tokens.
  const int64_t bandPairs = std::min<int64_t>(8, d / 8);
  std::vector<float> freqs(bandPairs);
  for (int64_t i = 0; i < bandPairs; ++i)
    freqs[i] = 1.0f / (c.localWidth * (1.0f + 3.0f * i / bandPairs));
  const float bandAmp = split(c.localStrength / float(bandPairs));
  const int64_t needleTokens =
      c.needleTokens > 0 ? c.needleTokens : std::max(1, c.blockSize / 2);

  // Each (batch, kv head) has its own generator, so heads fill in parallel
  // and the result does not depend on the thread count.
  const int64_t tasks = c.batch * c.numKvHeads;
  std::vector<std::vector<Needle>> needlesOf(tasks);
  auto generate = [&](int64_t task) {
    const int64_t b = task / c.numKvHeads, kvh = task % c.numKvHeads;
    std::mt19937_64 rng(c.seed * 0x9E3779B97F4A7C15ull + uint64_t(task));
    std::normal_distribution<float> normal;
    std::vector<Needle> &needles = needlesOf[task];
    {
      // Directions of this kv head (shared by its query heads).
      Vec sink = randomUnit(rng, d), heavy = randomUnit(rng, d);
      std::vector<Vec> topics;
      for (int t = 0; t < c.numTopics; ++t)
        topics.push_back(randomUnit(rng, d));
      // Segments: each takes a topic; recurring topics link far segments.
      std::vector<int> topicOf(s);
      std::uniform_int_distribution<int> pickTopic(0, c.numTopics - 1);
      std::uniform_int_distribution<int> segLen(c.segmentTokens / 2,
                                                c.segmentTokens * 3 / 2);
      for (int64_t t = 0; t < s;) {
        int topic = pickTopic(rng), len = segLen(rng);
        for (int64_t e = std::min<int64_t>(s, t + len); t < e; ++t)
          topicOf[t] = topic;
      }
      std::vector<int64_t> heavyAt;
      std::uniform_int_distribution<int64_t> anyToken(0, s - 1);
      for (int i = 0; i < c.heavyKeys && s > 1; ++i)
        heavyAt.push_back(anyToken(rng));

      // Needles for this kv head: a far key block and a late query block.
      std::vector<std::pair<int64_t, Vec>> needleKeys; // token, direction
      int64_t nb = (s + c.blockSize - 1) / c.blockSize;
      for (int i = 0; i < c.needles && nb >= 8; ++i) {
        // Far from the query, past the default sink blocks, and the query
        // block before the default dense tail (last_n = 2).
        int64_t keyBlock = 2 + (i + 1) * nb / (c.needles + 3);
        int64_t queryBlock = nb - 3 - i;
        if (queryBlock <= keyBlock + 4)
          continue;
        int64_t token = keyBlock * c.blockSize + c.blockSize / 4;
        Vec dir = randomUnit(rng, d);
        needleKeys.push_back({token, dir});
        for (int64_t g = 0; g < group; ++g)
          needles.push_back({b, kvh * group + g, queryBlock, keyBlock, token});
      }

      const float sinkK = split(c.sinkStrength),
                  topicK = split(c.topicStrength);
      const float heavyK = split(c.heavyStrength);
      const float needleK = split(c.needleStrength);
      for (int64_t t = 0; t < s; ++t) {
        Vec key(d, 0.0f);
        axpy(key, topicK, topics[topicOf[t]]);
        if (t < c.sinkTokens)
          axpy(key, sinkK * 2.0f, sink);
        if (std::find(heavyAt.begin(), heavyAt.end(), t) != heavyAt.end())
          axpy(key, heavyK * 2.0f, heavy);
        for (auto &[token, dir] : needleKeys)
          if (t >= token && t < token + needleTokens)
            axpy(key, needleK * 2.0f, dir);
        for (int64_t i = 0; i < bandPairs; ++i) {
          key[2 * i] += bandAmp * std::cos(t * freqs[i]);
          key[2 * i + 1] += bandAmp * std::sin(t * freqs[i]);
        }
        for (float &x : key)
          x += c.noise * normal(rng);
        uint16_t *krow = &out.k[((b * s + t) * c.numKvHeads + kvh) * d];
        uint16_t *vrow = &out.v[((b * s + t) * c.numKvHeads + kvh) * d];
        for (int64_t i = 0; i < d; ++i) {
          krow[i] = floatToBits(c.dtype, key[i]);
          // Values: the topic direction plus noise, so outputs differ by
          // which blocks are attended.
          vrow[i] =
              floatToBits(c.dtype, topics[topicOf[t]][i] * 4.0f + normal(rng));
        }
      }
      for (int64_t g = 0; g < group; ++g) {
        int64_t h = kvh * group + g;
        for (int64_t t = 0; t < s; ++t) {
          Vec query(d, 0.0f);
          axpy(query, topicK, topics[topicOf[t]]);
          axpy(query, sinkK * 0.5f, sink);
          axpy(query, heavyK * 0.5f, heavy);
          int64_t block = t / c.blockSize;
          for (const Needle &n : needles)
            if (n.head == h && n.queryBlock == block)
              for (auto &[token, dir] : needleKeys)
                if (token == n.keyToken)
                  axpy(query, needleK * 0.5f, dir);
          for (int64_t i = 0; i < bandPairs; ++i) {
            query[2 * i] += bandAmp * std::cos(t * freqs[i]);
            query[2 * i + 1] += bandAmp * std::sin(t * freqs[i]);
          }
          for (float &x : query)
            x += c.noise * normal(rng);
          uint16_t *qrow = &out.q[((b * s + t) * c.numQHeads + h) * d];
          for (int64_t i = 0; i < d; ++i)
            qrow[i] = floatToBits(c.dtype, query[i]);
        }
      }
    }
  };
  unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<int64_t> next{0};
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < std::min<unsigned>(workers, unsigned(tasks)); ++w)
    pool.emplace_back([&] {
      for (int64_t task; (task = next++) < tasks;)
        generate(task);
    });
  for (std::thread &t : pool)
    t.join();
  for (const auto &list : needlesOf)
    out.needles.insert(out.needles.end(), list.begin(), list.end());
  out.description = "structured(seed " + std::to_string(c.seed) + ", sinks " +
                    std::to_string(c.sinkTokens) + ", band " +
                    std::to_string(int(c.localWidth)) + " tok, " +
                    std::to_string(c.numTopics) + " topics / " +
                    std::to_string(c.segmentTokens) + " tok segments, " +
                    std::to_string(c.heavyKeys) + " heavy keys, " +
                    std::to_string(out.needles.size()) + " needles, noise " +
                    std::to_string(c.noise) + ")";
  return out;
}

double relativeL2(const std::vector<double> &a, const std::vector<double> &b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    ref += b[i] * b[i];
  }
  if (ref == 0)
    return diff == 0 ? 0 : INFINITY;
  return std::sqrt(diff / ref);
}

} // namespace fp::testing
