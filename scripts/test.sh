#!/usr/bin/env bash
# README command (2): install dependencies, build, run every test (unit,
# lit, NVRTC compile checks; GPU tests skip without a GPU). CI runs this.
source "$(dirname "$0")/common.sh"

fp_install_dependencies
fp_build
echo "== tests"
ctest --test-dir "$FP_BUILD_DIR" --output-on-failure -j "$(nproc)"
