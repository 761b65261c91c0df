"""The functional entry points (:func:`flashprefill.prefill` without the
torch op, :func:`mask`, :func:`workspace_size`): describe q and k, pick the
cached plan for them, run the plan's entry point."""

from __future__ import annotations

from typing import Tuple

from ._arrays import Arg, bshd, check_same_dtype, describe, device_name, empty, parse_dtype
from ._mask import Mask, VarlenMask
from ._plan import cached_plan
from ._validate import check_layout, invalid
from ._varlen import VarlenProblem, describe_varlen, resolve_maxima


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
                  dtype=None, stream=None, mean_correction=False):
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
                     dtype=dtype, stream=stream, mean_correction=mean_correction, _pre=pre)


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


# ---------------------------------------------------------------------------
# Variable-length calls (engine shapes)
# ---------------------------------------------------------------------------


def varlen_problem(q, k, v, cu_seqlens_q, cu_seqlens_k, *, k_lens, page_table, apply_last_n,
                   out, max_seqlen_q, max_seqlen_k, dtype, takes_v=True) -> VarlenProblem:
    """The described call with its maxima resolved (the caller's, or computed
    from the lengths on the host)."""
    p = describe_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens, page_table, apply_last_n,
                        out, None if dtype is None else parse_dtype(dtype), takes_v=takes_v)
    resolve_maxima(p, max_seqlen_q, max_seqlen_k)
    return p


def varlen_plan(p: VarlenProblem, block_size, pooled_queries: bool = False):
    """The cached plan for `p` (sized by its batch and max_seqlen_k)."""
    if not isinstance(pooled_queries, bool):
        raise invalid(f"pooled_queries: expected True or False, got {pooled_queries!r}")
    return cached_plan(p.q.dtype, p.head_dim, p.heads_q, p.heads_kv, block_size, p.q.device,
                       pooled_queries, p.batch, p.max_seqlen_k)


def prefill_varlen_eager(q, k, v, cu_seqlens_q, cu_seqlens_k=None, *, k_lens=None,
                         page_table=None, max_seqlen_q=None, max_seqlen_k=None,
                         apply_last_n=None, alpha=None, sink=None, window=None, last_n=None,
                         min_budget=None, threshold=None, block_size=None, scale=None,
                         return_lse=False, out=None, lse=None, workspace=None, dtype=None,
                         stream=None, mean_correction=False, pooled_queries=False):
    """:func:`flashprefill.prefill_varlen` without the torch custom op."""
    p = varlen_problem(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens=k_lens,
                       page_table=page_table, apply_last_n=apply_last_n, out=out,
                       max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, dtype=dtype)
    if p.batch == 0 or p.total_q == 0:  # no query rows: nothing to compute
        out = empty(p.q, p.q.shape, "same") if out is None else out
        if return_lse or lse is not None:
            lse = empty(p.q, (p.heads_q, p.total_q), "float32") if lse is None else lse
            return out, lse
        return out
    return varlen_plan(p, block_size, pooled_queries).prefill_varlen(
        q, k, v, cu_seqlens_q, cu_seqlens_k, alpha=alpha, sink=sink, window=window,
        last_n=last_n, min_budget=min_budget, threshold=threshold, scale=scale, out=out,
        lse=lse, return_lse=return_lse, workspace=workspace, stream=stream,
        mean_correction=mean_correction, _pre=p)


def mask_varlen(q, k, cu_seqlens_q, cu_seqlens_k=None, *, k_lens=None, page_table=None,
                max_seqlen_q=None, max_seqlen_k=None, apply_last_n=None, alpha=None, sink=None,
                window=None, last_n=None, min_budget=None, threshold=None, block_size=None,
                scale=None, dtype=None, stream=None, pooled_queries=False) -> VarlenMask:
    """The compact block mask :func:`flashprefill.prefill_varlen` would use,
    as a :class:`VarlenMask` next to q."""
    p = varlen_problem(q, k, None, cu_seqlens_q, cu_seqlens_k, k_lens=k_lens,
                       page_table=page_table, apply_last_n=apply_last_n, out=None,
                       max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, dtype=dtype,
                       takes_v=False)
    if p.batch == 0 or p.total_q == 0:
        raise invalid(f"cu_seqlens_q: expected at least one sequence with queries, got "
                      f"b = {p.batch} and q.shape[0] = {p.total_q}")
    return varlen_plan(p, block_size, pooled_queries).select_varlen(
        q, k, cu_seqlens_q, cu_seqlens_k, alpha=alpha, sink=sink, window=window, last_n=last_n,
        min_budget=min_budget, threshold=threshold, scale=scale, stream=stream, _pre=p)


def workspace_size_varlen(q, k, cu_seqlens_q, cu_seqlens_k=None, *, k_lens=None,
                          page_table=None, max_seqlen_q=None, max_seqlen_k=None,
                          block_size=None, dtype=None, pooled_queries=False) -> int:
    """Bytes of the workspace :func:`flashprefill.prefill_varlen` needs for
    this call (pass one as ``workspace=`` for CUDA-graph capture, with the
    maxima the graph is captured for). Creates the cached plan, so it doubles
    as a warm-up."""
    p = varlen_problem(q, k, None, cu_seqlens_q, cu_seqlens_k, k_lens=k_lens,
                       page_table=page_table, apply_last_n=None, out=None,
                       max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, dtype=dtype,
                       takes_v=False)
    if p.batch == 0 or p.total_q == 0:
        return 0
    return varlen_plan(p, block_size, pooled_queries).varlen_workspace_bytes(p.batch, p.total_q,
                                                             p.max_seqlen_q, p.max_seqlen_k)
