#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Engine shapes on the GPU (issue 19's benchmarks), every row in one process
on the same inputs, baselines included:

  (1) a long prompt prefilled in B-aligned chunks, each chunk one
      Plan.prefill_varlen call (q = the chunk, K/V = prefix + chunk, packed
      and in a paged cache of page size 16 and 1, pages shuffled),
      apply_last_n on the final chunk only, against one whole-prompt
      Plan.prefill; the kept blocks and the output must match the whole
      prompt's (target: total time <= 1.15x the whole prompt's);
  (2) paged (page 16, and 1) against packed K/V for one sequence with
      prefix 0: prefill_varlen, and select / attend apart (target: paged >=
      0.9x packed speed);
  (3) a mixed batch (8 x 16K + 1 x 128K) in one prefill_varlen call (packed
      and paged 16) against the sum of per-sequence calls (per-sequence
      prefill_varlen, and whole-prompt prefill) (target: faster);
  (4) dense causal baselines of the same batch: torch SDPA (cuDNN and flash
      backends, one call per sequence, summed), torch.nn.attention.varlen
      (one call) and nested-jagged SDPA when this torch has them (K/V heads
      repeated where a path lacks GQA; torch 2.11's jagged SDPA refuses
      is_causal with GQA).

bf16, h_q 32, h_kv 8, d 128, B 128, the library's default rule; every call of
ours passes dense_below_tokens=0 (the rule's mask at every length, so chunks
and whole prompt keep the same blocks) and both host maxima (no host sync).

Inputs: by default a torch port of runtime/testing/StructuredInputs.cpp's
generator (its defaults: 4 sink tokens, a rotary-style local band of 64
tokens, 6 topics in ~512-token segments that recur, 8 heavy keys, 2 needles,
noise 0.5), generated on the GPU (same structure, not the same numbers: the
random streams differ). With --inputs DIR, fp-bench --save-inputs files:
DIR/{q,k,v}_<len>_d128.npy, batch 0 of the prompt length's file is the prompt
and batches 0..7 of the short length's file are the short sequences
(fp-bench --batch 8 --seq-len 16384 --save-inputs DIR).

Timing: CUDA events (compare.median_ms), warm-ups first, median of repeats;
a chunked or per-sequence row times its whole loop of calls (host time
between launches counts). Effective TFLOP/s = 4 * d * (query-key pairs
visible in the kept blocks, summed over heads) / time; dense rows count every
causal pair. Density = kept / causal blocks.

Here: `bash scripts/gpu_check.sh --bundle` (the library into .gpu); on the
GPU machine, carrying .gpu:

  PYTHONPATH=python FLASHPREFILL_LIBRARY=$PWD/.gpu/libflashprefill.so \\
      python3 bench/varlen_bench.py --out $OUT/varlen.jsonl [--quick]

--quick: a 16K prompt in 2K chunks and a 8 x 1K + 1 x 8K batch (smoke run,
16 s on an H200 with a cold JIT). The full sizes are meant to finish within
about 4 minutes on an H200 (not yet measured).
"""
import argparse
import functools
import inspect
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import load_inputs, median_ms  # noqa: E402  (one timing helper for bench/)

H_Q, H_KV, D, BLOCK = 32, 8, 128, 128
SIZES = {
    "full": dict(prompt=131072, chunk=8192, short=16384, num_short=8, long=131072),
    "quick": dict(prompt=16384, chunk=2048, short=1024, num_short=8, long=8192),
}
PAGE_SIZES = (16, 1)


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

def structured_sequence(n, seed, device="cuda"):
    """q [n, h_q, d], k, v [n, h_kv, d] bf16 with the structure of
    fp::testing::makeStructuredInputs at its defaults (see that file): per kv
    head, keys = topic of the token's segment + sink (first 4 tokens) + heavy
    keys + needles + a positional band + noise; the group's queries look for
    their own segment's topic, the sink, the heavy direction and, in a
    needle's late query block, the needle; values = 4 * topic + noise."""
    import torch
    cpu = torch.Generator().manual_seed(seed)
    gpu = torch.Generator(device=device).manual_seed(seed)
    group, root = H_Q // H_KV, math.sqrt(D)

    def split(logit):  # q . k = logit * sqrt(d) for aligned unit directions
        return math.sqrt(logit * root)

    sink_tokens, sink_k = 4, split(3.0)
    topic_k, heavy_k, needle_k = split(3.0), split(2.5), split(12.0)
    topics_n, segment, heavy_keys, needles, noise = 6, 512, 8, 2, 0.5
    needle_tokens = BLOCK // 2
    band_pairs = min(8, D // 8)
    freqs = torch.tensor([1.0 / (64.0 * (1.0 + 3.0 * i / band_pairs)) for i in range(band_pairs)],
                         dtype=torch.float64, device=device)
    angle = torch.arange(n, dtype=torch.float64, device=device)[:, None] * freqs[None, :]
    band = (torch.stack((angle.cos(), angle.sin()), dim=-1).reshape(n, 2 * band_pairs).float()
            * split(4.0 / band_pairs))
    nb = -(-n // BLOCK)

    def units(count):
        x = torch.randn(count, D, generator=cpu, dtype=torch.float32)
        return (x / x.norm(dim=-1, keepdim=True)).to(device)

    def normal():
        return torch.randn(n, D, generator=gpu, device=device, dtype=torch.float32)

    q = torch.empty(n, H_Q, D, dtype=torch.bfloat16, device=device)
    k = torch.empty(n, H_KV, D, dtype=torch.bfloat16, device=device)
    v = torch.empty_like(k)
    for kvh in range(H_KV):
        sink, heavy = units(2)
        topics = units(topics_n)
        count = n // (segment // 2) + 1  # enough segments of >= segment / 2 tokens
        lengths = torch.randint(segment // 2, segment * 3 // 2 + 1, (count,), generator=cpu)
        topic_of = torch.repeat_interleave(
            torch.randint(0, topics_n, (count,), generator=cpu), lengths)[:n].to(device)
        heavy_at = torch.randint(0, n, (heavy_keys if n > 1 else 0,), generator=cpu).to(device)
        planted = []  # (key token, query block, direction)
        for i in range(needles if nb >= 8 else 0):
            key_block, query_block = 2 + (i + 1) * nb // (needles + 3), nb - 3 - i
            if query_block > key_block + 4:
                planted.append((key_block * BLOCK + BLOCK // 4, query_block, units(1)[0]))
        topic = topics[topic_of]
        key = topic_k * topic
        key[:sink_tokens] += 2 * sink_k * sink
        key[heavy_at] += 2 * heavy_k * heavy
        for token, _, direction in planted:
            key[token:token + needle_tokens] += 2 * needle_k * direction
        key[:, :2 * band_pairs] += band
        k[:, kvh] = (key + noise * normal()).to(torch.bfloat16)
        v[:, kvh] = (4 * topic + normal()).to(torch.bfloat16)
        query = topic_k * topic + 0.5 * sink_k * sink + 0.5 * heavy_k * heavy
        query[:, :2 * band_pairs] += band
        for _, query_block, direction in planted:
            query[query_block * BLOCK:(query_block + 1) * BLOCK] += 0.5 * needle_k * direction
        for g in range(group):
            q[:, kvh * group + g] = (query + noise * normal()).to(torch.bfloat16)
    return q, k, v


GENERATOR = ("torch port of runtime/testing/StructuredInputs.cpp (defaults: 4 sinks, 64-token "
             "band, 6 topics / 512-token segments, 8 heavy keys, 2 needles, noise 0.5), on the GPU")


def make_inputs(args, sizes):
    """(prompt (q, k, v), short sequences [(q, k, v)], long (q, k, v), description)."""
    if args.inputs:
        def seqs(n, count):
            q, k, v = load_inputs(args.inputs, n, D)
            if q.shape[0] < count or q.shape[2:] != (H_Q, D) or k.shape[2:] != (H_KV, D):
                sys.exit(f"--inputs: {args.inputs}/q_{n}_d{D}.npy: expected [>= {count}, {n}, "
                         f"{H_Q}, {D}] (fp-bench --batch {count} --seq-len {n} --save-inputs), "
                         f"got {tuple(q.shape)}")
            return [(q[i], k[i], v[i]) for i in range(count)]
        prompt = seqs(sizes["prompt"], 1)[0]
        short = seqs(sizes["short"], sizes["num_short"])
        long = prompt if sizes["long"] == sizes["prompt"] else seqs(sizes["long"], 1)[0]
        return prompt, short, long, f"fp-bench --save-inputs files from {args.inputs}"
    prompt = structured_sequence(sizes["prompt"], seed=1)
    short = [structured_sequence(sizes["short"], seed=100 + i) for i in range(sizes["num_short"])]
    long = prompt if sizes["long"] == sizes["prompt"] else structured_sequence(sizes["long"], 2)
    return prompt, short, long, GENERATOR


def paged_cache(keys, values, page_size, seed):
    """Sequences' K/V in pages [num_pages, page_size, h_kv, d], pages in a
    shuffled order; (k pages, v pages, page_table [b, max_pages] int32 with
    -1 past a sequence's pages, k_lens [b] int32)."""
    import torch
    device = keys[0].device
    needed = [-(-x.shape[0] // page_size) for x in keys]
    order = torch.randperm(sum(needed), generator=torch.Generator().manual_seed(seed)).to(device)
    kp = torch.zeros(sum(needed), page_size, H_KV, D, dtype=keys[0].dtype, device=device)
    vp = torch.zeros_like(kp)
    table = torch.full((len(keys), max(needed)), -1, dtype=torch.int32, device=device)
    used = 0
    for i, (k, v) in enumerate(zip(keys, values)):
        ids = order[used:used + needed[i]]
        used += needed[i]
        for pages, x in ((kp, k), (vp, v)):
            padded = torch.zeros(needed[i] * page_size, H_KV, D, dtype=x.dtype, device=device)
            padded[:x.shape[0]] = x
            pages[ids] = padded.view(needed[i], page_size, H_KV, D)
        table[i, :needed[i]] = ids.to(torch.int32)
    k_lens = torch.tensor([x.shape[0] for x in keys], dtype=torch.int32, device=device)
    return kp, vp, table, k_lens


def int32(values, device="cuda"):
    import torch
    return torch.tensor(values, dtype=torch.int32, device=device)


def offsets(lengths):
    out = [0]
    for n in lengths:
        out.append(out[-1] + n)
    return out


# ---------------------------------------------------------------------------
# Masks: kept blocks, causal blocks, visible pairs
# ---------------------------------------------------------------------------

def row_geometry(q_lens, k_lens, num_rows, device="cuda"):
    """Per compact-mask row (docs/varlen.md: query block I of sequence i is
    row cu_q[i] // B + i + I): the absolute positions [q0, q1) of its
    queries, its sequence's k_len, and whether the row is a query block."""
    import torch
    q0 = torch.zeros(num_rows, dtype=torch.int64)
    q1, k_len = torch.zeros_like(q0), torch.zeros_like(q0)
    valid = torch.zeros(num_rows, dtype=torch.bool)
    start = 0
    for i, (ql, kl) in enumerate(zip(q_lens, k_lens)):
        row, nq = start // BLOCK + i, -(-ql // BLOCK)
        local = torch.arange(nq, dtype=torch.int64)
        q0[row:row + nq] = kl - ql + local * BLOCK
        q1[row:row + nq] = kl - ql + torch.clamp((local + 1) * BLOCK, max=ql)
        k_len[row:row + nq] = kl
        valid[row:row + nq] = True
        start += ql
    return tuple(x.to(device) for x in (q0, q1, k_len, valid))


def mask_stats(counts, ids, geometry):
    """(kept blocks, causal blocks, query-key pairs visible in the kept
    blocks), summed over rows and heads; counts [rows, h], ids [rows, h, K]."""
    import torch
    q0, q1, k_len, valid = geometry
    heads = counts.shape[1]
    kept = causal = 0
    pairs = 0.0
    for r in range(0, counts.shape[0], 128):
        rows = slice(r, r + 128)
        c = counts[rows].long()
        j = ids[rows].long()
        live = valid[rows]
        keep = (torch.arange(j.shape[-1], device=j.device).view(1, 1, -1) < c.unsqueeze(-1))
        keep &= live.view(-1, 1, 1)
        a = (j * BLOCK).double()  # the block's keys are [a, e)
        e = torch.minimum(a + BLOCK, k_len[rows].double().view(-1, 1, 1))

        def before(x):
            """Visible pairs of the block over the queries at positions < x
            (query t sees keys <= t)."""
            x = x.double().view(-1, 1, 1)
            inside = (x - a) * (x - a + 1) / 2
            past = (e - a) * (e - a + 1) / 2 + (x - e) * (e - a)
            return torch.where(x <= a, torch.zeros_like(a), torch.where(x <= e, inside, past))

        pairs += float(torch.where(keep, before(q1[rows]) - before(q0[rows]),
                                   torch.zeros_like(a)).sum())
        kept += int((c.clamp(min=0) * live.view(-1, 1)).sum())
        causal += heads * int((((q1[rows] - 1) // BLOCK + 1) * live).sum())
    return kept, causal, pairs


def whole_rows(mask):
    """A whole-prompt Mask of batch 1 as compact rows: counts [nb, h], ids
    [nb, h, nb]."""
    return mask.counts[0].t().contiguous(), mask.ids[0].permute(1, 0, 2).contiguous()


def rows_equal(counts_a, ids_a, counts_b, ids_b):
    """Same kept blocks in every row and head (ids compared up to counts)."""
    import torch
    if not torch.equal(counts_a, counts_b):
        return False
    width = min(ids_a.shape[-1], ids_b.shape[-1])
    if int(counts_a.max()) > width:
        return False
    keep = torch.arange(width, device=ids_a.device).view(1, 1, -1) < counts_a.unsqueeze(-1)
    return bool(((ids_a[..., :width] == ids_b[..., :width]) | ~keep).all())


def diff(a, b):
    """(max |a - b|, ||a - b|| / ||b||) over rows, in float32 slices; a NaN
    anywhere shows as NaN."""
    import torch
    worst, num, den = [], 0.0, 0.0
    for r in range(0, a.shape[0], 8192):
        x, y = a[r:r + 8192].float(), b[r:r + 8192].float()
        d = x - y
        worst.append(d.abs().max())
        num += float((d * d).sum())
        den += float((y * y).sum())
    return float(torch.stack(worst).max()), math.sqrt(num / den) if den else float("nan")


def causal_pairs(lengths):
    return sum(n * (n + 1) / 2 for n in lengths)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

class Report:
    """Rows as JSON lines (stdout and --out) and a markdown table at the end."""

    def __init__(self, path, base):
        self.path, self.base, self.rows = path, base, []

    def emit(self, **fields):
        row = dict(self.base, **fields)
        self.rows.append(row)
        print(json.dumps(row), flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps(row) + "\n")
        return row

    def error(self, row, what, e):
        import traceback
        traceback.print_exc()
        return self.emit(row=row, what=what, error=error_text(e))

    def table(self):
        def num(x, fmt):
            return "" if x is None else fmt.format(x)

        lines = ["| row | what | ms | density | eff. TFLOP/s | against | ratio | target | notes |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            if r.get("kind") == "info":
                continue
            target = r.get("target", "")
            if target and r.get("met") is not None:
                target += ": met" if r["met"] else ": missed"
            lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
                r["row"], r["what"], num(r.get("ms"), "{:.3f}") if "ms" in r else "error",
                num(r.get("density"), "{:.2%}"), num(r.get("tflops"), "{:.0f}"),
                r.get("versus", ""), num(r.get("ratio"), "{:.3f}"), target,
                r.get("error", r.get("notes", ""))))
        for r in self.rows:
            if r.get("kind") == "info" and r["row"] != "info":
                facts = {k: v for k, v in r.items()
                         if k not in self.base and k not in ("kind", "row", "what")}
                lines.append(f"- row {r['row']}, {r['what']}: {json.dumps(facts)}")
        return "\n".join(lines)


def error_text(e):
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160] if text else ''}"


# ---------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        import torch
        import flashprefill
        self.torch, self.fp = torch, flashprefill
        self.args = args
        self.sizes = SIZES["quick" if args.quick else "full"]
        self.reps = dict(warmup=args.warmup, reps=args.reps)
        self.dense_reps = dict(warmup=1, reps=args.dense_reps)
        # Every call of ours: the rule's mask at every length (no dense
        # fall-back below the cost model's break-even).
        self.ours = dict(dense_below_tokens=0)

        t0 = time.perf_counter()
        self.prompt, self.shorts, self.long_seq, self.inputs = make_inputs(args, self.sizes)
        torch.cuda.synchronize()
        inputs_s = time.perf_counter() - t0
        library = os.environ.get("FLASHPREFILL_LIBRARY", "")
        commit_file = os.path.join(os.path.dirname(library), "COMMIT") if library else ""
        self.commit = (open(commit_file).read().strip() if os.path.isfile(commit_file)
                       else "unknown")
        rule = flashprefill.defaults()
        self.rule = {k: rule[k] for k in ("alpha", "sink", "window", "last_n", "min_budget",
                                          "threshold")}
        self.report = Report(args.out, {
            "device": torch.cuda.get_device_name(0), "dtype": "bf16", "q_heads": H_Q,
            "kv_heads": H_KV, "head_dim": D, "block": BLOCK,
            "mode": "quick" if args.quick else "full"})
        self.report.emit(kind="info", row="info", what="setup", torch=torch.__version__,
                         library=library, library_commit=self.commit, inputs=self.inputs,
                         rule=self.rule, sizes=self.sizes, reps=self.reps,
                         dense_reps=self.dense_reps, inputs_s=round(inputs_s, 2))
        t0 = time.perf_counter()
        self.plan = flashprefill.plan(dtype="bf16", head_dim=D, num_q_heads=H_Q,
                                      num_kv_heads=H_KV,
                                      max_seq_len=max(self.sizes["prompt"], self.sizes["long"]),
                                      max_batch=self.sizes["num_short"] + 1)
        self.report.emit(kind="info", row="info", what="plan (JIT)",
                         plan_create_s=round(time.perf_counter() - t0, 3),
                         cache_dir=os.environ.get("FLASHPREFILL_CACHE_DIR", "(default)"))
        self.whole_ms = None
        self.batch = None

    def ms(self, fn, dense=False):
        return median_ms(fn, **(self.dense_reps if dense else self.reps))

    # -- (1) chunked prefill vs the whole prompt ----------------------------
    def chunked_prefill(self):
        torch, plan, report = self.torch, self.plan, self.report
        q, k, v = self.prompt
        S, C = self.sizes["prompt"], self.sizes["chunk"]
        q4, k4, v4 = q[None], k[None], v[None]
        ws_whole = plan.empty_workspace(1, S)
        out_whole = torch.empty_like(q4)
        counter = torch.zeros(1, dtype=torch.int64, device="cuda")

        def whole(kept_counter=None):
            plan.prefill(q4, k4, v4, out=out_whole, workspace=ws_whole,
                         kept_counter=kept_counter, **self.ours)

        whole(counter)
        torch.cuda.synchronize()
        whole_kept = int(counter.item())
        whole_counts, whole_ids = whole_rows(plan.select(q4, k4, workspace=ws_whole))
        kept, causal, pairs = mask_stats(whole_counts, whole_ids,
                                         row_geometry([S], [S], whole_counts.shape[0]))
        self.whole_ms = whole_ms = self.ms(whole)
        report.emit(row="1", what=f"whole prompt {S // 1024}K: prefill", ms=whole_ms,
                    density=kept / causal, tflops=4 * D * pairs / whole_ms / 1e9,
                    kept_blocks=kept, kept_counter=whole_kept, pairs=pairs,
                    notes="baseline of row 1 (on sm_90a the wgmma kernels)")

        n_chunks = S // C
        cu_chunk = int32([0, C])
        last = [int32([1 if c == n_chunks - 1 else 0]) for c in range(n_chunks)]
        ws_chunk = plan.empty_varlen_workspace(1, C, C, S)
        out_packed = None
        for name, page_size in [("packed", None)] + [(f"paged {p}", p) for p in PAGE_SIZES]:
            what = f"{n_chunks} chunks of {C // 1024}K, {name}: prefill_varlen"
            try:
                if page_size is None:
                    layouts = [dict(k=k, v=v, cu_seqlens_k=int32([0, (c + 1) * C]))
                               for c in range(n_chunks)]
                else:
                    kp, vp, table, _ = paged_cache([k], [v], page_size, seed=page_size)
                    layouts = [dict(k=kp, v=vp, page_table=table, k_lens=int32([(c + 1) * C]))
                               for c in range(n_chunks)]
                calls = [dict(q=q[c * C:(c + 1) * C], cu_seqlens_q=cu_chunk, max_seqlen_q=C,
                              max_seqlen_k=(c + 1) * C, apply_last_n=last[c], **layouts[c])
                         for c in range(n_chunks)]
                out = torch.empty_like(q)

                def chunked(kept_counter=None, calls=calls, out=out):
                    for c, call in enumerate(calls):
                        plan.prefill_varlen(**call, out=out[c * C:(c + 1) * C],
                                            workspace=ws_chunk, kept_counter=kept_counter,
                                            **self.ours)

                counter.zero_()
                chunked(counter)
                torch.cuda.synchronize()
                chunk_kept = int(counter.item())
                kept_c = causal_c = 0
                pairs_c, equal = 0.0, True
                nq = C // BLOCK
                for c, call in enumerate(calls):
                    select = {key: val for key, val in call.items() if key != "v"}
                    m = plan.select_varlen(**select)
                    stats = mask_stats(m.counts, m.ids,
                                       row_geometry([C], [(c + 1) * C], m.counts.shape[0]))
                    kept_c, causal_c = kept_c + stats[0], causal_c + stats[1]
                    pairs_c += stats[2]
                    rows = slice(c * nq, (c + 1) * nq)
                    equal &= rows_equal(m.counts[:nq], m.ids[:nq], whole_counts[rows],
                                        whole_ids[rows])
                max_abs, rel = diff(out, out_whole[0])
                bitwise = None
                if out_packed is None:
                    out_packed = out
                else:
                    bitwise = bool(torch.equal(out, out_packed))
                ms = self.ms(chunked)
                notes = (f"masks = whole: {equal}; kept {chunk_kept} (whole {whole_kept}); "
                         f"out vs whole: max abs {max_abs:.3g}, rel L2 {rel:.3g}")
                if bitwise is not None:
                    notes += f"; out = packed chunks bitwise: {bitwise}"
                report.emit(row="1", what=what, ms=ms, density=kept_c / causal_c,
                            tflops=4 * D * pairs_c / ms / 1e9, versus="whole prompt",
                            ratio=ms / whole_ms, target="<= 1.15", met=ms / whole_ms <= 1.15,
                            kept_blocks=kept_c, kept_counter=chunk_kept, pairs=pairs_c,
                            masks_equal_whole=equal, max_abs_diff_vs_whole=max_abs,
                            rel_l2_vs_whole=rel, bitwise_equal_packed_chunks=bitwise,
                            notes=notes)
            except Exception as e:  # keep the other variants
                report.error("1", what, e)

    # -- (2) paged vs packed, one sequence, prefix 0 ------------------------
    def paged_vs_packed(self):
        torch, plan, report = self.torch, self.plan, self.report
        q, k, v = self.prompt
        S = self.sizes["prompt"]
        cu = int32([0, S])
        ws = plan.empty_varlen_workspace(1, S, S, S)
        out = torch.empty_like(q)
        lengths = dict(cu_seqlens_q=cu, max_seqlen_q=S, max_seqlen_k=S)
        packed_ms = {}
        for name, page_size in [("packed", None)] + [(f"paged {p}", p) for p in PAGE_SIZES]:
            try:
                if page_size is None:
                    kv = dict(k=k, cu_seqlens_k=cu)
                    vv = v
                else:
                    kp, vv, table, k_lens = paged_cache([k], [v], page_size, seed=page_size)
                    kv = dict(k=kp, page_table=table, k_lens=k_lens)
                mask = plan.select_varlen(q, **kv, **lengths)
                kept, causal, pairs = mask_stats(mask.counts, mask.ids,
                                                 row_geometry([S], [S], mask.counts.shape[0]))
                timings = {
                    "prefill_varlen": lambda: plan.prefill_varlen(
                        q, v=vv, **kv, **lengths, out=out, workspace=ws, **self.ours),
                    "select_varlen": lambda: plan.select_varlen(
                        q, **kv, **lengths, mask=mask, workspace=ws),
                    "attend_varlen": lambda: plan.attend_varlen(
                        q, v=vv, **kv, **lengths, mask=mask, out=out),
                }
                for call, fn in timings.items():
                    ms = self.ms(fn)
                    row = dict(row="2", what=f"{S // 1024}K prefix 0, {name}: {call}", ms=ms,
                               density=kept / causal, kept_blocks=kept, pairs=pairs)
                    if call != "select_varlen":
                        row["tflops"] = 4 * D * pairs / ms / 1e9
                    if page_size is None:
                        packed_ms[call] = ms
                    elif call in packed_ms:
                        row.update(versus=f"packed {call}", ratio=packed_ms[call] / ms,
                                   notes="ratio = packed ms / paged ms (speed)")
                        if call != "select_varlen":
                            row.update(target=">= 0.9", met=packed_ms[call] / ms >= 0.9)
                    report.emit(**row)
            except Exception as e:
                report.error("2", f"{S // 1024}K prefix 0, {name}", e)

    # -- (3) mixed batch vs per-sequence calls -------------------------------
    def make_batch(self):
        torch, plan = self.torch, self.plan
        seqs = self.shorts + [self.long_seq]
        lens = [s[0].shape[0] for s in seqs]
        b = argparse.Namespace(lens=lens, L=max(lens), total=sum(lens), cu_list=offsets(lens))
        b.label = (f"{self.sizes['num_short']} x {self.sizes['short'] // 1024}K + 1 x "
                   f"{self.sizes['long'] // 1024}K")
        b.q, b.k, b.v = (torch.cat([s[i] for s in seqs]) for i in range(3))
        b.cu = int32(b.cu_list)
        b.maxima = dict(max_seqlen_q=b.L, max_seqlen_k=b.L)
        mask = plan.select_varlen(b.q, b.k, b.cu, b.cu, **b.maxima)
        b.kept, b.causal, b.pairs = mask_stats(mask.counts, mask.ids,
                                               row_geometry(lens, lens, mask.counts.shape[0]))
        b.out = None  # ours, one packed call (row 3), compared with the dense rows
        self.batch = b

    def mixed_batch(self):
        torch, plan, report, b = self.torch, self.plan, self.report, self.batch
        ws = plan.empty_varlen_workspace(len(b.lens), b.total, b.L, b.L)
        out_b = torch.empty_like(b.q)
        out_seq = torch.empty_like(b.q)
        out_pp = torch.empty_like(b.q)
        cu_seq = [int32([0, n]) for n in b.lens]
        ws_seq = plan.empty_varlen_workspace(1, b.L, b.L, b.L)
        ws_pp = plan.empty_workspace(1, b.L)

        def one_call():
            plan.prefill_varlen(b.q, b.k, b.v, b.cu, b.cu, **b.maxima, out=out_b, workspace=ws,
                                **self.ours)

        def per_sequence_varlen():
            for i, n in enumerate(b.lens):
                rows = slice(b.cu_list[i], b.cu_list[i + 1])
                plan.prefill_varlen(b.q[rows], b.k[rows], b.v[rows], cu_seq[i], cu_seq[i],
                                    max_seqlen_q=n, max_seqlen_k=n, out=out_seq[rows],
                                    workspace=ws_seq, **self.ours)

        def per_sequence_prefill():
            for i in range(len(b.lens)):
                rows = slice(b.cu_list[i], b.cu_list[i + 1])
                plan.prefill(b.q[rows][None], b.k[rows][None], b.v[rows][None],
                             out=out_pp[rows][None], workspace=ws_pp, **self.ours)

        def one_call_paged():
            kp, vp, table, k_lens = paged_cache(
                [b.k[b.cu_list[i]:b.cu_list[i + 1]] for i in range(len(b.lens))],
                [b.v[b.cu_list[i]:b.cu_list[i + 1]] for i in range(len(b.lens))], 16, seed=3)
            out_bp = torch.empty_like(b.q)

            def fn():
                plan.prefill_varlen(b.q, kp, vp, b.cu, k_lens=k_lens, page_table=table,
                                    **b.maxima, out=out_bp, workspace=ws, **self.ours)
            ms = self.ms(fn)
            return ms, bool(torch.equal(out_bp, out_b))

        results, notes = {}, {}
        for name, fn in (("one call, packed", one_call),
                         ("per-sequence prefill_varlen, summed", per_sequence_varlen),
                         ("per-sequence whole-prompt prefill, summed", per_sequence_prefill)):
            try:
                results[name] = self.ms(fn)
            except Exception as e:
                report.error("3", f"{b.label}: {name}", e)
        if "one call, packed" in results:
            b.out = out_b
            try:
                results["one call, paged 16"], equal = one_call_paged()
                notes["one call, paged 16"] = f"out = packed bitwise: {equal}"
            except Exception as e:
                report.error("3", f"{b.label}: one call, paged 16", e)
            if "per-sequence prefill_varlen, summed" in results:
                notes["one call, packed"] = ("out vs per-sequence prefill_varlen: max abs "
                                             f"{diff(out_b, out_seq)[0]:.3g}")
            if "per-sequence whole-prompt prefill, summed" in results:
                notes["one call, packed"] = (notes.get("one call, packed", "") +
                                             "; vs per-sequence prefill: rel L2 "
                                             f"{diff(out_b, out_pp)[1]:.3g}")
        sums = {n: ms for n, ms in results.items() if n.startswith("per-sequence")}
        for name, ms in results.items():
            row = dict(row="3", what=f"{b.label}: {name}", ms=ms, density=b.kept / b.causal,
                       tflops=4 * D * b.pairs / ms / 1e9, kept_blocks=b.kept, pairs=b.pairs,
                       notes=notes.get(name, ""))
            if name.startswith("one call") and sums:
                fastest = min(sums, key=sums.get)
                row.update(versus=fastest.replace(", summed", " (sum)"), ratio=ms / sums[fastest],
                           target="< 1 (faster)", met=ms < sums[fastest])
            report.emit(**row)

    # -- (4) dense baselines of the same batch -----------------------------
    def dense_baselines(self):
        torch, report, b = self.torch, self.report, self.batch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
        flops = 4 * H_Q * D * causal_pairs(b.lens)
        ours_ms = next((r["ms"] for r in report.rows if r["row"] == "3" and "ms" in r
                        and r["what"].endswith("one call, packed")), None)
        state = {"compared": False}

        def dense_row(name, fn, notes="", rows_of=None):
            try:
                out = fn()
                ms = self.ms(fn, dense=True)
                row = dict(row="4", what=f"{b.label}: {name}", ms=ms, density=1.0,
                           tflops=flops / ms / 1e9, notes=notes)
                if ours_ms:
                    row.update(versus="ours, one call packed", ratio=ms / ours_ms)
                    row["notes"] = (notes + "; " if notes else "") + "ratio = dense ms / ours ms"
                report.emit(**row)
                if rows_of is not None and b.out is not None and not state["compared"]:
                    max_abs, rel = diff(b.out, rows_of(out))
                    report.emit(kind="info", row="3", what=f"ours (one call) vs {name}",
                                max_abs_diff=max_abs, rel_l2=rel,
                                notes="the sparse rule's approximation error")
                    state["compared"] = True
            except Exception as e:
                report.error("4", f"{b.label}: {name}", e)

        per_seq = [tuple(x[b.cu_list[i]:b.cu_list[i + 1]].transpose(0, 1).unsqueeze(0)
                         .contiguous() for x in (b.q, b.k, b.v)) for i in range(len(b.lens))]

        def sdpa_per_sequence(backend):
            def fn():
                with sdpa_kernel([backend]):
                    return [F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                                           enable_gqa=True)
                            for q, k, v in per_seq]
            return fn

        def rows_of_list(outs):  # [1, h, n, d] per sequence -> [total, h, d]
            return torch.cat([o[0].transpose(0, 1) for o in outs])

        dense_row("SDPA cuDNN, per sequence, summed",
                  sdpa_per_sequence(SDPBackend.CUDNN_ATTENTION), rows_of=rows_of_list)
        dense_row("SDPA flash, per sequence, summed",
                  sdpa_per_sequence(SDPBackend.FLASH_ATTENTION), rows_of=rows_of_list)
        del per_seq

        try:
            from torch.nn.attention import varlen as varlen_module
            params = inspect.signature(varlen_module.varlen_attn).parameters
            causal = {"is_causal": True} if "is_causal" in params else {"window_size": (-1, 0)}
            gqa = {"enable_gqa": True} if "enable_gqa" in params else {}
            shown = ", ".join(f"{key}={val}" for key, val in {**causal, **gqa}.items())
            note = f"torch.nn.attention.varlen.varlen_attn({shown})"

            def call(k, v, **extra):
                return lambda: varlen_module.varlen_attn(b.q, k, v, b.cu, b.cu, b.L, b.L,
                                                         **causal, **extra)
            try:
                call(b.k, b.v, **gqa)()
                fn = call(b.k, b.v, **gqa)
            except Exception as e:  # no GQA here: K/V heads repeated
                note += f"; K/V heads repeated x{H_Q // H_KV} ({error_text(e)[:80]})"
                fn = call(b.k.repeat_interleave(H_Q // H_KV, dim=1),
                          b.v.repeat_interleave(H_Q // H_KV, dim=1))
            dense_row("varlen_attn, one call", fn, note,
                      rows_of=lambda o: o[0] if isinstance(o, tuple) else o)
            del fn
        except Exception as e:
            report.error("4", f"{b.label}: varlen_attn", e)

        try:
            offsets_long = b.cu.long()

            def jagged(x):  # [total, h, d] -> nested [b, h, j, d]
                return torch.nested.nested_tensor_from_jagged(x, offsets_long).transpose(1, 2)

            native = [jagged(x) for x in (b.q, b.k, b.v)]
            repeated = None
            for name, backend in (("cuDNN", SDPBackend.CUDNN_ATTENTION),
                                  ("flash", SDPBackend.FLASH_ATTENTION)):
                def fn(backend=backend, inputs=native, gqa=True):
                    with sdpa_kernel([backend]):
                        return F.scaled_dot_product_attention(*inputs, is_causal=True,
                                                              enable_gqa=gqa)
                note = "torch.nested jagged layout"
                try:
                    fn()
                except Exception as e:  # torch 2.11's jagged SDPA has no GQA: repeat K/V heads
                    if repeated is None:
                        repeated = [native[0]] + [jagged(x.repeat_interleave(H_Q // H_KV, dim=1))
                                                  for x in (b.k, b.v)]
                    fn = functools.partial(fn, inputs=repeated, gqa=False)
                    note += f"; K/V heads repeated x{H_Q // H_KV} ({error_text(e)[:80]})"
                dense_row(f"SDPA {name}, nested jagged, one call", fn, note)
        except Exception as e:
            report.error("4", f"{b.label}: nested jagged SDPA", e)

    def summary(self):
        torch = self.torch
        print()
        print(f"## {self.report.base['device']}, torch {torch.__version__}, library {self.commit}")
        print()
        print(f"bf16, h_q {H_Q}, h_kv {H_KV}, d {D}, B {BLOCK}, rule {json.dumps(self.rule)}, "
              f"dense_below_tokens=0; inputs: {self.inputs}; timing: warm-up "
              f"{self.args.warmup}, median of {self.args.reps} (dense rows: 1, median of "
              f"{self.args.dense_reps})")
        print()
        print(self.report.table())


def run(args):
    bench = Bench(args)
    steps = (("1", bench.chunked_prefill), ("2", bench.paged_vs_packed),
             ("3", bench.make_batch), ("3", bench.mixed_batch), ("4", bench.dense_baselines))
    for row, step in steps:
        if step != bench.make_batch and row in ("3", "4") and bench.batch is None:
            continue  # the batch could not be made: reported already
        try:
            t0 = time.perf_counter()
            step()
            print(f"[{step.__name__}: {time.perf_counter() - t0:.1f} s]", file=sys.stderr,
                  flush=True)
        except Exception as e:
            bench.report.error(row, step.__name__, e)
        bench.torch.cuda.empty_cache()
    bench.plan.close()
    bench.summary()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="varlen.jsonl", help="JSON lines appended here")
    p.add_argument("--quick", action="store_true",
                   help="small sizes (16K prompt in 2K chunks, 8 x 1K + 1 x 8K), a smoke run")
    p.add_argument("--inputs", help="directory of fp-bench --save-inputs files (default: the "
                                     "torch port of the structured generator)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up calls per row (>= 0)")
    p.add_argument("--reps", type=int, default=7, help="timed repeats of our rows (>= 1)")
    p.add_argument("--dense-reps", type=int, default=3, help="timed repeats of dense rows (>= 1)")
    args = p.parse_args()
    if args.warmup < 0:
        p.error(f"--warmup: expected >= 0, got {args.warmup}")
    for name in ("reps", "dense_reps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    t0 = time.perf_counter()
    run(args)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
