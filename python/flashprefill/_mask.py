"""The block mask as the Python API returns it."""

from __future__ import annotations

from typing import Any, NamedTuple

from ._arrays import is_torch, numpy_module, torch_module


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
        nb = self.num_blocks
        if is_torch(self.counts):
            torch = torch_module()
            cols = torch.arange(nb, device=self.ids.device)
            valid = cols < self.counts.unsqueeze(-1).long()
            # Entries past the count are unspecified: route them to a spare
            # column that is dropped afterwards.
            ids = torch.where(valid, self.ids.long(), torch.full_like(self.ids, nb, dtype=torch.long))
            dense = torch.zeros(*self.ids.shape[:-1], nb + 1, dtype=torch.bool, device=self.ids.device)
            dense.scatter_(-1, ids, True)
            return dense[..., :nb]
        np = numpy_module()
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
