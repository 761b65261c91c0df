//===- Shapes.h - Result types of the fp step ops ---------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#ifndef FP_COMPILER_SHAPES_H
#define FP_COMPILER_SHAPES_H

#include "mlir/IR/BuiltinTypes.h"

namespace mlir::fp {

/// `[b, h, ceil(s / blockSize), d]` for a `[b, s, h, d]` token tensor.
RankedTensorType pooledType(RankedTensorType tokens, int64_t blockSize);

/// Types of the block scores and of the padded-rows mask of queries `q`.
struct MaskTypes {
  RankedTensorType scores; ///< [b, h_q, nb, nb] f32
  RankedTensorType counts; ///< [b, h_q, nb] i32
  RankedTensorType ids;    ///< [b, h_q, nb, nb] i32
};
MaskTypes maskTypes(RankedTensorType q, int64_t blockSize);

/// Varlen (docs/semantics.md section 2): pooled keys `[b, h_kv,
/// max_key_blocks, d]` of K/V `k` (packed rank 3 or paged rank 4), b from
/// `cuSeqlensQ [b + 1]`; the compact mask `counts [num_rows, h_q]`,
/// `ids [num_rows, h_q, max_key_blocks]` of queries `q [total_q, h_q, d]`.
RankedTensorType varlenPooledType(RankedTensorType k,
                                  RankedTensorType cuSeqlensQ);
struct VarlenMaskTypes {
  RankedTensorType counts, ids;
};
VarlenMaskTypes varlenMaskTypes(RankedTensorType q);

} // namespace mlir::fp

#endif // FP_COMPILER_SHAPES_H
