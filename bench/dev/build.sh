#!/usr/bin/env bash
# Builds the device-library harness (bench/dev/kernel_check.cu) with nvcc:
# sm_90a machine code plus compute_80 PTX, into bench/dev/bin/ (git-ignored).
# Not part of the CMake build. Usage: bench/dev/build.sh [extra nvcc flags]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
nvcc="${NVCC:-/usr/local/cuda/bin/nvcc}"
mkdir -p "$here/bin"
# DEVICE_INCLUDE overrides the device headers (A/B against another version);
# OUT_NAME the binary name.
dev_inc="${DEVICE_INCLUDE:-$root/runtime/device}"
out_name="${OUT_NAME:-kernel_check}"
"$nvcc" -std=c++17 -O3 -lineinfo \
  -gencode=arch=compute_90a,code=sm_90a \
  -gencode=arch=compute_80,code=compute_80 \
  -I"$dev_inc" -I"$root/runtime/include" \
  -Xptxas -v -Xcompiler -static-libstdc++,-static-libgcc -Xcompiler -pthread \
  --threads 2 \
  "$@" \
  "$here/kernel_check.cu" -lcuda -o "$here/bin/$out_name" 2> "$here/bin/$out_name.ptxas.log" || {
  cat "$here/bin/$out_name.ptxas.log" >&2
  exit 1
}
grep -E "error|warning" "$here/bin/$out_name.ptxas.log" | grep -v "Compiling entry" || true
echo "built $here/bin/$out_name"
