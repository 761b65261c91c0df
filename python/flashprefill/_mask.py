"""The block mask as the Python API returns it."""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

from ._arrays import is_torch, numpy_module, torch_module
from ._validate import integer


def _scatter_dense(counts, ids, width: int):
    """Boolean ``ids.shape[:-1] + (width,)``: True at the first ``counts``
    ids of each row (entries past the count are unspecified and ignored)."""
    slots = ids.shape[-1]
    if is_torch(counts):
        torch = torch_module()
        cols = torch.arange(slots, device=ids.device)
        valid = cols < counts.unsqueeze(-1).long()
        # Unspecified entries go to a spare column that is dropped afterwards.
        routed = torch.where(valid, ids.long(), torch.full_like(ids, width, dtype=torch.long))
        dense = torch.zeros(*ids.shape[:-1], width + 1, dtype=torch.bool, device=ids.device)
        dense.scatter_(-1, routed, True)
        return dense[..., :width]
    np = numpy_module()
    valid = np.arange(slots) < counts[..., None]
    routed = np.where(valid, ids, width)
    dense = np.zeros(ids.shape[:-1] + (width + 1,), dtype=bool)
    np.put_along_axis(dense, routed.astype(np.int64), True, axis=-1)
    return dense[..., :width]


class Mask(NamedTuple):
    """The padded-rows block mask of docs/semantics.md section 1 (FlexAttention
    style).

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
        return _scatter_dense(self.counts, self.ids, self.num_blocks)

    def density(self) -> float:
        """Kept blocks / causal blocks (forced blocks included)."""
        nb = self.num_blocks
        total = 1
        for n in self.counts.shape[:-1]:
            total *= int(n)
        total *= nb * (nb + 1) // 2
        return float(self.counts.sum()) / total if total else 0.0


class VarlenMask:
    """The compact block mask of a variable-length call (engine shapes,
    docs/semantics.md section 2; ``fp_varlen_mask_t``).

    ``counts``: int32 ``[num_rows, h_q]``; ``ids``: int32 ``[num_rows, h_q,
    max_key_blocks]``, the kept ABSOLUTE key-block ids ascending in
    ``ids[row, h, :count]``. Query block I of sequence i is row
    ``cu_seqlens_q[i] // block_size + i + I``; rows that belong to no query
    block are unspecified. ``num_rows = total_q // block_size + b`` and
    ``max_key_blocks = ceil(max_seqlen_k / block_size)``.

    The per-sequence views (:meth:`sequence`, :meth:`density`, ...) read the
    lengths the call was given (``cu_seqlens_q`` and ``cu_seqlens_k`` or
    ``k_lens``, kept by reference): on the GPU that is a copy and a
    synchronisation, and a length buffer rewritten since changes the view.
    """

    __slots__ = ("counts", "ids", "cu_seqlens_q", "cu_seqlens_k", "k_lens", "block_size")

    def __init__(self, counts, ids, *, cu_seqlens_q, cu_seqlens_k=None, k_lens=None,
                 block_size: int):
        self.counts, self.ids = counts, ids
        self.cu_seqlens_q, self.cu_seqlens_k, self.k_lens = cu_seqlens_q, cu_seqlens_k, k_lens
        self.block_size = int(block_size)

    def __iter__(self):
        """``counts, ids = mask``, as for :class:`Mask`."""
        return iter((self.counts, self.ids))

    def __repr__(self) -> str:
        return (f"flashprefill.VarlenMask(b={self.num_sequences}, rows={self.counts.shape[0]}, "
                f"heads={self.counts.shape[1]}, max_key_blocks={self.ids.shape[-1]}, "
                f"block_size={self.block_size})")

    @property
    def num_sequences(self) -> int:
        return int(self.cu_seqlens_q.shape[0]) - 1

    @property
    def max_key_blocks(self) -> int:
        return int(self.ids.shape[-1])

    def lengths(self) -> Tuple[Any, Any]:
        """(q_lens, k_lens): int64 numpy arrays of the b sequences."""
        np = numpy_module()

        def host(x):
            return (x.detach().cpu().numpy() if is_torch(x) else np.asarray(x)).astype(np.int64)

        q_lens = np.diff(host(self.cu_seqlens_q))
        if self.k_lens is not None:
            return q_lens, host(self.k_lens)
        return q_lens, np.diff(host(self.cu_seqlens_k))

    def _sequence(self, i: Any, lengths=None) -> Tuple[int, int, int, int]:
        """(first row, query blocks, key blocks, prefix) of sequence `i`."""
        q_lens, k_lens = self.lengths() if lengths is None else lengths
        i = integer("i", i, low=0, high=len(q_lens) - 1,
                    expected=f"a sequence index in [0, {len(q_lens)})")
        block = self.block_size
        start = int(q_lens[:i].sum())
        row = start // block + i
        nq, nk = -(-int(q_lens[i]) // block), -(-int(k_lens[i]) // block)
        return row, nq, nk, int(k_lens[i] - q_lens[i])

    def sequence_counts(self, i: int):
        """int32 ``[h_q, nq_i]``: kept blocks of each head and query block of
        sequence `i`."""
        row, nq, _, _ = self._sequence(i)
        return self.counts[row:row + nq].T

    def sequence_ids(self, i: int):
        """int32 ``[h_q, nq_i, max_key_blocks]``: the kept absolute key-block
        ids of sequence `i` (valid up to :meth:`sequence_counts`)."""
        row, nq, _, _ = self._sequence(i)
        ids = self.ids[row:row + nq]
        return ids.permute(1, 0, 2) if is_torch(ids) else ids.transpose(1, 0, 2)

    def sequence(self, i: int):
        """Boolean ``[h_q, nq_i, nk_i]``: ``dense[h, I, j]`` is True iff key
        block j (absolute, ``nk_i = ceil(k_len_i / block_size)``) is kept for
        query block I of sequence `i`."""
        row, nq, nk, _ = self._sequence(i)
        dense = _scatter_dense(self.counts[row:row + nq], self.ids[row:row + nq],
                               max(self.max_key_blocks, nk))
        dense = dense[..., :nk]
        return dense.permute(1, 0, 2) if is_torch(dense) else dense.transpose(1, 0, 2)

    def causal_blocks(self, i: int) -> int:
        """Key blocks sequence `i`'s query blocks can see, summed over its
        query blocks (one head): the denominator of its density."""
        lengths = self.lengths()
        _, nq, _, prefix = self._sequence(i, lengths)
        q_len = int(lengths[0][i])
        block = self.block_size
        return sum((prefix + min((I + 1) * block, q_len) - 1) // block + 1 for I in range(nq))

    def density(self, i: Optional[int] = None) -> float:
        """Kept blocks / causal blocks (forced blocks included), of sequence
        `i` or of the whole call."""
        lengths = self.lengths()
        sequences = range(len(lengths[0])) if i is None else [i]
        kept = causal = 0
        heads = int(self.counts.shape[1])
        for s in sequences:
            row, nq, _, _ = self._sequence(s, lengths)
            kept += int(self.counts[row:row + nq].sum())
            causal += heads * self.causal_blocks(s)
        return kept / causal if causal else 0.0
