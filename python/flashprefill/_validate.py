"""Checks of scalar arguments, and errors that name the argument.

Every integer a caller gives is range-checked here, against the C field it
will be stored in, before ctypes narrows it (ctypes truncates silently:
``c_int32(2**32 - 1)`` is -1). Library errors are re-raised with the
caller's dimension indices.
"""

from __future__ import annotations

import numbers
import re
from typing import Any

from . import _capi
from ._capi import FlashPrefillError

INVALID = 1  # FP_ERROR_INVALID_ARGUMENT
UNSUPPORTED = 2  # FP_ERROR_UNSUPPORTED

THRESHOLDS = {"relative_max": 0, "min_max": 1}
LAYOUTS = ("bshd", "bhsd")

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
UINT64_MAX = 2 ** 64 - 1


def invalid(message: str) -> FlashPrefillError:
    """An invalid-argument error raised by this package (same type and
    status as the library's own)."""
    return FlashPrefillError(INVALID, "invalid argument", message)


def integer(name: str, value: Any, *, low: int, high: int, expected: str = "") -> int:
    """`value` as an int in [low, high] (the C field's range, or narrower),
    else an error naming `name`; `expected` describes the range in words
    (default: the interval)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise invalid(f"{name}: expected an integer, got {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise invalid(f"{name}: expected {expected or f'an integer in [{low}, {high}]'}, "
                      f"got {value}")
    return value


def int32(name: str, value: Any) -> int:
    """An integer for an int32 field; finer ranges are the library's to check."""
    return integer(name, value, low=INT32_MIN, high=INT32_MAX, expected="a 32-bit integer")


def int64(name: str, value: Any, *, low: int = INT64_MIN) -> int:
    """An integer for an int64 field (at least `low`)."""
    return integer(name, value, low=low, high=INT64_MAX,
                   expected=f"an integer in [{low}, 2^63)")


def uint64(name: str, value: Any) -> int:
    """An integer for a uint64 field."""
    return integer(name, value, low=0, high=UINT64_MAX, expected="an integer in [0, 2^64)")


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise invalid(f"layout: expected 'bshd' ([b, s, h, d]) or 'bhsd' ([b, h, s, d]), got {layout!r}")
    return layout


def threshold_kind(threshold: Any) -> int:
    """``"relative_max"`` / ``"min_max"`` (or 0 / 1) to ``threshold_kind``."""
    if isinstance(threshold, str):
        if threshold in THRESHOLDS:
            return THRESHOLDS[threshold]
    elif isinstance(threshold, numbers.Integral) and not isinstance(threshold, bool):
        return int32("params.threshold_kind", threshold)  # range: the library's
    raise invalid(
        f"threshold: expected 'relative_max' (t = alpha * max) or 'min_max' "
        f"(t = alpha * max + (1 - alpha) * min), got {threshold!r}"
    )


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
