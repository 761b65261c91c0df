"""The package on CUDA tensors: dense equals SDPA, the GPU mask equals the
CPU reference's (up to blocks at the threshold), results against float64,
CUDA-graph capture and replay, torch.compile with the custom op, layouts,
streams and device errors. Skips without torch or without a GPU."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed: the CUDA tests run torch CUDA tensors"
)
if not torch.cuda.is_available():
    pytest.skip("no CUDA device (torch.cuda.is_available() is False)", allow_module_level=True)

import flashprefill  # noqa: E402
import reference as ref  # noqa: E402

DEV = "cuda"
Error = flashprefill.FlashPrefillError


def randn(*shape, dtype=torch.bfloat16, seed=0):
    g = torch.Generator(device=DEV).manual_seed(seed)
    return torch.randn(*shape, generator=g, device=DEV, dtype=torch.float32).to(dtype)


def qkv(b, s, hq, hkv, d, dtype=torch.bfloat16, seed=0):
    return (randn(b, s, hq, d, dtype=dtype, seed=seed), randn(b, s, hkv, d, dtype=dtype, seed=seed + 1),
            randn(b, s, hkv, d, dtype=dtype, seed=seed + 2))


def sdpa_dense(q, k, v):
    """Causal attention by torch SDPA in fp32 ([b, s, h, d] in and out)."""
    g = q.shape[2] // k.shape[2]
    qt = q.transpose(1, 2).float()
    kt = k.transpose(1, 2).float().repeat_interleave(g, dim=1)
    vt = v.transpose(1, 2).float().repeat_interleave(g, dim=1)
    return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=True).transpose(1, 2)


def rel_l2(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.parametrize("dtype, d, s, hq, hkv", [
    (torch.bfloat16, 128, 1000, 8, 2),
    (torch.float16, 128, 777, 4, 4),
    (torch.bfloat16, 64, 2048, 8, 1),
])
def test_alpha_zero_equals_sdpa(dtype, d, s, hq, hkv):
    q, k, v = qkv(2, s, hq, hkv, d, dtype)
    out = flashprefill.prefill(q, k, v, alpha=0.0)
    assert out.dtype == dtype and out.shape == q.shape and out.device == q.device
    want = sdpa_dense(q, k, v)
    assert torch.isfinite(out).all()
    assert rel_l2(out, want) < (8e-3 if dtype == torch.bfloat16 else 2e-3)
    torch.testing.assert_close(out.float(), want, atol=3e-2, rtol=3e-2)


def test_lse_equals_float64_logsumexp():
    q, k, v = qkv(1, 700, 4, 2, 128)
    _, lse = flashprefill.prefill(q, k, v, alpha=0.0, return_lse=True)
    qd = q.double().transpose(1, 2)
    kd = k.double().transpose(1, 2).repeat_interleave(2, dim=1)
    logits = qd @ kd.transpose(-1, -2) / math.sqrt(128)
    causal = torch.ones(700, 700, dtype=torch.bool, device=DEV).tril()
    want = torch.logsumexp(logits.masked_fill(~causal, -math.inf), dim=-1)
    assert lse.shape == (1, 4, 700) and lse.dtype == torch.float32
    torch.testing.assert_close(lse.double(), want, atol=1e-4, rtol=1e-5)


def structured(dtype="bf16", b=1, s=2000, hq=8, hkv=2, d=128, seed=7):
    rng = np.random.default_rng(seed)
    arrays = ref.structured_qkv(rng, b, s, hq, hkv, d, dtype, block=128)
    cpu = [torch.from_numpy(a).view(torch.bfloat16) if dtype == "bf16" else torch.from_numpy(a)
           for a in arrays]
    return arrays, cpu, [t.to(DEV) for t in cpu]


@pytest.mark.parametrize("rule", [{}, {"alpha": 0.3, "min_budget": 2}, {"threshold": "min_max", "alpha": 0.5}])
def test_gpu_mask_equals_cpu_reference(rule):
    arrays, cpu, gpu = structured()
    got = flashprefill.mask(gpu[0], gpu[1], **rule)
    want = flashprefill.mask(cpu[0], cpu[1], **rule)
    assert got.counts.is_cuda and got.counts.dtype == torch.int32
    differ = (got.to_dense().cpu() != want.to_dense()).numpy()
    if differ.any():  # only blocks at the threshold may differ (rounding)
        qf, kf = (ref.to_float(a, "bf16") for a in arrays[:2])
        scores = ref.block_scores(qf, kf, 128, 1 / math.sqrt(128), dtype="bf16")
        full = dict(alpha=0.1, sink=2, window=4, last_n=2)
        full.update(rule)
        _, margin = ref.keep_rule(scores, **full)
        assert (margin[differ] < 1e-4).all(), f"{differ.sum()} blocks differ away from the threshold"
    assert 0.1 < want.density() < 0.95


def structured_plan(s=2000):
    """A GPU plan for :func:`structured`'s problem."""
    return flashprefill.plan(dtype=torch.bfloat16, head_dim=128, num_q_heads=8, num_kv_heads=2,
                             max_seq_len=s)


def test_gpu_prefill_against_float64_and_cpu_reference():
    """The rule's mask at any length: 2,000 tokens are below the cost
    model's break-even on the GPUs we ship densities for, where prefill
    would run dense by default (see the next test), so the fall-back is
    switched off (dense_below_tokens=0)."""
    arrays, cpu, gpu = structured()
    p = structured_plan()
    out, lse = p.prefill(*gpu, return_lse=True, dense_below_tokens=0)
    m = p.select(gpu[0], gpu[1])
    qf, kf, vf = (ref.to_float(a, "bf16") for a in arrays)
    want, want_lse = ref.masked_attention(qf, kf, vf, m.to_dense().cpu().numpy(), 128, 1 / math.sqrt(128))
    got = out.float().cpu().numpy()
    assert ref.relative_l2(got, want) < 8e-3
    np.testing.assert_allclose(lse.cpu().numpy(), want_lse, atol=1e-3, rtol=1e-4)
    cpu_out = flashprefill.prefill(*cpu)
    if torch.equal(m.counts.cpu(), flashprefill.mask(cpu[0], cpu[1]).counts):
        torch.testing.assert_close(out.cpu().float(), cpu_out.float(), atol=3e-2, rtol=3e-2)


def test_short_prompts_fall_back_to_dense_attention():
    """prefill runs dense attention (every causal block, i.e. alpha = 0, bit
    for bit) below dense_below_tokens: the plan's cost-model break-even by
    default (what flashprefill.prefill uses), or the caller's value; select
    and the mask always follow the rule."""
    arrays, cpu, gpu = structured()
    s = gpu[0].shape[1]
    p = structured_plan(s)
    dense = p.prefill(*gpu, alpha=0.0, dense_below_tokens=0)
    rule = p.prefill(*gpu, dense_below_tokens=0)
    assert not torch.equal(dense, rule), "the inputs should make a selective mask"
    assert torch.equal(p.prefill(*gpu, dense_below_tokens=s + 1), dense)
    assert torch.equal(p.prefill(*gpu, dense_below_tokens=s), rule)
    # The cost model: dense below the break-even (at most max_seq_len + 1;
    # 0 = never).
    breakeven = p.dense_below_tokens
    assert 0 <= breakeven <= s + 1
    assert torch.equal(p.prefill(*gpu), dense if s < breakeven else rule)
    assert torch.equal(p.prefill(*gpu, dense_below_tokens=-1), dense if s < breakeven else rule)
    assert flashprefill.mask(gpu[0], gpu[1]).density() < 0.95  # the mask is the rule's
    if s < breakeven:
        # The functional API's cached plan decides the same way at this length.
        assert torch.equal(flashprefill.prefill(*gpu), flashprefill.prefill(*gpu, alpha=0.0))


def test_cuda_graph_capture_and_replay():
    q, k, v = qkv(1, 1500, 8, 2, 128, seed=3)
    out = torch.empty_like(q)
    ws = torch.empty(flashprefill.workspace_size(q, k), dtype=torch.uint8, device=DEV)
    flashprefill.prefill(q, k, v, out=out, workspace=ws)  # warm-up: creates the plan
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        flashprefill.prefill(q, k, v, out=out, workspace=ws)
    q2, k2, v2 = qkv(1, 1500, 8, 2, 128, seed=11)
    q.copy_(q2), k.copy_(k2), v.copy_(v2)
    out.zero_()
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, flashprefill.prefill(q2, k2, v2))
    graph.replay()  # replays again, same result
    torch.cuda.synchronize()
    assert torch.equal(out, flashprefill.prefill(q2, k2, v2))


def test_cuda_graph_with_plan_select_attend():
    q, k, v = qkv(2, 1024, 8, 2, 128, seed=5)
    p = flashprefill.plan(dtype=torch.bfloat16, head_dim=128, num_q_heads=8, num_kv_heads=2,
                          max_seq_len=1024, max_batch=2)
    nb = p.num_blocks(1024)
    mask = flashprefill.Mask(torch.empty(2, 8, nb, dtype=torch.int32, device=DEV),
                             torch.empty(2, 8, nb, nb, dtype=torch.int32, device=DEV))
    ws = p.empty_workspace(2, 1024, select_only=True)
    out, lse = torch.empty_like(q), torch.empty(2, 8, 1024, device=DEV)
    counter = torch.zeros(1, dtype=torch.int64, device=DEV)
    p.select(q, k, mask=mask, workspace=ws, alpha=0.2)  # warm-up
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        p.select(q, k, mask=mask, workspace=ws, alpha=0.2, kept_counter=counter)
        p.attend(q, k, v, mask, out=out, lse=lse)
    graph.replay()
    torch.cuda.synchronize()
    # select + attend follow the rule at any length: so must the prefill
    # they are compared with (1,024 tokens are below the dense break-even).
    want, want_lse = p.prefill(q, k, v, alpha=0.2, return_lse=True, dense_below_tokens=0)
    assert torch.equal(out, want) and torch.equal(lse, want_lse)
    assert int(counter) == int(mask.counts.sum())


def test_torch_compile_inductor_fullgraph():
    torch._dynamo.reset()
    q, k, v = qkv(1, 1024, 8, 2, 128, seed=9)

    def block(q, k, v):
        return flashprefill.prefill(q, k, v, alpha=0.2).float().sum(dim=-1)

    compiled = torch.compile(block, fullgraph=True)
    torch.testing.assert_close(compiled(q, k, v), block(q, k, v))


def test_torch_compile_reduce_overhead():
    """inductor's CUDA graphs (cudagraph trees) around the functional op."""
    torch._dynamo.reset()
    q, k, v = qkv(1, 1024, 8, 2, 128, seed=13)

    def block(q, k, v):
        return flashprefill.prefill(q, k, v) * 2

    compiled = torch.compile(block, fullgraph=True, mode="reduce-overhead")
    want = block(q, k, v)
    for _ in range(3):  # warm-up, record, replay
        got = compiled(q, k, v)
    torch.testing.assert_close(got, want)


def test_bhsd_layout_on_gpu():
    q, k, v = qkv(2, 900, 8, 2, 64)
    want = flashprefill.prefill(q, k, v)
    out = flashprefill.prefill(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), layout="bhsd")
    assert out.shape == (2, 8, 900, 64)
    assert torch.equal(out.transpose(1, 2), want)
    # Contiguous [b, h, s, d] storage too.
    qh, kh, vh = (x.transpose(1, 2).contiguous() for x in (q, k, v))
    assert torch.equal(flashprefill.prefill(qh, kh, vh, layout="bhsd").transpose(1, 2), want)


def test_packed_qkv_on_gpu():
    b, s, hq, hkv, d = 1, 640, 8, 2, 128
    packed = randn(b, s, hq + 2 * hkv, d, seed=21)
    q, k, v = packed[:, :, :hq], packed[:, :, hq:hq + hkv], packed[:, :, hq + hkv:]
    assert torch.equal(flashprefill.prefill(q, k, v),
                       flashprefill.prefill(q.contiguous(), k.contiguous(), v.contiguous()))


def test_side_stream():
    q, k, v = qkv(1, 512, 8, 2, 128, seed=4)
    want = flashprefill.prefill(q, k, v)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out = flashprefill.prefill(q, k, v)
    stream.synchronize()
    assert torch.equal(out, want)


def test_device_errors():
    q, k, v = qkv(1, 256, 8, 2, 128)
    p = flashprefill.plan(dtype=torch.bfloat16, head_dim=128, num_q_heads=8, num_kv_heads=2,
                          max_seq_len=256)
    with pytest.raises(Error, match=re.escape("q.device: expected cuda:0 (the plan's device), got cpu")):
        p.prefill(q.cpu(), k.cpu(), v.cpu())
    with pytest.raises(Error, match=re.escape("k.device: expected cuda:0 (q's device), got cpu")):
        flashprefill.prefill(q, k.cpu(), v)
    flat = torch.empty(q.numel() + 8, dtype=q.dtype, device=DEV)
    misaligned = flat[1:1 + q.numel()].view(q.shape)
    with pytest.raises(Error, match=re.escape("q.data: expected a 16-byte aligned device pointer")):
        flashprefill.prefill(misaligned, k, v)
    with pytest.raises(Error, match=re.escape("params.alpha: expected a value in [0, 1]")):
        flashprefill.prefill(q, k, v, alpha=2.0)
