"""Arguments as the C API sees them: torch tensors and numpy arrays reduced
to a data pointer, a ``[b, s, h, d]`` shape and element strides, and a
device, without copying; outputs allocated next to an argument.

torch CUDA tensors belong to a GPU plan on their device; torch CPU tensors
and numpy arrays to the CPU backend. torch is never imported here: a tensor
can only exist if the program imported it.
"""

from __future__ import annotations

import sys
from typing import Any, Optional, Tuple

from . import _capi
from ._capi import FP_DEVICE_CPU, FP_DTYPE_BF16, FP_DTYPE_F16
from ._validate import invalid

_DTYPE_ALIASES = {
    "bf16": FP_DTYPE_BF16,
    "bfloat16": FP_DTYPE_BF16,
    "f16": FP_DTYPE_F16,
    "fp16": FP_DTYPE_F16,
    "float16": FP_DTYPE_F16,
    "half": FP_DTYPE_F16,
}
DTYPE_NAMES = {FP_DTYPE_BF16: "bf16", FP_DTYPE_F16: "f16"}


def torch_module():
    """The torch module if the program imported it (never imports it)."""
    return sys.modules.get("torch")


def is_torch(x: Any) -> bool:
    torch = torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


def numpy_module():
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
        torch = torch_module()
        if torch is not None and isinstance(dtype, torch.dtype):
            code = _torch_dtype_code(torch, dtype)
            if code is not None:
                return code
        else:
            try:
                np = numpy_module()
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


def describe(x: Any, name: str, dtype: Optional[int] = None, *, ndim: Optional[int] = 4,
             element: str = "qkv", output: bool = False) -> Arg:
    """Reduces `x` (a torch tensor or numpy array) to an :class:`Arg`.

    `element` says what element type is expected: ``"qkv"`` (bf16 / f16,
    where `dtype` resolves a numpy uint16 array), ``"int32"``, ``"float32"``,
    ``"u64"`` (int64 / uint64), or ``"bytes"`` (anything; workspaces).
    `ndim` None takes any rank. `output`: the library writes through it, so
    a numpy array must be writable (a read-only one may view memory that
    must not change, even an immutable ``bytes``).
    """
    torch = torch_module()
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
        if ndim is not None and x.dim() != ndim:
            raise invalid(f"{name}: expected a {ndim}-d tensor, got shape {tuple(x.shape)}")
        return Arg(x, name, True, x.data_ptr(), tuple(x.shape), x.stride(), device, code)

    np = numpy_module()
    if not isinstance(x, np.ndarray):
        raise invalid(
            f"{name}: expected a torch.Tensor or numpy.ndarray, got {type(x).__name__}"
        )
    if output and not x.flags.writeable:
        raise invalid(f"{name}: expected a writable array, got a read-only one")
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
    if ndim is not None and x.ndim != ndim:
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
            raise invalid(f"{name}.dtype: expected {DTYPE_NAMES[dtype]}, got {actual}")
        return native_code
    allowed = expected_types[element]
    if actual not in allowed:
        raise invalid(f"{name}.dtype: expected {' or '.join(map(str, allowed))}, got {actual}")
    return None


def check_same_dtype(a: Arg, q: Arg) -> None:
    """k, v, out hold the same element type as q (for numpy this also keeps
    a uint16 bit-pattern array from pairing with a float16 one)."""
    if a.obj.dtype != q.obj.dtype:
        raise invalid(f"{a.name}.dtype: expected {q.obj.dtype} (like q), got {a.obj.dtype}")


def device_name(device: int) -> str:
    return "cpu" if device == FP_DEVICE_CPU else f"cuda:{device}"


def bshd(arg: Arg, layout: str) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    """Shape and strides of `arg` in the C API's ``[b, s, h, d]`` order."""
    if layout == "bhsd":
        perm = (0, 2, 1, 3)
        return tuple(arg.shape[i] for i in perm), tuple(arg.strides[i] for i in perm)
    return arg.shape, arg.strides


def c_tensor(arg: Arg, layout: str) -> _capi.Tensor:
    shape, strides = bshd(arg, layout)
    t = _capi.Tensor()
    t.data = arg.ptr
    t.shape[:] = shape
    t.strides[:] = strides
    return t


def empty(like: Arg, shape, kind: str):
    """An uninitialized array of `kind` ('same', 'int32', 'float32', 'u8')
    next to `like`: torch.empty on its device (the caller's caching
    allocator, CUDA-graph pools included) or numpy on the host."""
    if like.torch:
        torch = torch_module()
        dtype = {"same": like.obj.dtype, "int32": torch.int32, "float32": torch.float32,
                 "u8": torch.uint8}[kind]
        return torch.empty(tuple(shape), dtype=dtype, device=like.obj.device)
    np = numpy_module()
    dtype = {"same": like.obj.dtype, "int32": np.int32, "float32": np.float32, "u8": np.uint8}[kind]
    return np.empty(tuple(shape), dtype=dtype)


def check_same_place(arg: Arg, plan_device: int, first: Arg) -> None:
    if arg.device != plan_device:
        raise invalid(
            f"{arg.name}.device: expected {device_name(plan_device)} (the plan's device), "
            f"got {device_name(arg.device)}"
        )
    if arg.torch != first.torch:
        raise invalid(f"{arg.name}: expected a {first.kind()} like {first.name}, got a {arg.kind()}")


def contiguous(a: Arg) -> bool:
    expected = 1
    for size, stride in zip(reversed(a.shape), reversed(a.strides)):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True

