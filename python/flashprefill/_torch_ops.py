"""The PyTorch custom ops ``flashprefill::prefill``,
``flashprefill::prefill_out``, ``flashprefill::prefill_varlen`` and
``flashprefill::prefill_varlen_out``.

Registered with ``torch.library.custom_op`` and a fake (meta) implementation,
so ``torch.compile`` traces :func:`flashprefill.prefill` into one graph node
(no graph break) and inductor keeps it as an opaque kernel call. The real
implementation runs the library on the tensor's device: CUDA tensors on
``torch.cuda.current_stream()``, CPU tensors through the CPU reference.

Every scalar parameter is optional in the schema and resolved inside the
implementation, so the library (and its ctypes calls) is never touched while
tracing.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ._eager import prefill_eager, prefill_varlen_eager
from ._validate import THRESHOLDS, check_layout, invalid

Tensor = torch.Tensor

if not hasattr(torch.library, "custom_op"):  # torch < 2.4
    raise ImportError(
        f"flashprefill's torch ops need torch >= 2.4 (torch.library.custom_op); found {torch.__version__}"
    )


def _lse_shape(q: Tensor, layout: str):
    b = q.shape[0]
    h, s = (q.shape[2], q.shape[1]) if layout == "bshd" else (q.shape[1], q.shape[2])
    return (b, h, s)


@torch.library.custom_op("flashprefill::prefill", mutates_args=(), device_types=("cpu", "cuda"))
def prefill_op(q: Tensor, k: Tensor, v: Tensor, alpha: Optional[float], sink: Optional[int],
               window: Optional[int], last_n: Optional[int], min_budget: Optional[int],
               threshold_kind: Optional[int], block_size: Optional[int], scale: Optional[float],
               pooled_queries: bool, return_lse: bool, layout: str,
               mean_correction: bool = False) -> Tuple[Tensor, Tensor]:
    """Functional prefill: returns (out like q, lse [b, h_q, s] fp32 or an
    empty tensor when return_lse is False)."""
    result = prefill_eager(q, k, v, alpha=alpha, sink=sink, window=window, last_n=last_n,
                           min_budget=min_budget, threshold=threshold_kind,
                           block_size=block_size, scale=scale,
                           pooled_queries=pooled_queries, return_lse=return_lse,
                           layout=layout, mean_correction=mean_correction)
    if return_lse:
        return result
    return result, q.new_empty((0,), dtype=torch.float32)


@prefill_op.register_fake
def _prefill_fake(q, k, v, alpha, sink, window, last_n, min_budget, threshold_kind, block_size,
                  scale, pooled_queries, return_lse, layout, mean_correction=False):
    out = q.new_empty(q.shape)
    lse_shape = _lse_shape(q, layout) if return_lse else (0,)
    return out, q.new_empty(lse_shape, dtype=torch.float32)


@torch.library.custom_op("flashprefill::prefill_out", mutates_args=("out", "lse", "workspace"),
                         device_types=("cpu", "cuda"))
def prefill_out_op(q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Optional[Tensor],
                   workspace: Optional[Tensor], alpha: Optional[float], sink: Optional[int],
                   window: Optional[int], last_n: Optional[int], min_budget: Optional[int],
                   threshold_kind: Optional[int], block_size: Optional[int],
                   scale: Optional[float], pooled_queries: bool, layout: str,
                   mean_correction: bool = False) -> None:
    """Prefill into caller-owned `out` (and `lse`, `workspace`): allocates
    nothing when all are given, so it can be captured in a CUDA graph."""
    prefill_eager(q, k, v, alpha=alpha, sink=sink, window=window, last_n=last_n,
                  min_budget=min_budget, threshold=threshold_kind, block_size=block_size,
                  scale=scale, pooled_queries=pooled_queries, out=out, lse=lse,
                  workspace=workspace, layout=layout, mean_correction=mean_correction)


@prefill_out_op.register_fake
def _prefill_out_fake(q, k, v, out, lse, workspace, alpha, sink, window, last_n, min_budget,
                      threshold_kind, block_size, scale, pooled_queries, layout,
                      mean_correction=False):
    return None


try:
    from torch.utils._python_dispatch import _get_current_dispatch_mode
except ImportError:  # pragma: no cover - always there in torch >= 2.4
    def _get_current_dispatch_mode():
        return True  # unknown: take the op path


def _plain_eager(*tensors) -> bool:
    """Whether the call can skip the dispatcher: not tracing, no dispatch
    mode (fake tensors, functionalization, ...), plain tensors that need no
    gradient. The op path costs ~30 us of host time per call, a lot next to
    a short prefill; the result is the same (the op's implementation is
    this call)."""
    if torch.compiler.is_compiling():
        return False
    for t in tensors:
        if t is not None and (type(t) is not Tensor or t.requires_grad):
            return False
    return _get_current_dispatch_mode() is None


def prefill(q: Tensor, k: Tensor, v: Tensor, *, alpha, sink, window, last_n, min_budget,
            threshold, block_size, scale, pooled_queries, return_lse, out, workspace, layout,
            mean_correction=False):
    """:func:`flashprefill.prefill` on torch tensors: through the custom ops
    (what torch.compile sees), or straight to the implementation in plain
    eager mode.

    Plain Python that torch.compile inlines: no ctypes, no library calls.
    """
    check_layout(layout)
    if q.dim() != 4:
        raise invalid(f"q: expected a 4-d tensor, got shape {tuple(q.shape)}")
    for name, t in (("k", k), ("v", v), ("out", out), ("workspace", workspace)):
        if t is not None and not isinstance(t, torch.Tensor):
            raise invalid(f"{name}: expected a torch.Tensor like q, got {type(t).__name__}")
    kind = None if threshold is None else _threshold_kind(threshold)
    if _plain_eager(q, k, v, out, workspace):
        return prefill_eager(q, k, v, alpha=alpha, sink=sink, window=window, last_n=last_n,
                             min_budget=min_budget, threshold=kind, block_size=block_size,
                             scale=scale, pooled_queries=pooled_queries,
                             return_lse=return_lse, out=out, workspace=workspace,
                             layout=layout, mean_correction=mean_correction)
    if scale is not None:
        scale = float(scale)
    if alpha is not None:
        alpha = float(alpha)
    if out is None:
        if workspace is not None:
            out = q.new_empty(q.shape)
        else:
            o, lse = torch.ops.flashprefill.prefill(q, k, v, alpha, sink, window, last_n,
                                                     min_budget, kind, block_size, scale,
                                                     bool(pooled_queries), bool(return_lse),
                                                     layout, bool(mean_correction))
            return (o, lse) if return_lse else o
    lse = q.new_empty(_lse_shape(q, layout), dtype=torch.float32) if return_lse else None
    torch.ops.flashprefill.prefill_out(q, k, v, out, lse, workspace, alpha, sink, window, last_n,
                                       min_budget, kind, block_size, scale, bool(pooled_queries),
                                       layout, bool(mean_correction))
    return (out, lse) if return_lse else out


def _threshold_kind(threshold) -> int:
    if isinstance(threshold, str) and threshold in THRESHOLDS:
        return THRESHOLDS[threshold]
    if isinstance(threshold, int) and not isinstance(threshold, bool):
        return threshold
    raise invalid(
        "threshold: expected 'relative_max' (t = alpha * max) or 'min_max' "
        f"(t = alpha * max + (1 - alpha) * min), got {threshold!r}"
    )


# ---------------------------------------------------------------------------
# Variable-length batches (engine shapes)
# ---------------------------------------------------------------------------


@torch.library.custom_op("flashprefill::prefill_varlen", mutates_args=(),
                         device_types=("cpu", "cuda"))
def prefill_varlen_op(q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor,
                      cu_seqlens_k: Optional[Tensor], k_lens: Optional[Tensor],
                      page_table: Optional[Tensor], apply_last_n: Optional[Tensor],
                      max_seqlen_q: Optional[int], max_seqlen_k: Optional[int],
                      alpha: Optional[float], sink: Optional[int], window: Optional[int],
                      last_n: Optional[int], min_budget: Optional[int],
                      threshold_kind: Optional[int], block_size: Optional[int],
                      scale: Optional[float], return_lse: bool,
                      mean_correction: bool = False,
                      pooled_queries: bool = False) -> Tuple[Tensor, Tensor]:
    """Functional varlen prefill: returns (out like q, lse [h_q, total_q] fp32
    or an empty tensor when return_lse is False)."""
    result = prefill_varlen_eager(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens=k_lens,
                                  page_table=page_table, apply_last_n=apply_last_n,
                                  max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k,
                                  alpha=alpha, sink=sink, window=window, last_n=last_n,
                                  min_budget=min_budget, threshold=threshold_kind,
                                  block_size=block_size, scale=scale, return_lse=return_lse,
                                  mean_correction=mean_correction,
                                  pooled_queries=pooled_queries)
    if return_lse:
        return result
    return result, q.new_empty((0,), dtype=torch.float32)


@prefill_varlen_op.register_fake
def _prefill_varlen_fake(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens, page_table, apply_last_n,
                         max_seqlen_q, max_seqlen_k, alpha, sink, window, last_n, min_budget,
                         threshold_kind, block_size, scale, return_lse, mean_correction=False,
                         pooled_queries=False):
    lse_shape = (q.shape[1], q.shape[0]) if return_lse else (0,)
    return q.new_empty(q.shape), q.new_empty(lse_shape, dtype=torch.float32)


@torch.library.custom_op("flashprefill::prefill_varlen_out",
                         mutates_args=("out", "lse", "workspace"), device_types=("cpu", "cuda"))
def prefill_varlen_out_op(q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor,
                          cu_seqlens_k: Optional[Tensor], k_lens: Optional[Tensor],
                          page_table: Optional[Tensor], apply_last_n: Optional[Tensor],
                          out: Tensor, lse: Optional[Tensor], workspace: Optional[Tensor],
                          max_seqlen_q: Optional[int], max_seqlen_k: Optional[int],
                          alpha: Optional[float], sink: Optional[int], window: Optional[int],
                          last_n: Optional[int], min_budget: Optional[int],
                          threshold_kind: Optional[int], block_size: Optional[int],
                          scale: Optional[float], mean_correction: bool = False,
                          pooled_queries: bool = False) -> None:
    """Varlen prefill into caller-owned `out` (and `lse`, `workspace`): with
    both maxima given it allocates nothing and never synchronises, so it can
    be captured in a CUDA graph."""
    prefill_varlen_eager(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens=k_lens,
                         page_table=page_table, apply_last_n=apply_last_n,
                         max_seqlen_q=max_seqlen_q, max_seqlen_k=max_seqlen_k, alpha=alpha,
                         sink=sink, window=window, last_n=last_n, min_budget=min_budget,
                         threshold=threshold_kind, block_size=block_size, scale=scale, out=out,
                         lse=lse, workspace=workspace, mean_correction=mean_correction,
                         pooled_queries=pooled_queries)


@prefill_varlen_out_op.register_fake
def _prefill_varlen_out_fake(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens, page_table,
                             apply_last_n, out, lse, workspace, max_seqlen_q, max_seqlen_k,
                             alpha, sink, window, last_n, min_budget, threshold_kind, block_size,
                             scale, mean_correction=False, pooled_queries=False):
    return None


def prefill_varlen(q: Tensor, k: Tensor, v: Tensor, cu_seqlens_q: Tensor, cu_seqlens_k, *,
                   k_lens, page_table, max_seqlen_q, max_seqlen_k, apply_last_n, alpha, sink,
                   window, last_n, min_budget, threshold, block_size, scale, return_lse, out,
                   workspace, mean_correction=False, pooled_queries=False):
    """:func:`flashprefill.prefill_varlen` on torch tensors: through the
    custom ops when traced, or straight to the implementation in plain eager
    mode (as :func:`prefill`)."""
    if q.dim() != 3:
        raise invalid(f"q: expected a 3-d tensor [total_q, h_q, d], got shape {tuple(q.shape)}")
    tensors = (("k", k), ("v", v), ("cu_seqlens_q", cu_seqlens_q), ("cu_seqlens_k", cu_seqlens_k),
               ("k_lens", k_lens), ("page_table", page_table), ("apply_last_n", apply_last_n),
               ("out", out), ("workspace", workspace))
    for name, t in tensors:
        if t is not None and not isinstance(t, torch.Tensor):
            raise invalid(f"{name}: expected a torch.Tensor like q, got {type(t).__name__}")
    kind = None if threshold is None else _threshold_kind(threshold)
    if _plain_eager(q, *(t for _, t in tensors)):
        return prefill_varlen_eager(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens=k_lens,
                                    page_table=page_table, max_seqlen_q=max_seqlen_q,
                                    max_seqlen_k=max_seqlen_k, apply_last_n=apply_last_n,
                                    alpha=alpha, sink=sink, window=window, last_n=last_n,
                                    min_budget=min_budget, threshold=kind,
                                    block_size=block_size, scale=scale, return_lse=return_lse,
                                    out=out, workspace=workspace,
                                    mean_correction=mean_correction,
                                    pooled_queries=pooled_queries)
    if scale is not None:
        scale = float(scale)
    if alpha is not None:
        alpha = float(alpha)
    lengths = (cu_seqlens_q, cu_seqlens_k, k_lens, page_table, apply_last_n)
    scalars = (alpha, sink, window, last_n, min_budget, kind, block_size, scale)
    if out is None:
        if workspace is not None:
            out = q.new_empty(q.shape)
        else:
            o, lse = torch.ops.flashprefill.prefill_varlen(q, k, v, *lengths, max_seqlen_q,
                                                           max_seqlen_k, *scalars,
                                                           bool(return_lse),
                                                           bool(mean_correction),
                                                           bool(pooled_queries))
            return (o, lse) if return_lse else o
    lse = q.new_empty((q.shape[1], q.shape[0]), dtype=torch.float32) if return_lse else None
    torch.ops.flashprefill.prefill_varlen_out(q, k, v, *lengths, out, lse, workspace,
                                              max_seqlen_q, max_seqlen_k, *scalars,
                                              bool(mean_correction), bool(pooled_queries))
    return (out, lse) if return_lse else out
