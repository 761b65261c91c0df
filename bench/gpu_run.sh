#!/usr/bin/env bash
# Runs on the GPU machine (see bench/gpu_bundle.sh): GPU tests, sanitizers,
# fp-bench sweeps and the PyTorch SDPA baselines, in one call, logs to $OUT.
# Usage: bash bench/gpu_run.sh [tests|bench|sanitize|tune|all]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/.gpu
out=${OUT:-/tmp/fp-out}
mkdir -p "$out"
what=${1:-all}
export FLASHPREFILL_CACHE_DIR=${FLASHPREFILL_CACHE_DIR:-/tmp/fp-cache}
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"

if [[ $what == all || $what == tests ]]; then
  echo "== GPU tests"
  "$bin/FPGpuTests" 2>&1 | tee "$out/gpu_tests.log" | grep -E "plan:|density|rel L2|LSE|OK|FAILED|Failure|Expected|Which|actual" | head -150
  "$bin/FPRuntimeTests" --gtest_brief=1 2>&1 | tail -3
  "$bin/FPApiTests" --gtest_brief=1 2>&1 | tail -3
fi
if [[ $what == all || $what == sanitize ]]; then
  echo "== compute-sanitizer (small cases)"
  for tool in memcheck racecheck synccheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 "$bin/FPGpuTests" \
      --gtest_filter='*s63:*s129' 2>&1 | tail -4 | tee -a "$out/sanitizer.log"
  done
fi
if [[ $what == all || $what == tune ]]; then
  echo "== fp-opt runs here (static MLIR, no MLIR on this machine)"
  "$bin/fp-opt" "$root/examples/prefill.mlir" --fp-compile-pipeline="arch=sm_90a" \
    --fp-emit=cubin -o "$out/prefill.cubin" && ls -l "$out/prefill.cubin"
  echo "== fp-tune (h_q 32, h_kv 8, bf16, B 128) into $out/tuning.json"
  export FLASHPREFILL_TUNING_DB=$out/tuning.json
  "$bin/fp-tune" --buckets 4096,16384,65536 --budget-seconds 240 2>/dev/null
  "$bin/fp-tune" --head-dim 64 --buckets 16384,65536 --budget-seconds 120 2>/dev/null | tail -6
  "$bin/fp-tune" --head-dim 256 --buckets 16384,65536 --budget-seconds 120 2>/dev/null | tail -6
  "$bin/FPTuneTests" --gtest_filter='*SmallRun*' 2>&1 | grep -E "heuristic|OK|FAILED"
  echo "== fp-bench: tuned (database) vs heuristic tiles, same run"
  "$bin/fp-bench" --sweep 4096,16384,65536 --json | tee "$out/bench_tuned.jsonl"
  FLASHPREFILL_TUNING_DB=/nonexistent "$bin/fp-bench" --sweep 4096,16384,65536 --json \
    | tee "$out/bench_heuristic.jsonl"
  unset FLASHPREFILL_TUNING_DB
fi
if [[ $what == all || $what == bench ]]; then
  echo "== fp-bench sweep (h_q 32, h_kv 8, d 128, bf16)"
  "$bin/fp-bench" --sweep 4096,8192,16384,32768,65536,131072 --json \
    | tee "$out/bench_d128.jsonl"
  "$bin/fp-bench" --seq-len 32768 --head-dim 64 --json | tee "$out/bench_d64.jsonl"
  "$bin/fp-bench" --seq-len 32768 --head-dim 256 --json | tee "$out/bench_d256.jsonl"
  echo "== PyTorch SDPA dense baselines, same GPU"
  python3 "$root/bench/sdpa_baseline.py" 4096 8192 16384 32768 65536 131072 \
    | tee "$out/sdpa.txt"
fi
