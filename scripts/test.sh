#!/usr/bin/env bash
# README command (2): install dependencies, build, run every test (unit,
# lit, NVRTC compile checks, Python; GPU tests skip without a GPU), then the
# CPU tests under AddressSanitizer + UndefinedBehaviorSanitizer. CI runs this.
source "$(dirname "$0")/common.sh"

fp_install_dependencies
fp_build
echo "== tests"
ctest --test-dir "$FP_BUILD_DIR" --output-on-failure -j "$(nproc)"
# The CPU suite again under ASan + UBSan (our code only; MLIR stays
# prebuilt), in build-asan: the reference, runtime, API and reliability
# tests and every fuzz corpus replayed.
FP_SKIP_INSTALL=1 bash "$FP_ROOT/scripts/sanitize.sh" --quick
