//===- Tensor.cpp - Host tensors, options and masks -------------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// The plumbing of the reference: owning tensors, option and shape validation
// with messages that name the argument, and the block-mask container.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/reference.h"

#include "Internal.h"
#include "Numerics.h"

#include <cmath>
#include <string>

namespace fp::ref {

namespace {

Status nonNegative(const char *name, int value) {
  if (value >= 0)
    return Status::ok();
  return invalidArgument(std::string(name) + ": expected a value >= 0, got " +
                         std::to_string(value));
}

Status expectEqual(const std::string &name, int64_t expected,
                   const std::string &why, int64_t got) {
  if (expected == got)
    return Status::ok();
  return invalidArgument(name + ": expected " + std::to_string(expected) +
                         " (" + why + "), got " + std::to_string(got));
}

} // namespace

Status detail::checkView(const char *name, const TensorView &view) {
  std::string n(name);
  if (view.batch < 0 || view.seq < 0 || view.heads < 0)
    return invalidArgument(n +
                           ": expected non-negative batch, seq and heads, "
                           "got [" +
                           std::to_string(view.batch) + ", " +
                           std::to_string(view.seq) + ", " +
                           std::to_string(view.heads) + "]");
  if (view.dim <= 0)
    return invalidArgument(n + ".dim: expected a value > 0, got " +
                           std::to_string(view.dim));
  if (view.dtype != DType::kBF16 && view.dtype != DType::kF16)
    return invalidArgument(n + ".dtype: expected bf16 or f16");
  if (view.data == nullptr && view.batch * view.seq * view.heads > 0)
    return invalidArgument(n + ".data: expected a non-null pointer for a "
                               "non-empty tensor");
  return Status::ok();
}

Status detail::checkMaskRow(const std::string &countName,
                            const std::string &idsName, int32_t count,
                            const int32_t *ids, int64_t lastKeyBlock) {
  if (count < 0 || count > lastKeyBlock + 1)
    return invalidArgument(countName + ": expected a value in [0, " +
                           std::to_string(lastKeyBlock + 1) + "], got " +
                           std::to_string(count));
  for (int32_t e = 0; e < count; ++e) {
    int32_t j = ids[e];
    bool ascending = e == 0 || j > ids[e - 1];
    if (j < 0 || j > lastKeyBlock || !ascending)
      return invalidArgument(idsName +
                             ": expected strictly ascending block ids in [0, " +
                             std::to_string(lastKeyBlock) + "], got " +
                             std::to_string(j) + " at position " +
                             std::to_string(e));
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

Tensor Tensor::zeros(DType dtype, int64_t batch, int64_t seq, int64_t heads,
                     int64_t dim, Layout layout) {
  Tensor tensor;
  tensor.dtype_ = dtype;
  tensor.layout_ = layout;
  tensor.batch_ = batch;
  tensor.seq_ = seq;
  tensor.heads_ = heads;
  tensor.dim_ = dim;
  tensor.data_.assign(static_cast<size_t>(batch * seq * heads * dim), 0);
  return tensor;
}

Tensor Tensor::copyOf(const TensorView &view, Layout layout) {
  Tensor tensor =
      zeros(view.dtype, view.batch, view.seq, view.heads, view.dim, layout);
  for (int64_t b = 0; b < view.batch; ++b)
    for (int64_t s = 0; s < view.seq; ++s)
      for (int64_t h = 0; h < view.heads; ++h) {
        const uint16_t *src = view.row(b, s, h);
        uint16_t *dst = &tensor.data_[tensor.offset(b, s, h, 0)];
        for (int64_t c = 0; c < view.dim; ++c)
          dst[c] = src[c];
      }
  return tensor;
}

int64_t Tensor::offset(int64_t b, int64_t s, int64_t h, int64_t c) const {
  if (layout_ == Layout::kBSHD)
    return ((b * seq_ + s) * heads_ + h) * dim_ + c;
  return ((b * heads_ + h) * seq_ + s) * dim_ + c;
}

TensorView Tensor::view() const {
  TensorView view;
  view.data = data_.data();
  view.dtype = dtype_;
  view.batch = batch_;
  view.seq = seq_;
  view.heads = heads_;
  view.dim = dim_;
  if (layout_ == Layout::kBSHD) {
    view.batchStride = seq_ * heads_ * dim_;
    view.seqStride = heads_ * dim_;
    view.headStride = dim_;
  } else {
    view.batchStride = heads_ * seq_ * dim_;
    view.seqStride = dim_;
    view.headStride = seq_ * dim_;
  }
  return view;
}

MutableTensorView Tensor::mutableView() {
  TensorView v = view();
  return {data_.data(), v.dtype,       v.batch,     v.seq,       v.heads,
          v.dim,        v.batchStride, v.seqStride, v.headStride};
}

float Tensor::at(int64_t b, int64_t s, int64_t h, int64_t c) const {
  return bitsToFloat(dtype_, data_[offset(b, s, h, c)]);
}

void Tensor::set(int64_t b, int64_t s, int64_t h, int64_t c, float value) {
  data_[offset(b, s, h, c)] = floatToBits(dtype_, value);
}

std::vector<int64_t> Tensor::storageShape() const {
  if (layout_ == Layout::kBSHD)
    return {batch_, seq_, heads_, dim_};
  return {batch_, heads_, seq_, dim_};
}

NpyArray tensorToNpy(const Tensor &tensor) {
  return makeNpyArray(tensor.storageShape(), tensor.storage());
}

StatusOr<Tensor> tensorFromNpy(const NpyArray &array, DType dtype,
                               const std::string &what) {
  if (array.shape.size() != 4)
    return invalidArgument(what + ": expected a 4-d array [b, s, h, d], got " +
                           std::to_string(array.shape.size()) + " dimensions");
  const std::vector<int64_t> &shape = array.shape;
  Tensor tensor = Tensor::zeros(dtype, shape[0], shape[1], shape[2], shape[3]);
  std::vector<uint16_t> &dst = tensor.storage();
  if (array.type == NpyType::kUInt16) {
    dst = array.values<uint16_t>();
  } else if (array.type == NpyType::kFloat32) {
    std::vector<float> values = array.values<float>();
    for (size_t i = 0; i < values.size(); ++i)
      dst[i] = floatToBits(dtype, values[i]);
  } else {
    return invalidArgument(what +
                           ": expected uint16 (bf16/f16 bit patterns) or "
                           "float32 elements, got " +
                           npyDescr(array.type));
  }
  return tensor;
}

//===----------------------------------------------------------------------===//
// Options and problem validation
//===----------------------------------------------------------------------===//

Status validateOptions(const Options &options) {
  int b = options.blockSize;
  if (b < 1 || (b & (b - 1)) != 0)
    return invalidArgument(
        "block_size: expected a power of two >= 1 (the kernels use 128), "
        "got " +
        std::to_string(b));
  // Written so NaN fails too.
  if (!(options.alpha >= 0.0f && options.alpha <= 1.0f))
    return invalidArgument("alpha: expected a value in [0, 1], got " +
                           formatFloat(options.alpha));
  FP_RETURN_IF_ERROR(nonNegative("sink", options.sink));
  FP_RETURN_IF_ERROR(nonNegative("window", options.window));
  FP_RETURN_IF_ERROR(nonNegative("last_n", options.lastN));
  FP_RETURN_IF_ERROR(nonNegative("min_budget", options.minBudget));
  if (options.thresholdKind != ThresholdKind::kRelativeMax &&
      options.thresholdKind != ThresholdKind::kMinMax)
    return invalidArgument(
        "threshold_kind: expected relative_max (0) or min_max (1), got " +
        std::to_string(static_cast<int>(options.thresholdKind)));
  if (options.scoreQuery != ScoreQuery::kFull &&
      options.scoreQuery != ScoreQuery::kPooled)
    return invalidArgument(
        "score_query: expected full (0) or pooled (1), "
        "got " +
        std::to_string(static_cast<int>(options.scoreQuery)));
  if (std::isinf(options.scale) && options.scale > 0)
    return invalidArgument("scale: expected a finite value > 0 (or <= 0 / NaN "
                           "for the default 1/sqrt(d)), got " +
                           formatFloat(options.scale));
  if (options.numThreads < 0)
    return invalidArgument("num_threads: expected a value >= 0 (0 = one per "
                           "hardware thread), got " +
                           std::to_string(options.numThreads));
  if (!options.causal)
    return unsupported("causal: expected true (non-causal attention is not "
                       "implemented yet), got false");
  return Status::ok();
}

float resolveScale(const Options &options, int64_t headDim) {
  if (options.scale > 0.0f) // false for NaN as well
    return options.scale;
  return 1.0f / std::sqrt(static_cast<float>(headDim));
}

int64_t numBlocks(int64_t seqLen, int64_t blockSize) {
  return (seqLen + blockSize - 1) / blockSize;
}

Status validateProblem(const TensorView &q, const TensorView &k,
                       const TensorView &v, const Options &options) {
  FP_RETURN_IF_ERROR(validateOptions(options));
  FP_RETURN_IF_ERROR(detail::checkView("q", q));
  FP_RETURN_IF_ERROR(detail::checkView("k", k));
  FP_RETURN_IF_ERROR(detail::checkView("v", v));
  if (k.dtype != q.dtype)
    return invalidArgument(std::string("k.dtype: expected ") +
                           dtypeName(q.dtype) + " (the dtype of q), got " +
                           dtypeName(k.dtype));
  if (v.dtype != q.dtype)
    return invalidArgument(std::string("v.dtype: expected ") +
                           dtypeName(q.dtype) + " (the dtype of q), got " +
                           dtypeName(v.dtype));
  FP_RETURN_IF_ERROR(expectEqual("k.batch", q.batch, "q.batch", k.batch));
  FP_RETURN_IF_ERROR(expectEqual("v.batch", q.batch, "q.batch", v.batch));
  FP_RETURN_IF_ERROR(expectEqual("k.dim", q.dim, "q.dim", k.dim));
  FP_RETURN_IF_ERROR(expectEqual("v.seq", k.seq, "k.seq", v.seq));
  FP_RETURN_IF_ERROR(expectEqual("v.heads", k.heads, "k.heads", v.heads));
  if (k.heads <= 0 || q.heads % k.heads != 0)
    return invalidArgument("q.heads: expected a multiple of k.heads (" +
                           std::to_string(k.heads) + "), got " +
                           std::to_string(q.heads));
  if (k.seq != q.seq)
    return unsupported("s_k: expected s_k == s_q (a whole prompt; a chunk "
                       "after a cached prefix, s_k > s_q, goes through "
                       "prefillVarlen), got s_q = " +
                       std::to_string(q.seq) +
                       ", s_k = " + std::to_string(k.seq));
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// BlockMask
//===----------------------------------------------------------------------===//

BlockMask BlockMask::empty(int64_t batch, int64_t heads, int64_t numBlocks) {
  BlockMask mask;
  mask.batch = batch;
  mask.heads = heads;
  mask.numBlocks = numBlocks;
  mask.counts.assign(static_cast<size_t>(batch * heads * numBlocks), 0);
  mask.ids.assign(static_cast<size_t>(batch * heads * numBlocks * numBlocks),
                  -1);
  return mask;
}

BlockMask BlockMask::denseCausal(int64_t batch, int64_t heads,
                                 int64_t numBlocks) {
  BlockMask mask = empty(batch, heads, numBlocks);
  for (int64_t row = 0; row < batch * heads * numBlocks; ++row) {
    int64_t i = row % numBlocks;
    mask.counts[row] = static_cast<int32_t>(i + 1);
    for (int64_t j = 0; j <= i; ++j)
      mask.ids[row * numBlocks + j] = static_cast<int32_t>(j);
  }
  return mask;
}

std::vector<int32_t> BlockMask::kept(int64_t b, int64_t h, int64_t i) const {
  const int32_t *ids = rowIds(b, h, i);
  return std::vector<int32_t>(ids, ids + count(b, h, i));
}

bool BlockMask::contains(int64_t b, int64_t h, int64_t i, int64_t j) const {
  const int32_t *ids = rowIds(b, h, i);
  for (int32_t e = 0; e < count(b, h, i); ++e)
    if (ids[e] == j)
      return true;
  return false;
}

int64_t BlockMask::keptBlocks() const {
  int64_t total = 0;
  for (int32_t c : counts)
    total += c;
  return total;
}

double BlockMask::density() const {
  double causal =
      static_cast<double>(batch * heads) * numBlocks * (numBlocks + 1) / 2;
  return causal > 0 ? static_cast<double>(keptBlocks()) / causal : 0.0;
}

Status BlockMask::validate(int64_t expectBatch, int64_t expectHeads,
                           int64_t expectBlocks) const {
  FP_RETURN_IF_ERROR(
      expectEqual("mask.batch", expectBatch, "the batch of q", batch));
  FP_RETURN_IF_ERROR(
      expectEqual("mask.heads", expectHeads, "the query heads of q", heads));
  FP_RETURN_IF_ERROR(expectEqual("mask.num_blocks", expectBlocks,
                                 "ceil(s_q / block_size)", numBlocks));
  int64_t rows = batch * heads * numBlocks;
  FP_RETURN_IF_ERROR(expectEqual("mask.counts size", rows, "b * h_q * nb",
                                 static_cast<int64_t>(counts.size())));
  FP_RETURN_IF_ERROR(expectEqual("mask.ids size", rows * numBlocks,
                                 "b * h_q * nb * nb",
                                 static_cast<int64_t>(ids.size())));
  for (int64_t row = 0; row < rows; ++row) {
    int64_t i = row % numBlocks;
    int64_t h = (row / numBlocks) % heads;
    int64_t b = row / (numBlocks * heads);
    std::string where = "[b=" + std::to_string(b) + ", h=" + std::to_string(h) +
                        ", I=" + std::to_string(i) + "]";
    FP_RETURN_IF_ERROR(detail::checkMaskRow("mask.counts" + where,
                                            "mask.ids" + where, counts[row],
                                            ids.data() + row * numBlocks, i));
  }
  return Status::ok();
}

float dotF32(const float *a, const float *b, int64_t n) {
  return detail::dot8(a, b, n);
}

} // namespace fp::ref
