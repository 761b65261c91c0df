"""FlashPrefill: block-sparse causal attention for long-context prefill.

A ctypes binding of ``libflashprefill.so`` (no compiled extension)::

    import torch, flashprefill
    q = torch.randn(1, 8192, 32, 128, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, 8192, 8, 128, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)
    out = flashprefill.prefill(q, k, v)          # [b, s, h, d], like q

* torch CUDA tensors run the JIT-compiled kernels on
  ``torch.cuda.current_stream()``; torch CPU tensors and numpy arrays run the
  library's CPU reference (numpy: float16 arrays, or bf16 bit patterns as
  uint16 with ``dtype="bf16"``; :func:`to_bf16` / :func:`from_bf16` convert).
* :func:`prefill` on torch tensors is the custom op ``flashprefill::prefill``
  (``flashprefill::prefill_out`` when ``out`` is given) with a fake
  implementation: ``torch.compile`` traces it without a graph break.
* :func:`prefill_varlen` takes the engine shapes: packed variable-length
  batches ``[total_q, h_q, d]`` with ``cu_seqlens_q``, after a cached prefix,
  over packed or paged K/V (``flashprefill::prefill_varlen`` on torch).
* :func:`merge_states` merges two partial attention states (output and
  natural-log LSE of passes over disjoint keys) by their LSE.
* :func:`plan` gives engines a :class:`Plan` with ``select`` / ``attend`` /
  ``prefill`` (and their ``*_varlen`` forms) and explicit workspaces
  (CUDA-graph capturable).
* Errors are :class:`FlashPrefillError` (a ``RuntimeError``) whose message
  names the argument and the expected value.

The library is found through ``$FLASHPREFILL_LIBRARY``, then the copy
installed next to the package, then a source checkout's ``build/lib``; see
``docs/python.md``.
"""

from __future__ import annotations

import sys as _sys

from . import _eager
from ._arrays import is_torch as _is_torch
from ._bf16 import from_bf16, to_bf16
from ._capi import FlashPrefillError, LibraryNotFoundError, library_path
from ._eager import mask, mask_varlen, workspace_size, workspace_size_varlen
from ._mask import Mask, VarlenMask
from ._merge import merge_states
from ._params import defaults
from ._plan import Plan, clear_plan_cache, plan

__version__ = "0.1.0"

__all__ = [
    "FlashPrefillError",
    "LibraryNotFoundError",
    "Mask",
    "Plan",
    "VarlenMask",
    "clear_plan_cache",
    "defaults",
    "from_bf16",
    "library_path",
    "mask",
    "mask_varlen",
    "merge_states",
    "plan",
    "prefill",
    "prefill_varlen",
    "register_torch_ops",
    "to_bf16",
    "workspace_size",
    "workspace_size_varlen",
]

# The torch integration (set by register_torch_ops).
_torch = None
_ops = None


def register_torch_ops() -> None:
    """Registers the torch custom ops (``torch.ops.flashprefill.*``).

    ``import flashprefill`` does it when torch is installed (so the ops exist
    before any ``torch.compile`` trace, whatever the import order), unless
    ``FLASHPREFILL_NO_TORCH=1`` keeps torch out of numpy-only processes;
    then it happens on the first eager call with torch tensors, or here.
    """
    global _torch, _ops
    if _ops is not None:
        return
    import torch

    from . import _torch_ops as ops

    _torch, _ops = torch, ops


def _register_at_import() -> None:
    import importlib.util
    import os

    if "torch" not in _sys.modules:
        if os.environ.get("FLASHPREFILL_NO_TORCH") == "1" or importlib.util.find_spec("torch") is None:
            return
    try:
        register_torch_ops()
    except Exception:  # a broken torch install: the first torch call re-raises it
        pass


_register_at_import()


def prefill(q, k, v, *, alpha=None, sink=None, window=None, last_n=None, min_budget=None,
            threshold=None, block_size=None, scale=None, pooled_queries=False,
            return_lse=False, out=None, workspace=None, layout="bshd", dtype=None,
            mean_correction=False):
    """Block-sparse causal attention: finds the key blocks that matter for
    every query block, then runs flash attention over only those.

    Args:
        q: ``[b, s, h_q, d]`` (``layout="bshd"``) or ``[b, h_q, s, d]``
            (``layout="bhsd"``); bf16 or fp16. Any strides with a contiguous
            last dimension (on the GPU: 16-byte aligned, strides multiples of
            8 elements), so packed QKV views work without copies.
        k, v: ``[b, s, h_kv, d]`` (or ``[b, h_kv, s, d]``), ``h_q % h_kv == 0``.
        alpha: keep block j iff ``score >= alpha * max`` (0 keeps every block:
            dense). None: the library default (0.1).
        sink, window, last_n, min_budget: forced blocks (first `sink` key
            blocks, the `window` blocks up to the diagonal, the last `last_n`
            query blocks dense, at least the `min_budget` best); None:
            defaults (2, 4, 2, 0). See :func:`defaults`.
        threshold: ``"relative_max"`` (default) or ``"min_max"``.
        block_size: tokens per block (None: 128).
        scale: softmax scale (None: ``1/sqrt(d)``).
        pooled_queries: score with block-mean queries (cheaper estimator).
        mean_correction: every pruned key block that a row sees whole adds
            its block mean key and value, weighted by its key count
            (docs/semantics.md section 3). CPU reference only so far: the
            GPU raises FlashPrefillError (unsupported).
        return_lse: also return the log-sum-exp, fp32 ``[b, h_q, s]``.
        out: write the output here (same shape and dtype as q).
        workspace: a byte buffer of :func:`workspace_size` bytes on q's
            device; with `out` given the call allocates nothing (CUDA graphs).
        layout: ``"bshd"`` or ``"bhsd"``; the output has q's shape.
        dtype: for numpy uint16 arrays holding bit patterns: ``"bf16"`` or
            ``"f16"``.

    Returns:
        ``out``, or ``(out, lse)`` with `return_lse`.

    Raises:
        FlashPrefillError: the message names the argument (``params.alpha``,
            ``q.shape[2]``, ...) and what was expected.
    """
    if _ops is None and _is_torch(q):
        register_torch_ops()  # torch was imported after flashprefill
    if _torch is not None and isinstance(q, _torch.Tensor):
        return _ops.prefill(q, k, v, alpha=alpha, sink=sink, window=window, last_n=last_n,
                            min_budget=min_budget, threshold=threshold, block_size=block_size,
                            scale=scale, pooled_queries=pooled_queries, return_lse=return_lse,
                            out=out, workspace=workspace, layout=layout,
                            mean_correction=mean_correction)
    return _eager.prefill_eager(q, k, v, alpha=alpha, sink=sink, window=window, last_n=last_n,
                                min_budget=min_budget, threshold=threshold,
                                block_size=block_size, scale=scale,
                                pooled_queries=pooled_queries, return_lse=return_lse, out=out,
                                workspace=workspace, layout=layout, dtype=dtype,
                                mean_correction=mean_correction)


def prefill_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k=None, *, k_lens=None, page_table=None,
                   max_seqlen_q=None, max_seqlen_k=None, alpha=None, sink=None, window=None,
                   last_n=None, min_budget=None, threshold=None, block_size=None, scale=None,
                   return_lse=False, out=None, workspace=None, apply_last_n=None, dtype=None,
                   mean_correction=False, pooled_queries=False):
    """Block-sparse causal attention over a packed batch of variable-length
    sequences, each after a cached prefix (chunked prefill, prefix caching,
    continuous batching; docs/semantics.md section 2).

    Sequence i brings ``q_len_i = cu_seqlens_q[i+1] - cu_seqlens_q[i]`` new
    queries, the LAST q_len_i of its ``k_len_i >= q_len_i`` positions: the
    first ``k_len_i - q_len_i`` keys are its cached prefix and the causal
    diagonal is aligned bottom-right.

    Args:
        q: ``[total_q, h_q, d]``, bf16 or fp16, the sequences' rows packed.
        k, v: packed ``[total_k, h_kv, d]`` with `cu_seqlens_k`, or paged
            ``[num_pages, page_size, h_kv, d]`` (page_size a power of two in
            [1, 256]) with `page_table` and `k_lens`.
        cu_seqlens_q: int32 ``[b+1]`` row offsets into q (``[0] == 0``,
            non-decreasing, ``[b] <= total_q``; rows past ``[b]`` are left
            unspecified in `out`).
        cu_seqlens_k: int32 ``[b+1]`` offsets into packed k / v.
        k_lens: int32 ``[b]``: key lengths of paged K/V.
        page_table: int32 ``[b, max_pages]``, contiguous: sequence i's key t
            is in page ``page_table[i, t // page_size]``, slot
            ``t % page_size`` (only the pages below ``k_len_i`` are read).
        max_seqlen_q, max_seqlen_k: host-side maxima that size the plan, the
            grid and the workspace. None: computed from the lengths, which on
            the GPU copies them to the host and waits; engines and CUDA-graph
            captures must pass both (then nothing is read or waited for).
        apply_last_n: optional int32 ``[b]``; nonzero turns `last_n` on for
            sequence i (engines: a prompt's final chunk only). None: on for
            every sequence.
        alpha, sink, window, last_n, min_budget, threshold, block_size,
        scale, mean_correction, pooled_queries: as :func:`prefill`.
        return_lse: also return the log-sum-exp, fp32 ``[h_q, total_q]``
            (FlashAttention's varlen layout).
        out: write the output here (q's shape and dtype).
        workspace: a byte buffer of :func:`workspace_size_varlen` bytes on
            q's device (with `out` and both maxima given: no allocation).
        dtype: for numpy uint16 arrays holding bit patterns.

    Every array lives where q lives: torch CUDA tensors run the kernels on
    the current stream, numpy arrays and torch CPU tensors the CPU reference.

    Returns:
        ``out``, or ``(out, lse)`` with `return_lse`.
    """
    if _ops is None and _is_torch(q):
        register_torch_ops()
    if _torch is not None and isinstance(q, _torch.Tensor):
        return _ops.prefill_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens=k_lens,
                                   page_table=page_table, max_seqlen_q=max_seqlen_q,
                                   max_seqlen_k=max_seqlen_k, apply_last_n=apply_last_n,
                                   alpha=alpha, sink=sink, window=window, last_n=last_n,
                                   min_budget=min_budget, threshold=threshold,
                                   block_size=block_size, scale=scale, return_lse=return_lse,
                                   out=out, workspace=workspace,
                                   mean_correction=mean_correction,
                                   pooled_queries=pooled_queries)
    return _eager.prefill_varlen_eager(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens=k_lens,
                                       page_table=page_table, max_seqlen_q=max_seqlen_q,
                                       max_seqlen_k=max_seqlen_k, apply_last_n=apply_last_n,
                                       alpha=alpha, sink=sink, window=window, last_n=last_n,
                                       min_budget=min_budget, threshold=threshold,
                                       block_size=block_size, scale=scale,
                                       return_lse=return_lse, out=out, workspace=workspace,
                                       dtype=dtype, mean_correction=mean_correction,
                                       pooled_queries=pooled_queries)
