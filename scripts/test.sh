#!/usr/bin/env bash
# README command (2): install dependencies, build, run every test (unit,
# lit, NVRTC compile checks, Python; GPU tests skip without a GPU), then the
# CPU tests under AddressSanitizer + UndefinedBehaviorSanitizer, then every
# libFuzzer target for a short timed run. CI runs this (.ci/run).
#
# Env: FP_FUZZ_SECONDS (seconds per fuzz target, default 30; 0 skips the
# timed fuzzing, e.g. on a machine without apt access to clang-22).
source "$(dirname "$0")/common.sh"

FUZZ_SECONDS=${FP_FUZZ_SECONDS:-30}
if ! [[ $FUZZ_SECONDS =~ ^[0-9]+$ ]]; then
  echo "error: FP_FUZZ_SECONDS must be a number of seconds, got '$FUZZ_SECONDS'" >&2
  exit 2
fi
START=$(date +%s)

fp_install_dependencies
fp_build   # a build failure stops here

# The three test stages run even when an earlier one fails (one CI run
# reports all of them); the script fails if any did.
results=()
failed=0
stage() { # stage <name> <command...>
  local name=$1 t0 rc=0
  shift
  t0=$(date +%s)
  "$@" || rc=$?
  if ((rc)); then
    failed=1
    results+=("$name: FAILED (exit $rc, $(($(date +%s) - t0)) s)")
  else
    results+=("$name: ok ($(($(date +%s) - t0)) s)")
  fi
}

echo "== tests"
stage "ctest (unit, lit, Python, NVRTC compiles, corpus replays)" \
  ctest --test-dir "$FP_BUILD_DIR" --output-on-failure -j "$(nproc)"
# The CPU suite again under ASan + UBSan (our code only; MLIR stays
# prebuilt), in build-asan: the reference, runtime, API and reliability
# tests and every fuzz corpus replayed.
stage "ASan + UBSan quick run (scripts/sanitize.sh --quick)" \
  env FP_SKIP_INSTALL=1 bash "$FP_ROOT/scripts/sanitize.sh" --quick
# Each libFuzzer target for FUZZ_SECONDS, in build-fuzz (clang-22, installed
# by fuzz.sh). New inputs go to build-fuzz/corpus; fuzz/corpus is only read.
# A crash, leak, timeout or failed invariant fails this stage and prints the
# reproducer's path (build-fuzz/artifacts/<target>/).
if ((FUZZ_SECONDS > 0)); then
  stage "libFuzzer, ${FUZZ_SECONDS} s per target (scripts/fuzz.sh)" \
    env FP_SKIP_INSTALL=1 bash "$FP_ROOT/scripts/fuzz.sh" "$FUZZ_SECONDS"
else
  results+=("libFuzzer: skipped (FP_FUZZ_SECONDS=0)")
fi

echo "== test.sh summary ($(($(date +%s) - START)) s)"
for r in "${results[@]}"; do echo "   $r"; done
if ((failed)); then
  echo "== FAILED (details above)"
  exit 1
fi
echo "== all passed"
