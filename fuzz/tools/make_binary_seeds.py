#!/usr/bin/env python3
"""Hand-made seeds for fp-fuzz-cache-entry (the input format is described in
fuzz/fuzz_cache_entry.cpp) and starter seeds for fp-fuzz-capi (the fuzzer
grows the rest; scripts/fuzz.sh with FP_FUZZ_MERGE=1 merges them back).
Usage: fuzz/tools/make_binary_seeds.py"""
import pathlib
import random
import struct

root = pathlib.Path(__file__).resolve().parents[2]
corpus = root / "fuzz/corpus"

def well_formed(flags, binary, manifest, log, override=0, value=0):
    return (bytes([1]) + struct.pack("<IBQ", flags, override, value) +
            struct.pack("<HH", len(binary), len(manifest)) + binary + manifest + log)

log = (root / "unittests/Runtime/Inputs/ptxas-sm80.log").read_bytes()
manifest = (corpus / "manifest/prefill-sm_80.txt").read_bytes()
elf = b"\x7fELF" + bytes(range(64))
seeds = {
    "wellformed-cubin-ptxas-log": well_formed(1, elf, manifest, log),
    "wellformed-ptx": well_formed(0, b".version 8.0\n.target sm_80\n\x00", b"params_abi 1\n", b""),
    "wellformed-empty-binary": well_formed(1, b"", manifest, log),
    "wellformed-bad-version": well_formed(1, elf, b"", b"", override=1, value=2),
    "wellformed-wrong-key": well_formed(1, elf, b"", b"", override=2, value=0xAB),
    "wellformed-binary-size-huge": well_formed(1, elf, b"", b"", override=3, value=1 << 40),
    "wellformed-manifest-size-off": well_formed(1, elf, b"x", b"", override=4, value=2),
    "wellformed-log-size-max": well_formed(1, elf, b"", b"log", override=5, value=(1 << 64) - 1),
    "raw-empty": bytes([0]),
    "raw-magic-only": bytes([0]) + b"FPKCACHE",
    "raw-header-zeros": bytes([0]) + b"FPKCACHE" + bytes(96),
    "raw-garbage": bytes([2]) + bytes(random.Random(7).getrandbits(8) for _ in range(300)),
}
out = corpus / "cache-entry"
out.mkdir(parents=True, exist_ok=True)
for name, data in seeds.items():
    (out / name).write_bytes(data)

out = corpus / "capi"
out.mkdir(parents=True, exist_ok=True)
rng = random.Random(13)
for n in (64, 160, 400):
    (out / f"zeros-{n}").write_bytes(bytes(n))
for i in range(4):
    (out / f"random-{i}").write_bytes(bytes(rng.getrandbits(8) for _ in range(256)))
print("seeds written")
