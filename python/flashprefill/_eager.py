"""The functional entry points (:func:`flashprefill.prefill` without the
torch op, :func:`mask`, :func:`workspace_size`): describe q and k, pick the
cached plan for them, run the plan's entry point."""

from __future__ import annotations

from typing import Tuple

from ._arrays import Arg, bshd, check_same_dtype, describe, device_name, empty, parse_dtype
from ._mask import Mask
from ._plan import cached_plan
from ._validate import check_layout, invalid


def problem(q, k, layout: str, dtype) -> Tuple[Arg, Arg, int, int, int, int, int]:
    """(q arg, k arg, batch, seq, h_q, h_kv, head_dim) of a functional call, with
    the checks that must come before a plan can be picked."""
    check_layout(layout)
    code = None if dtype is None else parse_dtype(dtype)
    qa = describe(q, "q", code)
    ka = describe(k, "k", qa.dtype)
    check_same_dtype(ka, qa)
    h_axis, s_axis = (2, 1) if layout == "bshd" else (1, 2)
    b, s, hq, d = qa.shape[0], qa.shape[s_axis], qa.shape[h_axis], qa.shape[3]
    hkv = ka.shape[h_axis]
    if hkv <= 0 or hq % hkv != 0:
        raise invalid(f"q.shape[{h_axis}] (heads): expected a multiple of k.shape[{h_axis}] "
                      f"({hkv}), got {hq}")
    if ka.device != qa.device:
        raise invalid(f"k.device: expected {device_name(qa.device)} (q's device), got "
                      f"{device_name(ka.device)}")
    return qa, ka, b, s, hq, hkv, d


def functional_plan(q, k, *, block_size, pooled_queries, layout, dtype):
    """(described q and k, the cached plan for them or None when empty)."""
    qa, ka, b, s, hq, hkv, d = problem(q, k, layout, dtype)
    if b == 0 or s == 0:
        return (qa, ka), None
    return (qa, ka), cached_plan(qa.dtype, d, hq, hkv, block_size, qa.device, pooled_queries,
                                 b, s)


def prefill_eager(q, k, v, *, alpha=None, sink=None, window=None, last_n=None, min_budget=None,
                  threshold=None, block_size=None, scale=None, pooled_queries=False,
                  return_lse=False, out=None, lse=None, workspace=None, layout="bshd",
                  dtype=None, stream=None):
    """:func:`flashprefill.prefill` without the torch custom op (numpy
    arrays, and the op's own implementation)."""
    pre, p = functional_plan(q, k, block_size=block_size, pooled_queries=pooled_queries,
                             layout=layout, dtype=dtype)
    qa = pre[0]
    if p is None:  # an empty batch or sequence: nothing to compute
        check_same_dtype(describe(v, "v", qa.dtype), qa)
        out = empty(qa, qa.shape, "same") if out is None else out
        if return_lse or lse is not None:
            (b, s, h, _), _ = bshd(qa, layout)
            lse = empty(qa, (b, h, s), "float32") if lse is None else lse
            return out, lse
        return out
    return p.prefill(q, k, v, alpha=alpha, sink=sink, window=window, last_n=last_n,
                     min_budget=min_budget, threshold=threshold, scale=scale, out=out, lse=lse,
                     return_lse=return_lse, workspace=workspace, layout=layout,
                     dtype=dtype, stream=stream, _pre=pre)


def workspace_size(q, k, *, block_size=None, pooled_queries=False, layout="bshd",
                   dtype=None) -> int:
    """Bytes of the workspace :func:`flashprefill.prefill` needs for these
    q / k (pass one to ``prefill(workspace=...)`` for CUDA-graph capture).
    Creates (compiles) the cached plan, so it doubles as a warm-up."""
    (qa, _), p = functional_plan(q, k, block_size=block_size, pooled_queries=pooled_queries,
                                 layout=layout, dtype=dtype)
    if p is None:
        return 0
    (b, s, _, _), _ = bshd(qa, layout)
    return p.workspace_bytes(b, s)


def mask(q, k, *, alpha=None, sink=None, window=None, last_n=None, min_budget=None,
         threshold=None, block_size=None, scale=None, pooled_queries=False, layout="bshd",
         dtype=None, stream=None) -> Mask:
    """The block mask :func:`flashprefill.prefill` would use for q / k, as a
    :class:`Mask` ``(counts, ids)`` next to q (torch tensors on q's device,
    or numpy arrays)."""
    (qa, _), p = functional_plan(q, k, block_size=block_size, pooled_queries=pooled_queries,
                                 layout=layout, dtype=dtype)
    if p is None:
        raise invalid(f"q.shape: expected a non-empty batch and sequence, got {qa.shape}")
    return p.select(q, k, alpha=alpha, sink=sink, window=window, last_n=last_n,
                    min_budget=min_budget, threshold=threshold, scale=scale, layout=layout,
                    dtype=dtype, stream=stream)
