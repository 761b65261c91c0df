#!/usr/bin/env bash
# Every GPU test in one command, and one log that names the commit and the
# GPU. A change to kernels, the CUDA backend or the GPU tests is done only
# with this log, from its final commit, in bench/results/<date>-<gpu>/.
#
#   bash scripts/gpu_check.sh --bundle [BUILD_DIR]
#       On the build machine (static MLIR, no GPU needed): copies the stripped
#       GPU binaries and libflashprefill.so of BUILD_DIR (default build/) into
#       .gpu/ (git-ignored) with the commit they were built from (COMMIT).
#   bash scripts/gpu_check.sh [LOG]
#       On the GPU machine, with .gpu carried: runs, in this order,
#         1. FPGpuTests, every test, in FP_GPU_SHARDS (default 8) gtest shards
#            side by side (the fp64 CPU oracle is the slow part), with the
#            Python package's tests beside them (pytest python/tests: CUDA
#            tensors, torch.compile, CUDA graphs, the transformers backend);
#         2. FPRuntimeTests and FPApiTests (their GPU-aware parts), and the
#            engine example (examples/engine: chunked prefill over a paged
#            cache, checked against whole-prompt calls) with --device cuda;
#         3. fp-opt: sm_90a PTX assembled by ptxas, a CUBIN, HGMMA counted;
#         4. compute-sanitizer memcheck, racecheck and synccheck on small
#            FPGpuTests cases (both kernel paths' edges, edited masks, the
#            dense fall-back, a varlen batch, bad device-side varlen lengths,
#            merge_states in place and strided);
#       and fails when any stage fails, when a GPU test skipped although a GPU
#       is present, or when the bundle's commit is unknown. LOG defaults to
#       $OUT/gpu_check.log on the device machine, else
#       bench/results/<date>-<gpu>/gpu_check.log.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bundle=$root/.gpu
gpu_binaries=(FPGpuTests FPRuntimeTests FPApiTests fp-engine-example fp-bench fp-opt fp-tune)

if [[ ${1:-} == --bundle ]]; then
  set -e
  build=${2:-$root/build}
  mkdir -p "$bundle"
  grep -qx '/.gpu/' "$root/.git/info/exclude" 2>/dev/null ||
    echo '/.gpu/' >>"$root/.git/info/exclude"
  for bin in "${gpu_binaries[@]}"; do
    cp "$build/bin/$bin" "$bundle/"
    strip "$bundle/$bin"
  done
  # One real file under the soname the tests link against; the dev name
  # (what Python's loader looks for) is a link beside it.
  rm -f "$bundle/libflashprefill.so" "$bundle/libflashprefill.so.0"
  cp -L "$build/lib/libflashprefill.so.0" "$bundle/libflashprefill.so.0"
  strip --strip-unneeded "$bundle/libflashprefill.so.0"
  ln -s libflashprefill.so.0 "$bundle/libflashprefill.so"
  commit=$(git -C "$root" rev-parse HEAD)
  dirty=$(git -C "$root" status --porcelain --untracked-files=no | wc -l)
  echo "$commit$([[ $dirty == 0 ]] || echo " (+$dirty modified files)")" >"$bundle/COMMIT"
  echo "bundled $(cat "$bundle/COMMIT") into $bundle ($(du -sh "$bundle" | cut -f1))"
  exit 0
fi

if [[ ! -x $bundle/FPGpuTests ]]; then
  echo "error: $bundle/FPGpuTests is missing: run 'bash scripts/gpu_check.sh --bundle' on the" \
    "build machine and carry .gpu" >&2
  exit 2
fi
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "error: no GPU here (nvidia-smi -L failed); scripts/gpu_check.sh runs on the GPU machine" >&2
  exit 2
fi

gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
gpu_slug=$(echo "$gpu_name" | sed -e 's/NVIDIA //' -e 's/ .*//' | tr 'A-Z' 'a-z')
if [[ -n ${1:-} ]]; then
  log=$1
elif [[ -n ${OUT:-} ]]; then
  log=$OUT/gpu_check.log
else
  log=$root/bench/results/$(date -u +%Y-%m-%d)-$gpu_slug/gpu_check.log
fi
mkdir -p "$(dirname "$log")"
work=$(mktemp -d /tmp/fp-gpu-check.XXXXXX)
export FLASHPREFILL_CACHE_DIR=$work/cache
export FLASHPREFILL_LIBRARY=$bundle/libflashprefill.so
export LD_LIBRARY_PATH=$bundle${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PYTHONPATH=$root/python${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
export PATH=$PATH:/usr/local/cuda/bin:/usr/local/cuda/compute-sanitizer
shards=${FP_GPU_SHARDS:-8}
# A smoke run may narrow FPGpuTests (a gtest filter); the log says so, and a
# claim needs the default, every test.
gpu_filter=${FP_GPU_FILTER:-*}
: >"$log"
say() { echo "$*" | tee -a "$log"; }
failed=()
stage() { # NAME STATUS: records a stage's result in the log and the summary
  say "== $1: $([[ $2 == 0 ]] && echo PASS || echo "FAIL (status $2)")"
  [[ $2 == 0 ]] || failed+=("$1")
}

say "# scripts/gpu_check.sh"
say "commit:  $(cat "$bundle/COMMIT" 2>/dev/null || echo unknown)"
say "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
say "gpu:     $(nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader | head -1)"
[[ $gpu_filter == '*' ]] || say "PARTIAL RUN: FPGpuTests --gtest_filter=$gpu_filter (not a claim)"
say "host:    $(nproc) cores; torch $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || echo absent)"
grep -q '^[0-9a-f]\{40\}$' "$bundle/COMMIT" 2>/dev/null ||
  stage "bundle built from a clean commit" 1

# 1. FPGpuTests in shards, the Python tests beside them.
say "== FPGpuTests ($shards shards) and pytest python/tests, side by side"
start=$SECONDS
for ((i = 0; i < shards; ++i)); do
  GTEST_TOTAL_SHARDS=$shards GTEST_SHARD_INDEX=$i \
    "$bundle/FPGpuTests" --gtest_filter="$gpu_filter" >"$work/gpu_shard_$i.log" 2>&1 &
  shard_pids[i]=$!
done
python3 -m pytest -q -rs "$root/python/tests" >"$work/pytest.log" 2>&1 &
pytest_pid=$!
gpu_status=0
for ((i = 0; i < shards; ++i)); do
  wait "${shard_pids[i]}" || gpu_status=$?
  { echo "-- shard $i"; cat "$work/gpu_shard_$i.log"; } >>"$log"
done
ran=$(cat "$work"/gpu_shard_*.log | grep -c '^\[       OK \]')
skipped=$(cat "$work"/gpu_shard_*.log | grep -c '^\[  SKIPPED \]')
bad=$(cat "$work"/gpu_shard_*.log | grep -c '^\[  FAILED  \] [A-Za-z]')
say "FPGpuTests: $ran passed, $skipped skipped, $bad failed lines, $((SECONDS - start)) s"
if ((skipped > 0 || ran == 0)) && [[ $gpu_status == 0 ]]; then gpu_status=1; fi
stage FPGpuTests "$gpu_status"

wait "$pytest_pid"
py_status=$?
cat "$work/pytest.log" >>"$log"
say "pytest: $(tail -1 "$work/pytest.log")"
# With a GPU and torch present, a skipped CUDA, torch, transformers or varlen test is
# a test that did not run: fail rather than report it as passed.
gpu_skips=$(grep -E '^SKIPPED .*(test_cuda|test_torch|test_transformers(_gpu|_cb)?\.py|test_varlen|test_distributed|test_merge_states|test_mean_correction)' "$work/pytest.log" || true)
if [[ -n $gpu_skips ]]; then
  say "GPU-side Python tests skipped on a GPU machine:"
  say "$gpu_skips"
  [[ $py_status != 0 ]] || py_status=1
fi
stage "pytest python/tests" "$py_status"

# 2. Runtime and API tests (NVRTC, driver, cache, API on the device).
for t in FPRuntimeTests FPApiTests; do
  "$bundle/$t" --gtest_brief=1 >"$work/$t.log" 2>&1
  st=$?
  cat "$work/$t.log" >>"$log"
  stage "$t" "$st"
done
"$bundle/fp-engine-example" --device cuda >"$work/engine.log" 2>&1
st=$?
cat "$work/engine.log" >>"$log"
stage "fp-engine-example --device cuda" "$st"

# 3. fp-opt output for the module's arch assembles; the CUBIN uses wgmma.
{
  "$bundle/fp-opt" "$root/examples/prefill.mlir" --fp-compile-pipeline="arch=sm_90a" \
    --fp-emit=ptx -o "$work/prefill.ptx" &&
    ptxas -arch=sm_90a "$work/prefill.ptx" -o "$work/prefill_ptxas.cubin" &&
    "$bundle/fp-opt" "$root/examples/prefill.mlir" --fp-compile-pipeline="arch=sm_90a" \
      --fp-emit=cubin -o "$work/prefill.cubin" &&
    hgmma=$(cuobjdump -sass "$work/prefill.cubin" | grep -c HGMMA) &&
    echo "sm_90a PTX assembles; HGMMA instructions in the CUBIN: $hgmma" &&
    ((hgmma > 0))
} >>"$log" 2>&1
stage "fp-opt sm_90a PTX and CUBIN" $?

# 4. compute-sanitizer on small cases of both kernel paths, and of the
# varlen kernels (a mixed packed batch; paged K/V with per-row gathers and
# device-side lengths that break every bound).
sanitize_filter='*s63:*s129:*s65:*AttendOnHandEditedMasks:*PrefillShortPromptFallBackAndRule'
sanitize_filter+=':*GpuVarlenTest*d64_b64_f16_mixed:*BadDeviceLengthsSkipTheirSequence'
sanitize_filter+=':GpuMergeStatesTest.LayoutsAndInPlace'
for tool in memcheck racecheck synccheck; do
  compute-sanitizer --tool "$tool" --error-exitcode 9 "$bundle/FPGpuTests" \
    --gtest_filter="$sanitize_filter" >"$work/sanitizer_$tool.log" 2>&1
  st=$?
  { echo "-- compute-sanitizer --tool $tool"; grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|tests ran|PASSED|FAILED|Error|Hazard' "$work/sanitizer_$tool.log" | head -40; } >>"$log"
  stage "compute-sanitizer $tool" "$st"
done

if ((${#failed[@]})); then
  say "FAILED: ${failed[*]}"
  say "log: $log"
  exit 1
fi
say "ALL PASSED; log: $log"
