"""``flashprefill.merge_states`` (docs/merge-states.md).

numpy arrays run the C API's CPU path (the reference); torch tensors run
torch operations in the same order, checked here against the reference
within the documented bound (one unit in the last place of O's dtype, a few
fp32 ulps of the LSE; rows with an empty side, or NaN, bit for bit). The
main check: a ``prefill_varlen`` call whose kept key blocks are split into
the cached prefix's and the new tokens', attended separately
(``Plan.attend_varlen`` with hand-split masks) and merged, equals the
unsplit call.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import flashprefill
import reference as ref

B = 16
HQ, HKV, D = 4, 2, 32
Error = flashprefill.FlashPrefillError
INF = np.float32(np.inf)

try:
    import torch
except ImportError:  # numpy-only installs
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
needs_cuda = pytest.mark.skipif(torch is None or not torch.cuda.is_available(),
                                reason="needs torch with a CUDA device")


def states(rng, n=40, h=3, d=24, dtypes=("f32", "f32"), specials=True):
    """Two states [n, h, d] with LSE [h, n]: random, plus rows with one side
    -inf / +inf (its O NaN garbage), both empty, and a NaN LSE."""
    out = []
    lses = [(6 * rng.standard_normal((h, n))).astype(np.float32) for _ in range(2)]
    if specials:
        lses[0][0, 1] = -INF          # only b
        lses[1][1, 2] = -INF          # only a
        lses[1][2, 3] = INF           # only a (FlashAttention-2's empty row)
        lses[0][0, 4] = lses[1][0, 4] = -INF  # neither
        lses[0][1, 5], lses[1][1, 5] = INF, -INF  # neither
        lses[0][2, 6] = np.nan
    for lse, dt in zip(lses, dtypes):
        o = rng.standard_normal((n, h, d)).astype(np.float32)
        o[np.isinf(lse).T] = np.nan  # never read
        out.append((cast(o, dt), lse))
    return out


def cast(x, dt):
    if dt == "f32":
        return x.astype(np.float32)
    if dt == "f16":
        return x.astype(np.float16)
    return flashprefill.to_bf16(x.astype(np.float32))  # uint16 bit patterns


def to_float(x, dt):
    return flashprefill.from_bf16(x) if dt == "bf16" else x.astype(np.float32)


def ulp_unit(dt):
    """One unit in the last place relative to the magnitude, per dtype."""
    return {"f32": 2e-6, "bf16": 2.0 ** -7, "f16": 2.0 ** -10}[dt]


def check_close(got_o, got_l, want_o, want_l, a, b, dt_out, dt_a, dt_b):
    """got within the torch bound of want; rows that are not merged from
    both sides bit for bit (NaN rows: NaN)."""
    la, lb = a[1], b[1]
    kinds_both = ~(np.isinf(la) | np.isinf(lb) | np.isnan(la) | np.isnan(lb))
    nan_rows = np.isnan(la) | np.isnan(lb)
    exact = ~kinds_both & ~nan_rows
    assert np.array_equal(got_l[exact].view(np.uint32), want_l[exact].view(np.uint32))
    assert np.isnan(got_l[nan_rows]).all() and np.isnan(want_l[nan_rows]).all()
    # A few fp32 ulps of max(1, |LSE|): exp / log implementations differ in the last bit.
    np.testing.assert_allclose(got_l[kinds_both], want_l[kinds_both], rtol=1e-6, atol=1e-6)
    go, wo = to_float(got_o, dt_out), to_float(want_o, dt_out)
    ex = exact.T  # [n, h]
    assert np.array_equal(np.asarray(got_o)[ex], np.asarray(want_o)[ex])
    assert np.isnan(go[nan_rows.T]).all()
    both = kinds_both.T
    scale = np.maximum(np.abs(to_float(a[0], dt_a)), np.abs(to_float(b[0], dt_b)))[both]
    assert (np.abs(go[both] - wo[both]) <= ulp_unit(dt_out) * scale + 1e-30).all()


def formula64(a, b, dt_a, dt_b):
    """The merge in float64 (truth for the numpy path's rounding)."""
    la, lb = a[1].astype(np.float64).T, b[1].astype(np.float64).T
    m = np.maximum(la, lb)
    with np.errstate(invalid="ignore"):  # rows with an infinite side: not compared
        wa, wb = np.exp(la - m), np.exp(lb - m)
    o = (wa[..., None] * to_float(a[0], dt_a) + wb[..., None] * to_float(b[0], dt_b)) \
        / (wa + wb)[..., None]
    return o, (m + np.log(wa + wb)).T


# ---------------------------------------------------------------------------
# numpy (the reference through the C API)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dt_a,dt_b,dt_out", [("f32", "f32", "f32"), ("bf16", "bf16", "bf16"),
                                              ("f16", "f16", "f16"), ("bf16", "f32", "f32"),
                                              ("f16", "bf16", "bf16")])
def test_numpy_follows_the_definition(rng, dt_a, dt_b, dt_out):
    a, b = states(rng, dtypes=(dt_a, dt_b))
    kw = {"dtype": "bf16"} if "bf16" in (dt_a, dt_b, dt_out) else {}
    out = np.empty(a[0].shape, dtype=cast(np.zeros(1), dt_out).dtype)
    o, lse = flashprefill.merge_states(a[0], a[1], b[0], b[1], out=out, **kw)
    assert o is out and lse.shape == a[1].shape and lse.dtype == np.float32
    la, lb = a[1], b[1]
    # Edge rows exactly.
    assert lse[0, 1] == lb[0, 1] and lse[1, 2] == la[1, 2] and lse[2, 3] == la[2, 3]
    assert lse[0, 4] == -INF and lse[1, 5] == -INF and np.isnan(lse[2, 6])
    fo = to_float(o, dt_out)
    assert (fo[4, 0] == 0).all() and (fo[5, 1] == 0).all() and np.isnan(fo[6, 2]).all()
    assert np.array_equal(fo[1, 0], to_float(cast(to_float(b[0], dt_b)[1, 0], dt_out), dt_out))
    assert np.array_equal(fo[2, 1], to_float(cast(to_float(a[0], dt_a)[2, 1], dt_out), dt_out))
    # Merged rows: the float64 formula, within the output's rounding.
    want_o, want_l = formula64(a, b, dt_a, dt_b)
    both = ~(np.isinf(la) | np.isinf(lb) | np.isnan(la) | np.isnan(lb))
    np.testing.assert_allclose(lse[both], want_l[both], rtol=1e-6, atol=1e-6)
    err = np.abs(fo - want_o)[both.T]
    assert (err <= ulp_unit(dt_out) * np.abs(want_o)[both.T] + 1e-6).all()


def test_numpy_in_place_and_dense_layout(rng):
    # [b, s, h, d] with LSE [b, h, s] (what prefill returns).
    o_a = rng.standard_normal((2, 9, 3, 8)).astype(np.float16)
    o_b = rng.standard_normal((2, 9, 3, 8)).astype(np.float16)
    l_a = rng.standard_normal((2, 3, 9)).astype(np.float32)
    l_b = rng.standard_normal((2, 3, 9)).astype(np.float32)
    fresh_o, fresh_l = flashprefill.merge_states(o_a, l_a, o_b, l_b)
    # Per batch, the varlen layout gives the same numbers.
    for bi in range(2):
        vo, vl = flashprefill.merge_states(o_a[bi], l_a[bi], o_b[bi], l_b[bi])
        assert np.array_equal(vo, fresh_o[bi]) and np.array_equal(vl, fresh_l[bi])
    o, lse = flashprefill.merge_states(o_a, l_a, o_b, l_b, out=o_a, out_lse=l_a)
    assert o is o_a and lse is l_a
    assert np.array_equal(o_a, fresh_o) and np.array_equal(l_a, fresh_l)


def test_flashinfer_base2_token_major_lse_converts(rng):
    """FlashInfer's LSE is log2 and [total_q, h]: lse * ln 2, transposed, is
    this library's."""
    (oa, la), (ob, lb) = states(rng, specials=False)
    want_o, want_l = flashprefill.merge_states(oa, la, ob, lb)
    fi_a = (la * np.float32(math.log2(math.e))).T.copy()  # as FlashInfer returns it
    fi_b = (lb * np.float32(math.log2(math.e))).T.copy()
    o, lse = flashprefill.merge_states(oa, (fi_a * np.float32(math.log(2))).T,
                                       ob, (fi_b * np.float32(math.log(2))).T)
    np.testing.assert_allclose(lse, want_l, rtol=1e-6)
    np.testing.assert_allclose(o, want_o, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# The split of a prefill_varlen call
# ---------------------------------------------------------------------------


def split_call(rng, dtype):
    """A packed batch: a chunk of 45 queries after a cached prefix of 70 keys
    (not block-aligned), and a 30-token prompt without prefix. Returns the
    plan, the call's arrays and its VarlenMask."""
    lengths = [(45, 115), (30, 30)]
    seqs = []
    for q_len, k_len in lengths:
        q, k, v = ref.structured_qkv(rng, 1, k_len, HQ, HKV, D, dtype, block=B)
        seqs.append((q[0, k_len - q_len:], k[0], v[0]))
    q, k, v = (np.concatenate([s[n] for s in seqs]) for n in range(3))
    cu_q = np.array([0, 45, 75], dtype=np.int32)
    cu_k = np.array([0, 115, 145], dtype=np.int32)
    plan = flashprefill.plan(dtype=dtype, head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                             max_seq_len=128, max_batch=2, block_size=B, device="cpu")
    kw = {"dtype": "bf16"} if dtype == "bf16" else {}
    return plan, q, k, v, cu_q, cu_k, kw


def split_mask(mask, cu_q, prefix_blocks):
    """(counts, ids) of the kept blocks below `prefix_blocks` (sequence 0's
    cached prefix) and of the rest."""
    counts, ids = np.asarray(mask.counts), np.asarray(mask.ids)
    rows0 = -(-int(cu_q[1]) // B)  # sequence 0's rows: 0 .. rows0 - 1
    parts = [(np.zeros_like(counts), np.full_like(ids, -1)) for _ in range(2)]
    for r in range(counts.shape[0]):
        for h in range(counts.shape[1]):
            for j in ids[r, h, :counts[r, h]]:
                c, i = parts[0 if (r < rows0 and j < prefix_blocks) else 1]
                i[r, h, c[r, h]] = j
                c[r, h] += 1
    return parts


@pytest.mark.parametrize("dtype", ["bf16", "f16"])
def test_split_prefill_varlen_merged_equals_one_call(rng, dtype):
    plan, q, k, v, cu_q, cu_k, kw = split_call(rng, dtype)
    whole, whole_lse = plan.prefill_varlen(q, k, v, cu_q, cu_k, alpha=0.2, return_lse=True, **kw)
    mask = plan.select_varlen(q, k, cu_q, cu_k, alpha=0.2, **kw)
    (ca, ia), (cb, ib) = split_mask(mask, cu_q, prefix_blocks=70 // B)
    assert ca.sum() > 0 and cb.sum() > 0
    o_a, l_a = plan.attend_varlen(q, k, v, cu_q, cu_k, mask=(ca, ia), return_lse=True, **kw)
    o_b, l_b = plan.attend_varlen(q, k, v, cu_q, cu_k, mask=(cb, ib), return_lse=True, **kw)
    merged, merged_lse = flashprefill.merge_states(o_a, l_a, o_b, l_b, **kw)

    # Sequence 1 has no prefix: pass a saw none of its keys, so its rows are
    # pass b's, which is the unsplit call over the same blocks: bit for bit.
    assert np.isneginf(l_a[:, 45:]).all()
    assert np.array_equal(merged[45:], whole[45:])
    assert np.array_equal(merged_lse[:, 45:].view(np.uint32), whole_lse[:, 45:].view(np.uint32))
    # Sequence 0: two probability roundings, the partial outputs' rounding
    # and two final roundings: 5 * 2^-9 * max|v| (docs/merge-states.md).
    vf = to_float(v, dtype)
    tol = 6 * 2.0 ** -9 * np.abs(vf).max()
    err = np.abs(to_float(merged[:45], dtype) - to_float(whole[:45], dtype))
    assert err.max() <= tol, (err.max(), tol)
    np.testing.assert_allclose(merged_lse[:, :45], whole_lse[:, :45], rtol=1e-5, atol=1e-5)

    if torch is not None:  # the torch path merges the same passes alike
        t = [torch.from_numpy(x) for x in (to_float(o_a, dtype), l_a, to_float(o_b, dtype), l_b)]
        to, tl = flashprefill.merge_states(*t)
        np.testing.assert_allclose(tl.numpy()[:, :45], whole_lse[:, :45], rtol=1e-5, atol=1e-5)
        assert np.abs(to.numpy()[:45] - to_float(whole[:45], dtype)).max() <= tol


# ---------------------------------------------------------------------------
# torch
# ---------------------------------------------------------------------------

TORCH_TYPES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}


def as_torch(x, dt):
    if dt == "bf16":
        return torch.from_numpy(x.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(x)


def from_torch(t, dt):
    if dt == "bf16":
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


@needs_torch
@pytest.mark.parametrize("dt_a,dt_b,dt_out", [("f32", "f32", "f32"), ("bf16", "bf16", "bf16"),
                                              ("f16", "f16", "f16"), ("bf16", "f32", "f32"),
                                              ("f32", "f16", "bf16")])
def test_torch_matches_the_reference_within_the_documented_bound(rng, dt_a, dt_b, dt_out):
    a, b = states(rng, n=300, h=4, d=40, dtypes=(dt_a, dt_b))
    # The reference: numpy through the C API. uint16 arrays must share one
    # dtype, so feed it floats where the types differ (exact conversions).
    ref_out = np.empty(a[0].shape, dtype=cast(np.zeros(1), dt_out).dtype)
    na = a[0] if dt_a != "bf16" or dt_out == "bf16" else to_float(a[0], dt_a)
    nb = b[0] if dt_b != "bf16" or dt_out == "bf16" else to_float(b[0], dt_b)
    kw = {"dtype": "bf16"} if "bf16" in (dt_a, dt_b, dt_out) else {}
    want_o, want_l = flashprefill.merge_states(na, a[1], nb, b[1], out=ref_out, **kw)
    out = torch.empty(a[0].shape, dtype=getattr(torch, TORCH_TYPES[dt_out]))
    got_o, got_l = flashprefill.merge_states(as_torch(a[0], dt_a), torch.from_numpy(a[1]),
                                             as_torch(b[0], dt_b), torch.from_numpy(b[1]),
                                             out=out)
    assert got_o is out
    check_close(from_torch(got_o, dt_out), got_l.numpy(), want_o, want_l, a, b, dt_out, dt_a,
                dt_b)


@needs_torch
def test_torch_in_place_dense_layout_and_compile(rng):
    o_a = torch.randn(2, 17, 3, 8, dtype=torch.bfloat16)
    o_b = torch.randn(2, 17, 3, 8, dtype=torch.bfloat16)
    l_a, l_b = torch.randn(2, 3, 17), torch.randn(2, 3, 17)
    l_a[1, 2, 5] = -math.inf
    fresh_o, fresh_l = flashprefill.merge_states(o_a, l_a, o_b, l_b)
    assert fresh_o.shape == o_a.shape and fresh_l.shape == l_a.shape
    assert torch.equal(fresh_o[1, 5, 2], o_b[1, 5, 2]) and fresh_l[1, 2, 5] == l_b[1, 2, 5]
    # torch.compile traces it whole (plain torch ops, no graph break).
    compiled = torch.compile(flashprefill.merge_states, fullgraph=True, backend="aot_eager")
    co, cl = compiled(o_a, l_a, o_b, l_b)
    assert torch.equal(co, fresh_o) and torch.equal(cl, fresh_l)
    o, lse = flashprefill.merge_states(o_a, l_a, o_b, l_b, out=o_a, out_lse=l_a)
    assert o is o_a and lse is l_a
    assert torch.equal(o_a, fresh_o) and torch.equal(l_a, fresh_l)


@needs_cuda
def test_torch_cuda_matches_cpu(rng):
    a, b = states(rng, n=500, h=8, d=64, dtypes=("bf16", "bf16"))
    cpu = flashprefill.merge_states(as_torch(a[0], "bf16"), torch.from_numpy(a[1]),
                                    as_torch(b[0], "bf16"), torch.from_numpy(b[1]))
    gpu = flashprefill.merge_states(*(x.cuda() for x in (as_torch(a[0], "bf16"),
                                                         torch.from_numpy(a[1]),
                                                         as_torch(b[0], "bf16"),
                                                         torch.from_numpy(b[1]))))
    check_close(from_torch(gpu[0].cpu(), "bf16"), gpu[1].cpu().numpy(),
                from_torch(cpu[0], "bf16"), cpu[1].numpy(), a, b, "bf16", "bf16", "bf16")


# ---------------------------------------------------------------------------
# Bad inputs
# ---------------------------------------------------------------------------


def test_bad_inputs_are_named_and_nothing_is_written(rng):
    (oa, la), (ob, lb) = states(rng, specials=False)
    out = np.full_like(oa, 7.0)
    out_lse = np.full_like(la, 7.0)
    cases = [
        ((oa, la, ob[:-1], lb[:, :-1]), {}, "o_b: expected shape (40, 3, 24) (like o_a)"),
        ((oa, la.T.copy(), ob, lb), {}, "lse_a: expected shape [h, total_q] = (3, 40)"),
        ((oa, la.astype(np.float64), ob, lb), {}, "lse_a.dtype: expected float32"),
        ((oa.astype(np.int32), la, ob, lb), {}, "o_a.dtype: expected float16, float32, bfloat16"),
        ((flashprefill.to_bf16(oa), la, ob, lb), {}, "o_a.dtype: uint16 arrays hold bf16 or f16"),
        ((oa, la, ob, lb), {"out": out[:, :, :-1]}, "out: expected shape (40, 3, 24)"),
        ((oa, la, [1.0], lb), {}, "o_b: expected a torch.Tensor or numpy.ndarray, got list"),
        ((oa[..., 0], la, ob[..., 0], lb), {}, "o_a: expected [total_q, h, d] or [b, s, h, d]"),
    ]
    for args, kw, message in cases:
        with pytest.raises(Error, match=message.replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[").replace("]", r"\]")):
            flashprefill.merge_states(*args, out=kw.get("out", out),
                                      out_lse=kw.get("out_lse", out_lse))
        assert (out == 7.0).all() and (out_lse == 7.0).all()
    # Overlap other than the exact in-place view: the library's message with
    # the caller's names.
    shifted = np.empty((41, 3, 24), dtype=np.float32)
    shifted[:40] = oa
    with pytest.raises(Error, match=r"out: expected memory disjoint from o_a, or exactly o_a"):
        flashprefill.merge_states(shifted[:40], la, ob, lb, out=shifted[1:], out_lse=out_lse)
    with pytest.raises(Error, match=r"out_lse: expected memory disjoint from lse_b, or exactly"):
        wide = np.concatenate([lb, lb], axis=1)
        flashprefill.merge_states(oa, la, ob, wide[:, :40], out=out, out_lse=wide[:, 1:41])
    assert (out == 7.0).all() and (out_lse == 7.0).all()
    read_only = np.full_like(oa, 7.0)
    read_only.flags.writeable = False
    with pytest.raises(Error, match="out: expected a writable array"):
        flashprefill.merge_states(oa, la, ob, lb, out=read_only)


@needs_torch
def test_torch_bad_inputs_are_named():
    o = torch.zeros(5, 2, 4)
    lse = torch.zeros(2, 5)
    with pytest.raises(Error, match=r"lse_b: expected shape \[h, total_q\] = \(2, 5\)"):
        flashprefill.merge_states(o, lse, o, lse.t())
    with pytest.raises(Error, match=r"o_b.dtype: expected torch.bfloat16, torch.float16 or "):
        flashprefill.merge_states(o, lse, o.to(torch.int32), lse)
    with pytest.raises(Error, match=r"lse_a.dtype: expected torch.float32"):
        flashprefill.merge_states(o, lse.double(), o, lse)
    with pytest.raises(Error, match=r"o_b: expected a torch.Tensor like o_a, got ndarray"):
        flashprefill.merge_states(o, lse, o.numpy(), lse)
