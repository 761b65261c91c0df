"""The CUDA stream of a GPU call."""

from __future__ import annotations

import numbers
from typing import Any, Optional

from ._arrays import torch_module
from ._capi import FP_DEVICE_CPU
from ._validate import invalid


def stream_handle(stream: Any, device: int, torch_args: bool) -> Optional[int]:
    """The CUstream for a GPU call: `stream` (a torch.cuda.Stream, an object
    with ``cuda_stream``, or a raw handle), else torch's current stream on
    the plan's device."""
    if device == FP_DEVICE_CPU:
        return None
    if stream is None:
        torch = torch_module()
        if torch is None:
            return None  # the legacy default stream
        return torch.cuda.current_stream(device).cuda_stream or None
    handle = getattr(stream, "cuda_stream", stream)
    if isinstance(handle, numbers.Integral):
        return int(handle) or None
    raise invalid(f"stream: expected a torch.cuda.Stream or a CUstream handle (int), got {stream!r}")
