#!/usr/bin/env bash
# Runs every fuzz target (fuzz/README.md) with libFuzzer for a set time.
#
#   bash scripts/fuzz.sh                 # 30 s per target (CI)
#   bash scripts/fuzz.sh 600             # 10 minutes per target
#   bash scripts/fuzz.sh 60 capi dialect # chosen targets
#
# Builds build-fuzz with clang-22 (-fsanitize=fuzzer + address,undefined on
# our code), installing clang-22 and libclang-rt-22-dev from Debian when they
# are missing. Each target starts from its seed corpus (fuzz/corpus/<name>,
# read-only) and keeps what it finds in build-fuzz/corpus/<name>. A crash,
# sanitizer report or failed invariant writes the input to
# build-fuzz/artifacts/<name>/ and makes the script fail; add that file to
# fuzz/corpus/<name>/ as the regression test (CTest replays the corpus), then
# fix the bug.
#
# Without clang-22 (no apt access) it falls back to replaying the corpora
# with the ASan build of scripts/sanitize.sh, and says so.
#
# Env: FP_FUZZ_BUILD_DIR (default build-fuzz), FP_JOBS (default nproc),
# FP_FUZZ_WORKERS (parallel fuzzing jobs per target, default 1),
# FP_FUZZ_MERGE=1 (merge new inputs into fuzz/corpus/<name>, minimized).
source "$(dirname "$0")/common.sh"

SECONDS_PER_TARGET=${1:-30}
shift || true
ALL=(cache-entry manifest capi tuning-db dialect)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
BUILD=${FP_FUZZ_BUILD_DIR:-$FP_ROOT/build-fuzz}
JOBS=${FP_JOBS:-$(nproc)}
START=$(date +%s)

if ! command -v clang++-22 >/dev/null ||
   [ ! -e /usr/lib/llvm-22/lib/clang/22/lib/linux/libclang_rt.fuzzer-x86_64.a ]; then
  echo "== installing clang-22 libclang-rt-22-dev (libFuzzer)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  if ! ($sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
          --no-install-recommends clang-22 libclang-rt-22-dev >/dev/null); then
    echo "== clang-22 unavailable: replaying the corpora under ASan instead" \
         "(no new inputs are generated)"
    exec bash "$FP_ROOT/scripts/sanitize.sh"
  fi
fi
[ -n "${FP_SKIP_INSTALL:-}" ] || fp_install_dependencies

echo "== configuring $BUILD (clang-22, FP_FUZZ=ON, address,undefined)"
CC=clang-22 CXX=clang++-22 cmake -S "$FP_ROOT" -B "$BUILD" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCUDAToolkit_ROOT=/usr/local/cuda \
  -DCMAKE_PROJECT_FlashPrefill_INCLUDE="$FP_ROOT/cmake/FPSanitizers.cmake" \
  -DFP_FUZZ=ON -DFP_SANITIZE=address,undefined -DFP_BUILD_TESTS=OFF >/dev/null
names=()
for t in "${TARGETS[@]}"; do names+=("fp-fuzz-$t"); done
echo "== building ${names[*]}"
cmake --build "$BUILD" -j "$JOBS" --target "${names[@]}"
BUILT=$(date +%s)

# Sanitizer options and the NVRTC/driver leak suppressions are built into
# the binaries (fuzz/sanitizers/SanitizerDefaults.cpp); ASAN_OPTIONS etc.
# in the environment still override them.

failed=()
for t in "${TARGETS[@]}"; do
  corpus=$BUILD/corpus/$t
  artifacts=$BUILD/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  extra=()
  [ -f "$FP_ROOT/fuzz/$t.dict" ] && extra+=("-dict=$FP_ROOT/fuzz/$t.dict")
  [ -f "$FP_ROOT/fuzz/$t.options" ] && read -r -a opts <"$FP_ROOT/fuzz/$t.options" && extra+=("${opts[@]}")
  workers=${FP_FUZZ_WORKERS:-1}
  ((workers > 1)) && extra+=("-fork=$workers")
  echo "== fp-fuzz-$t: ${SECONDS_PER_TARGET} s"
  if "$BUILD/bin/fp-fuzz-$t" -max_total_time="$SECONDS_PER_TARGET" \
      -timeout=25 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "${extra[@]}" \
      "$corpus" "$FP_ROOT/fuzz/corpus/$t" >"$BUILD/fuzz-$t.log" 2>&1; then
    grep -E "^stat::(number_of_executed_units|new_units_added)|cov: " \
      "$BUILD/fuzz-$t.log" | tail -n 3 | sed 's/^/   /'
  else
    failed+=("$t")
    grep -E "ERROR|SUMMARY|invariant|Test unit written" "$BUILD/fuzz-$t.log" |
      head -n 20 | sed 's/^/   /'
    echo "   FAILED: log $BUILD/fuzz-$t.log, inputs in $artifacts/"
  fi
  if [ -n "${FP_FUZZ_MERGE:-}" ]; then
    "$BUILD/bin/fp-fuzz-$t" -merge=1 -use_counters=0 "${extra[@]}" \
      "$FP_ROOT/fuzz/corpus/$t" \
      "$corpus" >/dev/null 2>&1 || true
  fi
done

END=$(date +%s)
echo "== fuzz: build $((BUILT - START)) s, fuzzing $((END - BUILT)) s"
if ((${#failed[@]})); then
  echo "== crashes in: ${failed[*]}"
  exit 1
fi
echo "== no crash in ${TARGETS[*]}"
