"""Context parallelism (flashprefill.distributed) with gloo on the CPU
backend: 2 and 4 processes, contiguous and zigzag layouts. Every rank's rows
and LSE must equal a one-process prefill of the whole sequence bit for bit
(selection is global, attention runs over the same blocks in the same
order); only the blocks some mask keeps may travel. Head parallelism (a
split of the heads) equals the whole call. Skips without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import flashprefill
import reference as ref

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
SPARSE = {"alpha": 0.3, "sink": 1, "window": 2, "last_n": 1}
CASE = {"seed": 7, "seq_len": 1000, "hq": 4, "hkv": 2, "d": 32, "block": 32}


def run_ranks(tmp_path, world, case):
    """Starts `world` workers, waits (bounded), returns their npz results."""
    store = tmp_path / "store"
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(r), str(world), str(store),
                               str(tmp_path), json.dumps(case)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
             for r in range(world)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=240)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"rank {r} failed:\n{log}"
    return [np.load(tmp_path / f"rank{r}.npz") for r in range(world)]


def whole_prompt(case):
    rng = np.random.default_rng(case["seed"])
    q, k, v = ref.structured_qkv(rng, 1, case["seq_len"], case["hq"], case["hkv"], case["d"],
                                 "bf16", block=case["block"])
    out, lse = flashprefill.prefill(q, k, v, block_size=case["block"], return_lse=True,
                                    dtype="bf16", **case["rule"])
    mask = flashprefill.mask(q, k, block_size=case["block"], dtype="bf16", **case["rule"])
    return out[0], lse[0], mask


def positions(case, world, rank):
    """The global rows rank `rank` holds."""
    index = np.arange(case["seq_len"])
    if case.get("lengths"):
        bounds = np.concatenate([[0], np.cumsum(case["lengths"])])
        return index[bounds[rank]:bounds[rank + 1]]
    from flashprefill import distributed as fpd
    return fpd.shard_sequence(index, world, rank, layout=case["layout"], block_size=case["block"])


def tail_rows(case):
    """Global rows of the dense tail (the last last_n query blocks)."""
    last_n = case["rule"].get("last_n", flashprefill.defaults()["last_n"])
    blocks = -(-case["seq_len"] // case["block"])
    return set(range(max(0, blocks - last_n) * case["block"], case["seq_len"]))


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("layout", ["contiguous", "zigzag"])
@pytest.mark.parametrize("rule, tail", [(SPARSE, "keys"), (SPARSE, "queries"), ({}, "queries")],
                         ids=["sparse-keys", "sparse-queries", "defaults-queries"])
def test_context_parallel_equals_one_process(tmp_path, world, layout, rule, tail):
    """tail="keys": every row bit for bit. tail="queries": rows outside the
    dense tail bit for bit, tail rows (partial results merged by LSE) within
    bf16 rounding, and the rank holding the tail no longer fetches the remote
    blocks only the tail needs."""
    case = dict(CASE, layout=layout, rule=rule, tail=tail)
    results = run_ranks(tmp_path, world, case)
    want_out, want_lse, mask = whole_prompt(case)
    blocks = -(-case["seq_len"] // case["block"])
    in_tail = tail_rows(case)
    dense = mask.to_dense()[0]  # [h, nb, nb]
    remote_total = 0
    for r, res in enumerate(results):
        assert "error" not in res, str(res["error"])
        rows = positions(case, world, r)
        exact = np.array([tail == "keys" or int(p) not in in_tail for p in rows])
        np.testing.assert_array_equal(res["out"][exact], want_out[rows][exact],
                                      err_msg=f"rank {r} output")
        np.testing.assert_array_equal(res["lse"][:, exact], want_lse[:, rows][:, exact],
                                      err_msg=f"rank {r} LSE")
        if (~exact).any():
            got = ref.to_float(res["out"][~exact], "bf16")
            want = ref.to_float(want_out[rows][~exact], "bf16")
            assert ref.relative_l2(got, want) < 1e-2, f"rank {r} tail rows"
            np.testing.assert_allclose(res["lse"][:, ~exact], want_lse[:, rows][:, ~exact],
                                       atol=1e-4)
        stats = json.loads(str(res["stats"]))
        mine = {int(p) // case["block"] for p in rows}
        remote_total += blocks - len(mine)
        # The blocks a rank received: the remote ones its mask keeps for its
        # rows (outside the tail when the tail ships its queries).
        fetching = sorted({int(p) // case["block"] for p in rows
                           if tail == "keys" or int(p) not in in_tail})
        kept = (dense[:, fetching].any(axis=(0, 1)) if fetching
                else np.zeros(blocks, bool))
        assert stats["received_blocks"] == int(sum(kept[j] for j in range(blocks)
                                                   if j not in mine))
        assert stats["block_bytes"] <= stats["allgather_kv_bytes"] + 2 * case["block"] * \
            case["hkv"] * case["d"] * 2  # at most the padding of a short last block
        assert (stats["tail_bytes"] > 0) == (tail == "queries")
    if rule is SPARSE:
        # Pruning shows in what travels: fewer blocks than all remote ones.
        received = sum(json.loads(str(res["stats"]))["received_blocks"] for res in results)
        assert 0 < received < remote_total


def test_uneven_contiguous_pieces(tmp_path):
    case = dict(CASE, layout="contiguous", rule=SPARSE, lengths=[64, 800, 136], tail="keys")
    results = run_ranks(tmp_path, 3, case)
    want_out, want_lse, _ = whole_prompt(case)
    for r, res in enumerate(results):
        rows = positions(case, 3, r)
        np.testing.assert_array_equal(res["out"], want_out[rows])
        np.testing.assert_array_equal(res["lse"], want_lse[:, rows])


def test_bad_tail_mode_is_named(tmp_path):
    case = dict(CASE, layout="contiguous", rule=SPARSE, tail="values")
    for res in run_ranks(tmp_path, 2, case):
        assert "tail: expected 'queries' or 'keys', got 'values'" in str(res["error"])


def test_unaligned_piece_is_named_on_every_rank(tmp_path):
    case = dict(CASE, layout="contiguous", rule=SPARSE, lengths=[500, 500])
    for r, res in enumerate(run_ranks(tmp_path, 2, case)):
        assert "error" in res, f"rank {r} accepted a piece that ends inside a block"
        assert "q.shape[0] on rank 0: its piece [0, 500) must start and end on a multiple of " \
               "block_size 32" in str(res["error"])


def test_shard_sequence_layouts():
    from flashprefill import distributed as fpd
    x = np.arange(1000)
    for world in (2, 4):
        zig = [fpd.shard_sequence(x, world, r, layout="zigzag", block_size=32)
               for r in range(world)]
        cont = [fpd.shard_sequence(x, world, r, block_size=32) for r in range(world)]
        for shards in (zig, cont):
            np.testing.assert_array_equal(np.sort(np.concatenate(shards)), x)
        piece = fpd.zigzag_piece_len(1000, world, 32)
        assert piece % 32 == 0
        np.testing.assert_array_equal(zig[0][:piece], x[:piece])
        np.testing.assert_array_equal(zig[0][piece:], x[(2 * world - 1) * piece:])
    with pytest.raises(flashprefill.FlashPrefillError, match=r"seq_len: expected > "):
        fpd.zigzag_piece_len(100, 4, 32)
    with pytest.raises(flashprefill.FlashPrefillError, match=r"layout: expected one of"):
        fpd.shard_sequence(x, 2, 0, layout="ring")
    with pytest.raises(flashprefill.FlashPrefillError, match=r"rank: expected a rank in \[0, 2\)"):
        fpd.shard_sequence(x, 2, 2)


@pytest.mark.parametrize("layout", ["contiguous", "zigzag"])
def test_cuda_context_parallel_matches_cpu_reference(tmp_path, layout):
    """NCCL over every visible GPU (one rank each; one GPU runs a group of
    one): the kernels' rows within the usual tolerance of the CPU
    reference's whole-prompt prefill, masks within 1% of its blocks."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")
    world = min(torch.cuda.device_count(), 4)
    case = dict(CASE, layout=layout, rule=dict(SPARSE, dense_below_tokens=0), device="cuda",
                seq_len=4000, hq=8, hkv=2, d=128, block=128)
    if world * 2 * 128 >= case["seq_len"]:
        case["seq_len"] = world * 2 * 128 + 500
    results = run_ranks(tmp_path, world, case)
    cpu_rule = dict(SPARSE)
    want_out, want_lse, _ = whole_prompt(dict(case, rule=cpu_rule))
    for r, res in enumerate(results):
        assert "error" not in res, str(res["error"])
        rows = positions(case, world, r)
        got = ref.to_float(res["out"], "bf16")
        want = ref.to_float(want_out[rows], "bf16")
        assert ref.relative_l2(got, want) < 1e-2, f"rank {r}"
        finite = np.isfinite(want_lse[:, rows])
        assert np.abs(res["lse"][finite] - want_lse[:, rows][finite]).mean() < 1e-2


@pytest.mark.parametrize("groups", [[0, 1], [0, 2]])
def test_head_parallel_split_equals_whole_call(rng, groups):
    """Tensor parallelism hands each rank whole kv-head groups: selection and
    attention of a query head read only its own kv head, so prefill over a
    slice of the heads equals those heads of the whole call."""
    hq, hkv, g = 8, 4, 2
    q, k, v = ref.structured_qkv(rng, 1, 700, hq, hkv, 32, "bf16", block=32)
    kwargs = dict(block_size=32, dtype="bf16", return_lse=True, **SPARSE)
    out, lse = flashprefill.prefill(q, k, v, **kwargs)
    for first in groups:
        kv = slice(first, first + 2)
        heads = slice(first * g, (first + 2) * g)
        part_out, part_lse = flashprefill.prefill(
            np.ascontiguousarray(q[:, :, heads]), np.ascontiguousarray(k[:, :, kv]),
            np.ascontiguousarray(v[:, :, kv]), **kwargs)
        np.testing.assert_array_equal(part_out, out[:, :, heads])
        np.testing.assert_array_equal(part_lse, lse[:, heads])
