"""One rank of a context-parallel test (test_distributed.py starts W of
them): joins a gloo group (NCCL with case["device"] == "cuda", one GPU per
rank) through a file store, builds the same structured
sequence as every other rank, runs context_parallel_prefill on its shard
and saves its rows, LSE and transfer statistics to <out>/rank<r>.npz.

Usage: distributed_worker.py RANK WORLD STORE OUT CASE_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

import flashprefill  # noqa: E402
from flashprefill import distributed as fpd  # noqa: E402
import reference as ref  # noqa: E402


def as_torch(x, device="cpu"):
    return torch.from_numpy(np.ascontiguousarray(x)).view(torch.bfloat16).to(device)


def to_numpy(t):
    return t.cpu().view(torch.int16).numpy().view(np.uint16)


def main():
    rank, world = int(sys.argv[1]), int(sys.argv[2])
    store, out_dir, case = sys.argv[3], Path(sys.argv[4]), json.loads(sys.argv[5])
    cuda = case.get("device") == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{store}", rank=rank,
                            world_size=world)
    try:
        rng = np.random.default_rng(case["seed"])
        q, k, v = ref.structured_qkv(rng, 1, case["seq_len"], case["hq"], case["hkv"], case["d"],
                                     "bf16", block=case["block"])
        if case.get("lengths"):  # an explicit contiguous split
            bounds = np.concatenate([[0], np.cumsum(case["lengths"])])
            rows = slice(int(bounds[rank]), int(bounds[rank + 1]))
            shard = [x[0][rows] for x in (q, k, v)]
        else:
            shard = [fpd.shard_sequence(x[0], world, rank, layout=case["layout"],
                                        block_size=case["block"]) for x in (q, k, v)]
        stats = {}
        try:
            out, lse = fpd.context_parallel_prefill(
                *(as_torch(x, f"cuda:{rank}" if cuda else "cpu") for x in shard),
                layout=case["layout"], block_size=case["block"],
                tail=case.get("tail", "queries"),
                return_lse=True, stats=stats, **case["rule"])
        except flashprefill.FlashPrefillError as error:
            np.savez(out_dir / f"rank{rank}.npz", error=np.array(error.message))
            return
        np.savez(out_dir / f"rank{rank}.npz", out=to_numpy(out), lse=lse.cpu().numpy(),
                 stats=np.array(json.dumps(stats)))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
