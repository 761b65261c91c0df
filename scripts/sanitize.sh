#!/usr/bin/env bash
# The CPU test suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (LeakSanitizer included), built from our code only (cmake/FPSanitizers.cmake:
# MLIR, LLVM and GoogleTest stay prebuilt and uninstrumented).
#
#   bash scripts/sanitize.sh           # every CPU test (what CI runs)
#   bash scripts/sanitize.sh --quick   # without FPCompilerTests and lit
#
# Every CPU test: FPReferenceTests, FPRuntimeTests, FPApiTests,
# FPReliabilityTests (bad-input table + cache stress test), FPCompilerTests
# (codegen + NVRTC compiles), the lit suite (fp-opt), fp-opt's bad flags, and
# every fuzz target's corpus replayed once (fuzz/corpus). GPU tests are left
# out (they skip without a GPU anyway). --quick drops FPCompilerTests and lit
# (about 1 minute on 2 cores).
#
# Env: FP_ASAN_BUILD_DIR (default build-asan), FP_JOBS (default nproc),
# FP_SANITIZE (default address,undefined), FP_SKIP_INSTALL=1.
source "$(dirname "$0")/common.sh"

FULL=1
for arg in "$@"; do
  case "$arg" in
    --quick) FULL=0 ;;
    --full) FULL=1 ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
  esac
done

BUILD=${FP_ASAN_BUILD_DIR:-$FP_ROOT/build-asan}
JOBS=${FP_JOBS:-$(nproc)}
START=$(date +%s)

[ -n "${FP_SKIP_INSTALL:-}" ] || fp_install_dependencies

echo "== configuring $BUILD (FP_SANITIZE=${FP_SANITIZE:-address,undefined})"
cmake -S "$FP_ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCUDAToolkit_ROOT=/usr/local/cuda \
  -DCMAKE_PROJECT_FlashPrefill_INCLUDE="$FP_ROOT/cmake/FPSanitizers.cmake" \
  -DFP_SANITIZE="${FP_SANITIZE:-address,undefined}" -DFP_FUZZ=OFF >/dev/null

GTESTS=(FPReferenceTests FPRuntimeTests FPApiTests FPReliabilityTests)
FUZZERS=(cache-entry manifest capi tuning-db dialect)
TARGETS=("${GTESTS[@]}" fp-cache-stress-worker fp-opt)
for f in "${FUZZERS[@]}"; do TARGETS+=("fp-fuzz-$f"); done
if ((FULL)); then
  GTESTS+=(FPCompilerTests)
  TARGETS+=(FPCompilerTests)
fi
echo "== building ${TARGETS[*]}"
cmake --build "$BUILD" -j "$JOBS" --target "${TARGETS[@]}"
BUILT=$(date +%s)

# Sanitizer options and the NVRTC/driver leak suppressions are built into
# the binaries (fuzz/sanitizers/SanitizerDefaults.cpp); ASAN_OPTIONS etc.
# in the environment still override them.

failed=()
run() { # run <name> <command...>
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  echo "== $name"
  if "$@" >"$BUILD/sanitize-$name.log" 2>&1; then rc=0; else rc=$?; fi
  if ((rc)); then
    failed+=("$name")
    tail -n 60 "$BUILD/sanitize-$name.log"
    echo "   FAILED (exit $rc, $(($(date +%s) - t0)) s); log: $BUILD/sanitize-$name.log"
  else
    echo "   ok ($(($(date +%s) - t0)) s)"
  fi
}

cd "$FP_ROOT"
for t in "${GTESTS[@]}"; do
  run "$t" "$BUILD/bin/$t" --gtest_brief=1
done
run fp-opt-bad-inputs sh unittests/Reliability/fp-opt-bad-inputs.sh \
  "$BUILD/bin/fp-opt" "$FP_ROOT"
for f in "${FUZZERS[@]}"; do
  run "fuzz-$f-corpus" "$BUILD/bin/fp-fuzz-$f" "fuzz/corpus/$f"
done
if ((FULL)); then
  run lit "/usr/lib/llvm-22/bin/lit" -sv "$BUILD/lit_tests"
fi

END=$(date +%s)
echo "== sanitize: build $((BUILT - START)) s, tests $((END - BUILT)) s, total $((END - START)) s"
if ((${#failed[@]})); then
  echo "== FAILED under sanitizers: ${failed[*]}"
  exit 1
fi
echo "== all clean under ${FP_SANITIZE:-address,undefined}"
