"""Prefill of one long sequence across the ranks of a ``torch.distributed``
process group (context parallelism): NCCL between GPUs, gloo between CPU
processes (the CPU reference). docs/distributed.md has the design and the
measurements; docs/semantics.md defines what is computed.

Each rank holds some query rows of the sequence and the keys and values of
the same positions. The result on every rank is exactly what one
whole-prompt :func:`flashprefill.prefill` gives for its rows (bit for bit on
the CPU), because selection stays global:

1. every rank pools its own key blocks (``Plan.pool_keys_varlen``) and the
   pooled keys, 1/B of K, are all-gathered: every rank scores its query
   blocks against the pooled keys of the whole prefix, so the max-based
   threshold sees every key block, as on one GPU;
2. each rank selects (``Plan.select_varlen`` with ``pooled_k``), treating its
   pieces as chunks after a cached prefix (docs/semantics.md section 2) with
   ``last_n`` on the piece that ends the sequence only;
3. the ranks exchange only the key/value blocks that some rank's mask keeps
   and that another rank holds (a bitmap all-gather, then one all-to-all);
4. each rank attends over a paged view (page size B) of its own blocks and
   the received ones, with the global mask: one call, no partial results to
   merge.

Pieces must start on block boundaries (multiples of B); only the piece that
ends the sequence may end inside a block.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._arrays import describe
from ._plan import cached_plan
from ._params import default_block_size
from ._validate import integer, int64, invalid

__all__ = ["context_parallel_prefill", "shard_sequence", "zigzag_piece_len"]

LAYOUTS = ("contiguous", "zigzag")


def _torch():
    import torch  # noqa: PLC0415 - torch is optional for the package

    return torch


def zigzag_piece_len(seq_len: int, world_size: int, block_size: int) -> int:
    """Length P of the 2W zigzag pieces (the last piece holds the rest):
    ceil(seq_len / 2W) rounded up to a multiple of the block size."""
    seq_len = int64("seq_len", seq_len, low=1)
    world_size = int64("world_size", world_size, low=1)
    block_size = int64("block_size", block_size, low=1)
    per_piece = -(-seq_len // (2 * world_size))
    piece = -(-per_piece // block_size) * block_size
    if (2 * world_size - 1) * piece >= seq_len:
        raise invalid(f"seq_len: expected > (2 * world_size - 1) * P = {(2 * world_size - 1) * piece} "
                      f"(P = {piece}: ceil(seq_len / 2W) rounded up to block_size {block_size}) so "
                      f"that every zigzag piece holds a token, got {seq_len}")
    return piece


def _pieces(layout: str, lengths: Sequence[int], world_size: int,
            block_size: int) -> List[List[Tuple[int, int]]]:
    """The global [start, end) of each rank's pieces, in local order."""
    total = sum(lengths)
    if layout == "contiguous":
        pieces, start = [], 0
        for n in lengths:
            pieces.append([(start, start + n)])
            start += n
        return pieces
    piece = zigzag_piece_len(total, world_size, block_size)
    last = 2 * world_size - 1

    def span(i):
        return i * piece, (total if i == last else (i + 1) * piece)

    pieces = [[span(r), span(last - r)] for r in range(world_size)]
    for r, (n, parts) in enumerate(zip(lengths, pieces)):
        want = sum(e - s for s, e in parts)
        if n != want:
            raise invalid(f"q.shape[0] on rank {r}: expected {want} (zigzag pieces {r} and "
                          f"{last - r} of a {total}-token sequence, piece length {piece}), got {n}")
    return pieces


def shard_sequence(x, world_size: int, rank: int, *, layout: str = "contiguous",
                   block_size: Optional[int] = None):
    """The rows of ``x`` (``[seq_len, ...]``, torch or numpy) that `rank`
    holds under `layout`: ``"contiguous"`` cuts the sequence into W
    block-aligned pieces of near-equal length, ``"zigzag"`` into 2W pieces of
    which rank r holds r and 2W-1-r (so that the causal work is balanced)."""
    if layout not in LAYOUTS:
        raise invalid(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    world_size = int64("world_size", world_size, low=1)
    rank = integer("rank", rank, low=0, high=world_size - 1,
                   expected=f"a rank in [0, {world_size})")
    block = default_block_size() if block_size is None else int64("block_size", block_size, low=1)
    total = x.shape[0]
    if layout == "zigzag":
        piece = zigzag_piece_len(total, world_size, block)
        last = 2 * world_size - 1
        first = x[rank * piece:(rank + 1) * piece]
        second = x[(last - rank) * piece:total if rank == 0 else (last - rank + 1) * piece]
        if hasattr(x, "dim"):
            return _torch().cat([first, second])
        import numpy as np  # noqa: PLC0415

        return np.concatenate([first, second])
    blocks = -(-total // block)
    bounds = [min(total, (blocks * r // world_size) * block) for r in range(world_size + 1)]
    bounds[-1] = total
    return x[bounds[rank]:bounds[rank + 1]]


def _bits(torch, x):
    """16-bit floats travel as bytes: every backend moves uint8 (gloo has
    neither bf16 nor int16 for every collective) and nothing can round them.
    The view only widens the last dimension: splits along dim 0 hold."""
    return x.view(torch.uint8) if x.dtype in (torch.bfloat16, torch.float16) else x


def _all_gather(torch, dist, group, tensor):
    """all_gather of same-shaped tensors, stacked: [W, ...]."""
    world = dist.get_world_size(group)
    bits = _bits(torch, tensor.contiguous())
    out = [torch.empty_like(bits) for _ in range(world)]
    dist.all_gather(out, bits, group=group)
    return torch.stack(out).view(tensor.dtype)


def context_parallel_prefill(q, k, v, group=None, *, layout: str = "contiguous",
                             alpha=None, sink=None, window=None, last_n=None, min_budget=None,
                             threshold=None, block_size=None, scale=None,
                             dense_below_tokens=None, return_lse: bool = False,
                             tail: str = "queries", stats: Optional[Dict[str, Any]] = None):
    """Block-sparse causal prefill of one sequence spread over the ranks of
    `group` (None: the default group).

    Args:
        q: this rank's query rows ``[n_r, h_q, d]`` (torch, CUDA or CPU,
            bf16 or fp16); under ``layout="contiguous"`` rank r holds the
            r-th piece in rank order (any lengths, each piece but the last
            a multiple of the block size), under ``"zigzag"`` pieces r and
            2W-1-r of :func:`zigzag_piece_len` concatenated; see
            :func:`shard_sequence`.
        k, v: the keys and values of the same positions, ``[n_r, h_kv, d]``.
        alpha, sink, window, last_n, min_budget, threshold, block_size,
        scale: the rule's parameters, as :func:`flashprefill.prefill`.
        dense_below_tokens: as ``Plan.prefill``: None = the plan's break-even
            (a sequence shorter than it is attended densely, as
            :func:`flashprefill.prefill` does on one GPU), 0 = always the rule.
        return_lse: also return the log-sum-exp ``[h_q, n_r]`` (fp32,
            natural log).
        tail: the dense tail (the ``last_n`` query blocks that end the
            sequence keep every key block). ``"queries"`` (default): its
            queries go to every rank, each attends them over its own
            blocks, and the rank holding the tail merges the partial
            results by LSE (``merge_states``), so no rank has to fetch
            every remote block; those rows then match a one-process prefill
            within rounding. ``"keys"``: the tail fetches its remote blocks
            like any other row (every row bit for bit on the CPU).
        stats: a dict that receives what was moved: ``pooled_bytes``
            (all-gathered pooled keys), ``block_bytes`` (K/V blocks this rank
            received), ``allgather_kv_bytes`` (what all-gathering K/V would
            have brought to this rank), ``received_blocks``, ``needed_blocks``,
            ``tail_bytes`` (tail queries or partial results received).

    Returns:
        ``out`` ``[n_r, h_q, d]``, or ``(out, lse)``. Equal to the rows of a
        one-process :func:`flashprefill.prefill` of the whole sequence.

    Every rank must call it with the same parameters. It synchronises with
    the host once (the exchange sizes depend on the masks), so it is not
    CUDA-graph capturable.
    """
    torch = _torch()
    import torch.distributed as dist  # noqa: PLC0415

    if layout not in LAYOUTS:
        raise invalid(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if tail not in ("queries", "keys"):
        raise invalid(f"tail: expected 'queries' or 'keys', got {tail!r}")
    if not dist.is_available() or not dist.is_initialized():
        raise invalid("group: expected an initialised torch.distributed process group "
                      "(torch.distributed.init_process_group), got none")
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            raise invalid(f"{name}: expected a 3-d torch.Tensor [n_r, heads, d], got "
                          f"{type(x).__name__}{tuple(getattr(x, 'shape', ()))}")
    qa = describe(q, "q", ndim=3)
    block = default_block_size() if block_size is None else int64("block_size", block_size, low=1)
    if block > 256 or block & (block - 1):
        raise invalid(f"block_size: expected a power of two <= 256 (blocks travel as pages of "
                      f"that size), got {block}")
    if k.shape != v.shape or k.shape[0] != q.shape[0] or k.shape[2] != q.shape[2]:
        raise invalid(f"k, v: expected [n_r, h_kv, d] with q's n_r = {q.shape[0]} and d = "
                      f"{q.shape[2]}, got k {tuple(k.shape)} and v {tuple(v.shape)}")
    if q.shape[0] < 1:
        raise invalid("q.shape[0]: expected at least one row on every rank, got 0")

    world = dist.get_world_size(group)
    rank = dist.get_rank(group)
    device = q.device
    n_local, heads_q, dim = q.shape
    heads_kv = k.shape[1]

    lengths = _all_gather(torch, dist, group,
                          torch.tensor([n_local], dtype=torch.int64, device=device))
    lengths = [int(x) for x in lengths.flatten().tolist()]
    pieces_of = _pieces(layout, lengths, world, block)
    total = sum(lengths)
    for r, parts in enumerate(pieces_of):
        for start, end in parts:
            if start % block or (end % block and end != total):
                raise invalid(f"q.shape[0] on rank {r}: its piece [{start}, {end}) must start and "
                              f"end on a multiple of block_size {block} (only the sequence's "
                              f"last piece may end inside a block)")
    num_blocks = -(-total // block)
    owner = torch.empty(num_blocks, dtype=torch.int64)
    for r, parts in enumerate(pieces_of):
        for start, end in parts:
            owner[start // block:-(-end // block)] = r
    mine = pieces_of[rank]

    plan = cached_plan(qa.dtype, dim, heads_q, heads_kv, block, qa.device, False,
                       len(mine), total)
    int32 = dict(dtype=torch.int32, device=device)
    cu_local = torch.tensor([0] + [sum(e - s for s, e in mine[:i + 1]) for i in range(len(mine))],
                            **int32)
    local_max = max(e - s for s, e in mine)

    # 1. Pooled keys of this rank's blocks, all-gathered into [h_kv, nb, d].
    pooled_local = plan.pool_keys_varlen(q, k, cu_local, cu_local, max_seqlen_q=local_max,
                                         max_seqlen_k=local_max)
    per_rank_blocks = max(sum(-(-(e - s) // block) for s, e in parts) for parts in pieces_of)
    send = torch.zeros((per_rank_blocks, heads_kv, dim), dtype=q.dtype, device=device)
    filled = 0
    for i, (start, end) in enumerate(mine):
        n = -(-(end - start) // block)
        send[filled:filled + n] = pooled_local[i, :, :n].transpose(0, 1)
        filled += n
    gathered = _all_gather(torch, dist, group, send)
    pooled_global = torch.empty((heads_kv, num_blocks, dim), dtype=q.dtype, device=device)
    for r, parts in enumerate(pieces_of):
        filled = 0
        for start, end in parts:
            first, n = start // block, -(-(end - start) // block)
            pooled_global[:, first:first + n] = gathered[r, filled:filled + n].transpose(0, 1)
            filled += n

    # 2. Selection: each piece is a chunk after its prefix.
    key_ends = [end for _, end in mine]
    max_key_blocks = -(-max(key_ends) // block)
    pooled_k = pooled_global[:, :max_key_blocks].unsqueeze(0).expand(
        len(mine), -1, -1, -1).contiguous()
    k_lens = torch.tensor(key_ends, **int32)
    apply_last_n = torch.tensor([int(end == total) for end in key_ends], **int32)
    # With pooled_k, selection reads no key: one zero page stands for K.
    no_keys = torch.zeros((1, block, heads_kv, dim), dtype=q.dtype, device=device)
    no_table = torch.zeros((len(mine), max_key_blocks), **int32)
    rule = dict(alpha=alpha, sink=sink, window=window, last_n=last_n, min_budget=min_budget,
                threshold=threshold, scale=scale)
    below = plan.dense_below_tokens if dense_below_tokens in (None, -1) else int64(
        "dense_below_tokens", dense_below_tokens, low=0)
    if total < below:
        rule["alpha"] = 0.0
    sizes = dict(max_seqlen_q=local_max, max_seqlen_k=max(key_ends))
    mask = plan.select_varlen(q, no_keys, cu_local, k_lens=k_lens, page_table=no_table,
                              apply_last_n=apply_last_n, pooled_k=pooled_k, **sizes, **rule)
    owned = owner == rank
    dense_tail = None
    if tail == "queries" and world > 1:
        dense_tail = _DenseTail.plan(pieces_of, total, block, last_n, rank, owned)
        if dense_tail is not None and dense_tail.holder == rank:
            dense_tail.restrict_mask(mask, mine, cu_local, block)

    # 3. Which blocks every rank needs; this rank sends what it owns.
    counts, ids = mask.counts, mask.ids
    kept = torch.arange(ids.shape[-1], device=device) < counts.unsqueeze(-1)
    needed = torch.zeros(num_blocks, dtype=torch.uint8, device=device)
    needed[ids[kept].long()] = 1
    wanted = _all_gather(torch, dist, group, needed).cpu().bool()  # [W, nb]
    local_block_of = _local_block_index(mine, block, num_blocks)
    k_blocks = _as_blocks(torch, k, mine, block)
    v_blocks = _as_blocks(torch, v, mine, block)
    send_ids = [torch.nonzero(wanted[r] & owned).flatten() if r != rank else
                torch.empty(0, dtype=torch.int64) for r in range(world)]
    recv_ids = [torch.nonzero(wanted[rank] & (owner == r)).flatten() if r != rank else
                torch.empty(0, dtype=torch.int64) for r in range(world)]
    send_rows = torch.cat([local_block_of[ids_r] for ids_r in send_ids]).to(device)
    payload = torch.stack([k_blocks[send_rows], v_blocks[send_rows]], dim=1)  # [n, 2, B, h, d]
    received = torch.empty((sum(len(x) for x in recv_ids),) + tuple(payload.shape[1:]),
                           dtype=q.dtype, device=device)
    dist.all_to_all_single(_bits(torch, received), _bits(torch, payload.contiguous()),
                           output_split_sizes=[len(x) for x in recv_ids],
                           input_split_sizes=[len(x) for x in send_ids], group=group)

    # 4. Pages: this rank's blocks, then the received ones; blocks nobody
    # here needs map to page 0 and are never read (not in the mask).
    k_pages = torch.cat([k_blocks, received[:, 0]])
    v_pages = torch.cat([v_blocks, received[:, 1]])
    page_of = torch.zeros(num_blocks, dtype=torch.int64)
    page_of[owned] = local_block_of[owned]
    all_recv = torch.cat(recv_ids)
    page_of[all_recv] = len(k_blocks) + torch.arange(len(all_recv))
    table = page_of[:max_key_blocks].to(torch.int32).to(device).unsqueeze(0).expand(
        len(mine), -1).contiguous()
    out, lse = plan.attend_varlen(q, k_pages, v_pages, cu_local, k_lens=k_lens,
                                  page_table=table, mask=mask, scale=scale, return_lse=True,
                                  **sizes)
    tail_bytes = 0
    if dense_tail is not None:
        tail_bytes = dense_tail.run(torch, dist, group, plan, q, out, lse, k_blocks, v_blocks,
                                    local_block_of, owned, mine, block, scale)
    result = (out, lse) if return_lse else out

    if stats is not None:
        element = q.element_size()
        row_bytes = 2 * heads_kv * dim * element  # K and V of one position
        stats.update(
            pooled_bytes=int(gathered.numel() * element),
            block_bytes=int(received.numel() * element),
            allgather_kv_bytes=int((total - n_local) * row_bytes),
            received_blocks=int(len(all_recv)),
            needed_blocks=int(wanted[rank].sum()),
            tail_bytes=int(tail_bytes),
        )
    return result


class _DenseTail:
    """The last ``last_n`` query blocks of the sequence keep every key block
    (the rule's dense tail), so fetching their keys would bring every remote
    block to the rank that holds them. Their queries travel instead: every
    rank attends them over its own blocks and the holder merges the W
    partial results by LSE."""

    def __init__(self, holder, start, end, piece, owned_ids):
        self.holder = holder          # the rank holding the tail
        self.start, self.end = start, end  # global rows of the tail
        self.piece = piece            # (start, end) of the holder's final piece
        self.owned_ids = owned_ids    # this rank's key blocks, ascending

    @classmethod
    def plan(cls, pieces_of, total, block, last_n, rank, owned):
        from . import defaults

        tail_blocks = defaults()["last_n"] if last_n is None else int(last_n)
        num_blocks = -(-total // block)
        if tail_blocks <= 0:
            return None
        start = max(0, num_blocks - tail_blocks) * block
        for r, parts in enumerate(pieces_of):
            for piece in parts:
                if piece[1] == total:
                    if start < piece[0]:
                        return None  # the tail spans pieces: fetch its keys instead
                    return cls(r, start, total, piece,
                               [int(j) for j in owned.nonzero().flatten().tolist()])
        return None

    def local_rows(self, mine):
        """The holder's local rows of the tail."""
        offset = 0
        for piece in mine:
            if piece == self.piece:
                break
            offset += piece[1] - piece[0]
        first = offset + self.start - self.piece[0]
        return first, first + self.end - self.start

    def restrict_mask(self, mask, mine, cu_local, block):
        """The holder attends its tail rows over its own blocks only; the
        other ranks' blocks come back as partial results."""
        torch = _torch()
        seq = mine.index(self.piece)
        base = int(cu_local[seq]) // block + seq
        piece_start, piece_len = self.piece[0], self.piece[1] - self.piece[0]
        for local_block in range((self.start - piece_start) // block, -(-piece_len // block)):
            last_key = piece_start + min((local_block + 1) * block, piece_len) - 1
            ids = [j for j in self.owned_ids if j <= last_key // block]
            row = base + local_block
            mask.counts[row] = len(ids)
            mask.ids[row] = -1
            mask.ids[row, :, :len(ids)] = torch.tensor(ids, dtype=torch.int32,
                                                       device=mask.ids.device)

    def run(self, torch, dist, group, plan, q, out, lse, k_blocks, v_blocks, local_block_of,
            owned, mine, block, scale):
        """Moves the tail queries out and the partial results back; returns
        the bytes this rank received."""
        world = dist.get_world_size(group)
        rank = dist.get_rank(group)
        src = self.holder if group is None else dist.get_global_rank(group, self.holder)
        rows = self.end - self.start
        device = q.device
        if rank == self.holder:
            first, last = self.local_rows(mine)
            q_tail = q[first:last].contiguous()
        else:
            q_tail = torch.empty((rows,) + tuple(q.shape[1:]), dtype=q.dtype, device=device)
        dist.broadcast(_bits(torch, q_tail), src=src, group=group)
        received = 0 if rank == self.holder else q_tail.numel() * q_tail.element_size()

        if rank == self.holder:
            part_out, part_lse = out[first:last].contiguous(), lse[:, first:last].contiguous()
        else:
            part_out, part_lse = self._partial(torch, plan, q_tail, k_blocks, v_blocks,
                                               local_block_of, owned, block, scale)
        outs = [torch.empty_like(part_out) for _ in range(world)] if rank == self.holder else None
        lses = [torch.empty_like(part_lse) for _ in range(world)] if rank == self.holder else None
        dist.gather(_bits(torch, part_out), None if outs is None else [_bits(torch, o) for o in outs],
                    dst=src, group=group)
        dist.gather(part_lse, lses, dst=src, group=group)
        if rank != self.holder:
            return received
        from ._merge import merge_states

        merged_out, merged_lse = outs[0], lses[0]
        for r in range(1, world):
            merged_out, merged_lse = merge_states(merged_out, merged_lse, outs[r], lses[r])
        out[first:last] = merged_out
        lse[:, first:last] = merged_lse
        return (world - 1) * (part_out.numel() * part_out.element_size() +
                              part_lse.numel() * part_lse.element_size())

    def _partial(self, torch, plan, q_tail, k_blocks, v_blocks, local_block_of, owned, block,
                 scale):
        """The tail rows attended over this rank's own blocks (all of them
        precede the tail: the holder has the blocks the tail crosses)."""
        device = q_tail.device
        rows = self.end - self.start
        key_blocks = -(-self.end // block)
        table = torch.zeros(key_blocks, dtype=torch.int64)
        table[owned[:key_blocks]] = local_block_of[:key_blocks][owned[:key_blocks]]
        table = table.to(torch.int32).to(device).unsqueeze(0).contiguous()
        num_rows = rows // block + 1
        heads = q_tail.shape[1]
        counts = torch.zeros((num_rows, heads), dtype=torch.int32, device=device)
        ids = torch.full((num_rows, heads, key_blocks), -1, dtype=torch.int32, device=device)
        own = torch.tensor(self.owned_ids, dtype=torch.int32, device=device)
        for row in range(-(-rows // block)):
            counts[row] = len(self.owned_ids)
            ids[row, :, :len(self.owned_ids)] = own
        int32 = dict(dtype=torch.int32, device=device)
        return plan.attend_varlen(q_tail, k_blocks, v_blocks, torch.tensor([0, rows], **int32),
                                  k_lens=torch.tensor([self.end], **int32), page_table=table,
                                  mask=(counts, ids), scale=scale, return_lse=True,
                                  max_seqlen_q=rows, max_seqlen_k=self.end)


def _local_block_index(pieces, block: int, num_blocks: int):
    """global block -> its index among this rank's blocks (-1: not here)."""
    torch = _torch()
    index = torch.full((num_blocks,), -1, dtype=torch.int64)
    filled = 0
    for start, end in pieces:
        n = -(-(end - start) // block)
        index[start // block:start // block + n] = torch.arange(filled, filled + n)
        filled += n
    return index


def _as_blocks(torch, x, pieces, block: int):
    """This rank's rows of x as whole blocks [n_blocks, B, h, d] (a short
    last block padded with zeros, never read past the sequence's end)."""
    parts, at = [], 0
    for start, end in pieces:
        n = end - start
        rows = x[at:at + n]
        at += n
        pad = -n % block
        if pad:
            rows = torch.cat([rows, rows.new_zeros((pad,) + tuple(rows.shape[1:]))])
        parts.append(rows.reshape(-1, block, *rows.shape[1:]))
    return torch.cat(parts)
