#!/usr/bin/env bash
# Runs every fuzz target (fuzz/README.md) with libFuzzer for a set time.
#
#   bash scripts/fuzz.sh                 # 30 s per target (what CI runs)
#   bash scripts/fuzz.sh 600             # 10 minutes per target
#   bash scripts/fuzz.sh 60 capi dialect # chosen targets
#
# Builds build-fuzz with clang-22 (-fsanitize=fuzzer + address,undefined on
# our code), installing clang-22 and libclang-rt-22-dev from Debian when they
# are missing; if they cannot be installed it stops with an error (exit 1)
# that says what is missing (scripts/sanitize.sh replays the corpora without
# clang). Each target starts from its seed corpus fuzz/corpus/<name> (passed
# second, so libFuzzer reads it but never writes to it; the script checks
# that the tracked corpora are unchanged afterwards) and keeps what it finds
# in the working corpus build-fuzz/corpus/<name> (ignored by git). A crash,
# sanitizer report (leaks included), per-input timeout (25 s), out-of-memory
# or failed invariant writes the input to build-fuzz/artifacts/<name>/ and
# makes the script fail, printing the report, the reproducer's path and the
# command that replays it; add that file to fuzz/corpus/<name>/ as the
# regression test (CTest replays the corpus), then fix the bug.
#
# Env: FP_FUZZ_BUILD_DIR (default build-fuzz), FP_JOBS (default nproc),
# FP_FUZZ_WORKERS (parallel fuzzing jobs per target, default 1),
# FP_FUZZ_FLAGS (extra libFuzzer flags, e.g. "-seed=1"),
# FP_FUZZ_MERGE=1 (merge new inputs into fuzz/corpus/<name>, minimized),
# FP_SKIP_INSTALL=1 (skip the project's own dependencies, not clang).
source "$(dirname "$0")/common.sh"

SECONDS_PER_TARGET=${1:-30}
shift || true
ALL=(cache-entry manifest capi tuning-db dialect)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  if [[ " ${ALL[*]} " != *" $t "* ]]; then
    echo "error: unknown fuzz target '$t' (targets: ${ALL[*]})" >&2
    exit 2
  fi
done
if ! [[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] || ((SECONDS_PER_TARGET < 1)); then
  echo "usage: $0 [seconds per target] [target...]" >&2
  exit 2
fi
BUILD=${FP_FUZZ_BUILD_DIR:-$FP_ROOT/build-fuzz}
JOBS=${FP_JOBS:-$(nproc)}
START=$(date +%s)

# libFuzzer: clang-22 plus the fuzzer runtime of libclang-rt-22-dev.
FUZZER_RT=/usr/lib/llvm-22/lib/clang/22/lib/linux/libclang_rt.fuzzer-x86_64.a
have_libfuzzer() { command -v clang++-22 >/dev/null && [ -e "$FUZZER_RT" ]; }
if ! have_libfuzzer; then
  echo "== installing clang-22 libclang-rt-22-dev (libFuzzer)"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  if ! command -v apt-get >/dev/null; then
    echo "   apt-get not found"
  elif ! ($sudo apt-get update -qq &&
          DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
            --no-install-recommends clang-22 libclang-rt-22-dev >/dev/null); then
    echo "   apt-get install clang-22 libclang-rt-22-dev failed (see above)"
  fi
  if ! have_libfuzzer; then
    command -v clang++-22 >/dev/null || echo "   missing: clang++-22 (package clang-22)"
    [ -e "$FUZZER_RT" ] || echo "   missing: $FUZZER_RT (package libclang-rt-22-dev)"
    echo "error: libFuzzer is not available, so no fuzz target was run." \
         "Install clang-22 and libclang-rt-22-dev (Debian, or apt.llvm.org" \
         "for bookworm) and rerun; 'bash scripts/sanitize.sh' replays the" \
         "fuzz corpora under ASan + UBSan without clang." >&2
    exit 1
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

# The tracked seed corpora must come out of a timed run untouched (names,
# sizes, contents): a clean clone stays clean.
corpus_state() {
  (cd "$FP_ROOT/fuzz/corpus" && find . -type f -print0 | sort -z |
     xargs -0 -r sha1sum | sha1sum)
}
SEEDS_BEFORE=$(corpus_state)
read -r -a user_flags <<<"${FP_FUZZ_FLAGS:-}"
STAMP=$BUILD/.fuzz-run-start
touch "$STAMP"

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  corpus=$BUILD/corpus/$t
  artifacts=$BUILD/artifacts/$t
  log=$BUILD/fuzz-$t.log
  mkdir -p "$corpus" "$artifacts"
  extra=()
  [ -f "$FP_ROOT/fuzz/$t.dict" ] && extra+=("-dict=$FP_ROOT/fuzz/$t.dict")
  if [ -f "$FP_ROOT/fuzz/$t.options" ]; then
    read -r -a opts <"$FP_ROOT/fuzz/$t.options" || true
    extra+=("${opts[@]}")
  fi
  workers=${FP_FUZZ_WORKERS:-1}
  ((workers > 1)) && extra+=("-fork=$workers")
  echo "== fp-fuzz-$t: ${SECONDS_PER_TARGET} s"
  # libFuzzer stops itself after -max_total_time; the outer timeout only
  # catches a run that hangs where libFuzzer's -timeout cannot.
  limit=$((SECONDS_PER_TARGET + 300))
  rc=0
  t0=$(date +%s)
  timeout -k 30 "$limit" "$BUILD/bin/fp-fuzz-$t" \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "${extra[@]}" "${user_flags[@]}" \
    "$corpus" "$FP_ROOT/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)
  line="fp-fuzz-$t: ${runs:-?} executions (${rate:-?}/s) in $(($(date +%s) - t0)) s, ${new:-?} new inputs, ${cov:-cov: ?}"
  if ((rc == 0)); then
    echo "   $line: ok"
    summary+=("$line: ok")
  else
    failed+=("$t")
    summary+=("$line: FAILED (exit $rc)")
    mapfile -t repro < <(find "$artifacts" -type f -newer "$STAMP" | sort)
    # The sanitizer or libFuzzer report with its stack.
    sed -n '/ERROR: \|runtime error: \|invariant\|ALARM: \|==[0-9]*==/,$p' \
      "$log" | grep -v '^INFO: \|^#[0-9]' | head -n 60 | sed 's/^/   | /'
    if ((rc == 124 || rc == 137)); then
      echo "   FAILED: fp-fuzz-$t did not stop within $limit s and was killed (a hang)"
    else
      echo "   FAILED: fp-fuzz-$t exited $rc (crash, sanitizer report, leak, timeout, out-of-memory or failed invariant)"
    fi
    if ((${#repro[@]})); then
      for f in "${repro[@]}"; do
        echo "   reproducer: $f"
        echo "   replay it:  $BUILD/bin/fp-fuzz-$t $f"
      done
      echo "   then copy it to fuzz/corpus/$t/regression-<what> (CTest replays it) and fix the bug (fuzz/README.md)"
    else
      echo "   no reproducer was written to $artifacts/ (see the log)"
    fi
    echo "   log: $log"
  fi
  if [ -n "${FP_FUZZ_MERGE:-}" ]; then
    "$BUILD/bin/fp-fuzz-$t" -merge=1 -use_counters=0 "${extra[@]}" \
      "$FP_ROOT/fuzz/corpus/$t" \
      "$corpus" >/dev/null 2>&1 || true
  fi
done

END=$(date +%s)
echo "== fuzz: build $((BUILT - START)) s, fuzzing $((END - BUILT)) s"
for s in "${summary[@]}"; do echo "   $s"; done
if [ -z "${FP_FUZZ_MERGE:-}" ] && [ "$(corpus_state)" != "$SEEDS_BEFORE" ]; then
  echo "== FAILED: the run changed the tracked seed corpora in fuzz/corpus" \
       "(only build-fuzz/corpus may be written; git status fuzz/corpus)"
  exit 1
fi
if ((${#failed[@]})); then
  echo "== FAILED: fuzz targets found bugs in: ${failed[*]} (reproducers and logs above)"
  exit 1
fi
echo "== no crash in ${TARGETS[*]}"
