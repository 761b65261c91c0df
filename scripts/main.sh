#!/usr/bin/env bash
# README command (1): install dependencies, build, run the main job.
# With a prebuilt build folder (e.g. carried to a GPU machine without MLIR)
# it skips installing and building.
source "$(dirname "$0")/common.sh"

if [ -x "$FP_BUILD_DIR/bin/fp-opt" ] && [ -z "${FP_REBUILD:-}" ]; then
  echo "== using the prebuilt $FP_BUILD_DIR (FP_REBUILD=1 rebuilds)"
else
  fp_install_dependencies
  fp_build
fi

cd "$FP_ROOT"
echo "== fp-opt examples/prefill.mlir (parse, verify, print)"
"$FP_BUILD_DIR/bin/fp-opt" examples/prefill.mlir
echo "== the compile pipeline for sm_90a: CUDA source, then PTX through NVRTC"
"$FP_BUILD_DIR/bin/fp-opt" examples/prefill.mlir \
  --fp-compile-pipeline="arch=sm_90a" --fp-emit=cuda | head -n 12
PTX=$FP_BUILD_DIR/prefill.ptx
"$FP_BUILD_DIR/bin/fp-opt" examples/prefill.mlir \
  --fp-compile-pipeline="arch=sm_90a" --fp-emit=ptx -o "$PTX"
echo "   wrote $PTX ($(wc -c <"$PTX") bytes, $(grep -m1 '^\.target' "$PTX"))"
# The PTX must assemble for the module's arch, as the driver's JIT would.
PTXAS=""
for candidate in "${CUDA_HOME:-/usr/local/cuda}/bin/ptxas" /usr/local/cuda/bin/ptxas \
  "$(command -v ptxas || true)"; do
  if [ -x "$candidate" ]; then PTXAS=$candidate; break; fi
done
if [ -z "$PTXAS" ]; then
  echo "error: ptxas not found (looked in \$CUDA_HOME/bin, /usr/local/cuda/bin, PATH);" \
    "install the CUDA 13 toolkit to check the PTX" >&2
  exit 1
fi
"$PTXAS" -arch=sm_90a "$PTX" -o "$FP_BUILD_DIR/prefill.cubin"
echo "   ptxas -arch=sm_90a: assembles ($(wc -c <"$FP_BUILD_DIR/prefill.cubin") bytes of CUBIN)"
echo "== prefill on the GPU vs the CPU oracle (skipped without a GPU)"
"$FP_BUILD_DIR/bin/FPGpuTests" --gtest_brief=1 \
  --gtest_filter='*d128_b128_bf16_g4_batch1_s4096*' 2>&1 | tail -n 4
echo "== fp-bench: 32K tokens, h_q 32, h_kv 8, d 128, bf16, structured inputs"
echo "   (a small case on the CPU reference when there is no GPU)"
"$FP_BUILD_DIR/bin/fp-bench" --seq-len 32768
