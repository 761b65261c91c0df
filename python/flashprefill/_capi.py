"""ctypes binding of the FlashPrefill C API (``flashprefill/flashprefill.h``).

The C header is the single source of truth: the structures below mirror its
layouts field for field (fields are only ever appended, ``struct_size``
first), and every default value is read from the library through
``fp_plan_spec_init`` / ``fp_params_init`` instead of being repeated here.

The library is loaded lazily, on the first call that needs it, so that
``import flashprefill`` never fails; a missing library raises
:class:`LibraryNotFoundError` naming every place that was searched.
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path
from typing import List, Optional

__all__ = [
    "FlashPrefillError",
    "LibraryNotFoundError",
    "FP_DEVICE_CPU",
    "FP_DTYPE_BF16",
    "FP_DTYPE_F16",
    "PlanSpec",
    "Params",
    "Tensor",
    "MaskStruct",
    "Varlen",
    "VarlenMaskStruct",
    "AttnState",
    "FP_DTYPE_F32",
    "lib",
    "library_path",
    "check",
]

# Values of the C enums and macros (flashprefill.h). These are ABI: the
# numbers never change, so mirroring them is safe.
FP_OK = 0
FP_ERROR_NOT_FOUND = 3
FP_DTYPE_BF16 = 0
FP_DTYPE_F16 = 1
FP_DTYPE_F32 = 2  # fp_attn_state_t (merge_states) only
FP_DEVICE_CPU = -1

_STATUS_NAMES = {
    0: "ok",
    1: "invalid argument",
    2: "unsupported",
    3: "not found",
    4: "compile error",
    5: "CUDA error",
    6: "no CUDA device",
    7: "I/O error",
    8: "internal error",
}


class FlashPrefillError(RuntimeError):
    """An error reported by the FlashPrefill library (or by this package
    while preparing a call to it).

    Attributes:
        status: the ``fp_status_t`` code (1 = invalid argument, ...).
        status_name: its name as the library spells it ("invalid argument").
        message: the library's message, which names the offending argument
            and the expected value (e.g. ``params.alpha: expected a value in
            [0, 1], got 1.5``).
    """

    def __init__(self, status: int, status_name: str, message: str):
        self.status = int(status)
        self.status_name = status_name
        self.message = message
        # Some messages already start with the status name ("no CUDA device:
        # ..."): don't say it twice.
        text = message if message.startswith(status_name + ":") else f"{status_name}: {message}"
        super().__init__(text)


class LibraryNotFoundError(FlashPrefillError):
    """``libflashprefill.so`` could not be found or loaded."""

    def __init__(self, message: str):
        super().__init__(FP_ERROR_NOT_FOUND, "not found", message)


# ---------------------------------------------------------------------------
# Structures (flashprefill.h)
# ---------------------------------------------------------------------------


class PlanSpec(ctypes.Structure):
    """``fp_plan_spec_t``: the compile-time facts of a plan."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("dtype", ctypes.c_int),  # fp_dtype_t (a C enum: int-sized)
        ("head_dim", ctypes.c_int32),
        ("head_dim_v", ctypes.c_int32),
        ("num_q_heads", ctypes.c_int32),
        ("num_kv_heads", ctypes.c_int32),
        ("block_size", ctypes.c_int32),
        ("causal", ctypes.c_int32),
        ("pooled_queries", ctypes.c_int32),
        ("max_batch", ctypes.c_int64),
        ("max_seq_len", ctypes.c_int64),
        ("device", ctypes.c_int32),
        ("max_workspace_bytes", ctypes.c_uint64),
    ]


class Params(ctypes.Structure):
    """``fp_params_t``: the runtime parameters of one call."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("alpha", ctypes.c_float),
        ("sink", ctypes.c_int32),
        ("window", ctypes.c_int32),
        ("last_n", ctypes.c_int32),
        ("min_budget", ctypes.c_int32),
        ("threshold_kind", ctypes.c_int32),
        ("scale", ctypes.c_float),
        ("lse", ctypes.c_void_p),
        ("kept_counter", ctypes.c_void_p),
        ("cu_seqlens_q", ctypes.c_void_p),
        ("cu_seqlens_k", ctypes.c_void_p),
        ("max_seqlen_q", ctypes.c_int64),
        ("max_seqlen_k", ctypes.c_int64),
        # Version 2.
        ("dense_below_tokens", ctypes.c_int64),
        # Version 3.
        ("mean_correction", ctypes.c_int32),
    ]


class Tensor(ctypes.Structure):
    """``fp_tensor_t``: a ``[b, s, h, d]`` view with element strides."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("shape", ctypes.c_int64 * 4),
        ("strides", ctypes.c_int64 * 4),
    ]


class MaskStruct(ctypes.Structure):
    """``fp_mask_t``: counts ``[b, h_q, nb]`` and ids ``[b, h_q, nb, nb]``."""

    _fields_ = [
        ("counts", ctypes.c_void_p),
        ("ids", ctypes.c_void_p),
        ("batch", ctypes.c_int64),
        ("heads", ctypes.c_int64),
        ("num_blocks", ctypes.c_int64),
    ]


class Varlen(ctypes.Structure):
    """``fp_varlen_t``: the sequences of a variable-length call (engine
    shapes): query offsets, packed key offsets or a page table with key
    lengths, per-sequence ``last_n``, and the host-side maxima."""

    _fields_ = [
        ("struct_size", ctypes.c_size_t),
        ("batch", ctypes.c_int64),
        ("max_seqlen_q", ctypes.c_int64),
        ("max_seqlen_k", ctypes.c_int64),
        ("cu_seqlens_q", ctypes.c_void_p),
        ("cu_seqlens_k", ctypes.c_void_p),
        ("page_table", ctypes.c_void_p),
        ("max_pages", ctypes.c_int64),
        ("k_lens", ctypes.c_void_p),
        ("apply_last_n", ctypes.c_void_p),
        ("pooled_k", ctypes.c_void_p),  # version 2
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.struct_size = ctypes.sizeof(Varlen)


class VarlenMaskStruct(ctypes.Structure):
    """``fp_varlen_mask_t``: counts ``[num_rows, h_q]`` and ids
    ``[num_rows, h_q, max_key_blocks]``."""

    _fields_ = [
        ("counts", ctypes.c_void_p),
        ("ids", ctypes.c_void_p),
        ("num_rows", ctypes.c_int64),
        ("heads", ctypes.c_int64),
        ("max_key_blocks", ctypes.c_int64),
    ]


class AttnState(ctypes.Structure):
    """``fp_attn_state_t``: one attention state for ``fp_merge_states``: O
    as a ``[b, s, h, d]`` view, its dtype (bf16, f16 or f32), and the fp32
    natural-log LSE indexed ``[b, h, s]`` with element strides."""

    _fields_ = [
        ("o", Tensor),
        ("dtype", ctypes.c_int),  # fp_dtype_t
        ("lse", ctypes.c_void_p),
        ("lse_strides", ctypes.c_int64 * 3),
    ]


class _Plan(ctypes.Structure):
    """The opaque ``fp_plan_t``."""


PlanHandle = ctypes.POINTER(_Plan)

# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_LIB_NAME = "libflashprefill.so"
_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_lib_path: Optional[str] = None


def _candidates() -> List[Path]:
    """Where the library is looked for, in order.

    1. ``$FLASHPREFILL_LIBRARY`` (the file, or a folder holding it): an
       explicit choice always wins, and nothing else is tried.
    2. ``flashprefill/_lib/libflashprefill.so``: the copy an install puts
       next to the package.
    3. ``<repo>/build/lib/libflashprefill.so``: running from a source
       checkout (``python/flashprefill`` two levels below the repo root),
       or ``$FLASHPREFILL_BUILD_DIR/lib`` when that is set.
    """
    env = os.environ.get("FLASHPREFILL_LIBRARY")
    if env:
        path = Path(env)
        return [path / _LIB_NAME if path.is_dir() else path]
    here = Path(__file__).resolve().parent
    found = [here / "_lib" / _LIB_NAME]
    build = os.environ.get("FLASHPREFILL_BUILD_DIR")
    if build:
        found.append(Path(build) / "lib" / _LIB_NAME)
    found.append(here.parent.parent / "build" / "lib" / _LIB_NAME)
    return found


def _declare(cdll: ctypes.CDLL) -> None:
    """Sets argtypes / restype of every entry point used (ctypes would
    otherwise truncate pointers and size_t results to int)."""
    spec_p, params_p = ctypes.POINTER(PlanSpec), ctypes.POINTER(Params)
    tensor_p, mask_p = ctypes.POINTER(Tensor), ctypes.POINTER(MaskStruct)
    varlen_p, vmask_p = ctypes.POINTER(Varlen), ctypes.POINTER(VarlenMaskStruct)
    state_p = ctypes.POINTER(AttnState)
    vp, sz, i64, status = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int64, ctypes.c_int
    signatures = {
        "fp_plan_spec_init": (None, [ctypes.c_void_p]),
        "fp_params_init": (None, [ctypes.c_void_p]),
        "fp_params_init_sized": (None, [ctypes.c_void_p, ctypes.c_size_t]),
        "fp_plan_spec_init_sized": (None, [ctypes.c_void_p, ctypes.c_size_t]),
        "fp_plan_create": (status, [spec_p, ctypes.POINTER(PlanHandle)]),
        "fp_plan_destroy": (None, [PlanHandle]),
        "fp_plan_workspace_bytes": (sz, [PlanHandle, i64, i64]),
        "fp_plan_select_workspace_bytes": (sz, [PlanHandle, i64, i64]),
        "fp_plan_mask_bytes": (sz, [PlanHandle, i64, i64]),
        "fp_plan_dense_below_tokens": (i64, [PlanHandle]),
        "fp_select": (status, [PlanHandle, tensor_p, tensor_p, params_p, mask_p, vp, sz, vp]),
        "fp_attend": (status, [PlanHandle, tensor_p, tensor_p, tensor_p, mask_p, tensor_p, params_p, vp]),
        "fp_prefill": (status, [PlanHandle, tensor_p, tensor_p, tensor_p, tensor_p, params_p, vp, sz, vp]),
        "fp_plan_varlen_workspace_bytes": (sz, [PlanHandle, i64, i64, i64, i64]),
        "fp_plan_varlen_select_workspace_bytes": (sz, [PlanHandle, i64, i64, i64, i64]),
        "fp_plan_varlen_mask_bytes": (sz, [PlanHandle, i64, i64, i64]),
        "fp_plan_varlen_pooled_keys_bytes": (sz, [PlanHandle, i64, i64]),
        "fp_pool_keys_varlen": (status, [PlanHandle, tensor_p, tensor_p, varlen_p, vp, vp]),
        "fp_select_varlen": (status, [PlanHandle, tensor_p, tensor_p, varlen_p, params_p,
                                      vmask_p, vp, sz, vp]),
        "fp_attend_varlen": (status, [PlanHandle, tensor_p, tensor_p, tensor_p, varlen_p,
                                      vmask_p, tensor_p, params_p, vp]),
        "fp_prefill_varlen": (status, [PlanHandle, tensor_p, tensor_p, tensor_p, varlen_p,
                                       tensor_p, params_p, vp, sz, vp]),
        "fp_merge_states": (status, [PlanHandle, state_p, state_p, state_p, vp]),
        "fp_last_error": (ctypes.c_char_p, []),
        "fp_status_name": (ctypes.c_char_p, [ctypes.c_int]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(cdll, name)  # AttributeError names a missing symbol
        fn.restype = restype
        fn.argtypes = argtypes


def _check_layouts(cdll: ctypes.CDLL) -> None:
    """The library's struct sizes must cover this binding's mirrors: a
    smaller one means the library predates a field this package sets."""
    inits = (("fp_plan_spec_init_sized", PlanSpec, lambda b: cdll.fp_plan_spec_init_sized(b, 4096)),
             ("fp_params_init_sized", Params, lambda b: cdll.fp_params_init_sized(b, 4096)))
    for init, mirror, fill in inits:
        # A newer library may have appended fields: give init room for them.
        buffer = ctypes.create_string_buffer(4096)
        fill(buffer)
        size = ctypes.c_size_t.from_buffer(buffer).value
        if size < ctypes.sizeof(mirror):
            raise LibraryNotFoundError(
                f"{_lib_path}: {init} reports sizeof {size}, smaller than this "
                f"package's {mirror.__name__} ({ctypes.sizeof(mirror)} bytes): "
                "the library is older than the Python package; rebuild it"
            )


def lib() -> ctypes.CDLL:
    """The loaded library (loading it on first use)."""
    global _lib, _lib_path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path in _candidates():
            if not path.is_file():
                tried.append(f"{path} (not found)")
                continue
            try:
                cdll = ctypes.CDLL(str(path))
                _declare(cdll)
            except (OSError, AttributeError) as error:
                tried.append(f"{path} ({error})")
                continue
            _lib_path = str(path)
            _check_layouts(cdll)
            _lib = cdll
            return _lib
        raise LibraryNotFoundError(
            "libflashprefill.so: could not load it; looked in: "
            + "; ".join(tried)
            + ". Set FLASHPREFILL_LIBRARY to the library's path, or reinstall "
            "the package with FLASHPREFILL_BUILD_DIR set to the CMake build "
            "folder (the one holding lib/libflashprefill.so)."
        )


def library_path() -> str:
    """The path of the loaded library (loads it if needed)."""
    lib()
    assert _lib_path is not None
    return _lib_path


def status_name(status: int) -> str:
    name = lib().fp_status_name(status)
    return name.decode() if name else _STATUS_NAMES.get(status, f"status {status}")


def last_error() -> str:
    message = lib().fp_last_error()
    return message.decode("utf-8", "replace") if message else ""


def check(status: int) -> None:
    """Raises :class:`FlashPrefillError` for a non-OK status, carrying the
    calling thread's ``fp_last_error()``."""
    if status != FP_OK:
        raise FlashPrefillError(status, status_name(status), last_error())


def default_spec() -> PlanSpec:
    """A ``fp_plan_spec_t`` as ``fp_plan_spec_init`` fills it."""
    buffer = ctypes.create_string_buffer(4096)
    lib().fp_plan_spec_init_sized(buffer, ctypes.sizeof(PlanSpec))
    spec = PlanSpec.from_buffer_copy(buffer.raw[: ctypes.sizeof(PlanSpec)])
    # Declare the size of the structure we actually pass.
    spec.struct_size = ctypes.sizeof(PlanSpec)
    return spec


def default_params() -> Params:
    """A ``fp_params_t`` as ``fp_params_init`` fills it."""
    buffer = ctypes.create_string_buffer(4096)
    lib().fp_params_init_sized(buffer, ctypes.sizeof(Params))
    params = Params.from_buffer_copy(buffer.raw[: ctypes.sizeof(Params)])
    params.struct_size = ctypes.sizeof(Params)
    return params

