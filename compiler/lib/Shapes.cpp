//===- Shapes.cpp - Result types of the fp step ops -------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
//===----------------------------------------------------------------------===//
#include "fp/Compiler/Shapes.h"

#include "llvm/Support/MathExtras.h"

using namespace mlir;

static int64_t numBlocks(int64_t seq, int64_t blockSize) {
  return ShapedType::isDynamic(seq) ? ShapedType::kDynamic
                                    : llvm::divideCeil(seq, blockSize);
}

RankedTensorType mlir::fp::pooledType(RankedTensorType tokens,
                                      int64_t blockSize) {
  ArrayRef<int64_t> s = tokens.getShape();
  return RankedTensorType::get({s[0], s[2], numBlocks(s[1], blockSize), s[3]},
                               tokens.getElementType());
}

mlir::fp::MaskTypes mlir::fp::maskTypes(RankedTensorType q, int64_t blockSize) {
  ArrayRef<int64_t> s = q.getShape();
  int64_t nb = numBlocks(s[1], blockSize);
  MLIRContext *ctx = q.getContext();
  auto i32 = IntegerType::get(ctx, 32);
  return {RankedTensorType::get({s[0], s[2], nb, nb}, Float32Type::get(ctx)),
          RankedTensorType::get({s[0], s[2], nb}, i32),
          RankedTensorType::get({s[0], s[2], nb, nb}, i32)};
}

RankedTensorType mlir::fp::varlenPooledType(RankedTensorType k,
                                            RankedTensorType cuSeqlensQ) {
  int64_t offsets = cuSeqlensQ.getDimSize(0);
  int64_t batch = ShapedType::isDynamic(offsets) ? offsets : offsets - 1;
  ArrayRef<int64_t> s = k.getShape();
  int64_t rank = k.getRank();
  return RankedTensorType::get(
      {batch, s[rank - 2], ShapedType::kDynamic, s[rank - 1]},
      k.getElementType());
}

mlir::fp::VarlenMaskTypes mlir::fp::varlenMaskTypes(RankedTensorType q) {
  auto i32 = IntegerType::get(q.getContext(), 32);
  int64_t heads = q.getDimSize(1), rows = ShapedType::kDynamic;
  return {RankedTensorType::get({rows, heads}, i32),
          RankedTensorType::get({rows, heads, ShapedType::kDynamic}, i32)};
}
