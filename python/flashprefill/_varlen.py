"""Arguments of variable-length calls (engine shapes, docs/semantics.md
section 2) as the C API sees them: packed queries ``[total_q, h_q, d]`` with
``cu_seqlens_q``; keys and values packed ``[total_k, h_kv, d]`` with
``cu_seqlens_k``, or paged ``[num_pages, page_size, h_kv, d]`` with
``page_table`` and ``k_lens``; the host-side maxima; the ``fp_varlen_t``.

The lengths stay where the caller keeps them (on the GPU: device memory).
This module reads them on the host only when the caller left a maximum out
and it has to be computed (torch CUDA: a copy and a synchronisation); then
it checks them too, with the CPU reference's checks and wording, so that a
bad offset is named here instead of sizing a plan or becoming a read out of
bounds in a kernel that cannot check device memory. With both maxima given
the library checks host lengths itself (CPU plans).
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

from . import _capi
from ._arrays import Arg, check_same_dtype, contiguous, describe, device_name, numpy_module
from ._validate import int64, invalid

QUERY_DIMS = "[total_q, h_q, d]"
PACKED_DIMS = "[total_k, h_kv, d]"
PAGED_DIMS = "[num_pages, page_size, h_kv, d]"


class VarlenProblem:
    """The described arguments of one variable-length call.

    ``q``, ``k``, ``v``, ``out``: :class:`Arg` (``v`` / ``out`` None when the
    entry point has none). ``cu_q``, ``cu_k``, ``k_lens``, ``page_table``,
    ``apply_last_n``: :class:`Arg` or None. ``max_seqlen_q`` /
    ``max_seqlen_k`` are None until :func:`resolve_maxima` sets them.
    """

    __slots__ = ("q", "k", "v", "out", "cu_q", "cu_k", "k_lens", "page_table",
                 "apply_last_n", "batch", "total_q", "heads_q", "heads_kv", "head_dim",
                 "max_seqlen_q", "max_seqlen_k")

    def __init__(self):
        self.max_seqlen_q: Optional[int] = None
        self.max_seqlen_k: Optional[int] = None

    @property
    def paged(self) -> bool:
        return self.page_table is not None

    @property
    def max_pages(self) -> int:
        return self.page_table.shape[1] if self.paged else 0

    @property
    def page_size(self) -> int:
        return self.k.shape[1] if self.paged else 0

    @property
    def key_capacity(self) -> int:
        """The most keys one sequence can hold in this call's K/V."""
        if self.paged:
            return self.max_pages * self.page_size
        return self.k.shape[0]


def _same_place(a: Arg, q: Arg) -> None:
    """Every argument lives where q lives (lengths included: the kernels
    read them on the device) and is of q's kind (torch or numpy)."""
    if a.torch != q.torch:
        raise invalid(f"{a.name}: expected a {q.kind()} like q, got a {a.kind()}")
    if a.device != q.device:
        raise invalid(f"{a.name}.device: expected {device_name(q.device)} (q's device), got "
                      f"{device_name(a.device)}")


def _tokens(x, name: str, dims: str, ndim: int, dtype: Optional[int], *,
            output: bool = False) -> Arg:
    a = describe(x, name, dtype, ndim=None, output=output)
    if len(a.shape) != ndim:
        raise invalid(f"{name}: expected a {ndim}-d {a.kind()} {dims}, got shape {a.shape}")
    return a


def _lengths(x, name: str, shape_words: str, length: Optional[int], q: Arg, *,
             ndim: int = 1) -> Arg:
    """A contiguous int32 length array with `length` entries along dim 0
    (None: at least one)."""
    a = describe(x, name, ndim=None, element="int32")
    if len(a.shape) != ndim or (a.shape[0] != length if length is not None else a.shape[0] < 1):
        raise invalid(f"{name}: expected shape {shape_words}, got {a.shape}")
    if not contiguous(a):
        raise invalid(f"{name}: expected a contiguous array, got strides {a.strides}")
    _same_place(a, q)
    return a


def describe_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, k_lens, page_table, apply_last_n,
                    out, dtype: Optional[int], *, takes_v: bool = True) -> VarlenProblem:
    """Describes and checks everything that can be checked without a plan
    and without reading lengths: kinds, element types, ranks, shapes,
    devices, which of packed / paged was chosen."""
    p = VarlenProblem()
    if cu_seqlens_k is not None and page_table is not None:
        raise invalid("cu_seqlens_k, page_table: expected one of them (packed K/V with "
                      "cu_seqlens_k, or paged K/V with page_table and k_lens), got both")
    if cu_seqlens_k is None and page_table is None:
        raise invalid("cu_seqlens_k, page_table: expected one of them (packed K/V "
                      f"{PACKED_DIMS} with cu_seqlens_k, or paged K/V {PAGED_DIMS} with "
                      "page_table and k_lens), got neither")
    paged = page_table is not None
    if paged and k_lens is None:
        raise invalid("k_lens: expected an int32 [b] array of key lengths with page_table "
                      "(paged K/V), got None")
    if not paged and k_lens is not None:
        raise invalid("k_lens: expected None with packed K/V (cu_seqlens_k gives the key "
                      "lengths), got an array")

    p.q = _tokens(q, "q", QUERY_DIMS, 3, dtype)
    kv_dims, kv_ndim = (PAGED_DIMS, 4) if paged else (PACKED_DIMS, 3)
    p.k = _tokens(k, "k", kv_dims, kv_ndim, p.q.dtype)
    p.v = _tokens(v, "v", kv_dims, kv_ndim, p.q.dtype) if takes_v else None
    p.out = (_tokens(out, "out", QUERY_DIMS, 3, p.q.dtype, output=True)
             if out is not None else None)
    for a in (p.k, p.v, p.out):
        if a is not None:
            _same_place(a, p.q)
            check_same_dtype(a, p.q)

    p.total_q, p.heads_q, p.head_dim = p.q.shape
    p.heads_kv = p.k.shape[-2]
    if p.k.shape[-1] != p.head_dim:
        raise invalid(f"k.shape[{kv_ndim - 1}] (d): expected {p.head_dim} (q.shape[2]), got "
                      f"{p.k.shape[-1]}")
    if p.heads_kv <= 0 or p.heads_q % p.heads_kv != 0:
        raise invalid(f"q.shape[1] (h_q): expected a multiple of k.shape[{kv_ndim - 2}] "
                      f"(h_kv = {p.heads_kv}), got {p.heads_q}")
    if p.v is not None and p.v.shape != p.k.shape:
        raise invalid(f"v: expected k's shape {p.k.shape}, got {p.v.shape}")
    if p.out is not None and p.out.shape != p.q.shape:
        raise invalid(f"out: expected q's shape {p.q.shape}, got {p.out.shape}")

    p.cu_q = _lengths(cu_seqlens_q, "cu_seqlens_q", "[b+1] (b >= 0 sequences)", None, p.q)
    p.batch = p.cu_q.shape[0] - 1
    if paged:
        p.cu_k = None
        p.k_lens = _lengths(k_lens, "k_lens", f"[b] = [{p.batch}]", p.batch, p.q)
        p.page_table = _lengths(page_table, "page_table",
                                f"[b, max_pages] = [{p.batch}, >= 1]", p.batch, p.q, ndim=2)
        if p.page_table.shape[1] < 1:
            raise invalid(f"page_table.shape[1] (max_pages): expected >= 1, got "
                          f"{p.page_table.shape[1]}")
    else:
        p.cu_k = _lengths(cu_seqlens_k, "cu_seqlens_k", f"[b+1] = [{p.batch + 1}] (like "
                          "cu_seqlens_q)", p.batch + 1, p.q)
        p.k_lens = p.page_table = None
    p.apply_last_n = (None if apply_last_n is None else
                      _lengths(apply_last_n, "apply_last_n", f"[b] = [{p.batch}]", p.batch, p.q))
    return p


def host_values(a: Arg):
    """The int32 values of `a` as a numpy array (torch CUDA: a copy, which
    waits for the work queued before it)."""
    if a.torch:
        return a.obj.detach().cpu().numpy()
    return a.obj


def resolve_maxima(p: VarlenProblem, max_seqlen_q: Any, max_seqlen_k: Any) -> None:
    """Sets ``p.max_seqlen_q`` / ``p.max_seqlen_k``: the caller's (range
    checked), else the longest length (at least 1). A maximum left out makes
    it read the lengths, and then check them."""
    given_q = None if max_seqlen_q is None else int64("max_seqlen_q", max_seqlen_q, low=1)
    given_k = None if max_seqlen_k is None else int64("max_seqlen_k", max_seqlen_k, low=1)
    if given_q is not None and given_k is not None:
        # Nothing read, nothing waited for: the library checks host lengths
        # (CPU plans); device lengths are the caller's contract.
        p.max_seqlen_q, p.max_seqlen_k = given_q, given_k
        return
    np = numpy_module()
    q_lens, k_lens = check_lengths(p)
    for name, given, lens, what in (("max_seqlen_q", given_q, q_lens, "q_len"),
                                    ("max_seqlen_k", given_k, k_lens, "k_len")):
        if given is not None and len(lens) and lens.max() > given:
            i = int(np.argmax(lens > given))
            raise invalid(f"{name}: expected >= every {what}, got {given} < the {what} "
                          f"{lens[i]} of sequence {i}")
    longest_q = int(q_lens.max()) if len(q_lens) else 0
    longest_k = int(k_lens.max()) if len(k_lens) else 0
    p.max_seqlen_q = given_q if given_q is not None else max(1, longest_q)
    p.max_seqlen_k = given_k if given_k is not None else max(1, longest_k)


def _offsets(values, name: str, total: int, total_name: str):
    """Checks b + 1 offsets; returns the b lengths (int64)."""
    np = numpy_module()
    values = values.astype(np.int64)
    if values[0] != 0:
        raise invalid(f"{name}[0]: expected 0, got {values[0]}")
    steps = np.diff(values)
    if (steps < 0).any():
        i = int(np.argmax(steps < 0)) + 1
        raise invalid(f"{name}[{i}]: expected non-decreasing offsets (>= {name}[{i - 1}] = "
                      f"{values[i - 1]}), got {values[i]}")
    if values[-1] > total:
        raise invalid(f"{name}[{len(values) - 1}]: expected <= {total_name} = {total}, got "
                      f"{values[-1]}")
    return steps


def check_lengths(p: VarlenProblem):
    """Reads the lengths and checks them against the tensors (the checks
    and messages of the library's CPU reference): returns (q_lens, k_lens)
    as int64 numpy arrays."""
    np = numpy_module()
    q_lens = _offsets(host_values(p.cu_q), "cu_seqlens_q", p.total_q, "total_q (q.shape[0])")
    if p.paged:
        k_lens = host_values(p.k_lens).astype(np.int64)
        if (k_lens < 0).any():
            i = int(np.argmax(k_lens < 0))
            raise invalid(f"k_lens[{i}]: expected >= 0, got {k_lens[i]}")
        pages = -(-k_lens // p.page_size)
        if (pages > p.max_pages).any():
            i = int(np.argmax(pages > p.max_pages))
            raise invalid(f"k_lens[{i}]: {k_lens[i]} keys need ceil({k_lens[i]} / "
                          f"{p.page_size}) = {pages[i]} pages; expected at most max_pages = "
                          f"{p.max_pages} (page_table.shape[1]: the page table is too narrow)")
        table = host_values(p.page_table)
        num_pages = p.k.shape[0]
        used = np.arange(p.max_pages)[None, :] < pages[:, None]
        bad = used & ((table < 0) | (table >= num_pages))
        if bad.any():
            i, t = (int(x) for x in np.argwhere(bad)[0])
            raise invalid(f"page_table[{i}][{t}]: expected a page id in [0, {num_pages}) "
                          f"(k.shape[0]), got {table[i, t]}")
    else:
        k_lens = _offsets(host_values(p.cu_k), "cu_seqlens_k", p.k.shape[0],
                          "total_k (k.shape[0])")
    short = k_lens < q_lens
    if short.any():
        i = int(np.argmax(short))
        source = f"k_lens[{i}]" if p.paged else f"cu_seqlens_k[{i + 1}] - cu_seqlens_k[{i}]"
        raise invalid(f"{source} (k_len of sequence {i}): expected >= q_len = {q_lens[i]} (the "
                      f"queries are the last q_len keys), got {k_lens[i]}")
    return q_lens, k_lens


def c_varlen(p: VarlenProblem, pooled_k: Optional[Arg] = None) -> _capi.Varlen:
    """The ``fp_varlen_t`` of a resolved problem (with the caller's pooled
    keys when given)."""
    s = _capi.Varlen()
    s.pooled_k = pooled_k.ptr if pooled_k is not None else None
    s.batch = p.batch
    s.max_seqlen_q, s.max_seqlen_k = p.max_seqlen_q, p.max_seqlen_k
    s.cu_seqlens_q = p.cu_q.ptr
    s.cu_seqlens_k = p.cu_k.ptr if p.cu_k is not None else None
    s.page_table = p.page_table.ptr if p.paged else None
    s.max_pages = p.max_pages
    s.k_lens = p.k_lens.ptr if p.paged else None
    s.apply_last_n = p.apply_last_n.ptr if p.apply_last_n is not None else None
    return s


def c_rows(a: Arg) -> _capi.Tensor:
    """A ``[rows, h, d]`` argument as the C API's ``[1, rows, h, d]``; a paged
    ``[num_pages, page_size, h, d]`` one as it is."""
    t = _capi.Tensor()
    t.data = a.ptr
    if len(a.shape) == 4:
        t.shape[:], t.strides[:] = a.shape, a.strides
    else:
        # The batch stride of a one-sequence batch is never stepped along;
        # rows * row stride keeps it a multiple of the row stride (the GPU
        # wants multiples of 8 elements).
        t.shape[:] = (1,) + tuple(a.shape)
        t.strides[:] = (a.shape[0] * a.strides[0],) + tuple(a.strides)
    return t


def pooled_keys_shape(p: VarlenProblem, block: int) -> Tuple[int, int, int, int]:
    """``[b, h_kv, ceil(max_seqlen_k / B), d]``: the pooled keys of `p`
    (``fp_varlen_t.pooled_k``, ``fp_pool_keys_varlen``)."""
    return p.batch, p.heads_kv, -(-p.max_seqlen_k // block), p.head_dim


def mask_shape(p: VarlenProblem, block: int) -> Tuple[int, int, int]:
    """(num_rows, h_q, max_key_blocks) of the compact mask of `p`."""
    return p.total_q // block + p.batch, p.heads_q, -(-p.max_seqlen_k // block)


def check_plan_fits(p: VarlenProblem, spec) -> None:
    """q, k, v match a plan's heads and head_dim (before the library names
    them with its [1, total_q, h, d] indices)."""
    for a, heads, want in ((p.q, p.heads_q, spec.num_q_heads),
                           (p.k, p.heads_kv, spec.num_kv_heads)):
        axis = len(a.shape) - 2
        if heads != want:
            raise invalid(f"{a.name}.shape[{axis}] (heads): expected {want} (the plan's), "
                          f"got {heads}")
    if p.head_dim != spec.head_dim:
        raise invalid(f"q.shape[2] (d): expected {spec.head_dim} (the plan's head_dim), got "
                      f"{p.head_dim}")
