"""Engine shapes (docs/semantics.md section 2) through the package:
``prefill_varlen`` / ``mask_varlen`` and the ``Plan.*_varlen`` methods on
numpy arrays (the CPU reference), torch CPU tensors and the custom op (skip
without torch), and CUDA tensors (skip without a GPU, or while the library
reports the GPU path unsupported).

The consequences of section 2 are checked bit for bit: prefix 0 is
``prefill``, B-aligned chunks are the whole prompt, paged K/V is packed K/V
(every page size, shuffled pages), a packed batch is its per-sequence calls.
An independent float64 statement of the rule with a prefix
(``reference.py``) checks masks and outputs with unaligned prefixes.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import flashprefill
import reference as ref

B = 16
HQ, HKV, D = 4, 2, 32
Error = flashprefill.FlashPrefillError
NAN = {"bf16": np.uint16(0x7FC0), "f16": np.float16(np.nan)}


def sequences(rng, lengths, dtype="bf16", *, hq=HQ, hkv=HKV, d=D, block=B):
    """(q rows [q_len, h_q, d], k [k_len, h_kv, d], v) per (q_len, k_len):
    structured inputs of k_len positions whose last q_len are the queries."""
    seqs = []
    for q_len, k_len in lengths:
        q, k, v = ref.structured_qkv(rng, 1, k_len, hq, hkv, d, dtype, block=block)
        seqs.append((q[0, k_len - q_len:], k[0], v[0]))
    return seqs


def offsets(lengths):
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)


def packed(seqs):
    """q, k, v, cu_seqlens_q, cu_seqlens_k of the packed batch."""
    q, k, v = (np.concatenate([s[n] for s in seqs]) for n in range(3))
    return (q, k, v, offsets([len(s[0]) for s in seqs]), offsets([len(s[1]) for s in seqs]))


def paged(rng, seqs, page_size, dtype="bf16", spare_pages=3, extra_columns=2):
    """k, v pages [num_pages, page_size, h_kv, d] in shuffled order, the page
    table and k_lens. Slots past a sequence's keys and spare pages hold NaN,
    unused table columns -1: reading any of them shows in the result."""
    needed = [-(-len(s[1]) // page_size) for s in seqs]
    num_pages = sum(needed) + spare_pages
    order = rng.permutation(num_pages)
    kp = np.full((num_pages, page_size) + seqs[0][1].shape[1:], NAN[dtype])
    vp = np.full((num_pages, page_size) + seqs[0][2].shape[1:], NAN[dtype])
    table = np.full((len(seqs), max(needed) + extra_columns), -1, dtype=np.int32)
    used = 0
    for i, (_, k, v) in enumerate(seqs):
        for t in range(needed[i]):
            page = order[used]
            used += 1
            table[i, t] = page
            rows = slice(t * page_size, (t + 1) * page_size)
            kp[page, :len(k[rows])] = k[rows]
            vp[page, :len(v[rows])] = v[rows]
    k_lens = np.array([len(s[1]) for s in seqs], dtype=np.int32)
    return kp, vp, table, k_lens


def dtype_arg(dtype):
    return {"dtype": "bf16"} if dtype == "bf16" else {}


def rows_of(cu, i):
    return slice(int(cu[i]), int(cu[i + 1]))


# ---------------------------------------------------------------------------
# Section 2's consequences, bit for bit
# ---------------------------------------------------------------------------

RULES = [
    {},
    {"alpha": 0.3, "sink": 1, "window": 2, "last_n": 1},
    {"alpha": 0.5, "min_budget": 3, "sink": 0, "window": 1, "last_n": 0},
    {"alpha": 0.6, "threshold": "min_max"},
]


@pytest.mark.parametrize("dtype", ["bf16", "f16"])
@pytest.mark.parametrize("rule", RULES)
def test_prefix_zero_is_prefill_bitwise(rng, dtype, rule):
    s = 300
    q, k, v = ref.structured_qkv(rng, 2, s, HQ, HKV, D, dtype)
    kwargs = dict(block_size=B, **dtype_arg(dtype), **rule)
    want, want_lse = flashprefill.prefill(q, k, v, return_lse=True, **kwargs)
    want_mask = flashprefill.mask(q, k, **kwargs)
    cu = np.array([0, s, 2 * s], np.int32)
    flat = [x.reshape(-1, *x.shape[2:]) for x in (q, k, v)]
    out, lse = flashprefill.prefill_varlen(*flat, cu, cu, return_lse=True, **kwargs)
    assert out.shape == flat[0].shape and out.dtype == q.dtype and lse.shape == (HQ, 2 * s)
    np.testing.assert_array_equal(out.reshape(q.shape), want)
    for i in range(2):
        np.testing.assert_array_equal(lse[:, i * s:(i + 1) * s], want_lse[i])
    m = flashprefill.mask_varlen(flat[0], flat[1], cu, cu, **kwargs)
    assert isinstance(m, flashprefill.VarlenMask)
    assert m.counts.shape == (2 * s // B + 2, HQ) and m.ids.shape == (2 * s // B + 2, HQ, 19)
    dense = want_mask.to_dense()
    for i in range(2):
        np.testing.assert_array_equal(m.sequence(i), dense[i])
        np.testing.assert_array_equal(m.sequence_counts(i), want_mask.counts[i])
    assert m.density() == pytest.approx(want_mask.density())


CHUNKS = [0, 96, 208, 300]  # B-aligned boundaries; the last chunk ends the prompt


def whole_and_chunks(rng, dtype="bf16"):
    q, k, v = (x[0] for x in ref.structured_qkv(rng, 1, CHUNKS[-1], HQ, HKV, D, dtype))
    return q, k, v, list(zip(CHUNKS[:-1], CHUNKS[1:]))


@pytest.mark.parametrize("rule", RULES[:2])
def test_aligned_chunks_are_the_whole_prompt(rng, rule):
    q, k, v, chunks = whole_and_chunks(rng)
    kwargs = dict(block_size=B, dtype="bf16", **rule)
    whole, whole_lse = flashprefill.prefill(q[None], k[None], v[None], return_lse=True, **kwargs)
    whole_dense = flashprefill.mask(q[None], k[None], **kwargs).to_dense()[0]
    outs, lses = [], []
    for a, e in chunks:
        final = np.array([e == CHUNKS[-1]], np.int32)
        cu_q, cu_k = np.array([0, e - a], np.int32), np.array([0, e], np.int32)
        args = (q[a:e], k[:e], v[:e], cu_q, cu_k)
        out, lse = flashprefill.prefill_varlen(*args, apply_last_n=final, return_lse=True,
                                               **kwargs)
        outs.append(out)
        lses.append(lse)
        m = flashprefill.mask_varlen(*args[:2], *args[3:], apply_last_n=final, **kwargs)
        nq, nk = -(-(e - a) // B), -(-e // B)
        np.testing.assert_array_equal(m.sequence(0), whole_dense[:, a // B:a // B + nq, :nk])
    np.testing.assert_array_equal(np.concatenate(outs), whole[0])
    np.testing.assert_array_equal(np.concatenate(lses, axis=1), whole_lse[0])


def test_last_n_on_every_chunk_is_not_the_whole_prompt(rng):
    """The control for the test above: last_n applied to a middle chunk makes
    its last query blocks dense, which the whole prompt does not."""
    q, k, v, chunks = whole_and_chunks(rng)
    kwargs = dict(block_size=B, dtype="bf16", last_n=2)
    whole_dense = flashprefill.mask(q[None], k[None], **kwargs).to_dense()[0]
    a, e = chunks[1]
    m = flashprefill.mask_varlen(q[a:e], k[:e], np.array([0, e - a], np.int32),
                                 np.array([0, e], np.int32), **kwargs)
    nq, nk = -(-(e - a) // B), -(-e // B)
    got = m.sequence(0)
    # last_n on this chunk: its last two query blocks keep every block up to J(I).
    assert got[:, -1].all() and got[:, -2, :-1].all()
    assert not np.array_equal(got, whole_dense[:, a // B:a // B + nq, :nk])


@pytest.mark.parametrize("layout", ["packed", "paged"])
def test_all_chunks_in_one_call_are_the_whole_prompt(rng, layout):
    """The chunks of a prompt as the sequences of one call (a chunk's prefix
    is every chunk before it); paged, all sequences share the prefix pages."""
    q, k, v, chunks = whole_and_chunks(rng)
    kwargs = dict(block_size=B, dtype="bf16")
    whole, whole_lse = flashprefill.prefill(q[None], k[None], v[None], return_lse=True, **kwargs)
    cu_q = offsets([e - a for a, e in chunks])
    flags = np.array([0] * (len(chunks) - 1) + [1], np.int32)
    if layout == "packed":
        kk = np.concatenate([k[:e] for _, e in chunks])
        vv = np.concatenate([v[:e] for _, e in chunks])
        extra = dict(cu_seqlens_k=offsets([e for _, e in chunks]))
    else:
        page = 16
        kk, vv = (x.reshape(-1, page, HKV, D) for x in (np.concatenate([k, k[:4]])[:304],
                                                          np.concatenate([v, v[:4]])[:304]))
        table = np.tile(np.arange(len(kk), dtype=np.int32), (len(chunks), 1))
        extra = dict(page_table=table, k_lens=np.array([e for _, e in chunks], np.int32))
    out, lse = flashprefill.prefill_varlen(q, kk, vv, cu_q, apply_last_n=flags, return_lse=True,
                                           **extra, **kwargs)
    np.testing.assert_array_equal(out, whole[0])
    np.testing.assert_array_equal(lse, whole_lse[0])


BATCH = [(90, 300), (0, 40), (37, 37), (128, 256), (5, 133)]  # (q_len, k_len)


@pytest.mark.parametrize("page_size", [1, 16, 64, 128, 256])
def test_paged_is_packed_bitwise(rng, page_size):
    seqs = sequences(rng, BATCH)
    q, k, v, cu_q, cu_k = packed(seqs)
    kp, vp, table, k_lens = paged(rng, seqs, page_size)
    kwargs = dict(block_size=B, dtype="bf16", alpha=0.2)
    want, want_lse = flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, return_lse=True, **kwargs)
    assert np.isfinite(ref.to_float(want, "bf16")).all()
    out, lse = flashprefill.prefill_varlen(q, kp, vp, cu_q, page_table=table, k_lens=k_lens,
                                           return_lse=True, **kwargs)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(lse, want_lse)
    m_packed = flashprefill.mask_varlen(q, k, cu_q, cu_k, **kwargs)
    m_paged = flashprefill.mask_varlen(q, kp, cu_q, page_table=table, k_lens=k_lens, **kwargs)
    for i in range(len(BATCH)):
        np.testing.assert_array_equal(m_paged.sequence(i), m_packed.sequence(i))


@pytest.mark.parametrize("dtype", ["bf16", "f16"])
def test_packed_batch_is_its_per_sequence_calls(rng, dtype):
    seqs = sequences(rng, BATCH, dtype)
    q, k, v, cu_q, cu_k = packed(seqs)
    flags = np.array([1, 0, 1, 0, 1], np.int32)
    kwargs = dict(block_size=B, **dtype_arg(dtype))
    out, lse = flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, apply_last_n=flags,
                                           return_lse=True, **kwargs)
    m = flashprefill.mask_varlen(q, k, cu_q, cu_k, apply_last_n=flags, **kwargs)
    for i, (qi, ki, vi) in enumerate(seqs):
        if len(qi) == 0:
            assert m.sequence(i).shape == (HQ, 0, -(-len(ki) // B))
            continue
        one = (np.array([0, len(qi)], np.int32), np.array([0, len(ki)], np.int32))
        alone, alone_lse = flashprefill.prefill_varlen(
            qi, ki, vi, *one, apply_last_n=flags[i:i + 1], return_lse=True, **kwargs)
        np.testing.assert_array_equal(out[rows_of(cu_q, i)], alone)
        np.testing.assert_array_equal(lse[:, rows_of(cu_q, i)], alone_lse)
        mi = flashprefill.mask_varlen(qi, ki, *one, apply_last_n=flags[i:i + 1], **kwargs)
        np.testing.assert_array_equal(m.sequence(i), mi.sequence(0))


# ---------------------------------------------------------------------------
# Against float64 (unaligned prefixes, per-sequence last_n)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rule", [
    {"alpha": 0.1, "sink": 2, "window": 4, "last_n": 2},
    {"alpha": 0.4, "sink": 1, "window": 1, "last_n": 1, "min_budget": 2},
])
def test_mask_and_output_equal_float64_rule(rng, rule):
    lengths = [(90, 300), (37, 37), (45, 133), (100, 117)]
    flags = np.array([1, 0, 0, 1], np.int32)
    seqs = sequences(rng, lengths)
    q, k, v, cu_q, cu_k = packed(seqs)
    kwargs = dict(block_size=B, dtype="bf16", **rule)
    out, lse = flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, apply_last_n=flags,
                                           return_lse=True, **kwargs)
    m = flashprefill.mask_varlen(q, k, cu_q, cu_k, apply_last_n=flags, **kwargs)
    assert 0.1 < m.density() < 0.95, "the inputs should make a selective mask"
    scale = 1 / np.sqrt(D)
    for i, (qi, ki, vi) in enumerate(seqs):
        qf, kf, vf = (ref.to_float(x, "bf16") for x in (qi, ki, vi))
        prefix = len(ki) - len(qi)
        scores = ref.block_scores_prefix(qf, kf, B, scale)
        want, margin = ref.keep_rule_prefix(scores, prefix, len(qi), B,
                                            **{**rule, "last_n": rule["last_n"] * int(flags[i])})
        got = m.sequence(i)
        differ = got != want
        assert not (differ & (margin > 1e-4)).any(), f"sequence {i}: {differ.sum()} blocks differ"
        want_out, want_lse = ref.masked_attention_prefix(qf, kf, vf, got, B, scale)
        got_out = ref.to_float(out[rows_of(cu_q, i)], "bf16")
        assert ref.relative_l2(got_out, want_out) < 6e-3
        np.testing.assert_allclose(got_out, want_out, atol=3e-2)
        np.testing.assert_allclose(lse[:, rows_of(cu_q, i)], want_lse, rtol=1e-5, atol=1e-5)


def test_alpha_zero_is_dense_bottom_right_causal_attention(rng):
    seqs = sequences(rng, [(45, 133), (16, 16)], "f16")
    q, k, v, cu_q, cu_k = packed(seqs)
    out = flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, alpha=0.0, block_size=B)
    m = flashprefill.mask_varlen(q, k, cu_q, cu_k, alpha=0.0, block_size=B)
    assert m.density() == 1.0
    for i, (qi, ki, vi) in enumerate(seqs):
        qf, kf, vf = (x.astype(np.float64) for x in (qi, ki, vi))
        nq, nk = -(-len(qi) // B), -(-len(ki) // B)
        want, _ = ref.masked_attention_prefix(qf, kf, vf, np.ones((HQ, nq, nk), bool), B,
                                              1 / np.sqrt(D))
        np.testing.assert_allclose(out[rows_of(cu_q, i)].astype(np.float64), want, atol=4e-3)


# ---------------------------------------------------------------------------
# Plans, masks, maxima, workspaces
# ---------------------------------------------------------------------------


@pytest.fixture
def cpu_plan():
    p = flashprefill.plan(dtype="bf16", head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                          block_size=B, max_seq_len=512, max_batch=8, device="cpu")
    yield p
    p.close()


def test_plan_select_then_attend_is_prefill_bitwise(rng, cpu_plan):
    p = cpu_plan
    seqs = sequences(rng, BATCH)
    q, k, v, cu_q, cu_k = packed(seqs)
    flags = np.array([1, 1, 0, 0, 1], np.int32)
    m = p.select_varlen(q, k, cu_q, cu_k, apply_last_n=flags, alpha=0.2)
    rows = len(q) // B + len(BATCH)
    assert m.counts.shape == (rows, HQ) and m.ids.shape == (rows, HQ, 300 // B + 1)
    counts, ids = m  # unpacks like Mask
    out_a, lse_a = p.attend_varlen(q, k, v, cu_q, cu_k, mask=m, return_lse=True)
    out_p, lse_p = p.prefill_varlen(q, k, v, cu_q, cu_k, apply_last_n=flags, alpha=0.2,
                                    return_lse=True)
    np.testing.assert_array_equal(out_a, out_p)
    np.testing.assert_array_equal(lse_a, lse_p)
    np.testing.assert_array_equal(p.attend_varlen(q, k, v, cu_q, cu_k, mask=(counts, ids)), out_p)
    # The functional API takes the same path.
    np.testing.assert_array_equal(
        flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, apply_last_n=flags, alpha=0.2,
                                    block_size=B, dtype="bf16"), out_p)
    # kept_counter adds the kept blocks of the rows that belong to query blocks.
    counter = np.zeros(1, np.int64)
    p.select_varlen(q, k, cu_q, cu_k, apply_last_n=flags, alpha=0.2, kept_counter=counter)
    assert counter[0] == sum(int(m.sequence_counts(i).sum()) for i in range(len(BATCH)))


def test_pooled_keys_replace_pooling(rng, cpu_plan):
    """pool_keys_varlen writes the rule's block means ([b, h_kv, blocks, d],
    rounded to the dtype; blocks past a sequence's keys untouched), paged
    and packed alike; pooled_k gives select / prefill the bits of pooling K
    and is really read (zero pooled keys keep every block)."""
    p = cpu_plan
    seqs = sequences(rng, BATCH)
    q, k, v, cu_q, cu_k = packed(seqs)
    maxima = dict(max_seqlen_q=max(a for a, _ in BATCH), max_seqlen_k=512)
    blocks = 512 // B
    assert p.varlen_pooled_keys_bytes(len(BATCH), 512) == len(BATCH) * HKV * blocks * D * 2
    poison = np.full((len(BATCH), HKV, blocks, D), 0x7777, np.uint16)
    pooled = p.pool_keys_varlen(q, k, cu_q, cu_k, out=poison.copy(), **maxima)
    for i, (_, ki, _) in enumerate(seqs):
        used = -(-len(ki) // B)
        means = ref.block_means(ref.to_float(ki, "bf16")[None], B)[0]  # [nb, h, d]
        want = ref.encode(means, "bf16").transpose(1, 0, 2)
        np.testing.assert_array_equal(pooled[i, :, :used], want)
        assert (pooled[i, :, used:] == 0x7777).all(), "a block past the keys was written"
    kp, vp, table, k_lens = paged(rng, seqs, 16)
    pooled_paged = p.pool_keys_varlen(q, kp, cu_q, page_table=table, k_lens=k_lens,
                                      out=poison.copy(), **maxima)
    np.testing.assert_array_equal(pooled_paged, pooled)

    rule = dict(alpha=0.3, sink=1, window=2, **maxima)
    want_mask = p.select_varlen(q, k, cu_q, cu_k, **rule)
    want, want_lse = p.prefill_varlen(q, k, v, cu_q, cu_k, return_lse=True, **rule)
    got_mask = p.select_varlen(q, k, cu_q, cu_k, pooled_k=pooled, **rule)
    np.testing.assert_array_equal(got_mask.counts, want_mask.counts)
    np.testing.assert_array_equal(got_mask.ids, want_mask.ids)
    got, got_lse = p.prefill_varlen(q, k, v, cu_q, cu_k, pooled_k=pooled, return_lse=True, **rule)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_lse, want_lse)
    flat = p.select_varlen(q, k, cu_q, cu_k, pooled_k=np.zeros_like(pooled), **rule)
    assert (flat.counts != want_mask.counts).any(), "pooled_k was not read"

    with pytest.raises(Error, match=r"pooled_k: expected shape \[b, h_kv, ceil\(max_seqlen_k / B\), "
                                    r"d\] = \[5, 2, 32, 32\], got \[5, 2, 31, 32\]"):
        p.select_varlen(q, k, cu_q, cu_k, pooled_k=pooled[:, :, 1:], **rule)
    with pytest.raises(Error, match=r"pooled_k: expected a contiguous array"):
        p.select_varlen(q, k, cu_q, cu_k, pooled_k=np.ascontiguousarray(
            pooled.transpose(0, 2, 1, 3)).transpose(0, 2, 1, 3), **rule)
    with pytest.raises(Error, match=r"pooled_k.*float16|pooled_k.dtype"):
        p.select_varlen(q, k, cu_q, cu_k, pooled_k=pooled.astype(np.float16), **rule)
    read_only = pooled.copy()
    read_only.flags.writeable = False
    with pytest.raises(Error, match=r"pooled_k"):
        p.pool_keys_varlen(q, k, cu_q, cu_k, out=read_only, **maxima)


def test_fixed_maxima_and_caller_buffers(rng, cpu_plan):
    """Engines size everything from fixed maxima (CUDA graphs): larger
    maxima, caller-owned out / lse / mask / workspace give the same bits."""
    p = cpu_plan
    seqs = sequences(rng, BATCH)
    q, k, v, cu_q, cu_k = packed(seqs)
    want, want_lse = p.prefill_varlen(q, k, v, cu_q, cu_k, return_lse=True)
    maxima = dict(max_seqlen_q=256, max_seqlen_k=512)
    ws = np.full(p.varlen_workspace_bytes(len(BATCH), len(q), **maxima), 0xAB, np.uint8)
    assert ws.nbytes >= p.varlen_mask_bytes(len(BATCH), len(q), 512)
    out = np.zeros_like(q)
    lse = np.zeros((HQ, len(q)), np.float32)
    result = p.prefill_varlen(q, k, v, cu_q, cu_k, out=out, lse=lse, workspace=ws, **maxima)
    assert result[0] is out and result[1] is lse
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(lse, want_lse)
    rows, key_blocks = len(q) // B + len(BATCH), 512 // B
    mask = (np.zeros((rows, HQ), np.int32), np.zeros((rows, HQ, key_blocks), np.int32))
    ws_select = p.empty_varlen_workspace(len(BATCH), len(q), select_only=True, **maxima)
    m = p.select_varlen(q, k, cu_q, cu_k, mask=mask, workspace=ws_select, **maxima)
    assert m.counts is mask[0] and m.ids is mask[1] and m.max_key_blocks == key_blocks
    np.testing.assert_array_equal(p.attend_varlen(q, k, v, cu_q, cu_k, mask=m, **maxima), want)
    assert (flashprefill.workspace_size_varlen(q, k, cu_q, cu_k, block_size=B, dtype="bf16", **maxima)
            == p.varlen_workspace_bytes(len(BATCH), len(q), **maxima))


def test_dense_below_tokens_applies_below_max_seqlen_k(rng, cpu_plan):
    p = cpu_plan
    q, k, v, cu_q, cu_k = packed(sequences(rng, [(90, 300), (37, 37)]))
    dense = p.prefill_varlen(q, k, v, cu_q, cu_k, alpha=0.0)
    sparse = p.prefill_varlen(q, k, v, cu_q, cu_k)
    assert not np.array_equal(dense, sparse), "the inputs should make a selective mask"
    np.testing.assert_array_equal(
        p.prefill_varlen(q, k, v, cu_q, cu_k, dense_below_tokens=301), dense)
    np.testing.assert_array_equal(
        p.prefill_varlen(q, k, v, cu_q, cu_k, dense_below_tokens=300), sparse)


def test_mask_views(rng):
    seqs = sequences(rng, [(90, 300), (0, 40), (20, 20)])
    q, k, v, cu_q, cu_k = packed(seqs)
    m = flashprefill.mask_varlen(q, k, cu_q, cu_k, block_size=B, dtype="bf16", alpha=0.0)
    assert m.num_sequences == 3 and "VarlenMask" in repr(m)
    q_lens, k_lens = m.lengths()
    np.testing.assert_array_equal(q_lens, [90, 0, 20])
    np.testing.assert_array_equal(k_lens, [300, 40, 20])
    # alpha 0: every visible block; prefix 210 -> query block I sees J(I) + 1 blocks.
    counts = m.sequence_counts(0)
    assert counts.shape == (HQ, 6)
    np.testing.assert_array_equal(counts[0], [(210 + min(16 * (I + 1), 90) - 1) // 16 + 1
                                              for I in range(6)])
    ids = m.sequence_ids(0)
    assert ids.shape == (HQ, 6, 19)
    np.testing.assert_array_equal(ids[1, 5, :counts[1, 5]], np.arange(19))
    assert m.sequence(1).shape == (HQ, 0, 3) and m.sequence(2).shape == (HQ, 2, 2)
    np.testing.assert_array_equal(m.sequence(2)[0], [[True, False], [True, True]])
    assert m.density() == 1.0 and m.density(2) == 1.0
    with pytest.raises(Error, match=re.escape("i: expected a sequence index in [0, 3), got 3")):
        m.sequence(3)


def test_empty_batch_and_no_queries_return_empty_outputs(rng):
    seqs = sequences(rng, [(0, 40)])
    q, k, v, cu_q, cu_k = packed(seqs)
    out, lse = flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, block_size=B, dtype="bf16",
                                           return_lse=True)
    assert out.shape == (0, HQ, D) and lse.shape == (HQ, 0)
    out = flashprefill.prefill_varlen(q, k, v, np.zeros(1, np.int32), np.zeros(1, np.int32),
                                      block_size=B, dtype="bf16")
    assert out.shape == (0, HQ, D)


# ---------------------------------------------------------------------------
# Bad inputs: named, and nothing written
# ---------------------------------------------------------------------------


def bad_case_inputs(rng):
    seqs = sequences(rng, [(40, 100), (30, 70)])
    q, k, v, cu_q, cu_k = packed(seqs)
    kp, vp, table, k_lens = paged(rng, seqs, 16, spare_pages=0, extra_columns=0)
    return dict(q=q, k=k, v=v, cu_q=cu_q, cu_k=cu_k, kp=kp, vp=vp, table=table, k_lens=k_lens)


def i32(*values):
    return np.array(values, np.int32)


# (id, how the call differs from a valid packed / paged one, the message).
BAD_CASES = [
    ("cu_q not increasing", dict(cu_seqlens_q=i32(0, 40, 30)),
     "cu_seqlens_q[2]: expected non-decreasing offsets (>= cu_seqlens_q[1] = 40), got 30"),
    ("cu_q start", dict(cu_seqlens_q=i32(5, 40, 70)), "cu_seqlens_q[0]: expected 0, got 5"),
    ("cu_q past total", dict(cu_seqlens_q=i32(0, 40, 71)),
     "cu_seqlens_q[2]: expected <= total_q (q.shape[0]) = 70, got 71"),
    ("cu_k not increasing", dict(cu_seqlens_k=i32(0, 100, 90)),
     "cu_seqlens_k[2]: expected non-decreasing offsets (>= cu_seqlens_k[1] = 100), got 90"),
    ("cu_k past total", dict(cu_seqlens_k=i32(0, 100, 171)),
     "cu_seqlens_k[2]: expected <= total_k (k.shape[0]) = 170, got 171"),
    ("k_len < q_len", dict(cu_seqlens_k=i32(0, 30, 170)),
     "cu_seqlens_k[1] - cu_seqlens_k[0] (k_len of sequence 0): expected >= q_len = 40"),
    ("paged k_len < q_len", dict(paged=True, k_lens=i32(100, 20)),
     "k_lens[1] (k_len of sequence 1): expected >= q_len = 30"),
    ("negative k_len", dict(paged=True, k_lens=i32(-1, 70)), "k_lens[0]: expected >= 0, got -1"),
    ("page id too large", dict(paged=True, table_entry=((1, 2), 99)),
     "page_table[1][2]: expected a page id in [0, 12) (k.shape[0]), got 99"),
    ("page id negative", dict(paged=True, table_entry=((0, 0), -1)),
     "page_table[0][0]: expected a page id in [0, 12) (k.shape[0]), got -1"),
    ("table too narrow", dict(paged=True, k_lens=i32(120, 70)),
     "k_lens[0]: 120 keys need ceil(120 / 16) = 8 pages; expected at most max_pages = 7"),
    ("max_seqlen_q too small", dict(max_seqlen_q=39),
     "max_seqlen_q: expected >= every q_len, got 39 < the q_len 40 of sequence 0"),
    ("max_seqlen_k too small", dict(max_seqlen_k=99, max_seqlen_q=40),
     "max_seqlen_k: expected >= every k_len, got 99 < the k_len 100 of sequence 0"),
    ("max_seqlen_q zero", dict(max_seqlen_q=0), "max_seqlen_q: expected an integer in [1, 2^63), got 0"),
    ("max_seqlen_k huge", dict(max_seqlen_k=2 ** 64),
     "max_seqlen_k: expected an integer in [1, 2^63), got 18446744073709551616"),
    ("max_seqlen_q bool", dict(max_seqlen_q=True), "max_seqlen_q: expected an integer, got True"),
    ("int64 cu_q", dict(cu_seqlens_q=np.array([0, 40, 70], np.int64)),
     "cu_seqlens_q.dtype: expected int32, got int64"),
    ("int64 k_lens", dict(paged=True, k_lens=np.array([100, 70], np.int64)),
     "k_lens.dtype: expected int32, got int64"),
    ("2-d cu_q", dict(cu_seqlens_q=i32(0, 40, 70)[None]),
     "cu_seqlens_q: expected shape [b+1] (b >= 0 sequences), got (1, 3)"),
    ("cu_k length", dict(cu_seqlens_k=i32(0, 100)), "cu_seqlens_k: expected shape [b+1] = [3]"),
    ("k_lens length", dict(paged=True, k_lens=i32(100)), "k_lens: expected shape [b] = [2], got (1,)"),
    ("table rows", dict(paged=True, table_rows=1), "page_table: expected shape [b, max_pages] = [2, >= 1]"),
    ("strided cu_q", dict(cu_seqlens_q=i32(0, 0, 40, 0, 70)[::2]),
     "cu_seqlens_q: expected a contiguous array"),
    ("apply_last_n length", dict(apply_last_n=i32(1)), "apply_last_n: expected shape [b] = [2], got (1,)"),
    ("both", dict(paged=True, cu_seqlens_k="keep"),
     "cu_seqlens_k, page_table: expected one of them (packed K/V with cu_seqlens_k, or paged K/V "
     "with page_table and k_lens), got both"),
    ("neither", dict(cu_seqlens_k=None), "cu_seqlens_k, page_table: expected one of them"),
    ("table without k_lens", dict(paged=True, k_lens=None),
     "k_lens: expected an int32 [b] array of key lengths with page_table"),
    ("k_lens with packed", dict(k_lens=i32(100, 70)), "k_lens: expected None with packed K/V"),
    ("q 4-d", dict(q_4d=True), "q: expected a 3-d numpy.ndarray [total_q, h_q, d], got shape (1, 70, 4, 32)"),
    ("paged k 3-d", dict(paged=True, k_3d=True),
     "k: expected a 4-d numpy.ndarray [num_pages, page_size, h_kv, d], got shape"),
    ("heads", dict(q_heads=3), "q.shape[1] (h_q): expected a multiple of k.shape[1] (h_kv = 2), got 3"),
    ("v shape", dict(v_rows=169), "v: expected k's shape (170, 2, 32), got (169, 2, 32)"),
    ("cu_q not an array", dict(cu_seqlens_q=[0, 40, 70]),
     "cu_seqlens_q: expected a torch.Tensor or numpy.ndarray, got list"),
]


def bad_call_args(x, change):
    """Positional and keyword arguments of a valid call with `change` applied."""
    change = dict(change)
    is_paged = change.pop("paged", False)
    q = x["q"]
    if change.pop("q_4d", False):
        q = q[None]
    if "q_heads" in change:
        q = q[:, :change.pop("q_heads")]
    k, v = (x["kp"], x["vp"]) if is_paged else (x["k"], x["v"])
    if change.pop("k_3d", False):
        k = k[0]
    if "v_rows" in change:
        v = v[:change.pop("v_rows")]
    kwargs = dict(cu_seqlens_k=None if is_paged else x["cu_k"])
    if is_paged:
        table = x["table"].copy()
        if "table_entry" in change:
            (i, t), value = change.pop("table_entry")
            table[i, t] = value
        table = table[:change.pop("table_rows", len(table))]
        kwargs.update(page_table=table, k_lens=x["k_lens"])
    if isinstance(change.get("cu_seqlens_k"), str):  # "keep": the packed offsets too
        change["cu_seqlens_k"] = x["cu_k"]
    kwargs["cu_seqlens_q"] = x["cu_q"]
    kwargs.update(change)
    return (q, k, v), kwargs


@pytest.mark.parametrize("case", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_inputs_are_named_and_nothing_is_written(rng, cpu_plan, case):
    _, change, message = case
    x = bad_case_inputs(rng)
    (q, k, v), kwargs = bad_call_args(x, change)
    sentinel = np.full(x["q"].shape, 7, np.uint16)
    out = sentinel.copy()
    with pytest.raises(Error, match=re.escape(message)) as error:
        flashprefill.prefill_varlen(q, k, v, out=out, block_size=B, dtype="bf16", **kwargs)
    assert error.value.status_name == "invalid argument"
    np.testing.assert_array_equal(out, sentinel)
    # The plan's entry points check the same way; with both maxima given the
    # package reads no length and the library's checks name them alike.
    variants = [{}]
    if "max_seqlen_q" not in kwargs and "max_seqlen_k" not in kwargs:
        variants.append(dict(max_seqlen_q=40, max_seqlen_k=120))
    for maxima in variants:
        lse = np.full((HQ, len(x["q"])), 7, np.float32)
        out = sentinel.copy()
        with pytest.raises(Error, match=re.escape(message)):
            cpu_plan.prefill_varlen(q, k, v, out=out, lse=lse, **kwargs, **maxima)
        np.testing.assert_array_equal(out, sentinel)
        assert (lse == 7).all()


def test_read_only_outputs_are_refused_and_left_alone(rng, cpu_plan):
    x = bad_case_inputs(rng)
    args = (x["q"], x["k"], x["v"], x["cu_q"], x["cu_k"])
    rows = len(x["q"]) // B + 2
    buffers = {
        "out": np.full(x["q"].shape, 7, np.uint16),
        "lse": np.full((HQ, len(x["q"])), 7, np.float32),
        "workspace": np.full(cpu_plan.varlen_workspace_bytes(2, 70, 40, 100), 7, np.uint8),
        "kept_counter": np.full(1, 7, np.int64),
    }
    for name, buffer in buffers.items():
        buffer.flags.writeable = False
        with pytest.raises(Error, match=re.escape(f"{name}: expected a writable array, got a "
                                                  "read-only one")):
            cpu_plan.prefill_varlen(*args, **{name: buffer})
        assert (buffer == 7).all()
    masks = (np.full((rows, HQ), 7, np.int32), np.full((rows, HQ, 7), 7, np.int32))
    for i, name in enumerate(("mask.counts", "mask.ids")):
        mask = [m.copy() for m in masks]
        mask[i].flags.writeable = False
        with pytest.raises(Error, match=re.escape(f"{name}: expected a writable array")):
            cpu_plan.select_varlen(*args[:2], *args[3:], mask=tuple(mask))
        assert (mask[i] == 7).all()


def test_plan_mismatches_are_named(rng, cpu_plan):
    x = bad_case_inputs(rng)
    args = (x["q"], x["k"], x["v"], x["cu_q"], x["cu_k"])
    with pytest.raises(Error, match=re.escape("q.dtype: expected bf16, got float16")):
        cpu_plan.prefill_varlen(*(a.view(np.float16) if a.dtype == np.uint16 else a for a in args))
    with pytest.raises(Error, match=re.escape("q.shape[1] (heads): expected 4 (the plan's), got 2")):
        cpu_plan.prefill_varlen(x["q"][:, :2], x["k"][:, :1], x["v"][:, :1], *args[3:])
    with pytest.raises(Error, match=re.escape("max_seqlen_k")):
        cpu_plan.prefill_varlen(*args, max_seqlen_q=40, max_seqlen_k=1024)  # plan: 512
    with pytest.raises(Error, match=re.escape("mask.ids: expected shape (6, 4, 7), got (6, 4, 8)")):
        rows = 70 // B + 2
        cpu_plan.attend_varlen(*args, mask=(np.zeros((rows, HQ), np.int32),
                                            np.zeros((rows, HQ, 8), np.int32)))
    with pytest.raises(Error, match=re.escape("mask: expected a flashprefill.VarlenMask or a "
                                              "(counts, ids) pair, got NoneType")):
        cpu_plan.attend_varlen(*args, mask=None)


def test_page_size_must_be_a_power_of_two(rng, cpu_plan):
    x = bad_case_inputs(rng)
    kp = x["kp"].reshape(-1, 48, HKV, D)[:, :48]  # 4 pages of 48
    table = np.array([[0, 1, 2], [3, 0, 0]], np.int32)
    out = np.full(x["q"].shape, 7, np.uint16)
    with pytest.raises(Error, match=r"page_size.*expected a power of two in \[1, 256\], got 48"):
        cpu_plan.prefill_varlen(x["q"], kp, kp, x["cu_q"], page_table=table,
                                k_lens=i32(100, 70), out=out)
    assert (out == 7).all()


# ---------------------------------------------------------------------------
# torch CPU tensors and the custom op (skip without torch)
# ---------------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip(
        "torch", reason="torch is not installed: the custom-op and torch.compile tests need it")


def as_torch(torch, x):
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.view(torch.bfloat16) if x.dtype == np.uint16 else t


def to_numpy(torch, t):
    return t.view(torch.int16).numpy().view(np.uint16) if t.dtype == torch.bfloat16 else t.numpy()


def test_torch_cpu_equals_numpy_bitwise(rng, torch):
    seqs = sequences(rng, BATCH)
    q, k, v, cu_q, cu_k = packed(seqs)
    kp, vp, table, k_lens = paged(rng, seqs, 16)
    flags = np.array([1, 0, 1, 0, 1], np.int32)
    want, want_lse = flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, apply_last_n=flags,
                                                 block_size=B, dtype="bf16", return_lse=True)
    t = {name: as_torch(torch, a) for name, a in
         dict(q=q, k=k, v=v, cu_q=cu_q, cu_k=cu_k, kp=kp, vp=vp, table=table, k_lens=k_lens,
              flags=flags).items()}
    out, lse = flashprefill.prefill_varlen(t["q"], t["k"], t["v"], t["cu_q"], t["cu_k"],
                                           apply_last_n=t["flags"], block_size=B,
                                           return_lse=True)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.bfloat16 and out.shape == q.shape
    np.testing.assert_array_equal(to_numpy(torch, out), want)
    np.testing.assert_array_equal(lse.numpy(), want_lse)
    out = flashprefill.prefill_varlen(t["q"], t["kp"], t["vp"], t["cu_q"], page_table=t["table"],
                                      k_lens=t["k_lens"], apply_last_n=t["flags"], block_size=B)
    np.testing.assert_array_equal(to_numpy(torch, out), want)
    # Through the op (what torch.compile sees), and its out= variant.
    op, op_lse = torch.ops.flashprefill.prefill_varlen(
        t["q"], t["k"], t["v"], t["cu_q"], t["cu_k"], None, None, t["flags"], None, None,
        None, None, None, None, None, None, B, None, True)
    assert torch.equal(op, out) and torch.equal(op_lse, lse)
    buffer = torch.zeros_like(t["q"])
    torch.ops.flashprefill.prefill_varlen_out(
        t["q"], t["k"], t["v"], t["cu_q"], t["cu_k"], None, None, t["flags"], buffer, None, None,
        256, 512, None, None, None, None, None, None, B, None)
    assert torch.equal(buffer, out)
    m = flashprefill.mask_varlen(t["q"], t["k"], t["cu_q"], t["cu_k"], block_size=B)
    want_m = flashprefill.mask_varlen(q, k, cu_q, cu_k, block_size=B, dtype="bf16")
    for i in range(len(BATCH)):
        np.testing.assert_array_equal(m.sequence(i).numpy(), want_m.sequence(i))


def test_torch_op_fake_implementation(rng, torch):
    from torch._subclasses.fake_tensor import FakeTensorMode

    q, k, v, cu_q, cu_k = packed(sequences(rng, [(40, 100), (30, 70)]))
    with FakeTensorMode() as mode:
        t = [mode.from_tensor(as_torch(torch, a)) for a in (q, k, v, cu_q, cu_k)]
        out, lse = torch.ops.flashprefill.prefill_varlen(
            *t, None, None, None, 40, 100, None, None, None, None, None, None, B, None, True)
        assert out.shape == (70, HQ, D) and out.dtype == torch.bfloat16
        assert lse.shape == (HQ, 70) and lse.dtype == torch.float32
        _, empty_lse = torch.ops.flashprefill.prefill_varlen(
            *t, None, None, None, 40, 100, None, None, None, None, None, None, B, None, False)
        assert empty_lse.shape == (0,)


def test_torch_opcheck_and_compile(rng, torch):
    from torch._dynamo.testing import CompileCounterWithBackend
    from torch.library import opcheck

    q, k, v, cu_q, cu_k = (as_torch(torch, a) for a in
                           packed(sequences(rng, [(40, 100), (30, 70)])))
    opcheck(torch.ops.flashprefill.prefill_varlen.default,
            (q, k, v, cu_q, cu_k, None, None, None, 40, 100, 0.2, None, None, None, None, None,
             B, None, True))
    out, lse = torch.empty_like(q), torch.empty(HQ, 70)
    opcheck(torch.ops.flashprefill.prefill_varlen_out.default,
            (q, k, v, cu_q, cu_k, None, None, None, out, lse, None, 40, 100, None, None, None,
             None, None, None, B, None))

    def attention(q, k, v, cu_q, cu_k):
        o, l = flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, max_seqlen_q=40,
                                           max_seqlen_k=100, block_size=B, alpha=0.2,
                                           return_lse=True)
        return o.float() * 2, l

    torch._dynamo.reset()
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(attention, backend=counter, fullgraph=True)
    got, got_lse = compiled(q, k, v, cu_q, cu_k)
    want, want_lse = attention(q, k, v, cu_q, cu_k)
    assert torch.equal(got, want) and torch.equal(got_lse, want_lse)
    assert counter.frame_count == 1


def test_torch_errors_through_the_op(rng, torch):
    q, k, v, cu_q, cu_k = (as_torch(torch, a) for a in
                           packed(sequences(rng, [(40, 100), (30, 70)])))
    with pytest.raises(Error, match=re.escape("cu_seqlens_q.dtype: expected torch.int32, got torch.int64")):
        flashprefill.prefill_varlen(q, k, v, cu_q.long(), cu_k, block_size=B)
    with pytest.raises(Error, match=r"cu_seqlens_k: expected a torch.Tensor like q, got ndarray"):
        flashprefill.prefill_varlen(q, k, v, cu_q, cu_k.numpy(), block_size=B)
    with pytest.raises(Error, match=re.escape("q: expected a 3-d tensor [total_q, h_q, d]")):
        flashprefill.prefill_varlen(q[None], k, v, cu_q, cu_k, block_size=B)


# ---------------------------------------------------------------------------
# CUDA (skip without a GPU). Varlen runs on the GPU now: an 'unsupported'
# status there is a failure, never a skip.
# ---------------------------------------------------------------------------


@pytest.fixture
def cuda(torch):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")
    return torch


@pytest.mark.parametrize("layout", ["packed", "paged16", "paged1"])
def test_cuda_equals_cpu_reference(cuda, layout):
    torch = cuda
    rng = np.random.default_rng(5)
    lengths = [(300, 1000), (128, 128), (77, 333), (0, 64)]
    seqs = sequences(rng, lengths, hq=8, hkv=2, d=128, block=128)
    q, k, v, cu_q, cu_k = packed(seqs)
    flags = np.array([1, 0, 1, 1], np.int32)

    def gpu(a):
        return as_torch(torch, a).cuda()

    kwargs = dict(alpha=0.1, return_lse=True)
    if layout == "packed":
        extra_cpu = dict(cu_seqlens_k=cu_k)
        kk, vv = k, v
    else:
        kk, vv, table, k_lens = paged(rng, seqs, int(layout[5:]), "bf16")
        extra_cpu = dict(page_table=table, k_lens=k_lens)
    extra = {name: gpu(a) for name, a in extra_cpu.items()}
    # The rule, not the short-prompt fall-back: at max_seqlen_k 1000 the
    # functional call (AUTO) runs dense on the GPU while mask_varlen follows
    # the rule, so compare through a plan with dense_below_tokens=0.
    gpu_plan = flashprefill.plan(head_dim=128, num_q_heads=8, num_kv_heads=2,
                                 max_seq_len=1000, max_batch=len(seqs))
    out, lse = gpu_plan.prefill_varlen(
        gpu(q), gpu(kk), gpu(vv), gpu(cu_q), apply_last_n=gpu(flags), max_seqlen_q=300,
        max_seqlen_k=1000, dense_below_tokens=0, **extra, **kwargs)
    m = flashprefill.mask_varlen(gpu(q), gpu(kk), gpu(cu_q), apply_last_n=gpu(flags),
                                 max_seqlen_q=300, max_seqlen_k=1000, alpha=0.1, **extra)
    cpu_m = flashprefill.mask_varlen(q, kk, cu_q, apply_last_n=flags, alpha=0.1, dtype="bf16",
                                     **extra_cpu)
    for i, (qi, ki, vi) in enumerate(seqs):
        got = m.sequence(i).cpu().numpy()
        differ = got != cpu_m.sequence(i)
        # A q_len 0 sequence has an empty mask (no blocks to compare).
        assert differ.size == 0 or differ.mean() < 0.01, \
            f"sequence {i}: {differ.sum()} blocks differ from the CPU"
        if len(qi) == 0:
            continue
        qf, kf, vf = (ref.to_float(x, "bf16") for x in (qi, ki, vi))
        want, want_lse = ref.masked_attention_prefix(qf, kf, vf, got, 128, 1 / np.sqrt(128))
        got_out = ref.to_float(to_numpy(torch, out[rows_of(cu_q, i)].cpu()), "bf16")
        assert ref.relative_l2(got_out, want) < 8e-3
        np.testing.assert_allclose(lse[:, rows_of(cu_q, i)].cpu().numpy(), want_lse, atol=1e-3)


def test_cuda_graph_replay_with_fixed_maxima(cuda):
    torch = cuda
    rng = np.random.default_rng(6)
    lengths = [(256, 768), (100, 100)]
    seqs = sequences(rng, lengths, hq=8, hkv=2, d=128, block=128)
    q, k, v, cu_q, cu_k = (as_torch(torch, a).cuda() for a in packed(seqs))
    maxima = dict(max_seqlen_q=512, max_seqlen_k=1024)
    want = flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, **maxima)
    out = torch.empty_like(q)
    ws = torch.empty(flashprefill.workspace_size_varlen(q, k, cu_q, cu_k, **maxima),
                     dtype=torch.uint8, device="cuda")
    flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, out=out, workspace=ws, **maxima)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        flashprefill.prefill_varlen(q, k, v, cu_q, cu_k, out=out, workspace=ws, **maxima)
    out.zero_()
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, want)


def test_cuda_pooled_keys(cuda):
    """fp_pool_keys_varlen on the GPU: the CPU reference's block means (an
    fp32 sum in another order may round differently: at most one bf16 ulp),
    paged equal to packed; selection with the GPU's pooled keys gives the
    mask of pooling K on the GPU, bit for bit."""
    torch = cuda
    rng = np.random.default_rng(8)
    lengths = [(300, 1000), (128, 128), (77, 333)]
    seqs = sequences(rng, lengths, hq=8, hkv=2, d=128, block=128)
    q, k, v, cu_q, cu_k = packed(seqs)
    kp, vp, table, k_lens = paged(rng, seqs, 16)
    gpu_plan = flashprefill.plan(head_dim=128, num_q_heads=8, num_kv_heads=2,
                                 max_seq_len=1024, max_batch=len(seqs))
    cpu_plan = flashprefill.plan(head_dim=128, num_q_heads=8, num_kv_heads=2,
                                 max_seq_len=1024, max_batch=len(seqs), device="cpu")
    maxima = dict(max_seqlen_q=300, max_seqlen_k=1024)
    g = {name: as_torch(torch, a).cuda() for name, a in
         dict(q=q, k=k, cu_q=cu_q, cu_k=cu_k, kp=kp, table=table, k_lens=k_lens).items()}
    pooled = gpu_plan.pool_keys_varlen(g["q"], g["k"], g["cu_q"], g["cu_k"], **maxima)
    paged_pooled = gpu_plan.pool_keys_varlen(g["q"], g["kp"], g["cu_q"], page_table=g["table"],
                                             k_lens=g["k_lens"], **maxima)
    want = cpu_plan.pool_keys_varlen(q, k, cu_q, cu_k, out=np.zeros((3, 2, 8, 128), np.uint16),
                                     **maxima)
    for i, (_, ki, _) in enumerate(seqs):
        used = -(-len(ki) // 128)
        got = to_numpy(torch, pooled[i, :, :used].cpu()).astype(np.int32)
        assert np.abs(got - want[i, :, :used].astype(np.int32)).max() <= 1
        assert torch.equal(paged_pooled[i, :, :used], pooled[i, :, :used])
    rule = dict(alpha=0.2, **maxima)
    own = gpu_plan.select_varlen(g["q"], g["k"], g["cu_q"], g["cu_k"], **rule)
    given = gpu_plan.select_varlen(g["q"], g["k"], g["cu_q"], g["cu_k"], pooled_k=pooled, **rule)
    for i in range(len(seqs)):
        assert torch.equal(own.sequence(i), given.sequence(i))


def test_pooled_queries_prefix_zero_is_prefill_bitwise(rng):
    """pooled_queries through the functional varlen API: with prefix 0 the
    mask and output are prefill(pooled_queries=True)'s, and they differ from
    the full-query estimator's (the option reaches the plan)."""
    s = 300
    q, k, v = ref.structured_qkv(rng, 2, s, HQ, HKV, D, "bf16")
    kwargs = dict(block_size=B, dtype="bf16", alpha=0.3, sink=1, window=2, last_n=1)
    want, want_lse = flashprefill.prefill(q, k, v, pooled_queries=True, return_lse=True, **kwargs)
    want_mask = flashprefill.mask(q, k, pooled_queries=True, **kwargs)
    cu = np.array([0, s, 2 * s], np.int32)
    flat = [x.reshape(-1, *x.shape[2:]) for x in (q, k, v)]
    out, lse = flashprefill.prefill_varlen(*flat, cu, cu, pooled_queries=True, return_lse=True,
                                           **kwargs)
    np.testing.assert_array_equal(out.reshape(q.shape), want)
    for i in range(2):
        np.testing.assert_array_equal(lse[:, i * s:(i + 1) * s], want_lse[i])
    m = flashprefill.mask_varlen(flat[0], flat[1], cu, cu, pooled_queries=True, **kwargs)
    full = flashprefill.mask_varlen(flat[0], flat[1], cu, cu, **kwargs)
    dense = want_mask.to_dense()
    for i in range(2):
        np.testing.assert_array_equal(m.sequence(i), dense[i])
    assert any((m.sequence(i) != full.sequence(i)).any() for i in range(2))
    assert flashprefill.workspace_size_varlen(flat[0], flat[1], cu, cu, pooled_queries=True,
                                              block_size=B, dtype="bf16") > \
        flashprefill.workspace_size_varlen(flat[0], flat[1], cu, cu, block_size=B, dtype="bf16")
    with pytest.raises(Error, match=r"pooled_queries: expected True or False, got 1"):
        flashprefill.prefill_varlen(*flat, cu, cu, pooled_queries=1, **kwargs)
