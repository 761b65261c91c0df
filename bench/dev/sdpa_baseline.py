#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Dense causal attention baselines through PyTorch SDPA, timed with CUDA
events (warm-up, median), for comparison with bench/dev/kernel_check --perf.

FLOPs use the FlashAttention convention for causal: 4 * b * h * L^2 * d / 2.
"""
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def median_ms(fn, warmup=3, reps=10):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def main():
    lengths = [int(x) for x in sys.argv[1:]] or [4096, 16384]
    print("device:", torch.cuda.get_device_name(0), "torch", torch.__version__)
    b, hq, hkv = 1, 32, 8
    for d in (128, 64, 256):
        for L in lengths:
            if d != 128 and L != 16384:
                continue
            g = torch.Generator(device="cuda").manual_seed(L + d)
            q = torch.randn(b, hq, L, d, device="cuda", dtype=torch.bfloat16, generator=g)
            k = torch.randn(b, hkv, L, d, device="cuda", dtype=torch.bfloat16, generator=g)
            v = torch.randn(b, hkv, L, d, device="cuda", dtype=torch.bfloat16, generator=g)
            ke = k.repeat_interleave(hq // hkv, dim=1)
            ve = v.repeat_interleave(hq // hkv, dim=1)
            flops = 4 * b * hq * L * L * d / 2
            for name, backend in (("flash(FA2)", SDPBackend.FLASH_ATTENTION),
                                  ("cudnn", SDPBackend.CUDNN_ATTENTION),
                                  ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
                try:
                    with sdpa_kernel([backend]):
                        ms = median_ms(lambda: F.scaled_dot_product_attention(
                            q, ke, ve, is_causal=True))
                    print(f"sdpa {name:11s} bf16 b{b} hq{hq} hkv{hkv} d{d} L{L}: "
                          f"{ms:8.3f} ms {flops / ms / 1e9:7.1f} TFLOP/s")
                except Exception as e:  # backend unavailable for this shape
                    print(f"sdpa {name:11s} d{d} L{L}: unavailable ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:80]})")


if __name__ == "__main__":
    main()
