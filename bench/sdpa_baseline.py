#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Dense causal attention baselines (PyTorch SDPA: cuDNN and FlashAttention-2
backends) on the shapes fp-bench measures, timed with CUDA events after
warm-up (median of 10). Dense kernels' time does not depend on the values,
so plain random inputs are fine here. One JSON object per line.

Usage: sdpa_baseline.py LEN [LEN ...]   (d = 128 at every length, d = 64
and 256 at 32768)
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import median_ms  # noqa: E402  (one timing helper for bench/)


def main():
    lengths = [int(x) for x in sys.argv[1:]] or [32768]
    device = torch.cuda.get_device_name(0)
    b, hq, hkv = 1, 32, 8
    shapes = [(128, n) for n in lengths] + [(64, 32768), (256, 32768)]
    for d, n in shapes:
        gen = torch.Generator(device="cuda").manual_seed(n + d)
        q = torch.randn(b, hq, n, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        k = torch.randn(b, hkv, n, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        v = torch.randn(b, hkv, n, d, device="cuda", dtype=torch.bfloat16, generator=gen)
        flops = 4 * b * hq * d * n * (n + 1) / 2
        for name, backend in (("cudnn", SDPBackend.CUDNN_ATTENTION),
                              ("flash2", SDPBackend.FLASH_ATTENTION)):
            row = {"device": device, "baseline": name, "seq_len": n, "head_dim": d,
                   "q_heads": hq, "kv_heads": hkv}
            try:
                with sdpa_kernel([backend]):
                    ms = median_ms(lambda: F.scaled_dot_product_attention(
                        q, k, v, is_causal=True, enable_gqa=True))
                row.update(ms=round(ms, 4), tflops=round(flops / ms / 1e9, 1))
            except Exception as error:  # backend unavailable for this shape
                row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:100]}"
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
