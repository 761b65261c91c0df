#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Prefill time under transformers continuous batching: paged|flashprefill
against the stock paged|sdpa, per prompt length, with the kept-block density
per layer.

A randomly initialised Llama-style model (no weights exist on the GPU
machine; --layers, --hidden, heads 32/8, d 128, bf16), one prompt per run,
``generate_batch`` with max_new_tokens=1, so the time is the chunked prefill
of the prompt (in --batch-tokens chunks over a cache of --block-size-token
blocks) plus one sampling step. Each implementation is timed --reps times
after a warm-up; the median is reported. Random weights give attention that
is close to uniform, so the density is that of such a model, not of a
trained one (docs/transformers.md says so).

  python bench/transformers_cb_bench.py --seq-len 32768 65536 131072 --out cb.jsonl
  python bench/transformers_cb_bench.py --device cpu --seq-len 1024 --layers 1   # smoke

One JSON line per (length, implementation).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq-len", type=int, nargs="+", default=[32768, 65536, 131072])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--batch-tokens", type=int, default=8192)
    parser.add_argument("--block-size", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=None, help="None: the library default")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    for name in ("layers", "hidden", "batch_tokens", "block_size", "reps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: expected >= 1")
    if any(n < 1 for n in args.seq_len):
        parser.error("--seq-len: expected >= 1")

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM
    from transformers.generation.configuration_utils import ContinuousBatchingConfig

    from flashprefill.integrations import transformers as fp_hf

    cpu = args.device == "cpu"
    if cpu:  # transformers sizes its cache from GPU memory
        from transformers.generation.continuous_batching.cache import PagedAttentionMemoryHandler
        PagedAttentionMemoryHandler.get_available_memory = lambda self: 4 << 30
    settings = dict(min_seq_len=1, min_chunk_len=min(1024, args.batch_tokens), cpu_reference=cpu)
    if args.alpha is not None:
        settings["alpha"] = args.alpha
    fp_hf.register(**settings)
    torch.manual_seed(0)
    heads, kv_heads, d = 32, 8, 128
    if cpu:
        heads, kv_heads, d = 4, 2, 32
    cfg = LlamaConfig(vocab_size=32000, hidden_size=args.hidden if not cpu else heads * d,
                      intermediate_size=2 * (args.hidden if not cpu else heads * d),
                      num_hidden_layers=args.layers, num_attention_heads=heads,
                      num_key_value_heads=kv_heads, head_dim=d,
                      max_position_embeddings=max(args.seq_len) + 16)
    model = LlamaForCausalLM(cfg).to(device=args.device, dtype=torch.bfloat16).eval()
    gen = GenerationConfig(max_new_tokens=1, do_sample=False, eos_token_id=-1, pad_token_id=0)
    device_name = torch.cuda.get_device_name() if not cpu else "cpu (reference)"

    for seq_len in args.seq_len:
        g = torch.Generator().manual_seed(seq_len)
        prompt = [torch.randint(0, cfg.vocab_size, (seq_len,), generator=g).tolist()]
        for implementation in ("paged|sdpa", "flashprefill"):
            model.set_attn_implementation(implementation)
            cb = ContinuousBatchingConfig(block_size=args.block_size,
                                          max_batch_tokens=args.batch_tokens)
            times, stats = [], None
            for rep in range(args.reps + 1):
                if not cpu:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                with fp_hf.collect_stats() as st:
                    model.generate_batch(inputs=prompt, generation_config=gen,
                                         continuous_batching_config=cb)
                if not cpu:
                    torch.cuda.synchronize()
                if rep:  # the first run warms up (plans, kernels, allocator)
                    times.append((time.perf_counter() - start) * 1e3)
                stats = st
            row = {"device": device_name, "seq_len": seq_len, "implementation": implementation,
                   "layers": args.layers, "heads": [heads, kv_heads, d],
                   "batch_tokens": args.batch_tokens, "block_size": args.block_size,
                   "median_ms": round(statistics.median(times), 3),
                   "times_ms": [round(t, 3) for t in times]}
            if implementation == "flashprefill":
                row["density_per_layer"] = {str(k): round(v, 4)
                                            for k, v in stats.density().items()}
                row["flashprefill_calls_per_layer"] = {str(k): v for k, v in
                                                       stats.prefill_calls().items()}
                row["fallbacks"] = {str(k): v for k, v in stats.fallbacks().items()}
            line = json.dumps(row)
            print(line, flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(line + "\n")


if __name__ == "__main__":
    main()
