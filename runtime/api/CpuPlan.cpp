//===- CpuPlan.cpp - The CPU reference behind the public API ----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Runs the same entry points through the CPU reference (fp::ref) so that
// machines without a GPU, tests and numpy users get the exact operator.
// The workspace is validated like on the GPU but not used.
//
//===----------------------------------------------------------------------===//
#include "PlanBackends.h"

#include "flashprefill/reference.h"

#include <algorithm>

namespace fp {
namespace {

ref::TensorView viewOf(const fp_tensor_t &t, DType dtype) {
  return {static_cast<const uint16_t *>(t.data),
          dtype,
          t.shape[0],
          t.shape[1],
          t.shape[2],
          t.shape[3],
          t.strides[0],
          t.strides[1],
          t.strides[2]};
}

ref::Options optionsOf(const fp_plan_spec_t &spec, const fp_params_t &p) {
  ref::Options o;
  o.blockSize = spec.block_size;
  o.alpha = p.alpha;
  o.sink = p.sink;
  o.window = p.window;
  o.lastN = p.last_n;
  o.minBudget = p.min_budget;
  o.thresholdKind = static_cast<ref::ThresholdKind>(p.threshold_kind);
  o.scoreQuery =
      spec.pooled_queries ? ref::ScoreQuery::kPooled : ref::ScoreQuery::kFull;
  o.scale = p.scale > 0 ? p.scale : 0.0f;
  o.meanCorrection = p.mean_correction != 0;
  return o;
}

/// The reference's view of a varlen call; the lengths are host memory on
/// the CPU backend, so they are copied (and validated by the reference).
/// `v` NULL (select) passes k in its place: only its shape is checked.
ref::VarlenProblem varlenProblemOf(const fp_tensor_t &q, const fp_tensor_t &k,
                                   const fp_tensor_t *v,
                                   const fp_varlen_t &varlen, DType dtype,
                                   int64_t blockSize) {
  ref::VarlenProblem p;
  p.q = viewOf(q, dtype);
  p.k = viewOf(k, dtype);
  p.v = viewOf(v ? *v : k, dtype);
  const size_t b = size_t(varlen.batch);
  p.cuSeqlensQ.assign(varlen.cu_seqlens_q, varlen.cu_seqlens_q + b + 1);
  if (varlen.cu_seqlens_k) {
    p.cuSeqlensK.assign(varlen.cu_seqlens_k, varlen.cu_seqlens_k + b + 1);
  } else {
    p.kLens.assign(varlen.k_lens, varlen.k_lens + b);
    // Only the entries a sequence needs are read (flashprefill.h): a
    // max_pages wider than the caller's table is valid. The copy keeps as
    // many columns as the widest sequence needs (max_pages when a sequence
    // needs more, so "too narrow" is still reported with the caller's value).
    const int64_t pageSize = k.shape[1]; // validated: a power of two
    std::vector<int64_t> pagesOf(b);
    int64_t columns = 1;
    for (size_t i = 0; i < b; ++i) {
      const int64_t kLen = p.kLens[i];
      pagesOf[i] = std::min<int64_t>(
          kLen > 0 ? (kLen + pageSize - 1) / pageSize : 0, varlen.max_pages);
      columns = std::max(columns, pagesOf[i]);
    }
    p.maxPages = columns;
    p.pageTable.assign(b * size_t(columns), 0);
    for (size_t i = 0; i < b; ++i)
      std::copy_n(varlen.page_table + i * size_t(varlen.max_pages),
                  pagesOf[i], p.pageTable.begin() + i * size_t(columns));
  }
  if (varlen.apply_last_n)
    p.applyLastN.assign(varlen.apply_last_n, varlen.apply_last_n + b);
  p.maxSeqlenQ = varlen.max_seqlen_q;
  p.maxSeqlenK = varlen.max_seqlen_k;
  if (varlen.pooled_k) {
    // [b, h_kv, blocks, d] contiguous (flashprefill.h), logical [b, blocks,
    // h_kv, d]: the reference takes any strides.
    const int64_t blocks =
        (varlen.max_seqlen_k + blockSize - 1) / blockSize;
    const int64_t heads = k.shape[2], dim = k.shape[3];
    p.pooledK = {static_cast<const uint16_t *>(varlen.pooled_k),
                 dtype,
                 varlen.batch,
                 blocks,
                 heads,
                 dim,
                 heads * blocks * dim,
                 dim,
                 blocks * dim};
  }
  return p;
}

class CpuPlan final : public Plan {
public:
  explicit CpuPlan(const fp_plan_spec_t &spec) : Plan(spec) {
    info_.device = "CPU (reference)";
    info_.kernelOrigin = "none (reference)";
  }

private:
  DType dtype() const {
    return spec_.dtype == FP_DTYPE_BF16 ? DType::kBF16 : DType::kF16;
  }
  bool onDevice() const override { return false; }

  Status runSelect(const Problem &, const fp_tensor_t &q, const fp_tensor_t &k,
                   const fp_params_t &params, const fp_mask_t &mask, void *,
                   void *) const override {
    ref::Options options = optionsOf(spec_, params);
    ref::TensorView qv = viewOf(q, dtype()), kv = viewOf(k, dtype());
    auto kbar = ref::blockPool(kv, options);
    if (!kbar.isOk())
      return kbar.status();
    ref::Tensor qbar;
    if (spec_.pooled_queries) {
      auto pooled = ref::blockPool(qv, options);
      if (!pooled.isOk())
        return pooled.status();
      qbar = std::move(*pooled);
    }
    ref::TensorView qbarView = qbar.view();
    auto scores = ref::blockScore(qv, kbar->view(), options,
                                  spec_.pooled_queries ? &qbarView : nullptr);
    if (!scores.isOk())
      return scores.status();
    auto selected = ref::thresholdMask(*scores, options);
    if (!selected.isOk())
      return selected.status();
    std::copy(selected->counts.begin(), selected->counts.end(), mask.counts);
    std::copy(selected->ids.begin(), selected->ids.end(), mask.ids);
    if (params.kept_counter)
      *params.kept_counter += selected->keptBlocks();
    return Status::ok();
  }

  Status runAttend(const Problem &problem, const fp_tensor_t &q,
                   const fp_tensor_t &k, const fp_tensor_t &v,
                   const fp_mask_t &mask, const fp_tensor_t &out,
                   const fp_params_t &params, void *) const override {
    ref::BlockMask blocks;
    blocks.batch = mask.batch;
    blocks.heads = mask.heads;
    blocks.numBlocks = mask.num_blocks;
    size_t rows = size_t(mask.batch * mask.heads * mask.num_blocks);
    blocks.counts.assign(mask.counts, mask.counts + rows);
    blocks.ids.assign(mask.ids, mask.ids + rows * mask.num_blocks);
    // A caller-made mask is checked before use: bad ids would read out of
    // bounds.
    FP_RETURN_IF_ERROR(
        blocks.validate(problem.batch, spec_.num_q_heads, problem.numBlocks));
    auto result = ref::maskedAttention(viewOf(q, dtype()), viewOf(k, dtype()),
                                       viewOf(v, dtype()), blocks,
                                       optionsOf(spec_, params));
    if (!result.isOk())
      return result.status();
    // Copy into the caller's (possibly strided) output and LSE.
    const ref::Tensor &o = result->out;
    auto *dst = static_cast<uint16_t *>(out.data);
    const uint16_t *src = o.storage().data();
    for (int64_t b = 0; b < o.batch(); ++b)
      for (int64_t s = 0; s < o.seq(); ++s)
        for (int64_t h = 0; h < o.heads(); ++h)
          std::copy_n(src + ((b * o.seq() + s) * o.heads() + h) * o.dim(),
                      o.dim(),
                      dst + b * out.strides[0] + s * out.strides[1] +
                          h * out.strides[2]);
    if (params.lse)
      std::copy(result->lse.begin(), result->lse.end(), params.lse);
    return Status::ok();
  }

  Status runSelectVarlen(const VarlenShape &shape, const fp_tensor_t &q,
                         const fp_tensor_t &k, const fp_varlen_t &varlen,
                         const fp_params_t &params,
                         const fp_varlen_mask_t &mask, void *,
                         void *) const override {
    // The reference validates every length before computing; the caller's
    // mask is written only after success.
    auto selected = ref::selectVarlen(
        varlenProblemOf(q, k, nullptr, varlen, dtype(), spec_.block_size),
        optionsOf(spec_, params));
    if (!selected.isOk())
      return selected.status();
    if (selected->numRows != shape.numRows ||
        selected->maxKeyBlocks != shape.maxKeyBlocks)
      return Status(StatusCode::kInternal,
                    "selectVarlen: the reference's mask shape differs from "
                    "the host's");
    std::copy(selected->counts.begin(), selected->counts.end(), mask.counts);
    std::copy(selected->ids.begin(), selected->ids.end(), mask.ids);
    if (params.kept_counter)
      *params.kept_counter += selected->keptBlocks();
    return Status::ok();
  }

  Status runPoolKeysVarlen(const VarlenShape &shape, const fp_tensor_t &q,
                           const fp_tensor_t &k, const fp_varlen_t &varlen,
                           void *pooledK, void *) const override {
    // q only for the lengths checks (cu_seqlens_q against total_q).
    ref::VarlenProblem problem =
        varlenProblemOf(q, k, nullptr, varlen, dtype(), spec_.block_size);
    auto pooled = ref::poolKeysVarlen(problem, optionsOf(spec_, fp_params_t{}));
    if (!pooled.isOk())
      return pooled.status();
    // Blocks past a sequence's keys are the caller's: not written.
    const int64_t blocks = shape.maxKeyBlocks, rowElems = spec_.head_dim;
    const uint16_t *src = pooled->storage().data();
    auto *dst = static_cast<uint16_t *>(pooledK);
    for (int64_t i = 0; i < shape.batch; ++i) {
      const int64_t used =
          (problem.keyLen(i) + spec_.block_size - 1) / spec_.block_size;
      for (int64_t h = 0; h < spec_.num_kv_heads; ++h) {
        const int64_t at = ((i * spec_.num_kv_heads + h) * blocks) * rowElems;
        std::copy_n(src + at, used * rowElems, dst + at);
      }
    }
    return Status::ok();
  }

  Status runAttendVarlen(const VarlenShape &shape, const fp_tensor_t &q,
                         const fp_tensor_t &k, const fp_tensor_t &v,
                         const fp_varlen_t &varlen,
                         const fp_varlen_mask_t &mask, const fp_tensor_t &out,
                         const fp_params_t &params, void *) const override {
    const ref::VarlenProblem problem =
        varlenProblemOf(q, k, &v, varlen, dtype(), spec_.block_size);
    ref::VarlenMask blocks = ref::VarlenMask::empty(
        0, spec_.num_q_heads, shape.maxKeyBlocks, spec_.block_size);
    blocks.numRows = shape.numRows;
    const size_t rows = size_t(shape.numRows) * size_t(spec_.num_q_heads);
    blocks.counts.assign(mask.counts, mask.counts + rows);
    blocks.ids.assign(mask.ids, mask.ids + rows * size_t(shape.maxKeyBlocks));
    // attendVarlen checks the lengths and every mask row of every sequence
    // before computing: bad ids would read out of bounds.
    auto result = ref::attendVarlen(problem, blocks, optionsOf(spec_, params));
    if (!result.isOk())
      return result.status();
    // Only the rows of sequences: rows past cu_seqlens_q[b] are the
    // caller's and stay untouched.
    const ref::Tensor &o = result->out;
    auto *dst = static_cast<uint16_t *>(out.data);
    const int64_t heads = o.heads(), dv = o.dim();
    const int64_t first = problem.cuSeqlensQ.front();
    const int64_t last = problem.cuSeqlensQ.back();
    for (int64_t t = first; t < last; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        std::copy_n(o.storage().data() + (t * heads + h) * dv, dv,
                    dst + t * out.strides[1] + h * out.strides[2]);
        if (params.lse)
          params.lse[h * shape.totalQ + t] =
              result->lse[size_t(h * shape.totalQ + t)];
      }
    return Status::ok();
  }
};

} // namespace

StatusOr<std::unique_ptr<Plan>> createCpuPlan(const fp_plan_spec_t &spec) {
  return std::unique_ptr<Plan>(new CpuPlan(spec));
}

} // namespace fp
