#!/bin/sh
# fp-bench's and fp-tune's flags: a malformed value exits 2 with a message
# naming the flag and the expected value (nothing is parsed leniently), and
# no GPU is touched first.
# Usage: tools-bad-flags.sh <fp-bench> <fp-tune>
set -u
FP_BENCH=$1
FP_TUNE=$2
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fp-tools-bad.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
failures=0

# expect_usage_error <description> <substring> <command...>
expect_usage_error() {
  what=$1 text=$2
  shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"
  status=$?
  if [ "$status" -ne 2 ]; then
    echo "FAIL: $what: exit $status, expected 2"; cat "$TMP/err"
    failures=$((failures + 1)); return
  fi
  if ! grep -qF -- "$text" "$TMP/err"; then
    echo "FAIL: $what: stderr lacks '$text':"; cat "$TMP/err"
    failures=$((failures + 1)); return
  fi
  echo "ok: $what"
}

expect_usage_error "fp-bench --alpha not a number" "--alpha: expected a number, got 'abc'" \
  "$FP_BENCH" --alpha abc
expect_usage_error "fp-bench --alpha inf" "--alpha: expected a number, got 'inf'" \
  "$FP_BENCH" --alpha inf
expect_usage_error "fp-bench --sweep with a bad item" \
  "--sweep: expected positive integers separated by ',', got '4096,x'" "$FP_BENCH" --sweep 4096,x
expect_usage_error "fp-bench --sweep with an empty item" \
  "--sweep: expected positive integers separated by ',', got '4096,'" "$FP_BENCH" --sweep 4096,
expect_usage_error "fp-bench --seq-len without a value" "--seq-len: expected a value" \
  "$FP_BENCH" --seq-len
expect_usage_error "fp-bench --seq-len not an integer" "--seq-len: expected an integer, got '4k'" \
  "$FP_BENCH" --seq-len 4k
expect_usage_error "fp-bench --repeats 0" "--repeats: expected a positive integer, got '0'" \
  "$FP_BENCH" --repeats 0
expect_usage_error "fp-bench unknown flag" "unknown option --bogus" "$FP_BENCH" --bogus
expect_usage_error "fp-tune --repeats negative" "--repeats: expected a positive integer, got '-3'" \
  "$FP_TUNE" --repeats -3
expect_usage_error "fp-tune --buckets with an empty item" \
  "--buckets: expected positive integers separated by ',', got '4096,,8'" "$FP_TUNE" --buckets 4096,,8
expect_usage_error "fp-tune --budget-seconds overflow" \
  "--budget-seconds: expected an integer, got '99999999999999999999'" \
  "$FP_TUNE" --budget-seconds 99999999999999999999

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
