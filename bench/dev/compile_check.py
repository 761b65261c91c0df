#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compiles every default kernel configuration of the device library
(runtime/device/fp) through NVRTC, one kernel per program as the runtime
does, for sm_80 (kArch 80) and sm_90a (kArch 90), bf16 and f16, and reports
registers, spills, shared memory and NVRTC compile time. Fails if any default
spills or does not fit the arch's opt-in shared memory.

Usage: bench/dev/compile_check.py [--extra] [--no-min-blocks]
  --extra           also compile the tuning variants
  --no-min-blocks   wrap as __launch_bounds__(threads) instead of the
                    recommended __launch_bounds__(threads, 1); ptxas then
                    trades a few spills for occupancy in some discovery configs
"""
import concurrent.futures as cf
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CUDA = os.environ.get("CUDA_HOME", "/usr/local/cuda")
BIN = os.path.join(HERE, "bin")
TOOL = os.path.join(BIN, "nvrtc_check")

# (d, B): pool threads, (key chunk, warps), (BlockM, BlockN, warps, stages).
# Mirrors the table in runtime/device/fp/kernels.cuh.
DEFAULTS = {
    (64, 64): (128, (64, 4), (64, 64, 4, 2)),
    (64, 128): (128, (64, 4), (128, 64, 4, 2)),
    (128, 64): (128, (64, 4), (64, 64, 4, 2)),
    (128, 128): (128, (64, 4), (128, 32, 4, 2)),
    (256, 64): (128, (32, 4), (64, 32, 4, 2)),
    (256, 128): (128, (32, 4), (64, 32, 4, 2)),
}
EXTRA_ATTN = {
    (128, 128): [(128, 64, 8, 2), (128, 64, 4, 2), (64, 64, 4, 2)],
    (64, 128): [(128, 64, 8, 2), (64, 64, 4, 2)],
    (256, 128): [(128, 32, 8, 2)],
}
ARCHS = [("sm_80", 80, 163 * 1024), ("sm_90a", 90, 227 * 1024)]
DTYPES = [("bf16", "__nv_bfloat16"), ("f16", "__half")]


def build_tool():
    src = os.path.join(HERE, "nvrtc_check.cpp")
    if os.path.exists(TOOL) and os.path.getmtime(TOOL) > os.path.getmtime(src):
        return
    os.makedirs(BIN, exist_ok=True)
    subprocess.check_call(["g++", "-O1", "-std=c++17", src, f"-I{CUDA}/include",
                           f"-L{CUDA}/lib64", "-lnvrtc", f"-Wl,-rpath,{CUDA}/lib64",
                           "-o", TOOL])


def kernel_source(kind, elem, d, B, cfg, arch):
    if kind == "pool":
        (t,) = cfg
        return t, (f"fp::dev::block_pool<{elem}, {d}, {B}, {t}>(p);", "FpPoolParams")
    if kind == "discovery":
        kc, w = cfg
        return 32 * w, (f"fp::dev::pattern_discovery<{elem}, {d}, {B}, {kc}, {w}>(p);",
                        "FpDiscoveryParams")
    m, n, w, s = cfg
    return 32 * w, (f"fp::dev::masked_attention<{elem}, {d}, {B}, {m}, {n}, {w}, {s}, {arch}>(p);",
                    "FpAttentionParams")


def smem_bytes(kind, d, B, cfg):
    if kind == "pool":
        return 0
    if kind == "discovery":
        kc, w = cfg
        return B * d * 2 + 2 * kc * d * 2 + w * kc * 4 + (32 + 256 + 16) * 4  # + 8 * nb
    m, n, w, s = cfg
    return (m + 2 * s * n) * d * 2


MIN_BLOCKS = ", 1"  # the glue form the device library asks for


def compile_one(job):
    kind, (dname, elem), d, B, cfg, (aname, arch, limit), is_default = job
    threads, (call, ptype) = kernel_source(kind, elem, d, B, cfg, arch)
    src = (f'#include "fp/kernels.cuh"\n'
           f'extern "C" __global__ void __launch_bounds__({threads}{MIN_BLOCKS}) fp_kernel({ptype} p) {{\n'
           f'  {call}\n}}\n')
    with tempfile.NamedTemporaryFile("w", suffix=".cu", delete=False) as f:
        f.write(src)
        path = f.name
    try:
        out = subprocess.run([TOOL, path, f"-arch={aname}", "-std=c++17",
                              f"-I{CUDA}/include", f"-I{ROOT}/runtime/device",
                              "-Xptxas", "-v"], capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    regs = re.search(r"Used (\d+) registers", out)
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", out)
    secs = re.search(r"compile_seconds ([0-9.]+)", out)
    ok = "NVRTC_SUCCESS" in out
    smem = smem_bytes(kind, d, B, cfg)
    spills = (int(spill.group(1)) + int(spill.group(2))) if spill else -1
    bad = (not ok) or spills != 0 or smem > limit
    return dict(kind=kind, dtype=dname, d=d, B=B, cfg=cfg, arch=aname, ok=ok,
                regs=int(regs.group(1)) if regs else -1, spills=spills,
                smem=smem, secs=float(secs.group(1)) if secs else -1, bad=bad,
                default=is_default, log=out if not ok else "")


def main():
    global MIN_BLOCKS
    build_tool()
    extra = "--extra" in sys.argv
    if "--no-min-blocks" in sys.argv:
        MIN_BLOCKS = ""
    jobs = []
    for (d, B), (pt, disc, attn) in sorted(DEFAULTS.items()):
        for dt in DTYPES:
            for arch in ARCHS:
                jobs.append(("pool", dt, d, B, (pt,), arch, True))
                jobs.append(("discovery", dt, d, B, disc, arch, True))
                jobs.append(("attention", dt, d, B, attn, arch, True))
                if extra and dt[0] == "bf16":
                    for cfg in EXTRA_ATTN.get((d, B), []):
                        jobs.append(("attention", dt, d, B, cfg, arch, False))
    with cf.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        results = list(ex.map(compile_one, jobs))
    print(f"{'kernel':10s} {'dtype':5s} {'d':>4s} {'B':>4s} {'config':18s} {'arch':7s} "
          f"{'regs':>4s} {'spill':>5s} {'smem':>7s} {'nvrtc s':>7s}")
    failed = 0
    for r in results:
        cfg = "x".join(str(c) for c in r["cfg"])
        flag = "" if not r["bad"] else ("  <-- BAD" if r["default"] else "  (variant)")
        if r["bad"] and r["default"]:
            failed += 1
        smem = f"{r['smem']}" + ("+8nb" if r["kind"] == "discovery" else "")
        print(f"{r['kind']:10s} {r['dtype']:5s} {r['d']:4d} {r['B']:4d} {cfg:18s} {r['arch']:7s} "
              f"{r['regs']:4d} {r['spills']:5d} {smem:>7s} {r['secs']:7.3f}{flag}")
        if r["log"]:
            print(r["log"])
    secs = [r["secs"] for r in results]
    print(f"\n{len(results)} kernels, NVRTC compile time max {max(secs):.3f} s, "
          f"mean {sum(secs) / len(secs):.3f} s; {failed} default(s) failing")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
