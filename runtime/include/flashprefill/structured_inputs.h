//===- flashprefill/structured_inputs.h - Attention-like inputs -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Q, K, V whose attention looks like a long-context LLM's (for tests: never
// zeros, never plain randn, under which attention is near-uniform
// and every block is kept). Each part has a knob:
//   - sinks: the first `sinkTokens` keys share a direction every query leans
//     towards (attention sinks);
//   - local band: rotary-style positional features, so a query's logits peak
//     on nearby keys;
//   - topics: the sequence is cut into segments, each about one of a few
//     topics; topics recur far apart, so a query attends to distant
//     segments of its own topic;
//   - heavy keys: a few scattered keys every query partly attends to
//     (vertical lines in the attention map);
//   - needles: a key far back carries a unique direction that the rows of a
//     late query block ask for; the needle's block must be kept;
//   - noise on everything.
// Deterministic for a given seed, independent of thread count.
//
//===----------------------------------------------------------------------===//
#ifndef FLASHPREFILL_STRUCTURED_INPUTS_H
#define FLASHPREFILL_STRUCTURED_INPUTS_H

#include "flashprefill/dtype.h"

#include <cstdint>
#include <string>
#include <vector>

namespace fp::testing {

struct StructuredConfig {
  DType dtype = DType::kBF16;
  int64_t batch = 1, seqLen = 4096, numQHeads = 8, numKvHeads = 2,
          headDim = 128;
  uint64_t seed = 1;
  int sinkTokens = 4;        ///< keys sharing the sink direction
  float sinkStrength = 3.0f; ///< logit boost towards sinks (in 1/sqrt(d) units)
  float localStrength = 4.0f; ///< peak logit of the positional band
  float localWidth = 64.0f;   ///< tokens over which the band decays
  int numTopics = 6;          ///< distinct topics
  int segmentTokens = 512;    ///< mean segment length
  float topicStrength = 3.0f; ///< logit boost of same-topic keys
  int heavyKeys = 8;          ///< scattered always-attended keys
  float heavyStrength = 2.5f;
  int needles = 2; ///< planted (late query block, far key) pairs
  /// Logit of a needle key for its query rows; its block mean carries
  /// needleStrength * needleTokens / blockSize of it.
  float needleStrength = 12.0f;
  /// Consecutive keys carrying a needle (a sentence, not one token: block
  /// means dilute a single token by 1/B); 0 means half a block.
  int needleTokens = 0;
  int blockSize = 128; ///< to place needles in distinct blocks
  float noise = 0.5f;  ///< noise standard deviation per component
};

/// A planted needle: the rows of `queryBlock` of query head `head` (batch
/// `batch`) ask for the keys from `keyToken` on (needleTokens of them), in
/// key block `keyBlock`.
struct Needle {
  int64_t batch, head, queryBlock, keyBlock, keyToken;
};

struct StructuredInputs {
  std::vector<uint16_t> q, k, v; ///< [b, s, h, d] contiguous, dtype bits
  std::vector<Needle> needles;
  std::string description; ///< one line naming the knobs
};

/// Builds the inputs of `config`.
StructuredInputs makeStructuredInputs(const StructuredConfig &config);

/// Relative L2 distance ||a - b|| / ||b|| (b the reference); 0 when both 0.
double relativeL2(const std::vector<double> &a, const std::vector<double> &b);

} // namespace fp::testing

#endif // FLASHPREFILL_STRUCTURED_INPUTS_H
