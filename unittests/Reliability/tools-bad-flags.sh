#!/bin/sh
# fp-bench's and fp-tune's flags: a malformed or out-of-range value exits 2
# with a message naming the flag and the expected value (nothing is parsed
# leniently, nothing narrowed unchecked), and no GPU is touched first. Every
# command runs under `timeout`: a hang fails, as does a crash (any exit but 2).
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
  timeout 120 "$@" >"$TMP/out" 2>"$TMP/err"
  status=$?
  if [ "$status" -eq 124 ]; then
    echo "FAIL: $what: hung (killed after 120 s)"
    failures=$((failures + 1)); return
  fi
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
expect_usage_error "fp-bench --seq-len not an integer" \
  "--seq-len: expected an integer in [1, 4194304], got '4k'" "$FP_BENCH" --seq-len 4k
expect_usage_error "fp-bench --repeats 0" "--repeats: expected an integer in [1, 100000], got '0'" \
  "$FP_BENCH" --repeats 0

# Out-of-range shapes: these used to abort (length_error, bad_alloc), die of
# SIGFPE (--kv-heads 0, --block 0) or narrow silently.
expect_usage_error "fp-bench --seq-len negative" \
  "--seq-len: expected an integer in [1, 4194304], got '-5'" "$FP_BENCH" --device cpu --seq-len -5
expect_usage_error "fp-bench --seq-len huge" \
  "--seq-len: expected an integer in [1, 4194304], got '9223372036854775807'" \
  "$FP_BENCH" --device cpu --seq-len 9223372036854775807
expect_usage_error "fp-bench --sweep with a huge item" \
  "--sweep: expected values in [1, 4194304], got '99999999'" "$FP_BENCH" --sweep 4096,99999999
expect_usage_error "fp-bench --batch negative" "--batch: expected an integer in [1, 4096], got '-1'" \
  "$FP_BENCH" --device cpu --batch -1
expect_usage_error "fp-bench --batch huge" "--batch: expected an integer in [1, 4096], got '4097'" \
  "$FP_BENCH" --device cpu --batch 4097
expect_usage_error "fp-bench --q-heads negative" \
  "--q-heads: expected an integer in [1, 1024], got '-8'" "$FP_BENCH" --device cpu --q-heads -8
expect_usage_error "fp-bench --kv-heads 0" "--kv-heads: expected an integer in [1, 1024], got '0'" \
  "$FP_BENCH" --device cpu --kv-heads 0
expect_usage_error "fp-bench --q-heads not a multiple of --kv-heads" \
  "--q-heads: expected a multiple of --kv-heads (8), got 12" \
  "$FP_BENCH" --device cpu --q-heads 12 --kv-heads 8
expect_usage_error "fp-bench --head-dim negative" \
  "--head-dim: expected a multiple of 16 in [16, 256], got '-64'" "$FP_BENCH" --device cpu --head-dim -64
expect_usage_error "fp-bench --head-dim past int" \
  "--head-dim: expected a multiple of 16 in [16, 256], got '4294967360'" \
  "$FP_BENCH" --device cpu --head-dim 4294967360
expect_usage_error "fp-bench --block 0" "--block: expected a power of two in [16, 256], got '0'" \
  "$FP_BENCH" --device cpu --block 0
expect_usage_error "fp-bench --block not a power of two" \
  "--block: expected a power of two in [16, 256], got '48'" "$FP_BENCH" --device cpu --block 48
expect_usage_error "fp-bench --warmup -1" "--warmup: expected an integer in [0, 100000], got '-1'" \
  "$FP_BENCH" --device cpu --warmup -1
expect_usage_error "fp-bench --sink past int32" \
  "--sink: expected an integer in [0, 2147483647], got '4294967296'" \
  "$FP_BENCH" --device cpu --sink 4294967296
expect_usage_error "fp-bench --window 0" "--window: expected an integer in [1, 2147483647], got '0'" \
  "$FP_BENCH" --device cpu --window 0
expect_usage_error "fp-bench --seed negative" \
  "--seed: expected an integer in [0, 9223372036854775807], got '-1'" "$FP_BENCH" --seed -1
expect_usage_error "fp-bench buffers past the bound" \
  "the buffers of 4194304 tokens need 59393 GiB; expected at most 64 GiB" \
  "$FP_BENCH" --device cpu --seq-len 4194304 --batch 64 --q-heads 64 --head-dim 256
expect_usage_error "fp-bench --mask-head past the heads" \
  "--mask-head: expected a query head in [0, 7], got 8" \
  "$FP_BENCH" --device cpu --q-heads 8 --kv-heads 8 --mask-head 8
expect_usage_error "fp-bench --mask-head past the CPU backend's heads" \
  "--mask-head: expected a query head in [0, 7] (the CPU backend runs 8), got 20" \
  "$FP_BENCH" --device cpu --seq-len 512 --q-heads 32 --kv-heads 8 --mask-head 20

# --mask-png: a path that cannot be written exits 2 before the run and
# leaves no file (nor temporary) behind.
expect_usage_error "fp-bench --mask-png in a missing directory" \
  "--mask-png: cannot create '$TMP/missing/mask.png' (No such file or directory)" \
  "$FP_BENCH" --device cpu --seq-len 512 --mask-png "$TMP/missing/mask.png"
mkdir "$TMP/adir"
expect_usage_error "fp-bench --mask-png a directory" \
  "--mask-png: '$TMP/adir' is a directory; expected a file name" \
  "$FP_BENCH" --device cpu --seq-len 512 --mask-png "$TMP/adir"
if [ -n "$(ls -A "$TMP/adir")" ] || [ -e "$TMP/missing" ]; then
  echo "FAIL: --mask-png left files behind:"; ls -la "$TMP/adir"
  failures=$((failures + 1))
fi

# --npy: each file's dtype and shape is checked against the flags (a smaller
# file was read out of bounds, another shape silently reinterpreted).
mkdir "$TMP/npy"
NPY_SHAPE="--device cpu --q-heads 2 --kv-heads 1 --head-dim 64 --block 64"
# shellcheck disable=SC2086
if ! timeout 120 "$FP_BENCH" $NPY_SHAPE --seq-len 256 --save-inputs "$TMP/npy" \
    >"$TMP/out" 2>"$TMP/err"; then
  echo "FAIL: fp-bench --save-inputs:"; cat "$TMP/err"
  failures=$((failures + 1))
fi
Q=$TMP/npy/q_256_d64.npy K=$TMP/npy/k_256_d64.npy V=$TMP/npy/v_256_d64.npy
# shellcheck disable=SC2086
if timeout 120 "$FP_BENCH" $NPY_SHAPE --seq-len 256 --npy "$Q,$K,$V" >"$TMP/out" 2>"$TMP/err"; then
  echo "ok: fp-bench --npy of the flags' shape runs"
else
  echo "FAIL: fp-bench --npy of the flags' shape:"; cat "$TMP/err"
  failures=$((failures + 1))
fi
# shellcheck disable=SC2086
expect_usage_error "fp-bench --npy longer than the files" \
  "--npy: $Q: expected shape [1, 512, 2, 64] ([b, s, q-heads, d] from the flags), got [1, 256, 2, 64]" \
  "$FP_BENCH" $NPY_SHAPE --seq-len 512 --npy "$Q,$K,$V"
# shellcheck disable=SC2086
expect_usage_error "fp-bench --npy with the same element count, other heads" \
  "--npy: $Q: expected shape [1, 128, 4, 64] ([b, s, q-heads, d] from the flags), got [1, 256, 2, 64]" \
  "$FP_BENCH" --device cpu --q-heads 4 --kv-heads 2 --head-dim 64 --seq-len 128 --npy "$Q,$K,$V"
# shellcheck disable=SC2086
expect_usage_error "fp-bench --npy with k and q swapped" \
  "--npy: $K: expected shape [1, 256, 2, 64] ([b, s, q-heads, d] from the flags), got [1, 256, 1, 64]" \
  "$FP_BENCH" $NPY_SHAPE --seq-len 256 --npy "$K,$Q,$V"
# A float64 file (a valid .npy, an unsupported element type).
{
  printf '\223NUMPY\001\000\166\000'
  printf "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 256, 2, 64), }"
  printf '%*s\n' 49 ''
  head -c 262144 /dev/zero
} >"$TMP/npy/f8.npy"
# shellcheck disable=SC2086
expect_usage_error "fp-bench --npy float64" \
  "--npy: $TMP/npy/f8.npy: expected uint16 (bf16 bit patterns) or float32 elements, got <f8" \
  "$FP_BENCH" $NPY_SHAPE --seq-len 256 --npy "$TMP/npy/f8.npy,$K,$V"
expect_usage_error "fp-bench --npy with --sweep" \
  "--npy: expected one length (--seq-len, the files' s), got a --sweep of 2" \
  "$FP_BENCH" --device cpu --sweep 256,512 --npy "$Q,$K,$V"
expect_usage_error "fp-bench --npy with two files" "--npy: expected q.npy,k.npy,v.npy, got '$Q,$K'" \
  "$FP_BENCH" --device cpu --npy "$Q,$K"
expect_usage_error "fp-bench unknown flag" "unknown option --bogus" "$FP_BENCH" --bogus
expect_usage_error "fp-tune --repeats negative" "--repeats: expected an integer in [1, 100000], got '-3'" \
  "$FP_TUNE" --repeats -3
expect_usage_error "fp-tune --buckets past int64 buckets (looped forever)" \
  "--buckets: expected values in [1, 4194304], got '9223372036854775807'" \
  "$FP_TUNE" --dry-run --arch sm_90a --buckets 9223372036854775807
expect_usage_error "fp-tune --head-dim past int (ran as d 64)" \
  "--head-dim: expected a multiple of 16 in [16, 256], got '4294967360'" \
  "$FP_TUNE" --dry-run --arch sm_90a --head-dim 4294967360
expect_usage_error "fp-tune --q-heads past int" \
  "--q-heads: expected an integer in [1, 1024], got '4294967304'" \
  "$FP_TUNE" --dry-run --arch sm_90a --q-heads 4294967304
expect_usage_error "fp-tune --block not a power of two" \
  "--block: expected a power of two in [16, 256], got '96'" "$FP_TUNE" --dry-run --arch sm_90a --block 96
expect_usage_error "fp-tune --q-heads not a multiple of --kv-heads" \
  "--q-heads: expected a multiple of --kv-heads (8), got 12" \
  "$FP_TUNE" --dry-run --arch sm_90a --q-heads 12 --kv-heads 8
expect_usage_error "fp-tune bucket tensors past the bound" \
  "--buckets, --q-heads, --kv-heads, --head-dim: the tensors of bucket 4194304 need more than 64 GiB" \
  "$FP_TUNE" --dry-run --arch sm_90a --buckets 4194304 --q-heads 1024 --kv-heads 8 --head-dim 256
expect_usage_error "fp-tune --buckets with an empty item" \
  "--buckets: expected positive integers separated by ',', got '4096,,8'" "$FP_TUNE" --buckets 4096,,8
expect_usage_error "fp-tune --budget-seconds overflow" \
  "--budget-seconds: expected an integer, got '99999999999999999999'" \
  "$FP_TUNE" --budget-seconds 99999999999999999999

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)"
  exit 1
fi
