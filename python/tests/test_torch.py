"""The package on torch CPU tensors: the custom ops, torch.compile without
graph breaks, layouts and errors through the op. Skips where torch is not
installed (CI installs numpy and pytest only: torch's PyPI wheels pull
gigabytes of CUDA libraries)."""

from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="torch is not installed: the custom-op and torch.compile tests need it"
)

import flashprefill  # noqa: E402
import reference as ref  # noqa: E402

B, SEQ, HQ, HKV, D = 16, 300, 4, 2, 32


def as_torch(x: np.ndarray, dtype: str) -> "torch.Tensor":
    t = torch.from_numpy(np.ascontiguousarray(x))
    return t.view(torch.bfloat16) if dtype == "bf16" else t


def to_numpy(t: "torch.Tensor") -> np.ndarray:
    return (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().view(
        np.uint16 if t.dtype == torch.bfloat16 else t.numpy().dtype)


def make(rng, dtype="bf16", b=2, s=SEQ):
    arrays = ref.structured_qkv(rng, b, s, HQ, HKV, D, dtype)
    return arrays, tuple(as_torch(a, dtype) for a in arrays)


def test_ops_are_registered():
    assert hasattr(torch.ops.flashprefill, "prefill")
    assert hasattr(torch.ops.flashprefill, "prefill_out")


@pytest.mark.parametrize("dtype", ["bf16", "f16"])
def test_torch_cpu_equals_numpy_bitwise(rng, dtype):
    (q, k, v), (tq, tk, tv) = make(rng, dtype)
    want, want_lse = flashprefill.prefill(q, k, v, block_size=B, dtype=dtype, return_lse=True)
    out, lse = flashprefill.prefill(tq, tk, tv, block_size=B, return_lse=True)
    assert isinstance(out, torch.Tensor) and out.dtype == tq.dtype and out.shape == tq.shape
    np.testing.assert_array_equal(to_numpy(out), want)
    np.testing.assert_array_equal(lse.numpy(), want_lse)


def test_torch_cpu_against_float64(rng):
    (q, k, v), (tq, tk, tv) = make(rng, "f16")
    out = flashprefill.prefill(tq, tk, tv, block_size=B, alpha=0.3)
    m = flashprefill.mask(tq, tk, block_size=B, alpha=0.3)
    assert isinstance(m.counts, torch.Tensor) and m.counts.dtype == torch.int32
    dense = m.to_dense()
    np.testing.assert_array_equal(dense.numpy(), flashprefill.Mask(m.counts.numpy(), m.ids.numpy()).to_dense())
    qf, kf, vf = (x.astype(np.float64) for x in (q, k, v))
    want, _ = ref.masked_attention(qf, kf, vf, dense.numpy(), B, 1 / np.sqrt(D))
    assert ref.relative_l2(out.double().numpy(), want) < 1e-3


def test_bhsd_views_without_copies(rng):
    _, (tq, tk, tv) = make(rng)
    want = flashprefill.prefill(tq, tk, tv, block_size=B)
    # Non-contiguous [b, h, s, d] views of the same memory.
    out = flashprefill.prefill(tq.transpose(1, 2), tk.transpose(1, 2), tv.transpose(1, 2),
                               block_size=B, layout="bhsd")
    assert out.shape == (2, HQ, SEQ, D)
    assert torch.equal(out.transpose(1, 2), want)


def test_out_and_lse(rng):
    _, (tq, tk, tv) = make(rng)
    want, want_lse = flashprefill.prefill(tq, tk, tv, block_size=B, return_lse=True)
    out = torch.zeros_like(tq)
    ws = torch.empty(flashprefill.workspace_size(tq, tk, block_size=B), dtype=torch.uint8)
    result, lse = flashprefill.prefill(tq, tk, tv, block_size=B, out=out, workspace=ws,
                                       return_lse=True)
    assert result is out and torch.equal(out, want) and torch.equal(lse, want_lse)


def test_opcheck():
    from torch.library import opcheck

    rng = np.random.default_rng(0)
    _, (tq, tk, tv) = make(rng, s=70)
    opcheck(torch.ops.flashprefill.prefill.default,
            (tq, tk, tv, 0.2, None, None, None, None, None, B, None, False, True, "bshd"))
    out, lse = torch.empty_like(tq), torch.empty(2, HQ, 70)
    ws = torch.empty(flashprefill.workspace_size(tq, tk, block_size=B), dtype=torch.uint8)
    opcheck(torch.ops.flashprefill.prefill_out.default,
            (tq, tk, tv, out, lse, ws, None, None, None, None, None, None, B, None, False, "bshd"))


def compile_counted(fn, **kwargs):
    from torch._dynamo.testing import CompileCounterWithBackend

    counter = CompileCounterWithBackend("aot_eager")
    return torch.compile(fn, backend=counter, fullgraph=True, **kwargs), counter


def test_compile_fullgraph_functional(rng):
    torch._dynamo.reset()
    _, (tq, tk, tv) = make(rng)

    def attention(q, k, v):
        out, lse = flashprefill.prefill(q, k, v, block_size=B, alpha=0.2, return_lse=True)
        return out.float() * 2, lse

    compiled, counter = compile_counted(attention)
    got, lse = compiled(tq, tk, tv)
    want, want_lse = attention(tq, tk, tv)
    assert torch.equal(got, want) and torch.equal(lse, want_lse)
    assert counter.frame_count == 1  # one graph: no break around the op


def test_compile_fullgraph_out_variant(rng):
    torch._dynamo.reset()
    _, (tq, tk, tv) = make(rng)

    def attention(q, k, v, out):
        flashprefill.prefill(q, k, v, block_size=B, out=out, layout="bshd")
        return out + 0

    compiled, counter = compile_counted(attention)
    out = torch.zeros_like(tq)
    got = compiled(tq, tk, tv, out)
    want = flashprefill.prefill(tq, tk, tv, block_size=B)
    assert torch.equal(out, want) and torch.equal(got, want)
    assert counter.frame_count == 1


def test_compile_dynamic_lengths(rng):
    torch._dynamo.reset()

    def attention(q, k, v):
        return flashprefill.prefill(q, k, v, block_size=B)

    compiled, counter = compile_counted(attention, dynamic=True)
    for s in (64, 100, 300):
        _, (tq, tk, tv) = make(rng, b=1, s=s)
        assert torch.equal(compiled(tq, tk, tv), attention(tq, tk, tv))
    assert counter.frame_count == 1


def test_errors_through_the_op(rng):
    _, (tq, tk, tv) = make(rng, b=1)
    with pytest.raises(flashprefill.FlashPrefillError, match=re.escape("params.alpha: expected a value in [0, 1]")):
        flashprefill.prefill(tq, tk, tv, block_size=B, alpha=1.5)
    with pytest.raises(flashprefill.FlashPrefillError, match=re.escape("q.shape[2] (heads): expected a multiple of k.shape[2] (3)")):
        flashprefill.prefill(tq, torch.cat([tk, tk[:, :, :1]], 2), tv, block_size=B)
    with pytest.raises(flashprefill.FlashPrefillError, match=r"q.dtype: expected bfloat16 or float16"):
        flashprefill.prefill(tq.float(), tk, tv, block_size=B)
    with pytest.raises(flashprefill.FlashPrefillError, match=r"k: expected a torch.Tensor like q, got ndarray"):
        flashprefill.prefill(tq, np.zeros(3), tv, block_size=B)
    with pytest.raises(flashprefill.FlashPrefillError, match=re.escape("q.shape[1] (heads): expected 4, got 2")):
        p = flashprefill.plan(dtype=torch.bfloat16, head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                              block_size=B, max_seq_len=SEQ, device="cpu")
        p.prefill(tq[:, :, :2].transpose(1, 2), tk.transpose(1, 2), tv.transpose(1, 2), layout="bhsd")


def test_plan_with_torch_cpu_tensors(rng):
    _, (tq, tk, tv) = make(rng)
    p = flashprefill.plan(dtype=torch.bfloat16, head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                          block_size=B, max_seq_len=SEQ, max_batch=2, device="cpu")
    m = p.select(tq, tk, alpha=0.2)
    counter = torch.zeros(1, dtype=torch.int64)
    p.select(tq, tk, alpha=0.2, kept_counter=counter)
    assert int(counter) == int(m.counts.sum())
    out = p.attend(tq, tk, tv, m)
    assert torch.equal(out, p.prefill(tq, tk, tv, alpha=0.2))
    with pytest.raises(flashprefill.FlashPrefillError, match=r"k: expected a torch.Tensor like q"):
        p.prefill(tq, to_numpy(tk), tv)


def test_eager_shortcut_equals_the_op(rng):
    """Plain eager calls skip the dispatcher; the op gives the same bits."""
    _, (tq, tk, tv) = make(rng)
    eager, eager_lse = flashprefill.prefill(tq, tk, tv, block_size=B, alpha=0.2, return_lse=True)
    op, op_lse = torch.ops.flashprefill.prefill(tq, tk, tv, 0.2, None, None, None, None, None, B,
                                                None, False, True, "bshd")
    assert torch.equal(eager, op) and torch.equal(eager_lse, op_lse)


def test_no_backward(rng):
    """Inference only: inputs that need a gradient go through the op, whose
    backward says there is no formula (instead of silently cutting the graph)."""
    _, (tq, tk, tv) = make(rng, b=1)
    out = flashprefill.prefill(tq.clone().requires_grad_(), tk, tv, block_size=B)
    assert out.requires_grad
    with pytest.raises(RuntimeError, match="no autograd formula"):
        out.float().sum().backward()
