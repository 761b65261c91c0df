#!/bin/sh
# fp-opt's rows of docs/bad-inputs.md: each bad flag or input exits non-zero
# with a message naming it, and -o never leaves a partial file.
# Usage: fp-opt-bad-inputs.sh <fp-opt> <source-root>
set -u
FP_OPT=$1
ROOT=$2
EXAMPLE=$ROOT/examples/prefill.mlir
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fp-opt-bad.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0

# expect_error <description> <substring> <fp-opt args...>
expect_error() {
  what=$1 text=$2
  shift 2
  if "$FP_OPT" "$@" >"$TMP/out" 2>"$TMP/err"; then
    echo "FAIL: $what: exit 0"; failures=$((failures + 1)); return
  fi
  status=$?
  if [ "$status" -gt 128 ]; then
    echo "FAIL: $what: killed by signal $((status - 128))"; cat "$TMP/err"
    failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$text" "$TMP/err"; then
    echo "FAIL: $what: stderr lacks '$text':"; cat "$TMP/err"
    failures=$((failures + 1)); return
  fi
  echo "ok: $what"
}

expect_error "unknown --fp-emit value" "Cannot find option named 'bogus'" \
  "$EXAMPLE" --fp-emit=bogus
expect_error "unknown flag" "Unknown command line argument" \
  "$EXAMPLE" --fp-no-such-flag
expect_error "missing input file" "cannot open input file" \
  "$TMP/does-not-exist.mlir"
expect_error "bad pipeline arch" "arch: expected one of sm_80, sm_86, sm_89, sm_90, sm_90a, got 'sm_70'" \
  "$EXAMPLE" --fp-compile-pipeline="arch=sm_70" --fp-emit=cuda
expect_error "unknown pipeline option" "no such option bogus" \
  "$EXAMPLE" --fp-compile-pipeline="arch=sm_80 bogus=1"
expect_error "--fp-emit with -split-input-file" "cannot be combined with -split-input-file" \
  "$EXAMPLE" --fp-compile-pipeline="arch=sm_80" --fp-emit=cuda -split-input-file
expect_error "--fp-emit=cuda on unlowered IR" "run --fp-compile-pipeline before emitting CUDA" \
  "$EXAMPLE" --fp-emit=cuda
expect_error "unwritable -o" "cannot open output file" \
  "$EXAMPLE" --fp-compile-pipeline="arch=sm_80" --fp-emit=cuda -o "$TMP/no/such/dir/x.cu"
printf 'func.func @f() {\n  %%x = fp.nonsense\n' >"$TMP/garbage.mlir"
expect_error "malformed IR" "error:" "$TMP/garbage.mlir"
printf '\377\376\000garbage' >"$TMP/binary.mlir"
expect_error "binary input" "error:" "$TMP/binary.mlir"
expect_error "invalid fp op (verifier)" "expected a head dim that is a multiple of 16" \
  "$ROOT/lit_tests/Dialect/invalid.mlir"

# A failing compile with -o leaves no file behind.
expect_error "failed --fp-emit leaves no output" "run --fp-compile-pipeline" \
  "$EXAMPLE" --fp-emit=cuda -o "$TMP/partial.cu"
if [ -e "$TMP/partial.cu" ]; then
  echo "FAIL: a failed --fp-emit=cuda left $TMP/partial.cu"; failures=$((failures + 1))
fi

[ "$failures" -eq 0 ] && echo "fp-opt bad inputs: all ok"
exit "$failures"
