"""The CUDA stream of a GPU call."""

from __future__ import annotations

import ctypes
import numbers
from typing import Any, Optional

from ._arrays import torch_module
from ._capi import FP_DEVICE_CPU
from ._validate import invalid


_POINTER_LIMIT = 2 ** (8 * ctypes.sizeof(ctypes.c_void_p))


def stream_handle(stream: Any, device: int) -> Optional[int]:
    """The CUstream for a GPU call: `stream` (a torch.cuda.Stream, an object
    with ``cuda_stream``, or a raw handle), else torch's current stream on
    the plan's device. A given stream is checked on CPU plans too, so that
    a bad one fails the same way everywhere."""
    if stream is not None:
        handle = getattr(stream, "cuda_stream", stream)
        # ctypes would wrap a negative or oversized handle into some other
        # pointer.
        if (isinstance(handle, bool) or not isinstance(handle, numbers.Integral)
                or not 0 <= handle < _POINTER_LIMIT):
            raise invalid("stream: expected a torch.cuda.Stream or a CUstream handle (an integer "
                          f"in [0, 2^{8 * ctypes.sizeof(ctypes.c_void_p)})), got {stream!r}")
        handle = int(handle) or None
    if device == FP_DEVICE_CPU:
        return None
    if stream is not None:
        return handle
    torch = torch_module()
    if torch is None:
        return None  # the legacy default stream
    return torch.cuda.current_stream(device).cuda_stream or None
