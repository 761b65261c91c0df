"""Runtime parameters (``fp_params_t``) and the library's defaults.

Every default comes from the library (``fp_params_init`` /
``fp_plan_spec_init``, i.e. ``flashprefill/defaults.h``); nothing is
repeated here.
"""

from __future__ import annotations

import ctypes
import math
import numbers
import struct
import threading
from typing import Any, Dict, Optional

from . import _capi
from ._validate import INT64_MAX, THRESHOLDS, int32, integer, invalid, threshold_kind

_template_lock = threading.Lock()
_params_template: Optional[bytes] = None


def make_params(*, alpha=None, sink=None, window=None, last_n=None, min_budget=None,
                threshold=None, scale=None, lse=0, kept_counter=0,
                dense_below_tokens=None, mean_correction=None) -> _capi.Params:
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
        p.sink = int32("params.sink", sink)
    if window is not None:
        p.window = int32("params.window", window)
    if last_n is not None:
        p.last_n = int32("params.last_n", last_n)
    if min_budget is not None:
        p.min_budget = int32("params.min_budget", min_budget)
    if threshold is not None:
        p.threshold_kind = threshold_kind(threshold)
    if scale is not None:
        # The field is a float32 where <= 0 means 1/sqrt(head_dim): a tiny
        # scale must not round to 0 and silently become the default.
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not (
            0 < ctypes.c_float(scale).value < math.inf
        ):
            raise invalid(
                "scale: expected a positive finite number representable as float32, or None for "
                f"1/sqrt(head_dim), got {scale!r}"
            )
        p.scale = float(scale)
    if dense_below_tokens is not None:
        p.dense_below_tokens = integer(
            "params.dense_below_tokens", dense_below_tokens, low=-1, high=INT64_MAX,
            expected="an integer in [-1, 2^63) (-1 = the plan's cost model, 0 = never)")
    if mean_correction is not None:
        if not isinstance(mean_correction, bool):
            raise invalid(f"mean_correction: expected True or False, got {mean_correction!r}")
        p.mean_correction = int(mean_correction)
    p.lse = lse or None
    p.kept_counter = kept_counter or None
    return p


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

