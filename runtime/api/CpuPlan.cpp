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
  return o;
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
};

} // namespace

StatusOr<std::unique_ptr<Plan>> createCpuPlan(const fp_plan_spec_t &spec) {
  return std::unique_ptr<Plan>(new CpuPlan(spec));
}

} // namespace fp
