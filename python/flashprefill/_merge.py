"""``merge_states``: two partial attention states merged by their LSE
(docs/merge-states.md).

numpy arrays go through ``fp_merge_states`` on a CPU plan (the reference,
bit for bit); torch tensors, CPU or CUDA, through torch operations in the
reference's order (no custom kernel, so ``torch.compile`` and CUDA graphs
see ordinary ops). torch's ``exp`` / ``log`` may differ from the C
library's in the last bit: O then differs by at most one unit in the last
place of its dtype and the LSE by a few fp32 ulps.
"""

from __future__ import annotations

import ctypes
import math
import re
from typing import Any, Optional, Tuple

from . import _capi
from ._arrays import describe, is_torch, numpy_module, parse_dtype, torch_module
from ._capi import FP_DEVICE_CPU, FP_DTYPE_BF16, FP_DTYPE_F16, FP_DTYPE_F32
from ._plan import cached_plan
from ._validate import invalid

# The caller's names for the C API's (a.o -> o_a, out.lse -> out_lse, ...).
_C_NAMES = [("out.o", "out"), ("out.lse", "out_lse"), ("a.o", "o_a"), ("b.o", "o_b"),
            ("a.lse", "lse_a"), ("b.lse", "lse_b")]


def merge_states(o_a, lse_a, o_b, lse_b, *, out=None, out_lse=None, dtype=None):
    """Merges two partial attention states into the attention over the union
    of their keys (disjoint key sets: a cached prefix and new tokens, a
    shared prefix, key shards)::

        m = max(lse_a, lse_b);  w_a = exp(lse_a - m);  w_b = exp(lse_b - m)
        out = (w_a * o_a + w_b * o_b) / (w_a + w_b);  out_lse = m + log(w_a + w_b)

    in float32 per row, ``out`` rounded once to its dtype. A row whose LSE is
    -inf (or +inf: FlashAttention-2's row without keys) on one side is the
    other side exactly; on both sides 0 with LSE -inf; a NaN LSE gives NaN.

    Args:
        o_a, o_b: ``[total_q, h, d]`` (the varlen layout) or ``[b, s, h, d]``;
            bf16, fp16 or fp32 (numpy: float16, float32, ml_dtypes.bfloat16,
            or uint16 bit patterns with `dtype`); the two may differ.
        lse_a, lse_b: float32 natural-log LSE, ``[h, total_q]`` for 3-d O
            (what ``prefill_varlen(return_lse=True)`` returns) or
            ``[b, h, s]`` for 4-d O (``prefill``'s). FlashInfer's LSE is base
            2 and token-major: pass ``(lse * math.log(2)).t()``.
        out, out_lse: write here (in place into ``o_a`` / ``lse_a`` is fine);
            default new arrays like ``o_a`` and ``lse_a``.
        dtype: ``"bf16"`` or ``"f16"``: what numpy uint16 arrays hold.

    Returns:
        ``(out, out_lse)``.
    """
    if is_torch(o_a):
        return _merge_torch(torch_module(), o_a, lse_a, o_b, lse_b, out, out_lse)
    return _merge_numpy(o_a, lse_a, o_b, lse_b, out, out_lse, dtype)


def _lse_shape(o_shape) -> Tuple[int, ...]:
    if len(o_shape) == 3:
        return (o_shape[1], o_shape[0])
    return (o_shape[0], o_shape[2], o_shape[1])


def _lse_words(ndim: int) -> str:
    return "[h, total_q]" if ndim == 3 else "[b, h, s]"


def _check_shapes(names, shapes):
    """O shapes equal o_a's, LSE shapes the matching LSE layout."""
    o_shape = shapes[0]
    if len(o_shape) not in (3, 4):
        raise invalid(f"o_a: expected [total_q, h, d] or [b, s, h, d], got shape {tuple(o_shape)}")
    want_lse = _lse_shape(o_shape)
    for name, shape in zip(names, shapes):
        if name.startswith("o_") or name == "out":
            if tuple(shape) != tuple(o_shape):
                raise invalid(f"{name}: expected shape {tuple(o_shape)} (like o_a), "
                              f"got {tuple(shape)}")
        elif tuple(shape) != want_lse:
            raise invalid(f"{name}: expected shape {_lse_words(len(o_shape))} = {want_lse} "
                          f"(o_a is {tuple(o_shape)}), got {tuple(shape)}")


# ---------------------------------------------------------------------------
# numpy: the C API on a CPU plan
# ---------------------------------------------------------------------------


def _numpy_type(np, x, name: str, dtype: Optional[int]) -> int:
    if x.dtype == np.float32:
        return FP_DTYPE_F32
    if x.dtype == np.float16:
        return FP_DTYPE_F16
    if x.dtype.name == "bfloat16":
        return FP_DTYPE_BF16
    if x.dtype == np.uint16:
        if dtype is None:
            raise invalid(f"{name}.dtype: uint16 arrays hold bf16 or f16 bit patterns; pass "
                          "dtype='bf16' (or 'f16') to say which")
        return dtype
    raise invalid(f"{name}.dtype: expected float16, float32, bfloat16 (or uint16 bit patterns "
                  f"with dtype='bf16'), got {x.dtype}")


def _usable_input(np, x):
    """numpy views the C API cannot take (negative strides, a strided last
    dimension) are copied: inputs are only read."""
    if x.ndim and (any(s < 0 for s in x.strides) or (x.shape[-1] > 1 and x.strides[-1] != x.itemsize)):
        return np.ascontiguousarray(x)
    return x


def _c_state(arg, code: int, lse_arg) -> _capi.AttnState:
    s = _capi.AttnState()
    shape, strides = arg.shape, arg.strides
    if len(shape) == 3:  # [total_q, h, d] -> [1, total_q, h, d]
        shape, strides = (1,) + tuple(shape), (0,) + tuple(strides)
    s.o.data = arg.ptr
    s.o.shape[:] = shape
    s.o.strides[:] = strides
    s.dtype = code
    if lse_arg is not None:
        s.lse = lse_arg.ptr
        ls = lse_arg.strides
        # [h, total_q] -> [batch, head, seq] strides (batch 1)
        s.lse_strides[:] = (0, ls[0], ls[1]) if len(ls) == 2 else tuple(ls)
    return s


def _caller_message(message: str) -> str:
    for c_name, name in _C_NAMES:
        message = re.sub(r"(?<![\w.])" + re.escape(c_name) + r"(?![\w])", name, message)
    return message


def _merge_numpy(o_a, lse_a, o_b, lse_b, out, out_lse, dtype):
    np = numpy_module()
    code = None if dtype is None else parse_dtype(dtype)
    named = [("o_a", o_a), ("lse_a", lse_a), ("o_b", o_b), ("lse_b", lse_b)]
    for name, x in named:
        if not isinstance(x, np.ndarray):
            raise invalid(f"{name}: expected a torch.Tensor or numpy.ndarray, got "
                          f"{type(x).__name__}")
    for name, x in (("out", out), ("out_lse", out_lse)):
        if x is not None and not isinstance(x, np.ndarray):
            raise invalid(f"{name}: expected a numpy.ndarray like o_a, got {type(x).__name__}")
    _check_shapes([n for n, _ in named] + [n for n, x in (("out", out), ("out_lse", out_lse))
                                           if x is not None],
                  [x.shape for _, x in named] + [x.shape for x in (out, out_lse)
                                                 if x is not None])
    types = {name: _numpy_type(np, x, name, code) for name, x in (("o_a", o_a), ("o_b", o_b))}
    for name in ("lse_a", "lse_b", "out_lse"):
        x = dict(named).get(name, out_lse)
        if x is not None and x.dtype != np.float32:
            raise invalid(f"{name}.dtype: expected float32 (natural-log LSE), got {x.dtype}")
    if out is None:
        out = np.empty_like(o_a)
    if out_lse is None:
        out_lse = np.empty(_lse_shape(o_a.shape), dtype=np.float32)
    out_code = _numpy_type(np, out, "out", code)
    for name, x in (("out", out), ("out_lse", out_lse)):
        if not x.flags.writeable:
            raise invalid(f"{name}: expected a writable array, got a read-only one")
        if any(s < 0 for s in x.strides) or (name == "out" and x.shape[-1] > 1
                                              and x.strides[-1] != x.itemsize):
            raise invalid(f"{name}.strides: expected non-negative strides with a contiguous "
                          f"last dimension, got byte strides {x.strides}")
    o_a, o_b = _usable_input(np, o_a), _usable_input(np, o_b)
    lse_a, lse_b = _usable_input(np, lse_a), _usable_input(np, lse_b)
    args = {name: describe(x, name, ndim=None, element="bytes", output=name.startswith("out"))
            for name, x in (("o_a", o_a), ("lse_a", lse_a), ("o_b", o_b), ("lse_b", lse_b),
                            ("out", out), ("out_lse", out_lse))}
    a = _c_state(args["o_a"], types["o_a"], args["lse_a"])
    b = _c_state(args["o_b"], types["o_b"], args["lse_b"])
    o = _c_state(args["out"], out_code, args["out_lse"])
    # Any CPU plan runs the reference: merging does not depend on the spec.
    plan = cached_plan(FP_DTYPE_BF16, 64, 1, 1, None, FP_DEVICE_CPU, False, 1, 1)
    status = _capi.lib().fp_merge_states(plan._live(), ctypes.byref(a), ctypes.byref(b),
                                         ctypes.byref(o), None)
    if status != _capi.FP_OK:
        raise _capi.FlashPrefillError(status, _capi.status_name(status),
                                      _caller_message(_capi.last_error()))
    return out, out_lse


# ---------------------------------------------------------------------------
# torch: the same arithmetic as torch ops
# ---------------------------------------------------------------------------


def _merge_torch(torch, o_a, lse_a, o_b, lse_b, out, out_lse):
    named = [("o_a", o_a), ("lse_a", lse_a), ("o_b", o_b), ("lse_b", lse_b)]
    given = named + [(n, x) for n, x in (("out", out), ("out_lse", out_lse)) if x is not None]
    for name, x in given:
        if not isinstance(x, torch.Tensor):
            raise invalid(f"{name}: expected a torch.Tensor like o_a, got {type(x).__name__}")
        if x.device != o_a.device:
            raise invalid(f"{name}.device: expected {o_a.device} (o_a's device), got {x.device}")
    _check_shapes([n for n, _ in given], [x.shape for _, x in given])
    floats = (torch.bfloat16, torch.float16, torch.float32)
    for name, x in given:
        if name.startswith("o_") or name == "out":
            if x.dtype not in floats:
                raise invalid(f"{name}.dtype: expected torch.bfloat16, torch.float16 or "
                              f"torch.float32, got {x.dtype}")
        elif x.dtype != torch.float32:
            raise invalid(f"{name}.dtype: expected torch.float32 (natural-log LSE), got "
                          f"{x.dtype}")
    out_dtype = out.dtype if out is not None else o_a.dtype

    def rows(lse):  # LSE to O's row order: [n, h] or [b, s, h]
        return lse.t() if lse.dim() == 2 else lse.transpose(1, 2)

    la, lb = rows(lse_a), rows(lse_b)
    nan_row = la.isnan() | lb.isnan()
    empty_a, empty_b = la.isinf(), lb.isinf()
    both = ~(empty_a | empty_b)
    # Weights only where both sides have keys; elsewhere placeholders that
    # keep inf - inf out of the arithmetic (the rows are selected below).
    la0 = torch.where(both, la, torch.zeros_like(la))
    lb0 = torch.where(both, lb, torch.zeros_like(lb))
    m = torch.maximum(la0, lb0)
    wa, wb = torch.exp(la0 - m), torch.exp(lb0 - m)
    total = wa + wb
    merged_lse = m + torch.log(total)
    merged = (wa.unsqueeze(-1) * o_a.float() + wb.unsqueeze(-1) * o_b.float()) \
        / total.unsqueeze(-1)
    # Copies of one side stay in their dtype when it is out's: bit for bit.
    only_a = (empty_b & ~empty_a).unsqueeze(-1)
    only_b = (empty_a & ~empty_b).unsqueeze(-1)
    result = torch.where(both.unsqueeze(-1), merged.to(out_dtype),
                         torch.where(only_a, o_a.to(out_dtype),
                                     torch.where(only_b, o_b.to(out_dtype),
                                                 torch.zeros((), dtype=out_dtype,
                                                             device=o_a.device))))
    result = torch.where(nan_row.unsqueeze(-1),
                         torch.full((), math.nan, dtype=out_dtype, device=o_a.device), result)
    neg_inf = torch.full((), -math.inf, dtype=torch.float32, device=o_a.device)
    lse = torch.where(both, merged_lse,
                      torch.where(empty_b & ~empty_a, la,
                                  torch.where(empty_a & ~empty_b, lb, neg_inf)))
    lse = torch.where(nan_row, torch.full_like(lse, math.nan), lse)
    lse = rows(lse)  # back to the LSE layout
    # Everything is computed before anything is written: merging in place
    # (or into any view of the inputs) is safe.
    if out is None:
        out = result
    else:
        out.copy_(result)
    if out_lse is None:
        out_lse = lse.contiguous()
    else:
        out_lse.copy_(lse)
    return out, out_lse
