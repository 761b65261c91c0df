#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Side by side on one GPU, same process, same inputs: PyTorch SDPA dense
(cuDNN and FlashAttention-2 backends), FlexAttention on our own mask, and
ours (discovery and attention timed separately, and our attention with every
block kept). Inputs are fp-bench's structured generator, saved with
`fp-bench --save-inputs DIR` (never zeros, never plain randn).

One JSON line per row in --out; rows already there are skipped, so a run can
resume across device calls (each is at most 10 minutes).

  python3 bench/compare.py --inputs DIR --out rows.jsonl --stage lengths
  python3 bench/compare.py --inputs DIR --out rows.jsonl --stage density
  python3 bench/compare.py --plots rows.jsonl --plot-dir bench/plots  (no GPU)

Timing: CUDA events, 3 warm-ups, median of 10. FLOPs: 4 * b * h_q * d *
(causal pairs) for dense-equivalent; effective FLOPs count the pairs of the
kept blocks only.
"""
import argparse
import json
import math
import os
import sys
import time


def median_ms(fn, warmup=3, reps=10):
    import torch
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return sorted(times)[len(times) // 2]


def causal_pairs(n):
    return n * (n + 1) / 2


def kept_pairs(counts, ids, block, n):
    """Query-key pairs attended under the mask (diagonal blocks causal)."""
    import torch
    nb = counts.shape[-1]
    rows = torch.minimum(torch.full((nb,), block, device=counts.device),
                         n - torch.arange(nb, device=counts.device) * block).double()
    col = torch.arange(nb, device=counts.device)
    valid = col.view(1, 1, 1, nb) < counts.unsqueeze(-1)
    j = torch.where(valid, ids, torch.zeros_like(ids)).long()
    i = torch.arange(nb, device=counts.device).view(1, 1, nb, 1)
    keys = rows[j]
    pairs = torch.where(j == i, rows[i.expand_as(j)] * (rows[i.expand_as(j)] + 1) / 2,
                        rows[i.expand_as(j)] * keys)
    return float((pairs * valid).sum())


def rel_l2(a, b):
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm())


def load_inputs(directory, n, d):
    import numpy as np
    import torch
    out = []
    for name in "qkv":
        arr = np.load(os.path.join(directory, f"{name}_{n}_d{d}.npy"))
        out.append(torch.from_numpy(arr).view(torch.bfloat16).cuda())
    return out  # [b, s, h, d]


def flex_block_mask(counts, ids, n, block):
    """FlexAttention BlockMask from our padded rows: kept off-diagonal blocks
    are full (no mask_mod), the diagonal block is partial (causal)."""
    import torch
    from torch.nn.attention.flex_attention import BlockMask
    b, h, nb = counts.shape
    diag = torch.arange(nb, device=counts.device, dtype=torch.int32)
    last = torch.gather(ids, 3, (counts - 1).clamp(min=0).long().unsqueeze(-1)).squeeze(-1)
    assert bool((last == diag.view(1, 1, nb)).all()), "diagonal must be kept (window >= 1)"
    kv_num = torch.ones_like(counts)
    kv_idx = torch.zeros_like(ids)
    kv_idx[..., 0] = diag.view(1, 1, nb)

    def causal(b_, h_, q, kv):
        return q >= kv
    return BlockMask.from_kv_blocks(kv_num, kv_idx, full_kv_num_blocks=counts - 1,
                                    full_kv_indices=ids, BLOCK_SIZE=block,
                                    mask_mod=causal, seq_lengths=(n, n))


def run_length(args, n, d, rows, done):
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.nn.attention.flex_attention import flex_attention
    import flashprefill

    q, k, v = load_inputs(args.inputs, n, d)
    b, _, hq, _ = q.shape
    hkv = k.shape[2]
    block = 128
    device = torch.cuda.get_device_name(0)
    dense_flops = 4 * b * hq * d * causal_pairs(n)
    qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))  # [b, h, s, d]
    base = {"device": device, "seq_len": n, "head_dim": d, "q_heads": hq,
            "kv_heads": hkv, "batch": b, "dtype": "bf16"}

    def emit(name, **fields):
        row = dict(base, impl=name, **fields)
        print(json.dumps(row), flush=True)
        rows.append(row)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")

    # Dense baselines (also the reference output for errors).
    dense_out = {}
    for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION),
                          ("flash2", SDPBackend.FLASH_ATTENTION)):
        try:
            with sdpa_kernel([backend]):
                fn = lambda: F.scaled_dot_product_attention(qt, kt, vt, is_causal=True,
                                                            enable_gqa=True)
                dense_out[name] = fn()
                ms = median_ms(fn)
            if (name, n, d) not in done:
                emit(name, ms=ms, dense_tflops=dense_flops / ms / 1e9, density=1.0)
        except Exception as e:  # backend unavailable for this shape
            if (name, n, d) not in done:
                emit(name, error=f"{type(e).__name__}: {str(e).splitlines()[0][:120]}")
    reference = dense_out.get("cudnn", dense_out.get("flash2"))

    # JIT: cold in this process (empty cache dir), warm from disk in a new one.
    t0 = time.perf_counter()
    plan = flashprefill.plan(dtype="bf16", head_dim=d, num_q_heads=hq, num_kv_heads=hkv,
                             max_seq_len=n)
    plan_ms = 1e3 * (time.perf_counter() - t0)
    ws = plan.empty_workspace(b, n, select_only=True)
    mask = plan.select(q, k, workspace=ws)
    torch.cuda.synchronize()
    sel_ms = median_ms(lambda: plan.select(q, k, workspace=ws, mask=mask))
    out = torch.empty_like(q)
    att_ms = median_ms(lambda: plan.attend(q, k, v, mask, out=out))
    counts, ids = mask.counts, mask.ids
    kept = kept_pairs(counts, ids, block, n)
    density = float(counts.sum()) / (b * hq * (counts.shape[-1] * (counts.shape[-1] + 1) / 2))
    dense_mask = plan.select(q, k, workspace=ws, alpha=0.0)
    all_out = torch.empty_like(q)
    all_ms = median_ms(lambda: plan.attend(q, k, v, dense_mask, out=all_out))
    err = rel_l2(out.transpose(1, 2), reference) if reference is not None else None
    cudnn_ms = next((r["ms"] for r in rows if r["impl"] == "cudnn" and r["seq_len"] == n
                     and r["head_dim"] == d and "ms" in r), None)
    if ("ours", n, d) not in done:
        total = sel_ms + att_ms
        emit("ours", ms=total, discovery_ms=sel_ms, attention_ms=att_ms, density=density,
             dense_tflops=dense_flops / total / 1e9, effective_tflops=4 * d * kept / att_ms / 1e9,
             kernel_efficiency=(4 * d * kept / att_ms / 1e9) / (dense_flops / cudnn_ms / 1e9)
             if cudnn_ms else None,
             discovery_share=sel_ms / cudnn_ms if cudnn_ms else None,
             rel_l2_vs_dense=err, plan_cold_ms=plan_ms)
    if ("ours_all_blocks", n, d) not in done:
        emit("ours_all_blocks", ms=all_ms, dense_tflops=dense_flops / all_ms / 1e9, density=1.0,
             rel_l2_vs_dense=rel_l2(all_out.transpose(1, 2), reference)
             if reference is not None else None)

    # FlexAttention on exactly our mask: compares kernels alone.
    if ("flex_our_mask", n, d) not in done:
        try:
            flex = torch.compile(flex_attention, dynamic=False)
            bm = flex_block_mask(counts, ids, n, block)
            fo = flex(qt, kt, vt, block_mask=bm, enable_gqa=True)
            ms = median_ms(lambda: flex(qt, kt, vt, block_mask=bm, enable_gqa=True))
            emit("flex_our_mask", ms=ms, density=density,
                 effective_tflops=4 * d * kept / ms / 1e9,
                 rel_l2_vs_ours=rel_l2(fo, out.transpose(1, 2)),
                 rel_l2_vs_dense=rel_l2(fo, reference) if reference is not None else None)
        except Exception as e:
            emit("flex_our_mask", error=f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
    plan.close()


def run_density(args, rows, done):
    """Forced densities at --density-length with fixed random masks."""
    import torch
    from torch.nn.attention.flex_attention import flex_attention
    import flashprefill

    n, d, block = args.density_length, 128, 128
    q, k, v = load_inputs(args.inputs, n, d)
    b, _, hq, _ = q.shape
    hkv = k.shape[2]
    nb = (n + block - 1) // block
    plan = flashprefill.plan(dtype="bf16", head_dim=d, num_q_heads=hq, num_kv_heads=hkv,
                             max_seq_len=n)
    qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))
    flex = torch.compile(flex_attention, dynamic=False)
    device = torch.cuda.get_device_name(0)
    gen = torch.Generator(device="cuda").manual_seed(0)
    for target in args.densities:
        if all((impl, n, d, target) in done
               for impl in ("ours_fixed_mask", "flex_fixed_mask")):
            continue
        i = torch.arange(nb, device="cuda").view(nb, 1)
        j = torch.arange(nb, device="cuda").view(1, nb)
        keep = (torch.rand(b, hq, nb, nb, device="cuda", generator=gen) < target) & (j < i)
        keep |= (j == i)  # the diagonal is always kept (window >= 1)
        counts = keep.sum(-1, dtype=torch.int32)
        order = torch.where(keep, j, j + nb).sort(-1).values
        ids = torch.where(order < nb, order, torch.zeros_like(order)).to(torch.int32).contiguous()
        density = float(counts.sum()) / (b * hq * nb * (nb + 1) / 2)
        kept = kept_pairs(counts, ids, block, n)
        mask = flashprefill.Mask(counts.contiguous(), ids)
        out = torch.empty_like(q)
        ms = median_ms(lambda: plan.attend(q, k, v, mask, out=out))
        base = {"device": device, "seq_len": n, "head_dim": d, "q_heads": hq, "kv_heads": hkv,
                "target_density": target, "density": density}
        for impl, t in (("ours_fixed_mask", ms),):
            row = dict(base, impl=impl, ms=t, effective_tflops=4 * d * kept / t / 1e9)
            print(json.dumps(row), flush=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
        try:
            bm = flex_block_mask(counts, ids, n, block)
            flex(qt, kt, vt, block_mask=bm, enable_gqa=True)
            t = median_ms(lambda: flex(qt, kt, vt, block_mask=bm, enable_gqa=True))
            row = dict(base, impl="flex_fixed_mask", ms=t, effective_tflops=4 * d * kept / t / 1e9)
        except Exception as e:
            row = dict(base, impl="flex_fixed_mask",
                       error=f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
    plan.close()


def plots(path, directory):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [json.loads(l) for l in open(path) if l.startswith("{")]
    os.makedirs(directory, exist_ok=True)
    # Speedup of ours over each dense baseline vs length (d 128).
    fig, ax = plt.subplots(figsize=(6, 4))
    ours = {r["seq_len"]: r for r in rows if r.get("impl") == "ours" and r["head_dim"] == 128}
    for name in ("cudnn", "flash2", "flex_our_mask"):
        base = {r["seq_len"]: r for r in rows
                if r.get("impl") == name and r["head_dim"] == 128 and "ms" in r}
        xs = sorted(set(ours) & set(base))
        ax.plot(xs, [base[x]["ms"] / ours[x]["ms"] for x in xs], marker="o",
                label=f"ours (discovery + attention) vs {name}")
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length")
    ax.set_ylabel("speedup (x)")
    ax.set_title("bf16, h_q 32, h_kv 8, d 128, structured inputs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "speedup_vs_length.png"), dpi=120)
    # Effective TFLOP/s vs density, fixed masks.
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("ours_fixed_mask", "flex_fixed_mask"):
        pts = sorted((r["density"], r["effective_tflops"]) for r in rows
                     if r.get("impl") == name and "effective_tflops" in r)
        if pts:
            ax.plot(*zip(*pts), marker="o", label=name)
    cudnn = [r for r in rows if r.get("impl") == "cudnn" and "dense_tflops" in r
             and r["head_dim"] == 128]
    if cudnn:
        best = max(cudnn, key=lambda r: r["seq_len"])
        ax.axhline(best["dense_tflops"], color="gray", ls="--",
                   label=f"cuDNN dense ({best['seq_len'] // 1024}K)")
    ax.set_xscale("log")
    ax.set_xlabel("density (kept / causal blocks)")
    ax.set_ylabel("effective TFLOP/s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "tflops_vs_density.png"), dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--inputs", help="directory of fp-bench --save-inputs files")
    p.add_argument("--out", default="compare.jsonl")
    p.add_argument("--stage", choices=("lengths", "headdims", "density"), default="lengths")
    p.add_argument("--lengths", type=lambda s: [int(x) for x in s.split(",")],
                   default=[4096, 8192, 16384, 32768, 65536, 131072, 262144])
    p.add_argument("--density-length", type=int, default=131072)
    p.add_argument("--densities", type=lambda s: [float(x) for x in s.split(",")],
                   default=[0.01, 0.03, 0.1, 0.3, 1.0])
    p.add_argument("--plots", help="make PNG plots from this JSON-lines file and exit")
    p.add_argument("--plot-dir", default="bench/plots")
    args = p.parse_args()
    if args.plots:
        plots(args.plots, args.plot_dir)
        return
    if not args.inputs:
        p.error("--inputs: expected the directory written by fp-bench --save-inputs")
    rows = []
    if os.path.exists(args.out):
        rows = [json.loads(l) for l in open(args.out) if l.startswith("{")]
    done = {(r["impl"], r["seq_len"], r["head_dim"]) for r in rows}
    done |= {(r["impl"], r["seq_len"], r["head_dim"], r.get("target_density")) for r in rows}
    if args.stage == "density":
        run_density(args, rows, done)
        return
    for n in args.lengths:
        d = int(os.environ.get("FP_COMPARE_HEAD_DIM", "128"))
        print(f"[{n}] ...", file=sys.stderr, flush=True)
        run_length(args, n, d, rows, done)


if __name__ == "__main__":
    main()
