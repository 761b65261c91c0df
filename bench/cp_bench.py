#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Context-parallel prefill (flashprefill.distributed) across the ranks of
one host: time, bytes moved, scaling, and agreement with one process.

Run with torchrun, one rank per GPU (NCCL), or per CPU process (gloo, the
CPU reference; small sizes only, for checking the script):

  torchrun --nproc-per-node 4 bench/cp_bench.py --seq-len 262144 524288 1048576
  torchrun --nproc-per-node 2 bench/cp_bench.py --device cpu --seq-len 2048

Per sequence length and layout (contiguous, zigzag) it reports, as one JSON
line (rank 0 writes it; --out appends it to a file):
  * cp_ms: context_parallel_prefill, the slowest rank (barrier, then each
    rank's wall time around its call and a device synchronisation);
  * allgather_kv_ms: all-gathering K and V to every rank (the simple
    alternative's communication alone);
  * single_ms: one rank's whole-prompt Plan.prefill (rank 0; skipped with
    --no-single or when it does not fit), speedup = single_ms / cp_ms and
    scaling efficiency = speedup / world;
  * bytes: pooled keys gathered, K/V blocks received, the dense tail's
    queries and partial results, and what all-gathering K/V would move,
    summed over ranks;
  * rank0_rel_l2: relative L2 of rank 0's rows against the single-rank
    output (the kernels of the two paths differ: varlen paged attention
    against the whole-prompt kernel; the tests check every rank).

Inputs: bench/varlen_bench.py's structured generator (bf16, h_q 32, h_kv 8,
d 128, B 128), the same seed on every rank; the library's default rule with
dense_below_tokens=0 (the rule at every length).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq-len", type=int, nargs="+", default=[262144])
    parser.add_argument("--layout", nargs="+", default=["contiguous", "zigzag"],
                        choices=["contiguous", "zigzag"])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-single", action="store_true",
                        help="skip the one-rank baseline")
    parser.add_argument("--out", type=Path, help="append the JSON lines here (rank 0)")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps: expected >= 1")
    if any(n < 1024 for n in args.seq_len):
        parser.error("--seq-len: expected >= 1024 tokens")

    import torch
    import torch.distributed as dist

    import flashprefill
    from flashprefill import distributed as fpd
    import varlen_bench as vb

    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if cuda else "gloo")
    world, rank = dist.get_world_size(), dist.get_rank()
    device = f"cuda:{torch.cuda.current_device()}" if cuda else "cpu"

    def reduce_max(value):
        t = torch.tensor([value], dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t)

    def wall_ms(fn):
        times = []
        for _ in range(args.reps + 1):
            dist.barrier()
            start = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize()
            times.append(reduce_max(time.perf_counter() - start) * 1e3)
        times = sorted(times[1:])
        return times[len(times) // 2]

    for seq_len in args.seq_len:
        q, k, v = vb.structured_sequence(seq_len, args.seed, device=device)
        rule = dict(block_size=vb.BLOCK, dense_below_tokens=0)
        single = None
        single_ms = None
        if not args.no_single and rank == 0:
            try:
                plan = flashprefill.plan(head_dim=vb.D, num_q_heads=vb.H_Q, num_kv_heads=vb.H_KV,
                                         max_seq_len=seq_len, block_size=vb.BLOCK,
                                         device=device if cuda else "cpu")
                call = lambda: plan.prefill(q[None], k[None], v[None], dense_below_tokens=0)
                single = call()[0]
                start = time.perf_counter()
                for _ in range(args.reps):
                    call()
                if cuda:
                    torch.cuda.synchronize()
                single_ms = (time.perf_counter() - start) * 1e3 / args.reps
            except (flashprefill.FlashPrefillError, RuntimeError) as error:
                print(f"single-rank baseline skipped at {seq_len}: {error}", file=sys.stderr)
                single = None
        dist.barrier()
        for layout in args.layout:
            shard = [fpd.shard_sequence(x, world, rank, layout=layout, block_size=vb.BLOCK)
                     for x in (q, k, v)]
            stats = {}
            out = fpd.context_parallel_prefill(*shard, layout=layout, stats=stats, **rule)
            cp_ms = wall_ms(lambda: fpd.context_parallel_prefill(*shard, layout=layout, **rule))

            def allgather():
                for x in shard[1:]:
                    bits = x.view(torch.uint8)
                    parts = [torch.empty_like(bits) for _ in range(world)]
                    dist.all_gather(parts, bits)
            ag_ms = wall_ms(allgather)

            # Agreement with the single-rank output, which only rank 0 holds.
            rel = None
            if single is not None:
                rows = fpd.shard_sequence(torch.arange(seq_len), world, rank, layout=layout,
                                          block_size=vb.BLOCK).to(single.device)
                want = single[rows].float()
                rel = float((out.float() - want).norm() / want.norm())
            totals = torch.tensor([stats["pooled_bytes"], stats["block_bytes"],
                                   stats["allgather_kv_bytes"], stats["tail_bytes"]],
                                  dtype=torch.float64, device=device)
            dist.all_reduce(totals)
            if rank == 0:
                row = {
                    "device": torch.cuda.get_device_name() if cuda else "cpu (reference)",
                    "world": world, "seq_len": seq_len, "layout": layout,
                    "cp_ms": round(cp_ms, 3), "allgather_kv_ms": round(ag_ms, 3),
                    "single_ms": None if single_ms is None else round(single_ms, 3),
                    "speedup": None if single_ms is None else round(single_ms / cp_ms, 3),
                    "scaling_efficiency": (None if single_ms is None
                                           else round(single_ms / cp_ms / world, 3)),
                    "pooled_bytes": int(totals[0]), "block_bytes": int(totals[1]),
                    "allgather_kv_bytes": int(totals[2]), "tail_bytes": int(totals[3]),
                    "rank0_rel_l2": None if rel is None else round(rel, 6),
                }
                line = json.dumps(row)
                print(line, flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(line + "\n")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
