"""Mean correction (docs/semantics.md section 3) through the package: the
option reaches the library on every entry point, its result is the
reference's (fp64 statement of the formulas in reference.py), varlen with
prefix 0 equals prefill with it, torch CPU equals numpy bit for bit, and a
GPU plan refuses it by name (no kernel computes it yet)."""

from __future__ import annotations

import numpy as np
import pytest

import flashprefill
import reference as ref

B, HQ, HKV, D = 32, 4, 2, 32
RULE = dict(alpha=0.3, sink=1, window=1, last_n=0, block_size=B, dtype="bf16")
Error = flashprefill.FlashPrefillError


def mean_corrected_truth(q, k, v, dense_mask, block, scale):
    """fp64 statement of section 3 for one batch: q [s, h_q, d], k / v
    [s, h_kv, d] as floats, dense_mask [h_q, nb, nb] the kept blocks."""
    s, hq, d = q.shape
    g = hq // k.shape[1]
    nb = -(-s // block)
    kbar = ref.to_float(ref.encode(ref.block_means(k[None], block)[0], "bf16"), "bf16")
    vbar = ref.to_float(ref.encode(ref.block_means(v[None], block)[0], "bf16"), "bf16")
    out = np.zeros((s, hq, d))
    lse = np.zeros((hq, s))
    for h in range(hq):
        hk = h // g
        for r in range(s):
            i = r // block
            logits, weights, values = [], [], []
            for j in range(nb):
                keys = range(j * block, min((j + 1) * block, s))
                if dense_mask[h, i, j]:
                    for c in keys:
                        if c <= r:
                            logits.append(q[r, h] @ k[c, hk] * scale)
                            weights.append(1.0)
                            values.append(v[c, hk])
                elif keys[-1] <= r:
                    logits.append(q[r, h] @ kbar[j, hk] * scale)
                    weights.append(float(len(keys)))
                    values.append(vbar[j, hk])
            logits = np.array(logits)
            m = logits.max()
            p = np.array(weights) * np.exp(logits - m)
            out[r, h] = (p[:, None] * np.array(values)).sum(0) / p.sum()
            lse[h, r] = m + np.log(p.sum())
    return out, lse


def test_prefill_matches_the_float64_formulas(rng):
    q, k, v = ref.structured_qkv(rng, 1, 400, HQ, HKV, D, "bf16", block=B)
    out, lse = flashprefill.prefill(q, k, v, mean_correction=True, return_lse=True, **RULE)
    plain = flashprefill.prefill(q, k, v, **RULE)
    mask = flashprefill.mask(q, k, **RULE).to_dense()[0]
    assert mask.mean() < 0.9, "the case must prune"
    qf, kf, vf = (ref.to_float(x[0], "bf16") for x in (q, k, v))
    want, want_lse = mean_corrected_truth(qf, kf, vf, mask, B, 1 / np.sqrt(D))
    got = ref.to_float(out[0], "bf16")
    assert ref.relative_l2(got, want) < 5e-3
    np.testing.assert_allclose(lse[0], want_lse, atol=1e-4)
    assert ref.relative_l2(ref.to_float(plain[0], "bf16"), want) > 1e-3  # the option acts


def test_varlen_prefix_zero_and_plan_entry_points(rng, cpu_plan):
    q, k, v = ref.structured_qkv(rng, 1, 300, HQ, HKV, D, "bf16", block=16)
    kwargs = dict(alpha=0.3, sink=1, window=1, last_n=0)
    want, want_lse = cpu_plan.prefill(q, k, v, mean_correction=True, return_lse=True, **kwargs)
    cu = np.array([0, 300], np.int32)
    out, lse = cpu_plan.prefill_varlen(q[0], k[0], v[0], cu, cu, mean_correction=True,
                                       return_lse=True, **kwargs)
    np.testing.assert_array_equal(out, want[0])
    np.testing.assert_array_equal(lse, want_lse[0])
    m = cpu_plan.select(q, k, **kwargs)
    np.testing.assert_array_equal(cpu_plan.attend(q, k, v, m, mean_correction=True), want)
    vm = cpu_plan.select_varlen(q[0], k[0], cu, cu, **kwargs)
    np.testing.assert_array_equal(
        cpu_plan.attend_varlen(q[0], k[0], v[0], cu, cu, mask=vm, mean_correction=True), out)
    assert not np.array_equal(cpu_plan.prefill(q, k, v, **kwargs), want)
    with pytest.raises(Error, match=r"mean_correction: expected True or False, got 1"):
        cpu_plan.prefill(q, k, v, mean_correction=1)


@pytest.fixture
def cpu_plan():
    p = flashprefill.plan(dtype="bf16", head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                          block_size=16, max_seq_len=512, device="cpu")
    yield p
    p.close()


def test_torch_cpu_equals_numpy(rng):
    torch = pytest.importorskip("torch")
    q, k, v = ref.structured_qkv(rng, 1, 256, HQ, HKV, D, "bf16", block=B)
    want = flashprefill.prefill(q, k, v, mean_correction=True, **RULE)
    rule = {key: val for key, val in RULE.items() if key != "dtype"}
    t = [torch.from_numpy(x).view(torch.bfloat16) for x in (q, k, v)]
    got = flashprefill.prefill(*t, mean_correction=True, **rule)
    np.testing.assert_array_equal(got.view(torch.int16).numpy().view(np.uint16), want)
    compiled = torch.compile(lambda a, b, c: flashprefill.prefill(a, b, c, mean_correction=True,
                                                                  **rule), fullgraph=True)
    np.testing.assert_array_equal(compiled(*t).view(torch.int16).numpy().view(np.uint16), want)


def test_cuda_refuses_by_name():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")
    q = torch.randn(1, 1024, 8, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 1024, 2, 128, device="cuda", dtype=torch.bfloat16)
    with pytest.raises(Error, match=r"params.mean_correction: mean correction is implemented "
                                    r"on CPU plans only"):
        flashprefill.prefill(q, k, k, mean_correction=True)
