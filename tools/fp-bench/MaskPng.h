//===- MaskPng.h - fp-bench --mask-png: one head's kept blocks --*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// A heatmap of one (batch, head) row set of a block mask: query block down,
// key block across, written as an RGB PNG with libpng. Colours:
//   kept block                     blue   (31, 119, 180)
//   causal block not kept          light  (235, 235, 235)
//   above the diagonal (non-causal) dark  (64, 64, 64)
//   diagonal block, kept           red    (214, 39, 40)
//   diagonal block, not kept       orange (255, 187, 120)
// Up to 1024 blocks a block is a square of clamp(1024 / nb, 1, 32) pixels;
// above that one pixel covers ceil(nb / 1024) blocks a side and its shade
// blends kept and not kept by the fraction kept. The file is written to a
// temporary sibling and renamed into place: never half-written.
//
//===----------------------------------------------------------------------===//
#ifndef FP_TOOLS_FPBENCH_MASKPNG_H
#define FP_TOOLS_FPBENCH_MASKPNG_H

#include "flashprefill/status.h"

#include <cstdint>
#include <string>

namespace fp::bench {

/// One head's block mask: query block i keeps counts[i] key blocks, listed in
/// ids[i * numBlocks + c] for c < counts[i].
struct HeadMask {
  const int32_t *counts = nullptr;
  const int32_t *ids = nullptr;
  int64_t numBlocks = 0;
};

/// Image geometry for `numBlocks` blocks a side.
struct MaskImageGeometry {
  int64_t pixelsPerBlock = 1; ///< > 1 only when blocksPerPixel == 1
  int64_t blocksPerPixel = 1; ///< > 1 only above 1024 blocks
  int64_t side = 0;           ///< width = height in pixels
};
MaskImageGeometry maskImageGeometry(int64_t numBlocks);

/// Ok when `path` can be created: its directory exists and is writable and
/// it is not a directory. Leaves nothing behind (a probe file is removed).
Status checkMaskPngWritable(const std::string &path);

/// Writes the heatmap of `mask` to `path` atomically. Errors name `path`; a
/// count or block id outside [0, numBlocks] is an error, not a read past
/// the mask.
Status writeMaskPng(const std::string &path, const HeadMask &mask);

} // namespace fp::bench

#endif // FP_TOOLS_FPBENCH_MASKPNG_H
