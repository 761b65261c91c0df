//===- TileRules.h - What every kernel tile must satisfy --------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The arch-independent rules on #fp.pool_tile, #fp.discovery_tile and
// #fp.attention_tile: the attribute and op verifiers call them, and so do
// the compiler's full checks (compiler/TileConfig.h, which add the
// mainloop- and arch-specific limits: sm_90a shapes, shared memory), so a
// tile the verifiers accept is one fp-select-tiles could also accept.
//
// Each returns "" when the rule holds, else a diagnostic naming the
// parameter and the expected value.
//
//===----------------------------------------------------------------------===//
#ifndef FP_DIALECT_TILERULES_H
#define FP_DIALECT_TILERULES_H

#include <cstdint>
#include <string>

namespace mlir::fp {

/// Rules on the parameters alone (the attribute verifiers).
std::string poolTileProblem(int64_t threads);
std::string discoveryTileProblem(int64_t keyChunk, int64_t warps);
std::string attentionTileProblem(int64_t blockM, int64_t blockN, int64_t warps,
                                 int64_t stages);

/// Rules relating a tile to its op's block size (the op verifiers).
std::string discoveryTileBlockProblem(int64_t blockSize, int64_t warps);
std::string attentionTileBlockProblem(int64_t blockSize, int64_t blockM,
                                      int64_t blockN);

} // namespace mlir::fp

#endif // FP_DIALECT_TILERULES_H
