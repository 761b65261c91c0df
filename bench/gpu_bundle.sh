#!/usr/bin/env bash
# Collects the statically linked GPU binaries of build/ into .gpu/ (ignored
# by git) for the GPU machine, which has no MLIR: carry `.gpu` there and run
# bench/gpu_run.sh. Usage: bash bench/gpu_bundle.sh [build dir]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
mkdir -p "$root/.gpu"
grep -qx '/.gpu/' "$root/.git/info/exclude" 2>/dev/null ||
  echo '/.gpu/' >>"$root/.git/info/exclude"
for bin in FPGpuTests FPRuntimeTests FPTuneTests fp-bench fp-opt fp-tune; do
  cp "$build/bin/$bin" "$root/.gpu/"
  strip "$root/.gpu/$bin"
done
du -sh "$root/.gpu"
