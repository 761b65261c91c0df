#!/usr/bin/env bash
# Issue 14 measurement stages on the device machine (see bench/RESULTS.md):
#   bash bench/gpu_final.sh short     cost-model check: fp-bench 1K-8K, sparse vs dense
#   bash bench/gpu_final.sh profile   ncu: HGMMA in the runtime's CUBIN, discovery and attention at 64K
#   bash bench/gpu_final.sh compare LENGTHS [D]   compare.py rows (resumable, 10-minute calls)
#   bash bench/gpu_final.sh density   compare.py forced densities at 128K
#   bash bench/gpu_final.sh python    the Python package's tests (torch, CUDA)
# Needs .gpu (bench/gpu_bundle.sh) and .pylib/libflashprefill.so carried.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/.gpu
out=${OUT:-/tmp/fp-out}
mkdir -p "$out"
export FLASHPREFILL_CACHE_DIR=${FLASHPREFILL_CACHE_DIR:-/tmp/fp-cache}
export PYTHONPATH=$root/python FLASHPREFILL_LIBRARY=$root/.pylib/libflashprefill.so
inputs=/tmp/fp-inputs
mkdir -p "$inputs"
stage=${1:-short}
case $stage in
short)
  "$bin/fp-bench" --sweep 1024,2048,4096,8192 --json | tee "$out/bench_short.jsonl" ;;
profile)
  "$bin/fp-opt" "$root/examples/prefill.mlir" --fp-compile-pipeline="arch=sm_90a" \
    --fp-emit=cubin -o "$out/prefill.cubin"
  echo "HGMMA in the runtime's attention CUBIN: $(cuobjdump -sass "$out/prefill.cubin" | grep -c HGMMA)"
  ncu --clock-control none -k regex:'pattern_discovery|masked_attention' -c 2 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --section ComputeWorkloadAnalysis \
    "$bin/fp-bench" --seq-len 65536 --warmup 0 --repeats 1 > "$out/ncu_64k.txt" 2>&1
  grep -E "pattern_discovery|masked_attention|Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Theoretical Occupancy|Issue Slots Busy|Stall|Warp Cycles Per Issued|Block Limit" "$out/ncu_64k.txt" | head -60 ;;
compare)
  lengths=$2
  d=${3:-128}
  for n in ${lengths//,/ }; do
    [[ -f $inputs/q_${n}_d${d}.npy ]] ||
      "$bin/fp-bench" --seq-len "$n" --head-dim "$d" --save-inputs "$inputs" --repeats 1 >/dev/null
  done
  FP_COMPARE_HEAD_DIM=$d python3 "$root/bench/compare.py" --inputs "$inputs" \
    --out "$out/compare.jsonl" --stage lengths --lengths "$lengths" 2>&1 | tail -20 ;;
density)
  n=131072
  [[ -f $inputs/q_${n}_d128.npy ]] ||
    "$bin/fp-bench" --seq-len $n --save-inputs "$inputs" --repeats 1 >/dev/null
  python3 "$root/bench/compare.py" --inputs "$inputs" --out "$out/compare_density.jsonl" \
    --stage density 2>&1 | tail -12 ;;
python)
  python3 -m pytest -q -x "$root/python/tests" 2>&1 | tail -6 ;;
esac
