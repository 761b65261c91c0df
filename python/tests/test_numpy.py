"""The package on numpy arrays (the CPU backend, i.e. the library's exact
reference): results against an independent float64 statement of the rule,
masks, layouts, plans, and errors. Needs numpy and pytest only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import flashprefill
import reference as ref

B = 16  # block size: small blocks keep the float64 checks fast
SEQ = 300  # 19 blocks, the last one partial
HQ, HKV, D = 4, 2, 32


def make(rng, dtype="bf16", b=2, s=SEQ, hq=HQ, hkv=HKV, d=D):
    return ref.structured_qkv(rng, b, s, hq, hkv, d, dtype)


def decoded(dtype, *arrays):
    return [ref.to_float(a, dtype) for a in arrays]


# ---------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------


def test_defaults_come_from_the_header():
    header = Path(__file__).resolve().parents[2] / "runtime/include/flashprefill/defaults.h"
    if not header.is_file():
        pytest.skip(f"not a source checkout: {header} is missing")
    macros = dict(re.findall(r"#define FP_DEFAULT_(\w+) ([\d.]+)f?", header.read_text()))
    d = flashprefill.defaults()
    assert d["alpha"] == pytest.approx(float(macros["ALPHA"]))
    for key in ("sink", "window", "last_n", "min_budget", "block_size"):
        assert d[key] == int(macros[key.upper()]), key
    assert d["threshold"] == "relative_max" and d["scale"] is None


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["bf16", "f16"])
def test_prefill_equals_float64_attention_on_its_mask(rng, dtype):
    q, k, v = make(rng, dtype)
    kwargs = dict(block_size=B, dtype=dtype if dtype == "bf16" else None)
    out, lse = flashprefill.prefill(q, k, v, return_lse=True, **kwargs)
    assert out.shape == q.shape and out.dtype == q.dtype and lse.shape == (2, HQ, SEQ)
    m = flashprefill.mask(q, k, **kwargs)
    dense = m.to_dense()
    assert 0.2 < m.density() < 0.95, "the inputs should make a selective mask"
    qf, kf, vf = decoded(dtype, q, k, v)
    want, want_lse = ref.masked_attention(qf, kf, vf, dense, B, 1 / np.sqrt(D))
    got = ref.to_float(out, dtype)
    # bf16 output rounding (2^-9) plus P rounded to bf16 before PV.
    assert ref.relative_l2(got, want) < (6e-3 if dtype == "bf16" else 1e-3)
    np.testing.assert_allclose(got, want, atol=3e-2 if dtype == "bf16" else 4e-3)
    np.testing.assert_allclose(lse, want_lse, rtol=1e-5, atol=1e-5)


def test_prefill_is_select_then_attend_bitwise(rng):
    q, k, v = make(rng)
    p = flashprefill.plan(dtype="bf16", head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                          block_size=B, max_seq_len=SEQ, max_batch=2, device="cpu")
    m = p.select(q, k, alpha=0.2)
    assert isinstance(m, flashprefill.Mask)
    counts, ids = m  # a (counts, ids) pair
    assert counts.dtype == np.int32 and counts.shape == (2, HQ, 19) and ids.shape == (2, HQ, 19, 19)
    out_a, lse_a = p.attend(q, k, v, m, return_lse=True)
    out_p, lse_p = p.prefill(q, k, v, alpha=0.2, return_lse=True)
    np.testing.assert_array_equal(out_a, out_p)
    np.testing.assert_array_equal(lse_a, lse_p)
    # The functional API goes through the same library path.
    np.testing.assert_array_equal(flashprefill.prefill(q, k, v, alpha=0.2, block_size=B, dtype="bf16"), out_p)
    # A mask passed as a plain tuple works too.
    np.testing.assert_array_equal(p.attend(q, k, v, (counts, ids)), out_p)


def test_dense_below_tokens_switches_prefill_to_dense(rng):
    q, k, v = make(rng, b=1)
    p = flashprefill.plan(dtype="bf16", head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                          block_size=B, max_seq_len=SEQ, max_batch=1, device="cpu")
    assert p.dense_below_tokens == 0  # the CPU reference never falls back by itself
    dense = p.prefill(q, k, v, alpha=0.0)
    sparse = p.prefill(q, k, v)
    assert not np.array_equal(dense, sparse), "the inputs should make a selective mask"
    np.testing.assert_array_equal(p.prefill(q, k, v, dense_below_tokens=SEQ + 1), dense)
    np.testing.assert_array_equal(p.prefill(q, k, v, dense_below_tokens=SEQ), sparse)
    np.testing.assert_array_equal(p.prefill(q, k, v, dense_below_tokens=-1), sparse)
    with pytest.raises(flashprefill.FlashPrefillError,
                       match=re.escape("params.dense_below_tokens: expected an integer in [-1, 2^63)")):
        p.prefill(q, k, v, dense_below_tokens=-2)
    with pytest.raises(flashprefill.FlashPrefillError, match=r"params\.dense_below_tokens: expected an int"):
        p.prefill(q, k, v, dense_below_tokens=1.5)


def test_alpha_zero_is_dense_causal_attention(rng):
    q, k, v = make(rng, "f16", b=1)
    out = flashprefill.prefill(q, k, v, alpha=0.0, block_size=B)
    m = flashprefill.mask(q, k, alpha=0.0, block_size=B)
    nb = m.num_blocks
    np.testing.assert_array_equal(m.counts, np.broadcast_to(np.arange(1, nb + 1), m.counts.shape))
    assert m.density() == 1.0
    qf, kf, vf = decoded("f16", q, k, v)
    want, _ = ref.masked_attention(qf, kf, vf, np.ones((1, HQ, nb, nb), bool), B, 1 / np.sqrt(D))
    np.testing.assert_allclose(out.astype(np.float64), want, atol=4e-3)


@pytest.mark.parametrize("dtype", ["bf16", "f16"])
def test_scale(rng, dtype):
    q, k, v = make(rng, dtype, b=1)
    kwargs = dict(block_size=B, dtype=dtype, scale=0.05)
    out = flashprefill.prefill(q, k, v, **kwargs)
    dense = flashprefill.mask(q, k, **kwargs).to_dense()
    qf, kf, vf = decoded(dtype, q, k, v)
    want, _ = ref.masked_attention(qf, kf, vf, dense, B, 0.05)
    assert ref.relative_l2(ref.to_float(out, dtype), want) < 6e-3


# ---------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------


def check_mask_against_rule(q, k, dtype, *, pooled=False, **rule):
    """The library's mask equals the float64 rule except for blocks within
    1e-4 * max of the threshold (rounding decides those)."""
    m = flashprefill.mask(q, k, block_size=B, dtype=dtype, pooled_queries=pooled, **rule)
    got = m.to_dense()
    qf, kf = decoded(dtype, q, k)
    scores = ref.block_scores(qf, kf, B, 1 / np.sqrt(qf.shape[3]), pooled=pooled, dtype=dtype)
    full = dict(alpha=0.1, sink=2, window=4, last_n=2)
    full.update(rule)
    want, margin = ref.keep_rule(scores, **full)
    differ = got != want
    assert not (differ & (margin > 1e-4)).any(), f"{differ.sum()} blocks differ from the rule"
    return m


@pytest.mark.parametrize("dtype", ["bf16", "f16"])
@pytest.mark.parametrize("rule", [
    {},
    {"alpha": 0.3, "sink": 1, "window": 2, "last_n": 1},
    {"alpha": 0.5, "min_budget": 3, "sink": 0, "window": 1, "last_n": 0},
    {"alpha": 0.6, "threshold": "min_max"},
    {"alpha": 1.0, "sink": 0, "window": 1, "last_n": 0},
])
def test_mask_equals_the_rule(rng, dtype, rule):
    q, k, _ = make(rng, dtype)
    check_mask_against_rule(q, k, dtype, **rule)


def test_pooled_queries_mask_equals_the_rule(rng):
    q, k, _ = make(rng, "bf16")
    check_mask_against_rule(q, k, "bf16", pooled=True, alpha=0.2)


def test_mask_structure(rng):
    q, k, _ = make(rng)
    sink, window, last_n = 2, 3, 2
    m = flashprefill.mask(q, k, block_size=B, dtype="bf16", alpha=0.5, sink=sink,
                          window=window, last_n=last_n)
    nb = m.num_blocks
    assert nb == -(-SEQ // B)
    for (bi, h, i), count in np.ndenumerate(m.counts):
        kept = m.ids[bi, h, i, :count]
        assert 1 <= count <= i + 1
        assert (np.diff(kept) > 0).all() and kept[-1] == i  # ascending, causal, diagonal kept
        forced = {j for j in range(i + 1) if j < sink or i - j < window}
        assert forced <= set(kept.tolist())
        if i >= nb - last_n:
            assert count == i + 1  # the last query blocks are dense
    assert m.density() < 1.0


def test_alpha_one_keeps_the_argmax_and_forced_blocks(rng):
    q, k, _ = make(rng)
    m = check_mask_against_rule(q, k, "bf16", alpha=1.0, sink=0, window=1, last_n=0)
    # Each row keeps the diagonal (window) and its best block (often the same).
    assert ((m.counts >= 1) & (m.counts <= 2)).all()


def test_min_budget_keeps_more(rng):
    q, k, _ = make(rng)
    base = dict(block_size=B, dtype="bf16", alpha=1.0, sink=0, window=1, last_n=0)
    counts = [flashprefill.mask(q, k, min_budget=n, **base).counts for n in (0, 2, 4)]
    assert (counts[0] <= counts[1]).all() and (counts[1] <= counts[2]).all()
    rows = np.arange(counts[0].shape[-1])
    # At least min(k, non-forced blocks) beyond the diagonal.
    assert (counts[2] >= 1 + np.minimum(4, rows)).all()


def test_kept_counter_accumulates(rng):
    q, k, _ = make(rng)
    p = flashprefill.plan(dtype="bf16", head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                          block_size=B, max_seq_len=SEQ, max_batch=2, device="cpu")
    counter = np.zeros(1, dtype=np.uint64)
    m = p.select(q, k, kept_counter=counter)
    p.select(q, k, kept_counter=counter)
    assert int(counter[0]) == 2 * int(m.counts.sum())


# ---------------------------------------------------------------------------
# Layouts, strides, outputs
# ---------------------------------------------------------------------------


def test_bhsd_layout_is_a_view_not_a_copy(rng):
    q, k, v = make(rng)
    want, want_lse = flashprefill.prefill(q, k, v, block_size=B, dtype="bf16", return_lse=True)
    # [b, h, s, d] arrays, as head-major model code holds them.
    qh, kh, vh = (np.ascontiguousarray(x.transpose(0, 2, 1, 3)) for x in (q, k, v))
    out, lse = flashprefill.prefill(qh, kh, vh, block_size=B, dtype="bf16", layout="bhsd",
                                    return_lse=True)
    assert out.shape == qh.shape
    np.testing.assert_array_equal(out.transpose(0, 2, 1, 3), want)
    np.testing.assert_array_equal(lse, want_lse)
    m = flashprefill.mask(qh, kh, block_size=B, dtype="bf16", layout="bhsd")
    np.testing.assert_array_equal(m.counts, flashprefill.mask(q, k, block_size=B, dtype="bf16").counts)


def test_packed_qkv_views(rng):
    q, k, v = make(rng)
    packed = np.concatenate([q, k, v], axis=2)  # [b, s, hq + 2 hkv, d]
    pq, pk, pv = packed[:, :, :HQ], packed[:, :, HQ:HQ + HKV], packed[:, :, HQ + HKV:]
    assert not pq.flags.c_contiguous
    np.testing.assert_array_equal(flashprefill.prefill(pq, pk, pv, block_size=B, dtype="bf16"),
                                  flashprefill.prefill(q, k, v, block_size=B, dtype="bf16"))


def test_out_is_written_in_place(rng):
    q, k, v = make(rng, "f16")
    want = flashprefill.prefill(q, k, v, block_size=B)
    out = np.zeros_like(q)
    assert flashprefill.prefill(q, k, v, block_size=B, out=out) is out
    np.testing.assert_array_equal(out, want)
    # A strided out: every other head slot of a wider buffer.
    wide = np.zeros(q.shape[:2] + (2 * HQ, D), dtype=q.dtype)
    flashprefill.prefill(q, k, v, block_size=B, out=wide[:, :, ::2])
    np.testing.assert_array_equal(wide[:, :, ::2], want)
    assert not wide[:, :, 1::2].any()


def test_plan_workspace_and_explicit_buffers(rng):
    q, k, v = make(rng)
    p = flashprefill.plan(dtype="bf16", head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                          block_size=B, max_seq_len=512, max_batch=4, device="cpu")
    assert p.device == "cpu" and p.spec["max_seq_len"] == 512 and p.block_size == B
    ws_bytes = p.workspace_bytes(2, SEQ)
    nb = 19
    assert p.mask_bytes(2, SEQ) >= 4 * 2 * HQ * nb * (nb + 1)
    assert p.select_workspace_bytes(2, SEQ) < ws_bytes
    ws = p.empty_workspace(2, SEQ)
    assert ws.nbytes == ws_bytes
    out, lse = np.empty_like(q), np.empty((2, HQ, SEQ), np.float32)
    result = p.prefill(q, k, v, out=out, lse=lse, workspace=ws)
    assert result[0] is out and result[1] is lse
    np.testing.assert_array_equal(out, p.prefill(q, k, v))
    mask = flashprefill.Mask(np.empty((2, HQ, nb), np.int32), np.empty((2, HQ, nb, nb), np.int32))
    assert p.select(q, k, mask=mask, workspace=p.empty_workspace(2, SEQ, select_only=True)) is not None
    np.testing.assert_array_equal(mask.counts, p.select(q, k).counts)
    with p:
        pass
    with pytest.raises(flashprefill.FlashPrefillError, match="closed"):
        p.workspace_bytes(1, 1)


def test_plan_cache_grows(rng):
    q, k, v = make(rng, b=1, s=40)
    small = flashprefill.prefill(q, k, v, block_size=B, dtype="bf16")
    Q, K, V = make(rng, b=3, s=SEQ)
    big = flashprefill.prefill(Q, K, V, block_size=B, dtype="bf16")  # recreates the plan
    assert big.shape == Q.shape
    np.testing.assert_array_equal(flashprefill.prefill(q, k, v, block_size=B, dtype="bf16"), small)


def test_empty_sequence(rng):
    q = np.zeros((1, 0, HQ, D), np.float16)
    k = np.zeros((1, 0, HKV, D), np.float16)
    out, lse = flashprefill.prefill(q, k, k, return_lse=True)
    assert out.shape == q.shape and lse.shape == (1, HQ, 0)


def test_bf16_helpers():
    x = np.array([0.0, 1.0, -2.5, 1 + 2 ** -9, 1 + 3 * 2 ** -9, 3.4e38, np.inf, np.nan], np.float32)
    bits = flashprefill.to_bf16(x)
    assert bits.dtype == np.uint16
    back = flashprefill.from_bf16(bits)
    np.testing.assert_array_equal(back[:3], x[:3])
    assert back[3] == 1.0  # ties to even
    assert back[4] == 1 + 2 ** -7
    assert np.isinf(back[5]) and np.isinf(back[6]) and np.isnan(back[7])


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

Error = flashprefill.FlashPrefillError


def cpu_plan(**kw):
    args = dict(dtype="bf16", head_dim=D, num_q_heads=HQ, num_kv_heads=HKV, block_size=B,
                max_seq_len=SEQ, max_batch=2, device="cpu")
    args.update(kw)
    return flashprefill.plan(**args)


@pytest.mark.parametrize("kwargs, names", [
    ({"alpha": 1.5}, "params.alpha: expected a value in [0, 1], got 1.5"),
    ({"alpha": -0.1}, "params.alpha"),
    ({"sink": -1}, "params.sink: expected >= 0, got -1"),
    ({"window": 0}, "params.window: expected >= 1"),
    ({"last_n": -2}, "params.last_n"),
    ({"min_budget": -1}, "params.min_budget"),
    ({"threshold": 7}, "params.threshold_kind"),
    ({"threshold": "median"}, "threshold: expected 'relative_max'"),
    ({"scale": -1.0}, "scale: expected a positive finite number"),
    ({"sink": 2 ** 40}, "params.sink: expected a 32-bit integer"),
    ({"block_size": 24}, "spec.block_size: expected a power of two"),
    ({"layout": "sbhd"}, "layout: expected 'bshd'"),
])
def test_parameter_errors_name_the_argument(rng, kwargs, names):
    q, k, v = make(rng, "f16", b=1)
    with pytest.raises(Error) as info:
        flashprefill.prefill(q, k, v, **{"block_size": B, **kwargs})
    assert isinstance(info.value, RuntimeError)
    assert info.value.status_name == "invalid argument" and info.value.status == 1
    assert names in str(info.value)
    assert names in info.value.message


def test_wrong_head_count_names_q_shape_2(rng):
    p = cpu_plan()
    q, k, v = make(rng, b=1, hq=2, hkv=2)
    with pytest.raises(Error, match=re.escape("q.shape[2] (heads): expected 4, got 2")):
        p.prefill(q, k, v)
    # With layout='bhsd' the caller's index is named: heads are dim 1 there.
    qh, kh, vh = (np.ascontiguousarray(x.transpose(0, 2, 1, 3)) for x in (q, k, v))
    with pytest.raises(Error, match=re.escape("q.shape[1] (heads): expected 4, got 2")):
        p.prefill(qh, kh, vh, layout="bhsd")
    # The functional API checks the GQA ratio itself.
    q3, k3, v3 = make(rng, b=1, hq=4, hkv=3)
    with pytest.raises(Error, match=re.escape("q.shape[2] (heads): expected a multiple of k.shape[2] (3), got 4")):
        flashprefill.prefill(q3, k3, v3, block_size=B, dtype="bf16")


@pytest.mark.parametrize("case, names", [
    ("v_heads", "v.shape[2] (heads): expected 2, got 1"),
    ("k_dim", "k.shape[3] (head_dim): expected 32, got 16"),
    ("seq_k", "k.shape[1] (s_k)"),
    ("too_long", "q.shape[1] (seq): expected 1..300"),
    ("batch", "q.shape[0] (batch): expected 1..2"),
    ("out_shape", "out.shape[1] (seq)"),
    ("strides", "q.strides[3]: expected 1"),
])
def test_tensor_errors_name_the_argument(rng, case, names):
    p = cpu_plan()
    q, k, v = make(rng, b=1)
    kw = {}
    if case == "v_heads":
        v = v[:, :, :1]
    elif case == "k_dim":
        k = np.ascontiguousarray(k[..., :16])
    elif case == "seq_k":
        k, v = k[:, :200], v[:, :200]
    elif case == "too_long":
        q, k, v = make(rng, b=1, s=SEQ + 1)
    elif case == "batch":
        q, k, v = make(rng, b=3)
    elif case == "out_shape":
        kw["out"] = np.empty((1, 10, HQ, D), np.uint16)
    elif case == "strides":
        q = np.asfortranarray(q)
    with pytest.raises(Error) as info:
        p.prefill(q, k, v, **kw)
    assert names in str(info.value)


def test_dtype_errors(rng):
    q, k, v = make(rng, "bf16", b=1)
    with pytest.raises(Error, match=re.escape("q.dtype: uint16 arrays hold bf16 or f16 bit patterns; pass dtype='bf16'")):
        flashprefill.prefill(q, k, v, block_size=B)
    with pytest.raises(Error, match=r"q.dtype: expected bfloat16 or float16"):
        flashprefill.prefill(q.astype(np.float32), k, v, block_size=B)
    with pytest.raises(Error, match=re.escape("k.dtype: expected float16 (like q), got uint16")):
        flashprefill.prefill(q.astype(np.float16), k, v, block_size=B)
    with pytest.raises(Error, match=r"dtype: expected 'bf16' or 'f16'"):
        flashprefill.prefill(q, k, v, block_size=B, dtype="fp8")
    with pytest.raises(Error, match=r"q: expected a 4-d array"):
        flashprefill.prefill(q[0], k, v, block_size=B, dtype="bf16")
    with pytest.raises(Error, match=r"q: expected a torch.Tensor or numpy.ndarray, got list"):
        flashprefill.prefill([1, 2], k, v)


def test_buffer_errors(rng):
    p = cpu_plan()
    q, k, v = make(rng, b=1)
    with pytest.raises(Error, match=r"workspace_bytes: expected >= \d+"):
        p.prefill(q, k, v, workspace=np.empty(16, np.uint8))
    with pytest.raises(Error, match=r"mask.ids: expected shape"):
        p.attend(q, k, v, (np.zeros((1, HQ, 19), np.int32), np.zeros((1, HQ, 19, 18), np.int32)))
    with pytest.raises(Error, match=r"mask.counts.dtype: expected int32"):
        p.attend(q, k, v, (np.zeros((1, HQ, 19), np.int64), np.zeros((1, HQ, 19, 19), np.int32)))
    m = p.select(q, k)
    m.ids[0, 0, 5, 0] = 7  # above the diagonal: the library validates caller masks
    with pytest.raises(Error, match=re.escape("mask.ids[b=0, h=0, I=5]: expected strictly ascending")):
        p.attend(q, k, v, m)
    with pytest.raises(Error, match=r"lse: expected shape \(1, 4, 300\)"):
        p.prefill(q, k, v, lse=np.empty((1, HQ, 10), np.float32))
    out = np.empty_like(q)
    out.flags.writeable = False
    with pytest.raises(Error, match="out: expected a writable array"):
        p.prefill(q, k, v, out=out)


def test_plan_spec_errors():
    with pytest.raises(Error, match=r"spec.head_dim: expected a multiple of 16"):
        cpu_plan(head_dim=24)
    with pytest.raises(Error, match=r"spec.num_q_heads: expected a multiple of num_kv_heads"):
        cpu_plan(num_q_heads=5)
    with pytest.raises(Error, match=r"spec.max_seq_len: expected > 0"):
        cpu_plan(max_seq_len=0)
    with pytest.raises(Error, match=r"device: expected 'cpu'"):
        cpu_plan(device="tpu")
    with pytest.raises(Error, match=r"spec.max_workspace_bytes"):
        cpu_plan(max_workspace_bytes=1024)


def test_gpu_plan_without_a_gpu_says_so():
    try:
        p = flashprefill.plan(dtype="bf16", head_dim=64, num_q_heads=4, num_kv_heads=2,
                              max_seq_len=1024, device=0)
    except Error as error:
        if error.status_name != "no CUDA device":
            raise
        assert error.status == 6 and "no CUDA device" in str(error)
    else:
        p.close()
        pytest.skip("a CUDA device is present (the GPU tests cover it)")


def test_missing_library_error_names_where_it_looked(tmp_path):
    missing = tmp_path / "nowhere" / "libflashprefill.so"
    code = ("import flashprefill, sys\n"
            "try:\n    flashprefill.defaults()\n"
            "except flashprefill.LibraryNotFoundError as e:\n"
            "    print(type(e).__mro__[1].__name__, e.status_name, '|', e); sys.exit(0)\n"
            "sys.exit(1)\n")
    env = dict(os.environ, FLASHPREFILL_LIBRARY=str(missing), FLASHPREFILL_NO_TORCH="1")
    package_root = str(Path(flashprefill.__file__).resolve().parents[1])
    env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
    # Import works without the library; the first call says where it looked.
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("FlashPrefillError not found |")
    assert str(missing) in result.stdout and "FLASHPREFILL_LIBRARY" in result.stdout


def test_ml_dtypes_bfloat16_arrays(rng):
    """numpy has no bfloat16; ml_dtypes' bfloat16 arrays are taken as bf16."""
    ml_dtypes = pytest.importorskip("ml_dtypes", reason="ml_dtypes is not installed")
    q, k, v = make(rng, b=1)
    want = flashprefill.prefill(q, k, v, block_size=B, dtype="bf16")
    qb, kb, vb = (x.view(ml_dtypes.bfloat16) for x in (q, k, v))
    out = flashprefill.prefill(qb, kb, vb, block_size=B)
    assert out.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(out.view(np.uint16), want)


def test_plan_integer_fields():
    with pytest.raises(Error, match=r"spec.max_seq_len: expected an integer, got 10.5"):
        cpu_plan(max_seq_len=10.5)
    # 2^32 + 64 would narrow to a valid 64 in the int32 field.
    with pytest.raises(Error, match=r"spec.head_dim: expected a 32-bit integer, got 4294967360"):
        cpu_plan(head_dim=2 ** 32 + 64)
    with pytest.raises(Error, match=r"spec.max_seq_len: expected an integer in \[.*, 2\^63\), got"):
        cpu_plan(max_seq_len=2 ** 63)
    with pytest.raises(Error, match=r"spec.max_workspace_bytes: expected an integer in \[0, 2\^64\)"):
        cpu_plan(max_workspace_bytes=-1)
    assert "max_seq_len=300" in repr(cpu_plan())
