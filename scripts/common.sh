# Shared by scripts/main.sh and scripts/test.sh: dependencies and the build.
# Sourced, not run. Honors FP_BUILD_DIR (default: build).
set -euo pipefail

FP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FP_BUILD_DIR=${FP_BUILD_DIR:-$FP_ROOT/build}
FP_APT_PACKAGES=(cmake ninja-build g++ ccache libgtest-dev libzstd-dev libpng-dev
  libmlir-22-dev mlir-22-tools llvm-22-dev llvm-22-tools python3-venv)

# Installs the Debian packages that are missing (quietly; nothing to do on a
# second run). The CUDA 13 toolkit is expected in /usr/local/cuda.
fp_install_dependencies() {
  local missing=()
  for pkg in "${FP_APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Python package tests (unittests/Python): numpy + pytest from PyPI in a
  # venv (system pip is PEP 668-blocked), and torch for the torch CPU tests,
  # the transformers backend's CPU tests and the context-parallel tests (torch.distributed over gloo between CPU
  # processes). PyPI has only CUDA builds of torch for Linux (about 2.8 GB
  # with their CUDA libraries, 1-2 minutes here); they run on the CPU.
  # FP_NO_TORCH=1 skips it (those tests then skip). The version is the GPU
  # machine's.
  if ! "$FP_ROOT/.venv/bin/python" -c "import numpy, pytest" 2>/dev/null; then
    echo "== python venv: numpy pytest"
    python3 -m venv --system-site-packages "$FP_ROOT/.venv"
    "$FP_ROOT/.venv/bin/pip" install -q numpy pytest
  fi
  if [ "${FP_NO_TORCH:-0}" != 1 ] &&
    ! "$FP_ROOT/.venv/bin/python" -c "import torch.distributed" 2>/dev/null; then
    echo "== python venv: torch (CPU tests, gloo context parallelism)"
    "$FP_ROOT/.venv/bin/pip" install -q torch==2.11.0
  fi
  # transformers with its serving extras (pure Python, small): the backend's
  # CPU tests, continuous batching and `transformers serve` included. The
  # version is the GPU machine's.
  if [ "${FP_NO_TORCH:-0}" != 1 ] && ! "$FP_ROOT/.venv/bin/python" -c \
    "import transformers.utils as u, sys; sys.exit(not u.is_serve_available())" 2>/dev/null; then
    echo "== python venv: transformers[serving]"
    "$FP_ROOT/.venv/bin/pip" install -q "transformers[serving]==5.17.0"
  fi
  if [ ! -e /usr/local/cuda/include/cuda.h ] && ! command -v nvcc >/dev/null; then
    echo "error: the CUDA 13 toolkit (headers, NVRTC) is required in /usr/local/cuda" >&2
    exit 1
  fi
}

# Configures and builds everything (Release, Ninja, ccache when present).
fp_build() {
  echo "== building in $FP_BUILD_DIR"
  cmake -S "$FP_ROOT" -B "$FP_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCUDAToolkit_ROOT=/usr/local/cuda >/dev/null
  cmake --build "$FP_BUILD_DIR" -j "$(nproc)"
}
