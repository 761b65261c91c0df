"""Plans (``fp_plan_t``) and the cache of plans behind the functional API.

A :class:`Plan` holds compiled kernels for one problem family on one device
(or the CPU reference); its methods are the engine-facing entry points
(``fp_select`` / ``fp_attend`` / ``fp_prefill``) with explicit buffers.
"""

from __future__ import annotations

import ctypes
import numbers
import re
import sys
import threading
from typing import Any, Dict, Optional, Tuple

from . import _capi
from ._arrays import (DTYPE_NAMES, Arg, bshd, c_tensor, check_same_dtype, check_same_place,
                      contiguous, describe, device_name, empty, numpy_module, parse_dtype,
                      torch_module)
from ._capi import FP_DEVICE_CPU, FlashPrefillError
from ._mask import Mask, VarlenMask
from ._params import default_block_size, make_params
from ._streams import stream_handle
from ._varlen import (VarlenProblem, c_rows, c_varlen, check_plan_fits, describe_varlen,
                      mask_shape, pooled_keys_shape, resolve_maxima)
from ._validate import INT32_MAX, INVALID, UNSUPPORTED, check_layout, int32, int64, invalid, \
    raise_library_error, uint64


def parse_device(device: Any) -> int:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``N`` (``-1``: CPU) or a
    ``torch.device`` to ``fp_plan_spec_t.device``."""
    torch = torch_module()
    if torch is not None and isinstance(device, torch.device):
        device = str(device)
    # fp_plan_spec_t.device is an int32: a larger ordinal would wrap (2^32 - 1
    # to -1, the CPU).
    if isinstance(device, numbers.Integral) and not isinstance(device, bool):
        if FP_DEVICE_CPU <= device <= INT32_MAX:
            return int(device)
    elif isinstance(device, str):
        if device == "cpu":
            return FP_DEVICE_CPU
        if device == "cuda":
            if torch is not None and torch.cuda.is_available():
                return torch.cuda.current_device()
            return 0
        match = re.fullmatch(r"cuda:(\d+)", device)
        if match and int(match.group(1)) <= INT32_MAX:
            return int(match.group(1))
    raise invalid(f"device: expected 'cpu', 'cuda', 'cuda:N' or N with 0 <= N <= {INT32_MAX}, "
                  f"or -1 (CPU), got {device!r}")


class Plan:
    """Compiled kernels for one problem family on one device (or the CPU
    reference): dtype, head_dim, head counts and block size are fixed;
    batch and sequence length vary per call up to ``max_batch`` /
    ``max_seq_len``.

    Methods take torch tensors or numpy arrays in ``[b, s, h, d]`` (or
    ``[b, h, s, d]`` with ``layout='bhsd'``), enqueue on the given stream
    (default: torch's current stream on the plan's device) and never
    allocate when every output and the workspace are given, so they can be
    captured in CUDA graphs. The plan must outlive every graph that captured
    it (its kernels live in it).
    """

    def __init__(self, *, dtype: Any, head_dim: int, num_q_heads: int, num_kv_heads: int,
                 max_seq_len: int, max_batch: int = 1, block_size: Optional[int] = None,
                 device: Any = "cuda", pooled_queries: bool = False,
                 max_workspace_bytes: int = 0):
        self._handle = None
        spec = _capi.default_spec()
        spec.dtype = parse_dtype(dtype)
        spec.head_dim = int32("spec.head_dim", head_dim)
        spec.num_q_heads = int32("spec.num_q_heads", num_q_heads)
        spec.num_kv_heads = int32("spec.num_kv_heads", num_kv_heads)
        if block_size is not None:
            spec.block_size = int32("spec.block_size", block_size)
        spec.pooled_queries = 1 if pooled_queries else 0
        spec.max_batch = int64("spec.max_batch", max_batch)
        spec.max_seq_len = int64("spec.max_seq_len", max_seq_len)
        spec.device = parse_device(device)
        spec.max_workspace_bytes = uint64("spec.max_workspace_bytes", max_workspace_bytes)
        handle = _capi.PlanHandle()
        _capi.check(_capi.lib().fp_plan_create(ctypes.byref(spec), ctypes.byref(handle)))
        self._spec = spec
        self._handle = handle
        self._lib = _capi.lib()

    # -- facts -------------------------------------------------------------

    @property
    def spec(self) -> Dict[str, Any]:
        """The plan's ``fp_plan_spec_t`` fields."""
        s = self._spec
        return {
            "dtype": DTYPE_NAMES[s.dtype], "head_dim": s.head_dim, "num_q_heads": s.num_q_heads,
            "num_kv_heads": s.num_kv_heads, "block_size": s.block_size,
            "pooled_queries": bool(s.pooled_queries), "max_batch": s.max_batch,
            "max_seq_len": s.max_seq_len, "device": device_name(s.device),
            "max_workspace_bytes": s.max_workspace_bytes,
        }

    @property
    def device(self) -> str:
        return device_name(self._spec.device)

    @property
    def block_size(self) -> int:
        return self._spec.block_size

    def num_blocks(self, seq_len: int) -> int:
        return -(-int(seq_len) // self._spec.block_size)

    def _bytes(self, fn, batch, seq_len) -> int:
        n = fn(self._live(), int64("batch", batch), int64("seq_len", seq_len))
        if n == 0:
            raise FlashPrefillError(INVALID, "invalid argument", _capi.last_error())
        return int(n)

    def workspace_bytes(self, batch: int, seq_len: int) -> int:
        """Bytes of the workspace :meth:`prefill` needs (pooled keys, pooled
        queries, the mask)."""
        return self._bytes(self._lib.fp_plan_workspace_bytes, batch, seq_len)

    def select_workspace_bytes(self, batch: int, seq_len: int) -> int:
        """Bytes of the workspace :meth:`select` needs (no mask)."""
        return self._bytes(self._lib.fp_plan_select_workspace_bytes, batch, seq_len)

    def mask_bytes(self, batch: int, seq_len: int) -> int:
        """Bytes of one mask (counts + ids)."""
        return self._bytes(self._lib.fp_plan_mask_bytes, batch, seq_len)

    @property
    def dense_below_tokens(self) -> int:
        """The cost model's short-prompt break-even: :meth:`prefill` runs
        dense attention below this many tokens by default (0 = never; always
        0 on the CPU)."""
        return int(self._lib.fp_plan_dense_below_tokens(self._live()))

    def empty_workspace(self, batch: int, seq_len: int, *, select_only: bool = False):
        """A workspace for (batch, seq_len): a uint8 torch tensor on the
        plan's GPU, or a numpy array for a CPU plan."""
        n = (self.select_workspace_bytes if select_only else self.workspace_bytes)(batch, seq_len)
        return self._empty_bytes(n)

    def _empty_bytes(self, n: int):
        if self._spec.device == FP_DEVICE_CPU:
            return numpy_module().empty(n, dtype=numpy_module().uint8)
        torch = torch_module()
        if torch is None:
            raise invalid("empty_workspace: a GPU plan's workspace is a torch tensor; import torch")
        return torch.empty(n, dtype=torch.uint8, device=self.device)

    def close(self) -> None:
        """Destroys the plan now (kernels included). Work it enqueued must
        have finished, and no CUDA graph that captured it may replay."""
        if self._handle:
            self._lib.fp_plan_destroy(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # At interpreter exit the CUDA context may already be gone: leave the
        # plan to the process teardown then.
        if getattr(self, "_handle", None) and not sys.is_finalizing():
            try:
                self.close()
            except Exception:
                pass

    def __repr__(self) -> str:
        s = self.spec
        return (f"flashprefill.Plan({s['dtype']}, d={s['head_dim']}, heads={s['num_q_heads']}/"
                f"{s['num_kv_heads']}, block={s['block_size']}, max_seq_len={s['max_seq_len']}, "
                f"max_batch={s['max_batch']}, device={s['device']})")

    def _live(self):
        if not self._handle:
            raise invalid("plan: expected a live plan, got one that was closed")
        return self._handle

    # -- arguments ---------------------------------------------------------

    def _tokens(self, q, k, v, out, layout, dtype, pre=None, *, takes_v=True):
        """Describes q, k (v unless not `takes_v`, out when given) and checks
        they live where the plan runs. `pre`: q and k already described by
        the functional API."""
        check_layout(layout)
        code = self._spec.dtype if dtype is None else parse_dtype(dtype)
        if pre is not None:
            qa, ka = pre
        else:
            qa, ka = describe(q, "q", code), describe(k, "k", code)
        args = [qa, ka]
        if takes_v:
            args.append(describe(v, "v", code))
        if out is not None:
            args.append(describe(out, "out", code, output=True))
        for a in args:
            check_same_place(a, self._spec.device, qa)
            check_same_dtype(a, qa)
            if a.dtype != self._spec.dtype:
                raise invalid(f"{a.name}.dtype: expected {DTYPE_NAMES[self._spec.dtype]} "
                              f"(the plan's dtype), got {a.obj.dtype}")
        return args

    def _aux(self, x, name, element, shape, first: Arg, *, output: bool) -> Arg:
        """A contiguous auxiliary buffer (lse, mask); `output`: written by
        the call."""
        a = describe(x, name, ndim=len(shape), element=element, output=output)
        check_same_place(a, self._spec.device, first)
        if tuple(a.shape) != tuple(shape):
            raise invalid(f"{name}: expected shape {tuple(shape)}, got {tuple(a.shape)}")
        if not contiguous(a):
            raise invalid(f"{name}: expected a contiguous buffer, got strides {a.strides}")
        return a

    def _workspace(self, workspace, first: Arg, needed: int):
        if workspace is None:
            ws = empty(first, (needed,), "u8")
        else:
            ws = workspace
        a = describe(ws, "workspace", ndim=None, element="bytes", output=True)
        check_same_place(a, self._spec.device, first)
        if not contiguous(a):
            raise invalid("workspace: expected a contiguous buffer")
        nbytes = (ws.numel() * ws.element_size()) if a.torch else ws.nbytes
        return ws, a.ptr, nbytes

    def _lse(self, lse, return_lse, first: Arg, b, h, s):
        if lse is None and not return_lse:
            return None, 0
        if lse is None:
            lse = empty(first, (b, h, s), "float32")
        a = self._aux(lse, "lse", "float32", (b, h, s), first, output=True)
        return lse, a.ptr

    def _counter(self, kept_counter, first: Arg) -> int:
        if kept_counter is None:
            return 0
        a = describe(kept_counter, "kept_counter", ndim=None, element="u64", output=True)
        check_same_place(a, self._spec.device, first)
        # The library adds to the first element: an empty view's pointer is
        # into memory that is not the caller's counter.
        if not all(a.shape):
            raise invalid("kept_counter: expected at least one int64 or uint64 element, got "
                          f"shape {tuple(a.shape)}")
        return a.ptr

    # -- entry points --------------------------------------------------------

    def select(self, q, k, *, alpha=None, sink=None, window=None, last_n=None, min_budget=None,
               threshold=None, scale=None, mask: Optional[Tuple[Any, Any]] = None,
               workspace=None, kept_counter=None, layout: str = "bshd", dtype=None,
               stream=None) -> Mask:
        """Finds the kept key blocks of every query block (``fp_select``).

        Writes into `mask` (a :class:`Mask` or ``(counts, ids)``) when given,
        else allocates one next to q. `workspace` needs
        :meth:`select_workspace_bytes`; `kept_counter` (one int64/uint64
        element) accumulates the number of kept blocks.
        """
        qa, ka = self._tokens(q, k, None, None, layout, dtype, takes_v=False)
        (b, s, _, _), _ = bshd(qa, layout)
        h, nb = self._spec.num_q_heads, self.num_blocks(s) if s > 0 else 0
        if mask is None:
            mask = Mask(empty(qa, (b, h, nb), "int32"), empty(qa, (b, h, nb, nb), "int32"))
        else:
            mask = _as_mask(mask)
        cm = self._mask_struct(mask, qa, b, h, nb, output=True)
        params = make_params(alpha=alpha, sink=sink, window=window, last_n=last_n,
                             min_budget=min_budget, threshold=threshold, scale=scale,
                             kept_counter=self._counter(kept_counter, qa))
        needed = self._bytes_or_raise(self._lib.fp_plan_select_workspace_bytes, b, s, layout)
        ws, ws_ptr, ws_bytes = self._workspace(workspace, qa, needed)
        status = self._lib.fp_select(self._live(), c_tensor(qa, layout), c_tensor(ka, layout),
                                     ctypes.byref(params), ctypes.byref(cm), ws_ptr, ws_bytes,
                                     stream_handle(stream, self._spec.device))
        raise_library_error(status, layout)
        return mask

    def attend(self, q, k, v, mask: Tuple[Any, Any], *, scale=None, out=None, lse=None,
               return_lse: bool = False, layout: str = "bshd", dtype=None, stream=None,
               mean_correction: bool = False):
        """Attention over the kept blocks of `mask` (``fp_attend``).

        Returns ``out`` (allocated like q unless given), or ``(out, lse)``
        when `return_lse` or `lse` is given (lse: float32 ``[b, h_q, s]``,
        natural log). `mean_correction`: the blocks `mask` leaves out add
        their block means (docs/semantics.md section 3; CPU plans only).
        """
        qa, ka, va, *rest = self._tokens(q, k, v, out, layout, dtype)
        (b, s, h, _), _ = bshd(qa, layout)
        if out is None:
            out = empty(qa, qa.shape, "same")
            oa = describe(out, "out", qa.dtype)
        else:
            oa = rest[0]
        nb = self.num_blocks(s) if s > 0 else 0
        cm = self._mask_struct(_as_mask(mask), qa, b, self._spec.num_q_heads, nb, output=False)
        lse, lse_ptr = self._lse(lse, return_lse, qa, b, h, s)
        params = make_params(scale=scale, lse=lse_ptr, mean_correction=mean_correction)
        status = self._lib.fp_attend(self._live(), c_tensor(qa, layout), c_tensor(ka, layout),
                                     c_tensor(va, layout), ctypes.byref(cm), c_tensor(oa, layout),
                                     ctypes.byref(params),
                                     stream_handle(stream, self._spec.device))
        raise_library_error(status, layout)
        return (out, lse) if lse is not None else out

    def prefill(self, q, k, v, *, alpha=None, sink=None, window=None, last_n=None,
                min_budget=None, threshold=None, scale=None, out=None, lse=None,
                return_lse: bool = False, workspace=None, kept_counter=None,
                layout: str = "bshd", dtype=None, stream=None, dense_below_tokens=None,
                mean_correction: bool = False, _pre=None):
        """Selection then attention (``fp_prefill``), the mask living in the
        workspace (:meth:`workspace_bytes`). Returns ``out`` or
        ``(out, lse)`` like :meth:`attend`. ``dense_below_tokens``: None or
        -1 = the plan's cost model (:attr:`dense_below_tokens`), 0 = always
        the rule's mask, n = dense attention below n tokens."""
        qa, ka, va, *rest = self._tokens(q, k, v, out, layout, dtype, _pre)
        (b, s, h, _), _ = bshd(qa, layout)
        if out is None:
            out = empty(qa, qa.shape, "same")
            oa = describe(out, "out", qa.dtype)
        else:
            oa = rest[0]
        lse, lse_ptr = self._lse(lse, return_lse, qa, b, h, s)
        params = make_params(alpha=alpha, sink=sink, window=window, last_n=last_n,
                             min_budget=min_budget, threshold=threshold, scale=scale,
                             lse=lse_ptr, kept_counter=self._counter(kept_counter, qa),
                             dense_below_tokens=dense_below_tokens,
                             mean_correction=mean_correction)
        needed = self._bytes_or_raise(self._lib.fp_plan_workspace_bytes, b, s, layout)
        ws, ws_ptr, ws_bytes = self._workspace(workspace, qa, needed)
        status = self._lib.fp_prefill(self._live(), c_tensor(qa, layout), c_tensor(ka, layout),
                                      c_tensor(va, layout), c_tensor(oa, layout),
                                      ctypes.byref(params), ws_ptr, ws_bytes,
                                      stream_handle(stream, self._spec.device))
        raise_library_error(status, layout)
        return (out, lse) if lse is not None else out

    def _bytes_or_raise(self, fn, b, s, layout) -> int:
        n = fn(self._live(), int(b), int(s))
        if n == 0:
            # Out-of-range batch / seq_len: say which tensor dimension.
            message = _capi.last_error()
            dim = {"bshd": (0, 1), "bhsd": (0, 2)}[layout]
            message = message.replace("batch:", f"q.shape[{dim[0]}] (batch):", 1).replace(
                "seq_len:", f"q.shape[{dim[1]}] (seq):", 1)
            raise FlashPrefillError(INVALID, "invalid argument", message)
        return int(n)

    def _mask_struct(self, mask: Mask, first: Arg, b, h, nb, *, output: bool) -> _capi.MaskStruct:
        counts = self._aux(mask.counts, "mask.counts", "int32", (b, h, nb), first, output=output)
        ids = self._aux(mask.ids, "mask.ids", "int32", (b, h, nb, nb), first, output=output)
        m = _capi.MaskStruct()
        m.counts, m.ids = counts.ptr, ids.ptr
        m.batch, m.heads, m.num_blocks = b, h, nb
        return m

    # -- variable-length calls (engine shapes, docs/semantics.md section 2) --

    def _varlen_bytes(self, fn, *sizes) -> int:
        names = ("batch", "total_q", "max_seqlen_q", "max_seqlen_k")
        if len(sizes) == 3:
            names = ("batch", "total_q", "max_seqlen_k")
        values = [int64(name, value) for name, value in zip(names, sizes)]
        n = fn(self._live(), *values)
        if n == 0:
            raise FlashPrefillError(INVALID, "invalid argument", _capi.last_error())
        return int(n)

    def varlen_workspace_bytes(self, batch: int, total_q: int, max_seqlen_q: int,
                               max_seqlen_k: int) -> int:
        """Bytes of the workspace :meth:`prefill_varlen` needs (mask
        included) for these host-side sizes."""
        return self._varlen_bytes(self._lib.fp_plan_varlen_workspace_bytes, batch, total_q,
                                  max_seqlen_q, max_seqlen_k)

    def varlen_select_workspace_bytes(self, batch: int, total_q: int, max_seqlen_q: int,
                                      max_seqlen_k: int) -> int:
        """Bytes of the workspace :meth:`select_varlen` needs (no mask)."""
        return self._varlen_bytes(self._lib.fp_plan_varlen_select_workspace_bytes, batch,
                                  total_q, max_seqlen_q, max_seqlen_k)

    def varlen_mask_bytes(self, batch: int, total_q: int, max_seqlen_k: int) -> int:
        """Bytes of one compact mask (counts + ids)."""
        return self._varlen_bytes(self._lib.fp_plan_varlen_mask_bytes, batch, total_q,
                                  max_seqlen_k)

    def varlen_pooled_keys_bytes(self, batch: int, max_seqlen_k: int) -> int:
        """Bytes of the pooled keys of a varlen call (:meth:`pool_keys_varlen`,
        ``pooled_k=``): ``batch * h_kv * ceil(max_seqlen_k / B) * d`` elements."""
        values = [int64("batch", batch), int64("max_seqlen_k", max_seqlen_k)]
        n = self._lib.fp_plan_varlen_pooled_keys_bytes(self._live(), *values)
        if n == 0:
            raise FlashPrefillError(INVALID, "invalid argument", _capi.last_error())
        return int(n)

    def _pooled_keys(self, pooled_k, p: VarlenProblem, *, output: bool) -> Arg:
        """The caller's pooled keys ``[b, h_kv, ceil(max_seqlen_k / B), d]``,
        contiguous, in q's dtype, next to q."""
        shape = pooled_keys_shape(p, self._spec.block_size)
        a = describe(pooled_k, "pooled_k", p.q.dtype, ndim=None, output=output)
        check_same_place(a, self._spec.device, p.q)
        if a.dtype != p.q.dtype:
            raise invalid(f"pooled_k.dtype: expected {DTYPE_NAMES[p.q.dtype]} (q's dtype), got "
                          f"{pooled_k.dtype}")
        if tuple(a.shape) != shape:
            raise invalid(f"pooled_k: expected shape [b, h_kv, ceil(max_seqlen_k / B), d] = "
                          f"{list(shape)}, got {list(a.shape)}")
        if not contiguous(a):
            raise invalid(f"pooled_k: expected a contiguous array, got strides {a.strides}")
        return a

    def pool_keys_varlen(self, q, k, cu_seqlens_q, cu_seqlens_k=None, *, k_lens=None,
                         page_table=None, max_seqlen_q=None, max_seqlen_k=None, out=None,
                         dtype=None, stream=None):
        """Rule step 1 alone (``fp_pool_keys_varlen``): the pooled keys (block
        means, rounded to the dtype) of every key block of each sequence, as
        ``[b, h_kv, ceil(max_seqlen_k / B), d]`` next to q (written into
        `out` when given; blocks past a sequence's keys are left as they
        are). Pass them back as ``pooled_k=`` to :meth:`select_varlen` or
        :meth:`prefill_varlen`: an engine keeps the pooled keys of a cached
        prefix's full blocks from chunk to chunk, and context parallelism
        selects over keys that live on other GPUs. q is read for its shape
        only."""
        p = self._varlen(q, k, None, cu_seqlens_q, cu_seqlens_k, k_lens, page_table, None,
                         None, max_seqlen_q, max_seqlen_k, dtype, takes_v=False)
        if out is None:
            out = empty(p.q, pooled_keys_shape(p, self._spec.block_size), "same")
        a = self._pooled_keys(out, p, output=True)
        status = self._lib.fp_pool_keys_varlen(self._live(), c_rows(p.q), c_rows(p.k),
                                               ctypes.byref(c_varlen(p)), a.ptr,
                                               stream_handle(stream, self._spec.device))
        raise_varlen_error(status, p)
        return out

    def empty_varlen_workspace(self, batch: int, total_q: int, max_seqlen_q: int,
                               max_seqlen_k: int, *, select_only: bool = False):
        """A workspace for these sizes: a uint8 torch tensor on the plan's
        GPU, or a numpy array for a CPU plan."""
        fn = self.varlen_select_workspace_bytes if select_only else self.varlen_workspace_bytes
        return self._empty_bytes(fn(batch, total_q, max_seqlen_q, max_seqlen_k))

    def _varlen(self, q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens, page_table, apply_last_n,
                out, max_seqlen_q, max_seqlen_k, dtype, pre: Optional[VarlenProblem] = None, *,
                takes_v: bool = True) -> VarlenProblem:
        """Describes a varlen call and checks it against the plan; `pre`:
        already described (and its maxima resolved) by the functional API."""
        if pre is None:
            code = self._spec.dtype if dtype is None else parse_dtype(dtype)
            pre = describe_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens, page_table,
                                  apply_last_n, out, code, takes_v=takes_v)
        p = pre
        if p.q.device != self._spec.device:
            raise invalid(f"q.device: expected {device_name(self._spec.device)} (the plan's "
                          f"device), got {device_name(p.q.device)}")
        if p.q.dtype != self._spec.dtype:
            raise invalid(f"q.dtype: expected {DTYPE_NAMES[self._spec.dtype]} (the plan's dtype), "
                          f"got {p.q.obj.dtype}")
        check_plan_fits(p, self._spec)
        if p.max_seqlen_k is None:
            resolve_maxima(p, max_seqlen_q, max_seqlen_k)
        return p

    def _varlen_lse(self, lse, return_lse, p: VarlenProblem):
        if lse is None and not return_lse:
            return None, 0
        if lse is None:
            lse = empty(p.q, (p.heads_q, p.total_q), "float32")
        a = self._aux(lse, "lse", "float32", (p.heads_q, p.total_q), p.q, output=True)
        return lse, a.ptr

    def _varlen_out(self, out, p: VarlenProblem):
        if out is not None:
            return out, p.out
        out = empty(p.q, p.q.shape, "same")
        return out, describe(out, "out", p.q.dtype, ndim=None)

    def _varlen_mask(self, mask, p: VarlenProblem, *, output: bool):
        """(the mask as given or allocated, its ``fp_varlen_mask_t``)."""
        rows, heads, key_blocks = mask_shape(p, self._spec.block_size)
        if mask is None and output:  # select allocates; attend must be given one
            mask = (empty(p.q, (rows, heads), "int32"),
                    empty(p.q, (rows, heads, key_blocks), "int32"))
        counts, ids = _as_mask_pair(mask, "a flashprefill.VarlenMask")
        c = self._aux(counts, "mask.counts", "int32", (rows, heads), p.q, output=output)
        i = self._aux(ids, "mask.ids", "int32", (rows, heads, key_blocks), p.q, output=output)
        m = _capi.VarlenMaskStruct()
        m.counts, m.ids = c.ptr, i.ptr
        m.num_rows, m.heads, m.max_key_blocks = rows, heads, key_blocks
        return VarlenMask(counts, ids, cu_seqlens_q=p.cu_q.obj,
                          cu_seqlens_k=p.cu_k.obj if p.cu_k is not None else None,
                          k_lens=p.k_lens.obj if p.paged else None,
                          block_size=self._spec.block_size), m

    def select_varlen(self, q, k, cu_seqlens_q, cu_seqlens_k=None, *, k_lens=None,
                      page_table=None, max_seqlen_q=None, max_seqlen_k=None, apply_last_n=None,
                      alpha=None, sink=None, window=None, last_n=None, min_budget=None,
                      threshold=None, scale=None, mask=None, workspace=None, kept_counter=None,
                      pooled_k=None, dtype=None, stream=None, _pre=None) -> VarlenMask:
        """The kept key blocks of every query block of every sequence
        (``fp_select_varlen``), as a :class:`VarlenMask`.

        Writes into `mask` (a :class:`VarlenMask` or ``(counts, ids)`` of
        shapes ``[num_rows, h_q]`` / ``[num_rows, h_q, max_key_blocks]``)
        when given, else allocates one next to q. `workspace` needs
        :meth:`varlen_select_workspace_bytes`. `pooled_k`: the pooled keys
        of :meth:`pool_keys_varlen` to score against instead of pooling k
        (k is then not read).
        """
        p = self._varlen(q, k, None, cu_seqlens_q, cu_seqlens_k, k_lens, page_table,
                         apply_last_n, None, max_seqlen_q, max_seqlen_k, dtype, _pre,
                         takes_v=False)
        pk = None if pooled_k is None else self._pooled_keys(pooled_k, p, output=False)
        result, cm = self._varlen_mask(mask, p, output=True)
        params = make_params(alpha=alpha, sink=sink, window=window, last_n=last_n,
                             min_budget=min_budget, threshold=threshold, scale=scale,
                             kept_counter=self._counter(kept_counter, p.q))
        needed = self.varlen_select_workspace_bytes(p.batch, p.total_q, p.max_seqlen_q,
                                                    p.max_seqlen_k)
        ws, ws_ptr, ws_bytes = self._workspace(workspace, p.q, needed)
        status = self._lib.fp_select_varlen(self._live(), c_rows(p.q), c_rows(p.k),
                                            ctypes.byref(c_varlen(p, pk)), ctypes.byref(params),
                                            ctypes.byref(cm), ws_ptr, ws_bytes,
                                            stream_handle(stream, self._spec.device))
        raise_varlen_error(status, p)
        return result

    def attend_varlen(self, q, k, v, cu_seqlens_q, cu_seqlens_k=None, *, mask, k_lens=None,
                      page_table=None, max_seqlen_q=None, max_seqlen_k=None, scale=None,
                      out=None, lse=None, return_lse: bool = False, dtype=None, stream=None,
                      mean_correction: bool = False):
        """Attention over the kept blocks of `mask` (``fp_attend_varlen``).
        Returns ``out`` (like q unless given), or ``(out, lse)`` when
        `return_lse` or `lse` is given (lse: float32 ``[h_q, total_q]``)."""
        p = self._varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens, page_table, None, out,
                         max_seqlen_q, max_seqlen_k, dtype)
        _, cm = self._varlen_mask(mask, p, output=False)
        out, oa = self._varlen_out(out, p)
        lse, lse_ptr = self._varlen_lse(lse, return_lse, p)
        params = make_params(scale=scale, lse=lse_ptr, mean_correction=mean_correction)
        status = self._lib.fp_attend_varlen(self._live(), c_rows(p.q), c_rows(p.k), c_rows(p.v),
                                            ctypes.byref(c_varlen(p)), ctypes.byref(cm),
                                            c_rows(oa), ctypes.byref(params),
                                            stream_handle(stream, self._spec.device))
        raise_varlen_error(status, p)
        return (out, lse) if lse is not None else out

    def prefill_varlen(self, q, k, v, cu_seqlens_q, cu_seqlens_k=None, *, k_lens=None,
                       page_table=None, max_seqlen_q=None, max_seqlen_k=None,
                       apply_last_n=None, alpha=None, sink=None, window=None, last_n=None,
                       min_budget=None, threshold=None, scale=None, out=None, lse=None,
                       return_lse: bool = False, workspace=None, kept_counter=None, dtype=None,
                       stream=None, dense_below_tokens=None, pooled_k=None,
                       mean_correction: bool = False, _pre=None):
        """Selection then attention for a variable-length batch
        (``fp_prefill_varlen``), the mask living in the workspace
        (:meth:`varlen_workspace_bytes`). Arguments as
        :func:`flashprefill.prefill_varlen`; returns ``out`` or
        ``(out, lse)`` like :meth:`attend_varlen`. `pooled_k` as
        :meth:`select_varlen`."""
        p = self._varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens, page_table, apply_last_n,
                         out, max_seqlen_q, max_seqlen_k, dtype, _pre)
        pk = None if pooled_k is None else self._pooled_keys(pooled_k, p, output=False)
        out, oa = self._varlen_out(out, p)
        lse, lse_ptr = self._varlen_lse(lse, return_lse, p)
        params = make_params(alpha=alpha, sink=sink, window=window, last_n=last_n,
                             min_budget=min_budget, threshold=threshold, scale=scale,
                             lse=lse_ptr, kept_counter=self._counter(kept_counter, p.q),
                             dense_below_tokens=dense_below_tokens,
                             mean_correction=mean_correction)
        needed = self.varlen_workspace_bytes(p.batch, p.total_q, p.max_seqlen_q, p.max_seqlen_k)
        ws, ws_ptr, ws_bytes = self._workspace(workspace, p.q, needed)
        status = self._lib.fp_prefill_varlen(self._live(), c_rows(p.q), c_rows(p.k),
                                             c_rows(p.v), ctypes.byref(c_varlen(p, pk)), c_rows(oa),
                                             ctypes.byref(params), ws_ptr, ws_bytes,
                                             stream_handle(stream, self._spec.device))
        raise_varlen_error(status, p)
        return (out, lse) if lse is not None else out



def _as_mask(mask: Any) -> Mask:
    return Mask(*_as_mask_pair(mask, "a flashprefill.Mask"))


def _as_mask_pair(mask: Any, kind: str) -> Tuple[Any, Any]:
    if isinstance(mask, (Mask, VarlenMask)):
        return tuple(mask)
    if isinstance(mask, (tuple, list)) and len(mask) == 2:
        return tuple(mask)
    raise invalid(f"mask: expected {kind} or a (counts, ids) pair, got {type(mask).__name__}")


_TENSOR_DIM = re.compile(r"\b(q|out|k|v)\.(?:(shape|strides)\[([0-3])\]|(batch|seq|heads|dim)\b)")
_FIELD_INDEX = {"batch": 0, "seq": 1, "heads": 2, "dim": 3}


def raise_varlen_error(status: int, p: VarlenProblem) -> None:
    """Raises the library's error for a varlen call with the dimensions it
    names (``q.shape[1]``, or the reference's ``q.seq``) in the caller's
    terms: q, out and packed k / v, which the library sees as ``[1, rows, h,
    d]``, are ``[rows, h, d]`` here; paged k / v keep their indices."""
    try:
        _capi.check(status)
    except FlashPrefillError as error:
        packed = {"q", "out"} | (set() if p.paged else {"k", "v"})

        def caller_index(m):
            name, kind = m.group(1), m.group(2) or "shape"
            index = int(m.group(3)) if m.group(3) else _FIELD_INDEX[m.group(4)]
            if name in packed:
                if index == 0:
                    return m.group(0)
                index -= 1
            return f"{name}.{kind}[{index}]"

        message = _TENSOR_DIM.sub(caller_index, error.message)
        if message == error.message:
            raise
        raise FlashPrefillError(error.status, error.status_name, message) from None


def plan(*, dtype: Any = "bf16", head_dim: int = 128, num_q_heads: int = 32,
         num_kv_heads: int = 8, max_seq_len: int, max_batch: int = 1,
         block_size: Optional[int] = None, device: Any = "cuda",
         pooled_queries: bool = False, max_workspace_bytes: int = 0) -> Plan:
    """Creates a :class:`Plan` (``fp_plan_create``): generates and compiles
    (or fetches from the kernel cache) every kernel of the spec.

    `device`: ``"cuda"`` (torch's current device), ``"cuda:N"``, ``N``, or
    ``"cpu"`` for the CPU reference. `block_size` None is the library
    default (128).
    """
    return Plan(dtype=dtype, head_dim=head_dim, num_q_heads=num_q_heads,
                num_kv_heads=num_kv_heads, max_seq_len=max_seq_len, max_batch=max_batch,
                block_size=block_size, device=device, pooled_queries=pooled_queries,
                max_workspace_bytes=max_workspace_bytes)


# ---------------------------------------------------------------------------
# The plan cache behind the functional API
# ---------------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: Dict[tuple, Plan] = {}
# Plans replaced by a larger one stay alive: kernels they enqueued may still
# be running and CUDA graphs may have captured them. Growth is geometric, so
# this holds a handful per key.
_retired: list = []


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


def cached_plan(dtype: int, head_dim: int, num_q_heads: int, num_kv_heads: int,
                block_size: Optional[int], device: int, pooled: bool, batch: int,
                seq_len: int) -> Plan:
    """The cached plan for the key, grown (recreated) when (batch, seq_len)
    exceeds it: to the next powers of two, or to the exact size when the
    rounded one is refused (shared memory grows with max_seq_len)."""
    if block_size is None:
        block_size = default_block_size()
    key = (dtype, head_dim, num_q_heads, num_kv_heads, block_size, device, bool(pooled))
    found = _cache.get(key)
    if found is not None and found._spec.max_seq_len >= seq_len and found._spec.max_batch >= batch:
        return found
    with _cache_lock:
        found = _cache.get(key)
        if found is not None and found._spec.max_seq_len >= seq_len and found._spec.max_batch >= batch:
            return found
        old_s = found._spec.max_seq_len if found else 0
        old_b = found._spec.max_batch if found else 0
        attempts = [(max(old_b, _next_pow2(batch)), max(old_s, _next_pow2(seq_len)))]
        if attempts[0] != (max(old_b, batch), max(old_s, seq_len)):
            attempts.append((max(old_b, batch), max(old_s, seq_len)))
        for i, (b, s) in enumerate(attempts):
            try:
                new = Plan(dtype=DTYPE_NAMES[dtype], head_dim=head_dim, num_q_heads=num_q_heads,
                           num_kv_heads=num_kv_heads, block_size=block_size, device=device,
                           pooled_queries=pooled, max_batch=b, max_seq_len=s)
                break
            except FlashPrefillError as error:
                if i + 1 == len(attempts) or error.status != UNSUPPORTED:
                    raise _name_plan_error(error)
        if found is not None:
            _retired.append(found)
        _cache[key] = new
        return new


def _name_plan_error(error: FlashPrefillError) -> FlashPrefillError:
    """Plan-creation errors name spec fields; from prefill() the caller gave
    tensors, so say which tensor dimension the field came from."""
    hints = {
        "spec.head_dim": "q.shape[-1] (head_dim)",
        "spec.num_q_heads": "q heads",
        "spec.max_seq_len": "q seq length",
    }
    for field, hint in hints.items():
        if error.message.startswith(field):
            return FlashPrefillError(error.status, error.status_name,
                                     f"{error.message} [from {hint}]")
    return error


def clear_plan_cache() -> None:
    """Forgets the cached plans of :func:`prefill` / :func:`mask` (they stay
    alive until the process ends, for the reasons in ``_retired``)."""
    with _cache_lock:
        _retired.extend(_cache.values())
        _cache.clear()
