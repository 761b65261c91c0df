//===- TileRules.cpp - What every kernel tile must satisfy ------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Why these bounds: block sizes are powers of two in [16, 256] (the op
// verifiers), and a tile dimension must divide the block so that a CTA
// reads one mask row; warps work on 16-row MMA slices; the device
// templates pipeline 2 to 8 K/V stages; a CTA has at most 1024 threads.
//
//===----------------------------------------------------------------------===//
#include "fp/Dialect/TileRules.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MathExtras.h"

namespace {

bool isPowerOfTwoIn(int64_t value, int64_t low, int64_t high) {
  return value >= low && value <= high && llvm::isPowerOf2_64(value);
}

} // namespace

std::string mlir::fp::poolTileProblem(int64_t threads) {
  if (threads < 32 || threads > 1024 || threads % 32 != 0)
    return llvm::formatv("threads: expected a multiple of 32 in [32, 1024], "
                         "got {0}",
                         threads);
  return "";
}

std::string mlir::fp::discoveryTileProblem(int64_t keyChunk, int64_t warps) {
  if (keyChunk < 16 || keyChunk > 256 || keyChunk % 16 != 0)
    return llvm::formatv("key_chunk: expected a multiple of 16 in [16, 256], "
                         "got {0}",
                         keyChunk);
  // 16 * warps query rows must divide a block of at most 256 tokens.
  if (!isPowerOfTwoIn(warps, 1, 16))
    return llvm::formatv("warps: expected a power of two in [1, 16], got {0}",
                         warps);
  return "";
}

std::string mlir::fp::attentionTileProblem(int64_t blockM, int64_t blockN,
                                           int64_t warps, int64_t stages) {
  if (!isPowerOfTwoIn(blockM, 16, 256))
    return llvm::formatv("block_m: expected a power of two in [16, 256], "
                         "got {0}",
                         blockM);
  if (!isPowerOfTwoIn(blockN, 16, 256))
    return llvm::formatv("block_n: expected a power of two in [16, 256], "
                         "got {0}",
                         blockN);
  if (warps < 1 || warps > 16)
    return llvm::formatv("warps: expected 1 to 16, got {0}", warps);
  if (stages < 2 || stages > 8)
    return llvm::formatv("stages: expected 2 to 8, got {0}", stages);
  return "";
}

std::string mlir::fp::discoveryTileBlockProblem(int64_t blockSize,
                                                int64_t warps) {
  if (warps < 1 || warps > 16 || blockSize % (16 * warps) != 0)
    return llvm::formatv("warps: expected 1 to 16 warps with block_size {0} "
                         "a multiple of 16 * warps, got {1}",
                         blockSize, warps);
  return "";
}

std::string mlir::fp::attentionTileBlockProblem(int64_t blockSize,
                                                int64_t blockM,
                                                int64_t blockN) {
  if (blockM <= 0 || blockSize % blockM != 0)
    return llvm::formatv("block_m: expected a divisor of block_size {0}, "
                         "got {1}",
                         blockSize, blockM);
  if (blockN <= 0 || blockSize % blockN != 0)
    return llvm::formatv("block_n: expected a divisor of block_size {0}, "
                         "got {1}",
                         blockSize, blockN);
  return "";
}
