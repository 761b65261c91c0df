"""bf16 helpers for numpy, which has no bfloat16."""

from __future__ import annotations

from typing import Any

from ._arrays import numpy_module


def to_bf16(x) -> Any:
    """float32 (or anything numpy converts to it) -> bf16 bit patterns as
    uint16, rounded to nearest even (NaN stays NaN)."""
    np = numpy_module()
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
               >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(bits.view(np.float32))
    return np.where(nan, ((bits >> np.uint32(16)) | np.uint32(0x40)).astype(np.uint16), rounded)


def from_bf16(x) -> Any:
    """bf16 bit patterns (uint16) -> float32, exactly."""
    np = numpy_module()
    return (np.asarray(x, dtype=np.uint16).astype(np.uint32) << np.uint32(16)).view(np.float32)
