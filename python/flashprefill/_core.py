"""Plans, argument adaptation and the numpy / eager entry points.

Everything here works on torch tensors and numpy arrays alike: an argument is
reduced to what the C API needs (a data pointer, a ``[b, s, h, d]`` shape and
element strides, a device) without copying. torch CUDA tensors go to a GPU
plan on their device; torch CPU tensors and numpy arrays go to the CPU
backend, which runs the library's exact reference.
"""

from __future__ import annotations

import ctypes
import math
import numbers
import re
import struct
import sys
import threading
from typing import Any, Dict, NamedTuple, Optional, Tuple

from . import _capi
from ._capi import FP_DEVICE_CPU, FP_DTYPE_BF16, FP_DTYPE_F16, FlashPrefillError

_INVALID = 1  # FP_ERROR_INVALID_ARGUMENT
_UNSUPPORTED = 2  # FP_ERROR_UNSUPPORTED

THRESHOLDS = {"relative_max": 0, "min_max": 1}
LAYOUTS = ("bshd", "bhsd")
_DTYPE_ALIASES = {
    "bf16": FP_DTYPE_BF16,
    "bfloat16": FP_DTYPE_BF16,
    "f16": FP_DTYPE_F16,
    "fp16": FP_DTYPE_F16,
    "float16": FP_DTYPE_F16,
    "half": FP_DTYPE_F16,
}
_DTYPE_NAMES = {FP_DTYPE_BF16: "bf16", FP_DTYPE_F16: "f16"}


def invalid(message: str) -> FlashPrefillError:
    """An invalid-argument error raised by this package (same type and
    status as the library's own)."""
    return FlashPrefillError(_INVALID, "invalid argument", message)


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------


def _torch():
    """The torch module if the program imported it (never imports it)."""
    return sys.modules.get("torch")


def is_torch(x: Any) -> bool:
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def _np():
    import numpy

    return numpy


def _torch_dtype_code(torch, dtype) -> Optional[int]:
    return _torch_types(torch)[0].get(dtype)


def parse_dtype(dtype: Any, name: str = "dtype") -> int:
    """``"bf16"`` / ``"f16"`` (and aliases), ``torch.bfloat16`` /
    ``torch.float16`` or ``numpy.float16`` to an ``fp_dtype_t`` value."""
    if isinstance(dtype, str):
        code = _DTYPE_ALIASES.get(dtype.lower())
        if code is not None:
            return code
    else:
        torch = _torch()
        if torch is not None and isinstance(dtype, torch.dtype):
            code = _torch_dtype_code(torch, dtype)
            if code is not None:
                return code
        else:
            try:
                np = _np()
                npd = np.dtype(dtype)
                if npd == np.float16:
                    return FP_DTYPE_F16
                if npd.name == "bfloat16":  # ml_dtypes.bfloat16
                    return FP_DTYPE_BF16
            except (TypeError, ImportError):
                pass
    raise invalid(
        f"{name}: expected 'bf16' or 'f16' (or torch.bfloat16, torch.float16, "
        f"numpy.float16), got {dtype!r}"
    )


class Arg:
    """One tensor argument as the C API sees it.

    ``shape`` and ``strides`` are in the caller's order (what the caller's
    ``layout`` says); ``c_shape`` / ``c_strides`` are permuted to the C API's
    ``[b, s, h, d]``.
    """

    __slots__ = ("obj", "name", "torch", "ptr", "shape", "strides", "device", "dtype")

    def __init__(self, obj, name, torch, ptr, shape, strides, device, dtype):
        self.obj, self.name, self.torch, self.ptr = obj, name, torch, ptr
        self.shape, self.strides, self.device, self.dtype = shape, strides, device, dtype

    def kind(self) -> str:
        return "torch.Tensor" if self.torch else "numpy.ndarray"


_torch_tables = None


def _torch_types(torch):
    """(fp dtype of q/k/v element types, allowed types of auxiliary buffers),
    built once: describe() runs several times per call."""
    global _torch_tables
    if _torch_tables is None:
        _torch_tables = (
            {torch.bfloat16: FP_DTYPE_BF16, torch.float16: FP_DTYPE_F16},
            {"int32": (torch.int32,), "float32": (torch.float32,),
             "u64": (torch.int64, getattr(torch, "uint64", torch.int64))},
        )
    return _torch_tables


def describe(x: Any, name: str, dtype: Optional[int] = None, *, ndim: int = 4,
             element: str = "qkv") -> Arg:
    """Reduces `x` (a torch tensor or numpy array) to an :class:`Arg`.

    `element` says what element type is expected: ``"qkv"`` (bf16 / f16,
    where `dtype` resolves a numpy uint16 array), ``"int32"``, ``"float32"``,
    ``"u64"`` (int64 / uint64), or ``"bytes"`` (anything; workspaces).
    """
    torch = _torch()
    if torch is not None and isinstance(x, torch.Tensor):
        dev = x.device
        if dev.type == "cuda":
            device = dev.index if dev.index is not None else torch.cuda.current_device()
        elif dev.type == "cpu":
            device = FP_DEVICE_CPU
        else:
            raise invalid(f"{name}.device: expected a CUDA or CPU tensor, got {dev}")
        codes, aux = _torch_types(torch)
        code = _check_element(x.dtype, codes.get(x.dtype), name, dtype, element, aux)
        if x.dim() != ndim:
            raise invalid(f"{name}: expected a {ndim}-d tensor, got shape {tuple(x.shape)}")
        return Arg(x, name, True, x.data_ptr(), tuple(x.shape), x.stride(), device, code)

    np = _np()
    if not isinstance(x, np.ndarray):
        raise invalid(
            f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}"
        )
    if not x.dtype.isnative:
        raise invalid(f"{name}.dtype: expected native byte order, got {x.dtype.str}")
    if element == "qkv":
        if x.dtype == np.float16:
            native = FP_DTYPE_F16
        elif x.dtype.name == "bfloat16":
            native = FP_DTYPE_BF16
        elif x.dtype == np.uint16:
            if dtype is None:
                raise invalid(
                    f"{name}.dtype: uint16 arrays hold bf16 or f16 bit patterns; pass "
                    "dtype='bf16' (or 'f16') to say which"
                )
            native = dtype
        else:
            native = None
        code = _check_element(x.dtype, native, name, dtype, element, {})
    else:
        code = _check_element(x.dtype, None, name, dtype, element,
                              {"int32": (np.dtype(np.int32),), "float32": (np.dtype(np.float32),),
                               "u64": (np.dtype(np.int64), np.dtype(np.uint64))})
    if x.ndim != ndim:
        raise invalid(f"{name}: expected a {ndim}-d array, got shape {x.shape}")
    itemsize = x.dtype.itemsize
    if any(s % itemsize for s in x.strides):
        raise invalid(f"{name}.strides: expected whole elements, got byte strides {x.strides}")
    strides = tuple(s // itemsize for s in x.strides)
    return Arg(x, name, False, x.ctypes.data, tuple(x.shape), strides, FP_DEVICE_CPU, code)


def _check_element(actual, native_code, name, dtype, element, expected_types):
    """Checks an argument's element type; returns its fp_dtype_t for q/k/v."""
    if element == "bytes":
        return None
    if element == "qkv":
        if native_code is None:
            raise invalid(
                f"{name}.dtype: expected bfloat16 or float16 (numpy: float16, or uint16 "
                f"bf16 bit patterns with dtype='bf16'), got {actual}"
            )
        if dtype is not None and native_code != dtype:
            raise invalid(f"{name}.dtype: expected {_DTYPE_NAMES[dtype]}, got {actual}")
        return native_code
    allowed = expected_types[element]
    if actual not in allowed:
        raise invalid(f"{name}.dtype: expected {' or '.join(map(str, allowed))}, got {actual}")
    return None


def _check_same_dtype(a: Arg, q: Arg) -> None:
    """k, v, out hold the same element type as q (for numpy this also keeps
    a uint16 bit-pattern array from pairing with a float16 one)."""
    if a.obj.dtype != q.obj.dtype:
        raise invalid(f"{a.name}.dtype: expected {q.obj.dtype} (like q), got {a.obj.dtype}")


def device_name(device: int) -> str:
    return "cpu" if device == FP_DEVICE_CPU else f"cuda:{device}"


def _bshd(arg: Arg, layout: str) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """Shape and strides of `arg` in the C API's ``[b, s, h, d]`` order."""
    if layout == "bhsd":
        perm = (0, 2, 1, 3)
        return tuple(arg.shape[i] for i in perm), tuple(arg.strides[i] for i in perm)
    return arg.shape, arg.strides


def c_tensor(arg: Arg, layout: str) -> _capi.Tensor:
    shape, strides = _bshd(arg, layout)
    t = _capi.Tensor()
    t.data = arg.ptr
    t.shape[:] = shape
    t.strides[:] = strides
    return t


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise invalid(f"layout: expected 'bshd' ([b, s, h, d]) or 'bhsd' ([b, h, s, d]), got {layout!r}")
    return layout


_DIM_REF = re.compile(r"\b(q|k|v|out)\.(shape|strides)\[([12])\]")


def raise_library_error(status: int, layout: str) -> None:
    """Raises the library's error; with ``layout='bhsd'`` the dimension
    indices it names (always ``[b, s, h, d]``) are translated to the
    caller's ``[b, h, s, d]`` so that ``q.shape[1]`` means the caller's q."""
    try:
        _capi.check(status)
    except FlashPrefillError as error:
        if layout != "bhsd" or not _DIM_REF.search(error.message):
            raise
        message = _DIM_REF.sub(
            lambda m: f"{m.group(1)}.{m.group(2)}[{3 - int(m.group(3))}]", error.message
        )
        raise FlashPrefillError(error.status, error.status_name,
                                message + " (indices of the layout='bhsd' argument)") from None


def _int32(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise invalid(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if not -(2 ** 31) <= value < 2 ** 31:
        raise invalid(f"{name}: expected a 32-bit integer, got {value}")
    return value


def _integer(name: str, value: Any, *, low: int = -(2 ** 63), bits: int = 63) -> int:
    """An integer for an int64 (or, with bits=64 and low=0, uint64) field;
    its range beyond that is the library's to check."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise invalid(f"{name}: expected an integer, got {value!r}")
    if not low <= int(value) < 2 ** bits:
        raise invalid(f"{name}: expected an integer in [{low}, 2^{bits}), got {value}")
    return int(value)


# ---------------------------------------------------------------------------
# Parameters and defaults
# ---------------------------------------------------------------------------

_template_lock = threading.Lock()
_params_template: Optional[bytes] = None


def make_params(*, alpha=None, sink=None, window=None, last_n=None, min_budget=None,
                threshold=None, scale=None, lse=0, kept_counter=0,
                dense_below_tokens=None) -> _capi.Params:
    """An ``fp_params_t``: the library's defaults (``fp_params_init``) with
    the given values set. Range checks are the library's, so its messages
    (``params.alpha: ...``) reach the caller unchanged."""
    global _params_template
    if _params_template is None:
        with _template_lock:
            _params_template = bytes(_capi.default_params())
    p = _capi.Params.from_buffer_copy(_params_template)
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
            raise invalid(f"params.alpha: expected a number in [0, 1], got {alpha!r}")
        p.alpha = float(alpha)
    if sink is not None:
        p.sink = _int32("params.sink", sink)
    if window is not None:
        p.window = _int32("params.window", window)
    if last_n is not None:
        p.last_n = _int32("params.last_n", last_n)
    if min_budget is not None:
        p.min_budget = _int32("params.min_budget", min_budget)
    if threshold is not None:
        p.threshold_kind = threshold_kind(threshold)
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not (
            math.isfinite(scale) and scale > 0
        ):
            raise invalid(
                f"scale: expected a positive finite number, or None for 1/sqrt(head_dim), got {scale!r}"
            )
        p.scale = float(scale)
    if dense_below_tokens is not None:
        if isinstance(dense_below_tokens, bool) or not isinstance(dense_below_tokens, numbers.Integral):
            raise invalid("params.dense_below_tokens: expected an int (-1 = the plan's cost "
                          f"model, 0 = never), got {dense_below_tokens!r}")
        p.dense_below_tokens = int(dense_below_tokens)
    p.lse = lse or None
    p.kept_counter = kept_counter or None
    return p


def threshold_kind(threshold: Any) -> int:
    """``"relative_max"`` / ``"min_max"`` (or 0 / 1) to ``threshold_kind``."""
    if isinstance(threshold, str):
        if threshold in THRESHOLDS:
            return THRESHOLDS[threshold]
    elif isinstance(threshold, numbers.Integral) and not isinstance(threshold, bool):
        return _int32("params.threshold_kind", threshold)  # range: the library's
    raise invalid(
        f"threshold: expected 'relative_max' (t = alpha * max) or 'min_max' "
        f"(t = alpha * max + (1 - alpha) * min), got {threshold!r}"
    )


def _float32_repr(value: float) -> float:
    """The shortest decimal that rounds to the same float32 (0.1f -> 0.1)."""
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.unpack("f", struct.pack("f", candidate))[0] == value:
            return candidate
    return value


def defaults() -> Dict[str, Any]:
    """The operator's defaults, as the library defines them
    (``flashprefill/defaults.h`` through ``fp_params_init`` and
    ``fp_plan_spec_init``)."""
    p = _capi.default_params()
    spec = _capi.default_spec()
    kinds = {v: k for k, v in THRESHOLDS.items()}
    return {
        "alpha": _float32_repr(p.alpha),
        "sink": p.sink,
        "window": p.window,
        "last_n": p.last_n,
        "min_budget": p.min_budget,
        "threshold": kinds.get(p.threshold_kind, p.threshold_kind),
        "block_size": spec.block_size,
        "scale": None,  # 1 / sqrt(head_dim)
        "pooled_queries": bool(spec.pooled_queries),
    }


_block_size_default: Optional[int] = None


def default_block_size() -> int:
    global _block_size_default
    if _block_size_default is None:
        _block_size_default = _capi.default_spec().block_size
    return _block_size_default


# ---------------------------------------------------------------------------
# Allocation on the caller's side (its allocator, its device)
# ---------------------------------------------------------------------------


def empty(like: Arg, shape, kind: str):
    """An uninitialized array of `kind` ('same', 'int32', 'float32', 'u8')
    next to `like`: torch.empty on its device (the caller's caching
    allocator, CUDA-graph pools included) or numpy on the host."""
    if like.torch:
        torch = _torch()
        dtype = {"same": like.obj.dtype, "int32": torch.int32, "float32": torch.float32,
                 "u8": torch.uint8}[kind]
        return torch.empty(tuple(shape), dtype=dtype, device=like.obj.device)
    np = _np()
    dtype = {"same": like.obj.dtype, "int32": np.int32, "float32": np.float32, "u8": np.uint8}[kind]
    return np.empty(tuple(shape), dtype=dtype)


def _check_same_place(arg: Arg, plan_device: int, first: Arg) -> None:
    if arg.device != plan_device:
        raise invalid(
            f"{arg.name}.device: expected {device_name(plan_device)} (the plan's device), "
            f"got {device_name(arg.device)}"
        )
    if arg.torch != first.torch:
        raise invalid(f"{arg.name}: expected a {first.kind()} like {first.name}, got a {arg.kind()}")


def _stream_handle(stream: Any, device: int, torch_args: bool) -> Optional[int]:
    """The CUstream for a GPU call: `stream` (a torch.cuda.Stream, an object
    with ``cuda_stream``, or a raw handle), else torch's current stream on
    the plan's device."""
    if device == FP_DEVICE_CPU:
        return None
    if stream is None:
        torch = _torch()
        if torch is None:
            return None  # the legacy default stream
        return torch.cuda.current_stream(device).cuda_stream or None
    handle = getattr(stream, "cuda_stream", stream)
    if isinstance(handle, numbers.Integral):
        return int(handle) or None
    raise invalid(f"stream: expected a torch.cuda.Stream or a CUstream handle (int), got {stream!r}")


# ---------------------------------------------------------------------------
# The mask
# ---------------------------------------------------------------------------


class Mask(NamedTuple):
    """The block mask (DESIGN.md section 1), FlexAttention-style padded rows.

    ``counts``: int32 ``[b, h_q, nb]``, the number of kept key blocks of each
    query block. ``ids``: int32 ``[b, h_q, nb, nb]``, the kept key-block ids of
    each row ascending in ``ids[..., :count]`` (entries past the count are
    unspecified). Key block ``j`` of query block ``I`` needs causal masking
    iff ``j == I``. Torch tensors on the query's device, or numpy arrays.
    """

    counts: Any
    ids: Any

    @property
    def num_blocks(self) -> int:
        return int(self.counts.shape[-1])

    def to_dense(self):
        """Boolean ``[b, h_q, nb, nb]``: ``dense[..., I, j]`` is True iff key
        block j is kept for query block I."""
        nb = self.num_blocks
        if is_torch(self.counts):
            torch = _torch()
            cols = torch.arange(nb, device=self.ids.device)
            valid = cols < self.counts.unsqueeze(-1).long()
            # Entries past the count are unspecified: route them to a spare
            # column that is dropped afterwards.
            ids = torch.where(valid, self.ids.long(), torch.full_like(self.ids, nb, dtype=torch.long))
            dense = torch.zeros(*self.ids.shape[:-1], nb + 1, dtype=torch.bool, device=self.ids.device)
            dense.scatter_(-1, ids, True)
            return dense[..., :nb]
        np = _np()
        valid = np.arange(nb) < self.counts[..., None]
        ids = np.where(valid, self.ids, nb)
        dense = np.zeros(self.ids.shape[:-1] + (nb + 1,), dtype=bool)
        np.put_along_axis(dense, ids.astype(np.int64), True, axis=-1)
        return dense[..., :nb]

    def density(self) -> float:
        """Kept blocks / causal blocks (forced blocks included)."""
        nb = self.num_blocks
        total = 1
        for n in self.counts.shape[:-1]:
            total *= int(n)
        total *= nb * (nb + 1) // 2
        return float(self.counts.sum()) / total if total else 0.0


# ---------------------------------------------------------------------------
# Plans
# ---------------------------------------------------------------------------


def parse_device(device: Any) -> int:
    """``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``N`` (``-1``: CPU) or a
    ``torch.device`` to ``fp_plan_spec_t.device``."""
    torch = _torch()
    if torch is not None and isinstance(device, torch.device):
        device = str(device)
    if isinstance(device, numbers.Integral) and not isinstance(device, bool):
        if device >= FP_DEVICE_CPU:
            return int(device)
    elif isinstance(device, str):
        if device == "cpu":
            return FP_DEVICE_CPU
        if device == "cuda":
            if torch is not None and torch.cuda.is_available():
                return torch.cuda.current_device()
            return 0
        match = re.fullmatch(r"cuda:(\d+)", device)
        if match:
            return int(match.group(1))
    raise invalid(f"device: expected 'cpu', 'cuda', 'cuda:N', N >= 0 or -1 (CPU), got {device!r}")


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
        spec.head_dim = _int32("spec.head_dim", head_dim)
        spec.num_q_heads = _int32("spec.num_q_heads", num_q_heads)
        spec.num_kv_heads = _int32("spec.num_kv_heads", num_kv_heads)
        if block_size is not None:
            spec.block_size = _int32("spec.block_size", block_size)
        spec.pooled_queries = 1 if pooled_queries else 0
        spec.max_batch = _integer("spec.max_batch", max_batch)
        spec.max_seq_len = _integer("spec.max_seq_len", max_seq_len)
        spec.device = parse_device(device)
        spec.max_workspace_bytes = _integer("spec.max_workspace_bytes", max_workspace_bytes,
                                            low=0, bits=64)
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
            "dtype": _DTYPE_NAMES[s.dtype], "head_dim": s.head_dim, "num_q_heads": s.num_q_heads,
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
        n = fn(self._live(), int(batch), int(seq_len))
        if n == 0:
            raise FlashPrefillError(_INVALID, "invalid argument", _capi.last_error())
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
        if self._spec.device == FP_DEVICE_CPU:
            return _np().empty(n, dtype=_np().uint8)
        torch = _torch()
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

    def _tokens(self, q, k, v, out, layout, dtype, pre=None):
        """Describes q, k (v, out) and checks they live where the plan runs.
        `pre`: q and k already described by the functional API."""
        check_layout(layout)
        code = self._spec.dtype if dtype is None else parse_dtype(dtype)
        if pre is not None:
            qa, ka = pre
        else:
            qa, ka = describe(q, "q", code), describe(k, "k", code)
        args = [qa, ka]
        if v is not None:
            args.append(describe(v, "v", code))
        if out is not None:
            args.append(describe(out, "out", code))
        for a in args:
            _check_same_place(a, self._spec.device, qa)
            _check_same_dtype(a, qa)
            if a.dtype != self._spec.dtype:
                raise invalid(f"{a.name}.dtype: expected {_DTYPE_NAMES[self._spec.dtype]} "
                              f"(the plan's dtype), got {a.obj.dtype}")
        if out is not None and not qa.torch and not out.flags.writeable:
            raise invalid("out: expected a writable array")
        return args

    def _aux(self, x, name, element, shape, first: Arg) -> Arg:
        """A contiguous auxiliary buffer (lse, mask, counter)."""
        a = describe(x, name, ndim=len(shape), element=element)
        _check_same_place(a, self._spec.device, first)
        if tuple(a.shape) != tuple(shape):
            raise invalid(f"{name}: expected shape {tuple(shape)}, got {tuple(a.shape)}")
        if not _contiguous(a):
            raise invalid(f"{name}: expected a contiguous buffer, got strides {a.strides}")
        return a

    def _workspace(self, workspace, first: Arg, needed: int):
        if workspace is None:
            ws = empty(first, (needed,), "u8")
        else:
            ws = workspace
        a = describe(ws, "workspace", ndim=ws.ndim if hasattr(ws, "ndim") else 1, element="bytes")
        _check_same_place(a, self._spec.device, first)
        if not _contiguous(a):
            raise invalid("workspace: expected a contiguous buffer")
        nbytes = (ws.numel() * ws.element_size()) if a.torch else ws.nbytes
        return ws, a.ptr, nbytes

    def _lse(self, lse, return_lse, first: Arg, b, h, s):
        if lse is None and not return_lse:
            return None, 0
        if lse is None:
            lse = empty(first, (b, h, s), "float32")
        a = self._aux(lse, "lse", "float32", (b, h, s), first)
        return lse, a.ptr

    def _counter(self, kept_counter, first: Arg) -> int:
        if kept_counter is None:
            return 0
        a = describe(kept_counter, "kept_counter", ndim=kept_counter.ndim, element="u64")
        _check_same_place(a, self._spec.device, first)
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
        qa, ka = self._tokens(q, k, None, None, layout, dtype)
        (b, s, _, _), _ = _bshd(qa, layout)
        h, nb = self._spec.num_q_heads, self.num_blocks(s) if s > 0 else 0
        if mask is None:
            mask = Mask(empty(qa, (b, h, nb), "int32"), empty(qa, (b, h, nb, nb), "int32"))
        else:
            mask = Mask(*mask)
        cm = self._mask_struct(mask, qa, b, h, nb)
        params = make_params(alpha=alpha, sink=sink, window=window, last_n=last_n,
                             min_budget=min_budget, threshold=threshold, scale=scale,
                             kept_counter=self._counter(kept_counter, qa))
        needed = self._bytes_or_raise(self._lib.fp_plan_select_workspace_bytes, b, s, layout)
        ws, ws_ptr, ws_bytes = self._workspace(workspace, qa, needed)
        status = self._lib.fp_select(self._live(), c_tensor(qa, layout), c_tensor(ka, layout),
                                     ctypes.byref(params), ctypes.byref(cm), ws_ptr, ws_bytes,
                                     _stream_handle(stream, self._spec.device, qa.torch))
        raise_library_error(status, layout)
        return mask

    def attend(self, q, k, v, mask: Tuple[Any, Any], *, scale=None, out=None, lse=None,
               return_lse: bool = False, layout: str = "bshd", dtype=None, stream=None):
        """Attention over the kept blocks of `mask` (``fp_attend``).

        Returns ``out`` (allocated like q unless given), or ``(out, lse)``
        when `return_lse` or `lse` is given (lse: float32 ``[b, h_q, s]``,
        natural log).
        """
        qa, ka, va, *rest = self._tokens(q, k, v, out, layout, dtype)
        (b, s, h, _), _ = _bshd(qa, layout)
        if out is None:
            out = empty(qa, qa.shape, "same")
            oa = describe(out, "out", qa.dtype)
        else:
            oa = rest[0]
        nb = self.num_blocks(s) if s > 0 else 0
        cm = self._mask_struct(Mask(*mask), qa, b, self._spec.num_q_heads, nb)
        lse, lse_ptr = self._lse(lse, return_lse, qa, b, h, s)
        params = make_params(scale=scale, lse=lse_ptr)
        status = self._lib.fp_attend(self._live(), c_tensor(qa, layout), c_tensor(ka, layout),
                                     c_tensor(va, layout), ctypes.byref(cm), c_tensor(oa, layout),
                                     ctypes.byref(params),
                                     _stream_handle(stream, self._spec.device, qa.torch))
        raise_library_error(status, layout)
        return (out, lse) if lse is not None else out

    def prefill(self, q, k, v, *, alpha=None, sink=None, window=None, last_n=None,
                min_budget=None, threshold=None, scale=None, out=None, lse=None,
                return_lse: bool = False, workspace=None, kept_counter=None,
                layout: str = "bshd", dtype=None, stream=None, dense_below_tokens=None,
                _pre=None):
        """Selection then attention (``fp_prefill``), the mask living in the
        workspace (:meth:`workspace_bytes`). Returns ``out`` or
        ``(out, lse)`` like :meth:`attend`. ``dense_below_tokens``: None or
        -1 = the plan's cost model (:attr:`dense_below_tokens`), 0 = always
        the rule's mask, n = dense attention below n tokens."""
        qa, ka, va, *rest = self._tokens(q, k, v, out, layout, dtype, _pre)
        (b, s, h, _), _ = _bshd(qa, layout)
        if out is None:
            out = empty(qa, qa.shape, "same")
            oa = describe(out, "out", qa.dtype)
        else:
            oa = rest[0]
        lse, lse_ptr = self._lse(lse, return_lse, qa, b, h, s)
        params = make_params(alpha=alpha, sink=sink, window=window, last_n=last_n,
                             min_budget=min_budget, threshold=threshold, scale=scale,
                             lse=lse_ptr, kept_counter=self._counter(kept_counter, qa),
                             dense_below_tokens=dense_below_tokens)
        needed = self._bytes_or_raise(self._lib.fp_plan_workspace_bytes, b, s, layout)
        ws, ws_ptr, ws_bytes = self._workspace(workspace, qa, needed)
        status = self._lib.fp_prefill(self._live(), c_tensor(qa, layout), c_tensor(ka, layout),
                                      c_tensor(va, layout), c_tensor(oa, layout),
                                      ctypes.byref(params), ws_ptr, ws_bytes,
                                      _stream_handle(stream, self._spec.device, qa.torch))
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
            raise FlashPrefillError(_INVALID, "invalid argument", message)
        return int(n)

    def _mask_struct(self, mask: Mask, first: Arg, b, h, nb) -> _capi.MaskStruct:
        counts = self._aux(mask.counts, "mask.counts", "int32", (b, h, nb), first)
        ids = self._aux(mask.ids, "mask.ids", "int32", (b, h, nb, nb), first)
        m = _capi.MaskStruct()
        m.counts, m.ids = counts.ptr, ids.ptr
        m.batch, m.heads, m.num_blocks = b, h, nb
        return m


def _contiguous(a: Arg) -> bool:
    expected = 1
    for size, stride in zip(reversed(a.shape), reversed(a.strides)):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


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
                new = Plan(dtype=_DTYPE_NAMES[dtype], head_dim=head_dim, num_q_heads=num_q_heads,
                           num_kv_heads=num_kv_heads, block_size=block_size, device=device,
                           pooled_queries=pooled, max_batch=b, max_seq_len=s)
                break
            except FlashPrefillError as error:
                if i + 1 == len(attempts) or error.status != _UNSUPPORTED:
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


def problem(q, k, layout: str, dtype) -> Tuple[Arg, Arg, int, int, int, int, int]:
    """(q arg, k arg, batch, seq, h_q, h_kv, head_dim) of a functional call, with
    the checks that must come before a plan can be picked."""
    check_layout(layout)
    code = None if dtype is None else parse_dtype(dtype)
    qa = describe(q, "q", code)
    ka = describe(k, "k", qa.dtype)
    _check_same_dtype(ka, qa)
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
        out = empty(qa, qa.shape, "same") if out is None else out
        if return_lse or lse is not None:
            (b, s, h, _), _ = _bshd(qa, layout)
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
    (b, s, _, _), _ = _bshd(qa, layout)
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
# bf16 helpers for numpy (which has no bfloat16)
# ---------------------------------------------------------------------------


def to_bf16(x) -> Any:
    """float32 (or anything numpy converts to it) -> bf16 bit patterns as
    uint16, rounded to nearest even (NaN stays NaN)."""
    np = _np()
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
               >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(bits.view(np.float32))
    return np.where(nan, ((bits >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16), rounded)


def from_bf16(x) -> Any:
    """bf16 bit patterns (uint16) -> float32, exactly."""
    np = _np()
    return (np.asarray(x, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)
