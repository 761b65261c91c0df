//===- CudaPlan.cpp - The CUDA backend of the public API --------*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Plan creation: codegen (MLIR, in-process) -> kernel cache / NVRTC ->
// cuModuleLoadData -> per-role functions, launch facts from the manifest.
// Calls only fill parameter structs and enqueue launches on the caller's
// stream: no allocation, no synchronization (CUDA-graph capturable).
//
//===----------------------------------------------------------------------===//
#include "CostModel.h"
#include "ManifestParser.h"
#include "PlanBackends.h"

#include "flashprefill/runtime/attention_tma.h"
#include "flashprefill/runtime/cuda_driver.h"
#include "flashprefill/runtime/device_target.h"
#include "flashprefill/runtime/kernel_cache.h"
#include "flashprefill/runtime/nvrtc.h"
#include "fp/Compiler/Codegen.h"
#include "fp/Compiler/TuningDatabase.h"
#include "fp/merge_states.h"
#include "fp/params.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>

namespace fp {
namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

//===----------------------------------------------------------------------===//
// The plan
//===----------------------------------------------------------------------===//

/// A loaded kernel and its launch facts.
struct Kernel {
  CUfunction function = nullptr;
  ManifestKernel facts;
};

class CudaPlan final : public Plan {
public:
  CudaPlan(const fp_plan_spec_t &spec, const PlanTuning &tuning)
      : Plan(spec), tuning_(tuning) {}

  Status initialize() {
    Clock::time_point start = Clock::now();
    auto driver = rt::CudaDriver::get();
    if (!driver.isOk())
      return driver.status();
    driver_ = *driver;
    if (spec_.device >= driver_->deviceCount())
      return invalidArgument("spec.device: expected a CUDA ordinal below " +
                             std::to_string(driver_->deviceCount()) + ", got " +
                             std::to_string(spec_.device));
    auto device = driver_->deviceInfo(spec_.device);
    if (!device.isOk())
      return device.status();
    auto context = driver_->makePrimaryContextCurrent(spec_.device);
    if (!context.isOk())
      return context.status();
    context_ = *context;
    info_.device = device->name;
    std::vector<int> nvrtcArchs;
    if (auto nvrtc = rt::Nvrtc::get(); nvrtc.isOk())
      nvrtcArchs = (*nvrtc)->supportedArchs();
    auto target = rt::deviceTargetFor(device->ccMajor, device->ccMinor,
                                      device->maxSharedMemOptin, nvrtcArchs);
    if (!target.isOk())
      return Status(target.status().code(),
                    "device " + info_.device + ": " + target.status().message());
    info_.arch = target->compileArch;
    if (!target->notice.empty())
      noticeOnce(target->notice);

    // 1. Codegen: the spec's kernels as CUDA source + manifest.
    Clock::time_point codegenStart = Clock::now();
    codegen::KernelSpec kernelSpec;
    kernelSpec.dtype = spec_.dtype == FP_DTYPE_BF16 ? "bf16" : "f16";
    kernelSpec.headDim = spec_.head_dim;
    kernelSpec.numQHeads = spec_.num_q_heads;
    kernelSpec.numKvHeads = spec_.num_kv_heads;
    kernelSpec.blockSize = spec_.block_size;
    kernelSpec.arch = target->kernelArch;
    kernelSpec.pooledQueries = spec_.pooled_queries != 0;
    if (tuning_.useTuningDatabase) {
      // The default database exists once fp-tune ran; fp-select-tiles
      // warns about a missing one, so it is passed only when present.
      kernelSpec.tuningDb = tuning_.tuningDatabase.empty()
                                ? tuning::TuningDatabase::existingDefaultPath()
                                : tuning_.tuningDatabase;
      kernelSpec.lengthBucket = tuning::lengthBucket(spec_.max_seq_len);
      kernelSpec.builtinTuning = true;
    }
    kernelSpec.attentionTile = tuning_.attentionTile;
    kernelSpec.discoveryTile = tuning_.discoveryTile;
    auto generated = codegen::generateKernels(kernelSpec);
    if (!generated.isOk())
      return Status(generated.status().code(),
                    "device " + info_.device + " (" + info_.arch +
                        "): " + generated.status().message());
    info_.codegenSeconds = secondsSince(codegenStart);
    for (const std::string &warning : generated->warnings)
      noticeOnce("flashprefill: warning: " + warning);

    info_.denseBelowTokens = denseBreakEvenTokens(
        densityPoints(kernelSpec), spec_.block_size, spec_.max_seq_len);

    // 2. Compile or fetch from the kernel cache.
    rt::CompileRequest request;
    request.source = generated->source;
    request.programName = "fp_prefill.cu";
    request.arch = info_.arch;
    request.codegenVersion = "fp-codegen-1";
    request.manifest = generated->manifest;
    auto compiled = rt::KernelCache::global().getOrCompile(request);
    if (!compiled.isOk())
      return compiled.status();
    info_.compileSeconds = compiled->compileSeconds;
    info_.kernelOrigin =
        compiled->origin == rt::CacheOrigin::kCompiled ? "compiled"
        : compiled->origin == rt::CacheOrigin::kMemory ? "memory cache"
                                                       : "disk cache";

    // 3. Load and resolve every launch role.
    auto module = rt::Module::load(compiled->binary);
    if (!module.isOk())
      return module.status();
    module_ = std::move(*module);
    auto manifest = parseManifest(compiled->manifest);
    if (!manifest.isOk())
      return manifest.status();
    for (const auto &[role, entry] : manifest->launches) {
      Kernel kernel;
      kernel.facts = manifest->kernels[entry];
      auto function = module_.function(entry);
      if (!function.isOk())
        return function.status();
      kernel.function = *function;
      FP_RETURN_IF_ERROR(checkExportedSmem(kernel.facts));
      kernels_[role] = kernel;
    }
    info_.attentionKernel = manifest->launches["attention"];
    info_.discoveryKernel = manifest->launches["discovery"];
    for (const char *role :
         {"pool_keys", "discovery", "attention", "varlen_pool_keys",
          "varlen_discovery", "varlen_attention_packed",
          "varlen_attention_paged"})
      if (!kernels_.count(role))
        return Status(StatusCode::kInternal,
                      std::string("kernel manifest: no '") + role + "' launch");
    if (spec_.pooled_queries && !kernels_.count("varlen_pool_queries"))
      return Status(StatusCode::kInternal,
                    "kernel manifest: no 'varlen_pool_queries' launch for a "
                    "pooled-query plan");

    // Attention grid rule "q_tiles:<M>,q_heads,batch": ceil(s_q / M) CTAs
    // (varlen: ceil(max_seqlen_q / M)).
    FP_RETURN_IF_ERROR(queryTileRows("attention", &attentionBlockM_));
    FP_RETURN_IF_ERROR(
        queryTileRows("varlen_attention_packed", &varlenPackedBlockM_));
    FP_RETURN_IF_ERROR(
        queryTileRows("varlen_attention_paged", &varlenPagedBlockM_));

    // 4. Opt in to the dynamic shared memory of the longest sequence.
    int64_t maxBlocks =
        (spec_.max_seq_len + spec_.block_size - 1) / spec_.block_size;
    for (auto &[role, kernel] : kernels_) {
      long bytes =
          kernel.facts.smemBase + kernel.facts.smemPerKeyBlock * maxBlocks;
      if (bytes > device->maxSharedMemOptin)
        return unsupported(
            "spec.max_seq_len: " + role + " needs " + std::to_string(bytes) +
            " bytes of shared memory at " + std::to_string(spec_.max_seq_len) +
            " tokens; " + info_.device + " allows " +
            std::to_string(device->maxSharedMemOptin));
      FP_RETURN_IF_ERROR(driver_->check(
          driver_->api().funcSetAttribute(
              kernel.function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
              int(bytes)),
          "cuFuncSetAttribute(" + kernel.facts.entry + ")"));
    }

    // 5. fp_merge_states' kernel (hand-written, no per-spec constants): its
    // own program, cached like the generated one. Loaded here, not on the
    // first merge, so that a merge inside a CUDA-graph capture only
    // launches.
    FP_RETURN_IF_ERROR(loadMergeKernel());
    info_.totalSeconds = secondsSince(start);
    return Status::ok();
  }

private:
  bool onDevice() const override { return true; }

  /// M of an attention kernel's grid rule "q_tiles:<M>,q_heads,batch".
  Status queryTileRows(const char *role, int *rows) {
    const std::string &grid = kernels_.at(role).facts.grid;
    if (grid.rfind("q_tiles:", 0) != 0 ||
        !parseManifestNumber(grid.substr(8, grid.find(',') - 8), rows) ||
        *rows <= 0)
      return Status(StatusCode::kInternal,
                    std::string("kernel manifest: ") + role + " grid '" +
                        grid + "', expected q_tiles:<M>,q_heads,batch");
    return Status::ok();
  }

  /// Prints `line` to stderr the first time this process sees it (one
  /// notice per unfamiliar GPU, not one per plan).
  static void noticeOnce(const std::string &line) {
    static std::mutex mutex;
    static std::set<std::string> printed;
    std::lock_guard<std::mutex> lock(mutex);
    if (printed.insert(line).second)
      std::fprintf(stderr, "%s\n", line.c_str());
  }

  /// The templates' own shared-memory figures, exported by the generated
  /// source, must equal the manifest's (mirrored by the compiler).
  Status checkExportedSmem(const ManifestKernel &facts) {
    for (auto [suffix, expected] :
         {std::pair<const char *, long>{"_smem_base", facts.smemBase},
          {"_smem_per_key_block", facts.smemPerKeyBlock}}) {
      auto global = module_.global(facts.entry + suffix);
      if (!global.isOk())
        return global.status();
      int value = -1;
      FP_RETURN_IF_ERROR(driver_->check(
          driver_->api().memcpyDtoH(&value, global->first, sizeof(value)),
          "cuMemcpyDtoH(" + facts.entry + suffix + ")"));
      if (value != expected)
        return Status(StatusCode::kInternal,
                      facts.entry + suffix + ": device templates say " +
                          std::to_string(value) + " bytes, the compiler's " +
                          "manifest " + std::to_string(expected));
    }
    return Status::ok();
  }

  /// Makes the plan's context current on the calling thread (engines call
  /// from worker threads that may have none).
  Status bindContext() const {
    CUcontext current = nullptr;
    driver_->api().ctxGetCurrent(&current);
    if (current == context_)
      return Status::ok();
    return driver_->check(driver_->api().ctxSetCurrent(context_),
                          "cuCtxSetCurrent");
  }

  Status launch(const std::string &role, unsigned gridX, unsigned gridY,
                unsigned gridZ, long smemBytes, void *params,
                void *stream) const {
    const Kernel &kernel = kernels_.at(role);
    void *args[] = {params};
    return driver_->check(driver_->api().launchKernel(
                              kernel.function, gridX, gridY, gridZ,
                              kernel.facts.threads, 1, 1, unsigned(smemBytes),
                              static_cast<CUstream>(stream), args, nullptr),
                          "cuLaunchKernel(" + kernel.facts.entry + ")");
  }

  Status pool(const fp_tensor_t &src, int heads, void *dst,
              const Problem &problem, const char *role, void *stream) const {
    FpPoolParams p{};
    p.src = src.data;
    p.dst = dst;
    setStrides(p.src_batch_stride, p.src_seq_stride, p.src_head_stride, src);
    p.batch = int(problem.batch);
    p.seq_len = int(problem.seqLen);
    p.num_heads = heads;
    p.num_blocks = int(problem.numBlocks);
    return launch(role, unsigned(problem.numBlocks), unsigned(heads),
                  unsigned(problem.batch), 0, &p, stream);
  }

  /// Sets the problem fields FpDiscoveryParams and FpAttentionParams share.
  template <typename KernelParams>
  void setProblem(KernelParams &p, const Problem &problem,
                  const fp_params_t &params) const {
    p.batch = int(problem.batch);
    p.seq_q = p.seq_k = int(problem.seqLen);
    p.num_q_heads = spec_.num_q_heads;
    p.num_kv_heads = spec_.num_kv_heads;
    p.num_blocks = int(problem.numBlocks);
    p.scale = scaleOf(params);
  }

  static void setStrides(fp_i64 &batch, fp_i64 &seq, fp_i64 &head,
                         const fp_tensor_t &t) {
    batch = t.strides[0];
    seq = t.strides[1];
    head = t.strides[2];
  }

  float scaleOf(const fp_params_t &params) const {
    return params.scale > 0 ? params.scale
                            : 1.0f / std::sqrt(float(spec_.head_dim));
  }

  /// fp-tune's measured densities for this arch and block size (user
  /// database first, then the shipped ones), one point per length bucket.
  DensityPoints densityPoints(const codegen::KernelSpec &kernelSpec) const {
    std::map<int64_t, std::pair<double, int>> sums; // bucket -> (sum, n)
    auto collect = [&](const tuning::TuningDatabase &db) {
      for (const tuning::TuningEntry &e : db.entries())
        if (e.key.arch == kernelSpec.arch &&
            e.key.blockSize == spec_.block_size && e.density > 0 &&
            e.density <= 1) {
          auto &[sum, n] = sums[e.key.lengthBucket];
          sum += e.density;
          ++n;
        }
    };
    if (tuning_.useTuningDatabase) {
      collect(tuning::TuningDatabase::load(kernelSpec.tuningDb));
      if (sums.empty())
        collect(tuning::builtinDatabase());
    }
    DensityPoints points;
    for (const auto &[bucket, sumCount] : sums)
      points.emplace_back(bucket, sumCount.first / sumCount.second);
    return points;
  }

  Status runSelect(const Problem &problem, const fp_tensor_t &q,
                   const fp_tensor_t &k, const fp_params_t &params,
                   const fp_mask_t &mask, void *workspace,
                   void *stream) const override {
    FP_RETURN_IF_ERROR(bindContext());
    WorkspaceLayout l = layout(problem.batch, problem.seqLen);
    char *base = static_cast<char *>(workspace);
    FP_RETURN_IF_ERROR(pool(k, spec_.num_kv_heads, base + l.kbar, problem,
                            "pool_keys", stream));
    if (spec_.pooled_queries)
      FP_RETURN_IF_ERROR(pool(q, spec_.num_q_heads, base + l.qbar, problem,
                              "pool_queries", stream));
    FpDiscoveryParams p{};
    p.q = q.data;
    p.kbar = base + l.kbar;
    p.qbar = spec_.pooled_queries ? base + l.qbar : nullptr;
    p.counts = mask.counts;
    p.ids = mask.ids;
    p.kept_counter = reinterpret_cast<fp_u64 *>(params.kept_counter);
    p.debug_scores = nullptr;
    setStrides(p.q_batch_stride, p.q_seq_stride, p.q_head_stride, q);
    setProblem(p, problem, params);
    p.alpha = params.alpha;
    p.sink = params.sink;
    p.window = params.window;
    p.last_n = params.last_n;
    p.min_budget = params.min_budget;
    p.threshold_kind = params.threshold_kind;
    p.score_query =
        spec_.pooled_queries ? FP_SCORE_POOLED_QUERIES : FP_SCORE_FULL_QUERIES;
    const Kernel &discovery = kernels_.at("discovery");
    long smem = discovery.facts.smemBase +
                discovery.facts.smemPerKeyBlock * problem.numBlocks;
    return launch("discovery", unsigned(problem.numBlocks),
                  unsigned(spec_.num_q_heads), unsigned(problem.batch), smem,
                  &p, stream);
  }

  Status runAttend(const Problem &problem, const fp_tensor_t &q,
                   const fp_tensor_t &k, const fp_tensor_t &v,
                   const fp_mask_t &mask, const fp_tensor_t &out,
                   const fp_params_t &params, void *stream) const override {
    FP_RETURN_IF_ERROR(bindContext());
    FpAttentionParams p{};
    p.q = q.data;
    p.k = k.data;
    p.v = v.data;
    p.o = out.data;
    p.lse = params.lse;
    p.counts = mask.counts;
    p.ids = mask.ids;
    setStrides(p.q_batch_stride, p.q_seq_stride, p.q_head_stride, q);
    setStrides(p.k_batch_stride, p.k_seq_stride, p.k_head_stride, k);
    setStrides(p.v_batch_stride, p.v_seq_stride, p.v_head_stride, v);
    setStrides(p.o_batch_stride, p.o_seq_stride, p.o_head_stride, out);
    setProblem(p, problem, params);
    const ManifestKernel &facts = kernels_.at("attention").facts;
    if (facts.tmaQRows > 0)
      FP_RETURN_IF_ERROR(encodeTensorMaps(p, facts));
    unsigned tiles =
        unsigned((problem.seqLen + attentionBlockM_ - 1) / attentionBlockM_);
    return launch("attention", tiles, unsigned(spec_.num_q_heads),
                  unsigned(problem.batch), facts.smemBase, &p, stream);
  }

  //===--------------------------------------------------------------------===//
  // Engine shapes (docs/semantics.md section 2). Plan::*Varlen validated
  // everything the host sees; the lengths are device data, which the
  // kernels check themselves (fp/varlen.cuh). Launches only: no
  // allocation, no synchronisation, so the calls are graph-capturable with
  // fixed maxima.
  //===--------------------------------------------------------------------===//

  /// Sizes the kernels narrow to int32, checked here because the generic
  /// validation allows the plan's int64 bounds (max_batch * max_seq_len).
  static Status checkVarlenDeviceSizes(const VarlenShape &shape) {
    if (shape.totalQ > INT32_MAX)
      return invalidArgument("q.shape[1] (total_q): expected <= 2147483647 "
                             "on the GPU (cu_seqlens_q are int32), got " +
                             std::to_string(shape.totalQ));
    if (shape.batch > 65535) // grid z
      return invalidArgument("varlen.batch: expected <= 65535 on the GPU "
                             "(one grid z slice per sequence), got " +
                             std::to_string(shape.batch));
    return Status::ok();
  }

  static FpVarlenSequences sequencesOf(const VarlenShape &shape,
                                       const fp_tensor_t &k,
                                       const fp_varlen_t &varlen) {
    FpVarlenSequences s{};
    s.cu_seqlens_q = varlen.cu_seqlens_q;
    s.apply_last_n = varlen.apply_last_n;
    s.batch = int(shape.batch);
    s.total_q = int(shape.totalQ);
    s.max_seqlen_q = int(shape.maxSeqlenQ);
    s.max_seqlen_k = int(shape.maxSeqlenK);
    if (shape.paged) {
      s.page_table = varlen.page_table;
      s.k_lens = varlen.k_lens;
      s.num_pages = int(k.shape[0]);
      s.max_pages = int(varlen.max_pages);
      while ((int64_t(1) << s.page_size_log2) < k.shape[1])
        ++s.page_size_log2;
    } else {
      s.cu_seqlens_k = varlen.cu_seqlens_k;
      s.total_k = int(k.shape[1]);
    }
    return s;
  }

  /// varlen_block_pool's parameters: K (packed or paged) into `dst`
  /// [b, h_kv, maxKeyBlocks, d].
  FpVarlenPoolParams keyPoolParams(const VarlenShape &shape,
                                   const fp_tensor_t &k,
                                   const fp_varlen_t &varlen, void *dst) const {
    FpVarlenPoolParams pool{};
    pool.seqs = sequencesOf(shape, k, varlen);
    pool.src = k.data;
    pool.dst = dst;
    pool.src_page_stride = k.strides[0];
    pool.src_seq_stride = k.strides[1];
    pool.src_head_stride = k.strides[2];
    pool.num_heads = spec_.num_kv_heads;
    pool.max_key_blocks = int(shape.maxKeyBlocks);
    return pool;
  }

  Status launchKeyPool(const VarlenShape &shape, FpVarlenPoolParams &pool,
                       void *stream) const {
    return launch("varlen_pool_keys", unsigned(shape.maxKeyBlocks),
                  unsigned(spec_.num_kv_heads), unsigned(shape.batch), 0,
                  &pool, stream);
  }

  Status runPoolKeysVarlen(const VarlenShape &shape, const fp_tensor_t &,
                           const fp_tensor_t &k, const fp_varlen_t &varlen,
                           void *pooledK, void *stream) const override {
    FP_RETURN_IF_ERROR(checkVarlenDeviceSizes(shape));
    FP_RETURN_IF_ERROR(bindContext());
    FpVarlenPoolParams pool = keyPoolParams(shape, k, varlen, pooledK);
    return launchKeyPool(shape, pool, stream);
  }

  Status runSelectVarlen(const VarlenShape &shape, const fp_tensor_t &q,
                         const fp_tensor_t &k, const fp_varlen_t &varlen,
                         const fp_params_t &params,
                         const fp_varlen_mask_t &mask, void *workspace,
                         void *stream) const override {
    FP_RETURN_IF_ERROR(checkVarlenDeviceSizes(shape));
    FP_RETURN_IF_ERROR(bindContext());
    const FpVarlenSequences seqs = sequencesOf(shape, k, varlen);
    WorkspaceLayout l =
        varlenLayout(shape.batch, shape.totalQ, shape.maxSeqlenK);
    char *base = static_cast<char *>(workspace);

    const int64_t queryBlocks =
        (shape.maxSeqlenQ + spec_.block_size - 1) / spec_.block_size;
    // The caller's pooled keys (fp_varlen_t.pooled_k) replace the pooling
    // launch; same layout as the workspace's.
    const void *kbar = varlen.pooled_k ? varlen.pooled_k : base + l.kbar;
    FpVarlenPoolParams pool = keyPoolParams(shape, k, varlen, base + l.kbar);
    if (!varlen.pooled_k)
      FP_RETURN_IF_ERROR(launchKeyPool(shape, pool, stream));
    if (spec_.pooled_queries) { // qbar [num_rows, h_q, d], one per mask row
      FpVarlenPoolParams queries = pool;
      queries.src = q.data;
      queries.dst = base + l.qbar;
      queries.src_page_stride = 0;
      queries.src_seq_stride = q.strides[1];
      queries.src_head_stride = q.strides[2];
      queries.num_heads = spec_.num_q_heads;
      FP_RETURN_IF_ERROR(launch("varlen_pool_queries", unsigned(queryBlocks),
                                unsigned(spec_.num_q_heads),
                                unsigned(shape.batch), 0, &queries, stream));
    }

    FpVarlenDiscoveryParams p{};
    p.seqs = seqs;
    p.q = q.data;
    p.kbar = kbar;
    p.qbar = spec_.pooled_queries ? base + l.qbar : nullptr;
    p.counts = mask.counts;
    p.ids = mask.ids;
    p.kept_counter = reinterpret_cast<fp_u64 *>(params.kept_counter);
    p.q_seq_stride = q.strides[1];
    p.q_head_stride = q.strides[2];
    p.num_q_heads = spec_.num_q_heads;
    p.num_kv_heads = spec_.num_kv_heads;
    p.max_key_blocks = int(shape.maxKeyBlocks);
    p.scale = scaleOf(params);
    p.alpha = params.alpha;
    p.sink = params.sink;
    p.window = params.window;
    p.last_n = params.last_n;
    p.min_budget = params.min_budget;
    p.threshold_kind = params.threshold_kind;
    p.score_query =
        spec_.pooled_queries ? FP_SCORE_POOLED_QUERIES : FP_SCORE_FULL_QUERIES;
    const Kernel &discovery = kernels_.at("varlen_discovery");
    return launch("varlen_discovery", unsigned(queryBlocks),
                  unsigned(spec_.num_q_heads), unsigned(shape.batch),
                  discovery.facts.smemBase +
                      discovery.facts.smemPerKeyBlock * shape.maxKeyBlocks,
                  &p, stream);
  }

  Status runAttendVarlen(const VarlenShape &shape, const fp_tensor_t &q,
                         const fp_tensor_t &k, const fp_tensor_t &v,
                         const fp_varlen_t &varlen,
                         const fp_varlen_mask_t &mask, const fp_tensor_t &out,
                         const fp_params_t &params,
                         void *stream) const override {
    FP_RETURN_IF_ERROR(checkVarlenDeviceSizes(shape));
    FP_RETURN_IF_ERROR(bindContext());
    FpVarlenAttentionParams p{};
    p.seqs = sequencesOf(shape, k, varlen);
    p.q = q.data;
    p.k = k.data;
    p.v = v.data;
    p.o = out.data;
    p.lse = params.lse;
    p.counts = mask.counts;
    p.ids = mask.ids;
    p.q_seq_stride = q.strides[1];
    p.q_head_stride = q.strides[2];
    p.k_page_stride = k.strides[0];
    p.k_seq_stride = k.strides[1];
    p.k_head_stride = k.strides[2];
    p.v_page_stride = v.strides[0];
    p.v_seq_stride = v.strides[1];
    p.v_head_stride = v.strides[2];
    p.o_seq_stride = out.strides[1];
    p.o_head_stride = out.strides[2];
    p.num_q_heads = spec_.num_q_heads;
    p.num_kv_heads = spec_.num_kv_heads;
    p.max_key_blocks = int(shape.maxKeyBlocks);
    p.scale = scaleOf(params);
    const char *role =
        shape.paged ? "varlen_attention_paged" : "varlen_attention_packed";
    const int blockM = shape.paged ? varlenPagedBlockM_ : varlenPackedBlockM_;
    return launch(role, unsigned((shape.maxSeqlenQ + blockM - 1) / blockM),
                  unsigned(spec_.num_q_heads), unsigned(shape.batch),
                  kernels_.at(role).facts.smemBase, &p, stream);
  }

  /// Fills the TMA descriptors of the sm_90a attention kernel. A zero
  /// stride over an extent of 1 is replaced (TMA rejects 0 and never steps
  /// along that dimension); a zero stride over a longer extent (a
  /// broadcast) cannot be described by a tensor map.
  Status encodeTensorMaps(FpAttentionParams &p,
                          const ManifestKernel &facts) const {
    struct View {
      const char *name;
      fp_i64 *batch, *seq, *head;
      int heads;
    };
    const View views[] = {
        {"q", &p.q_batch_stride, &p.q_seq_stride, &p.q_head_stride,
         p.num_q_heads},
        {"k", &p.k_batch_stride, &p.k_seq_stride, &p.k_head_stride,
         p.num_kv_heads},
        {"v", &p.v_batch_stride, &p.v_seq_stride, &p.v_head_stride,
         p.num_kv_heads}};
    for (const View &view : views) {
      const int extents[3] = {p.batch, p.seq_q, view.heads};
      fp_i64 *strides[3] = {view.batch, view.seq, view.head};
      for (int i = 0; i < 3; ++i) {
        if (*strides[i] != 0)
          continue;
        if (extents[i] > 1)
          return Status(StatusCode::kInvalidArgument,
                        std::string(view.name) + ".strides[" +
                            std::to_string(i) +
                            "]: expected > 0 for the sm_90a (TMA) attention "
                            "kernel when the dimension has extent " +
                            std::to_string(extents[i]) + ", got 0");
        *strides[i] = 8; // any 16-byte multiple: never stepped along
      }
    }
    const CUresult result = rt::encodeAttentionTensorMaps(
        driver_->api().tensorMapEncodeTiled, p, spec_.dtype == FP_DTYPE_BF16,
        spec_.head_dim, facts.tmaQRows, facts.tmaKVRows);
    return driver_->check(result, "cuTensorMapEncodeTiled(attention q/k/v)");
  }

  //===--------------------------------------------------------------------===//
  // Merging attention states (fp/merge_states.cuh). Plan::mergeStates
  // checked every view (ref::validateMergeStates); one launch, no
  // allocation, no synchronisation.
  //===--------------------------------------------------------------------===//

  Status loadMergeKernel() {
    rt::CompileRequest request;
    request.source = FP_MERGE_STATES_SOURCE;
    request.programName = "fp_merge_states.cu";
    request.arch = info_.arch;
    request.codegenVersion = "fp-merge-states-1";
    auto compiled = rt::KernelCache::global().getOrCompile(request);
    if (!compiled.isOk())
      return compiled.status();
    info_.compileSeconds += compiled->compileSeconds;
    auto module = rt::Module::load(compiled->binary);
    if (!module.isOk())
      return module.status();
    mergeModule_ = std::move(*module);
    auto function = mergeModule_.function(FP_MERGE_STATES_ENTRY);
    if (!function.isOk())
      return function.status();
    mergeFunction_ = *function;
    // The parameter struct as NVRTC laid it out must be the host's.
    auto global = mergeModule_.global(FP_MERGE_STATES_PARAMS_BYTES);
    if (!global.isOk())
      return global.status();
    int bytes = -1;
    FP_RETURN_IF_ERROR(driver_->check(
        driver_->api().memcpyDtoH(&bytes, global->first, sizeof(bytes)),
        "cuMemcpyDtoH(" FP_MERGE_STATES_PARAMS_BYTES ")"));
    if (bytes != int(sizeof(FpMergeStatesParams)))
      return Status(StatusCode::kInternal,
                    "fp/merge_states.h: FpMergeStatesParams is " +
                        std::to_string(bytes) + " bytes on the device, " +
                        std::to_string(sizeof(FpMergeStatesParams)) +
                        " on the host");
    return Status::ok();
  }

  static int mergeType(fp_dtype_t dtype) {
    return dtype == FP_DTYPE_BF16  ? FP_MERGE_BF16
           : dtype == FP_DTYPE_F16 ? FP_MERGE_F16
                                   : FP_MERGE_F32;
  }

  Status runMergeStates(const fp_attn_state_t &a, const fp_attn_state_t &b,
                        const fp_attn_state_t &out,
                        void *stream) const override {
    // out does not overlap itself (validated), so rows * dim elements fit
    // in its span: no overflow.
    const int64_t rows = a.o.shape[0] * a.o.shape[1] * a.o.shape[2];
    if (rows == 0)
      return Status::ok(); // nothing to merge; a grid of 0 is invalid
    FP_RETURN_IF_ERROR(bindContext());
    FpMergeStatesParams p{};
    p.o_a = a.o.data;
    p.o_b = b.o.data;
    p.o = out.o.data;
    p.lse_a = a.lse;
    p.lse_b = b.lse;
    p.lse = out.lse;
    for (int i = 0; i < 3; ++i) {
      p.o_a_strides[i] = a.o.strides[i];
      p.o_b_strides[i] = b.o.strides[i];
      p.o_strides[i] = out.o.strides[i];
      p.lse_a_strides[i] = a.lse_strides[i];
      p.lse_b_strides[i] = b.lse_strides[i];
      p.lse_strides[i] = out.lse_strides[i];
    }
    p.batch = a.o.shape[0];
    p.seq = a.o.shape[1];
    p.heads = a.o.shape[2];
    p.dim = a.o.shape[3];
    p.type_a = mergeType(a.dtype);
    p.type_b = mergeType(b.dtype);
    p.type_o = mergeType(out.dtype);
    // One warp per row, grid-stride beyond 2^20 CTAs (4M rows).
    const int64_t rowsPerCta = FP_MERGE_THREADS / 32;
    const unsigned ctas = unsigned(
        std::min<int64_t>((rows + rowsPerCta - 1) / rowsPerCta, 1 << 20));
    void *args[] = {&p};
    return driver_->check(
        driver_->api().launchKernel(mergeFunction_, ctas, 1, 1,
                                    FP_MERGE_THREADS, 1, 1, 0,
                                    static_cast<CUstream>(stream), args,
                                    nullptr),
        "cuLaunchKernel(" FP_MERGE_STATES_ENTRY ")");
  }

  PlanTuning tuning_;
  const rt::CudaDriver *driver_ = nullptr;
  CUcontext context_ = nullptr;
  rt::Module module_;
  rt::Module mergeModule_; ///< fp/merge_states.cuh
  CUfunction mergeFunction_ = nullptr;
  std::map<std::string, Kernel> kernels_; ///< by launch role
  int attentionBlockM_ = 0;
  int varlenPackedBlockM_ = 0, varlenPagedBlockM_ = 0;
};

} // namespace

StatusOr<std::unique_ptr<Plan>> createCudaPlan(const fp_plan_spec_t &spec,
                                               const PlanTuning &tuning) {
  auto plan = std::make_unique<CudaPlan>(spec, tuning);
  FP_RETURN_IF_ERROR(plan->initialize());
  return std::unique_ptr<Plan>(std::move(plan));
}

} // namespace fp
