#!/usr/bin/env python3
# fp-bench --mask-png: runs fp-bench on the CPU and decodes the PNG with the
# standard library only (chunk CRCs, zlib, the five row filters), then checks
# the picture against the run: size = blocks x pixels per block, dark above
# the diagonal, red on it, and below it blue (kept) or light grey (dropped)
# with as many blue + red blocks as the run's density says. Also: a --sweep
# writes FILE_<len>.png per length with one "[i/n] N tokens: X ms" line each,
# and a bad path exits 2 leaving nothing behind.
# Usage: fp_bench_mask_png.py <fp-bench>
import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib

KEPT = (31, 119, 180)
NOT_KEPT = (235, 235, 235)
ABOVE = (64, 64, 64)
DIAGONAL_KEPT = (214, 39, 40)


def decode_png(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: not a PNG signature"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path}: bad CRC in {kind}"
        chunks.append((kind, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", path
    width, height, depth, colour, _, _, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0), (depth, colour, interlace)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    stride, bpp = width * 3, 3
    assert len(raw) == height * (stride + 1), "IDAT size"
    rows, prev = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 255
            else:
                assert kind == 0, f"filter {kind}"
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, 3)])
        prev = line
    return width, height, rows


def check_mask(path, blocks, density):
    width, height, rows = decode_png(path)
    scale = min(32, max(1, 1024 // blocks))
    assert width == height == blocks * scale, (width, height, blocks, scale)
    kept = 0
    for i in range(blocks):
        for j in range(blocks):
            # Every pixel of the block's square has the block's colour.
            square = {rows[i * scale + dy][j * scale + dx]
                      for dy in range(scale) for dx in range(scale)}
            assert len(square) == 1, (i, j, square)
            colour = square.pop()
            if j > i:
                assert colour == ABOVE, (i, j, colour)
            elif j == i:
                assert colour == DIAGONAL_KEPT, (i, j, colour)
                kept += 1
            else:
                assert colour in (KEPT, NOT_KEPT), (i, j, colour)
                kept += colour == KEPT
    causal = blocks * (blocks + 1) // 2
    assert abs(kept / causal - density) < 1e-4, (kept, causal, density)
    return kept, causal


def main():
    bench = sys.argv[1]
    one_head = ["--device", "cpu", "--q-heads", "1", "--kv-heads", "1",
                "--head-dim", "64", "--repeats", "1", "--warmup", "0", "--json"]
    # Few blocks kept by position, so the rule drops some.
    shape = one_head + ["--block", "64", "--sink", "1", "--window", "1",
                        "--last-n", "1", "--alpha", "0.5"]
    with tempfile.TemporaryDirectory() as tmp:
        # One length: one head, so the run's density is this head's.
        out = os.path.join(tmp, "mask.png")
        run = subprocess.run([bench, *shape, "--seq-len", "1024",
                              "--mask-png", out],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        result = json.loads(run.stdout.splitlines()[-1])
        kept, causal = check_mask(out, 16, result["density"])
        assert 16 < kept < causal, f"want both colours below the diagonal: {kept}/{causal}"
        assert os.listdir(tmp) == ["mask.png"], os.listdir(tmp)
        print(f"ok: {out}: 16 x 16 blocks, {kept}/{causal} kept")

        # A sweep: a file per length and a progress line per length.
        sweep = os.path.join(tmp, "sweep.png")
        run = subprocess.run([bench, *shape, "--sweep", "512,1024",
                              "--mask-png", sweep],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        results = [json.loads(line) for line in run.stdout.splitlines()]
        for index, (length, result) in enumerate(zip((512, 1024), results)):
            check_mask(os.path.join(tmp, f"sweep_{length}.png"),
                       length // 64, result["density"])
            line = f"[{index + 1}/2] {length} tokens: "
            assert line in run.stderr, (line, run.stderr)
        print("ok: --sweep wrote sweep_512.png and sweep_1024.png, with progress")

        # Above 1024 blocks a pixel covers 2 x 2 blocks: 1025 -> 513 pixels.
        big = os.path.join(tmp, "big.png")
        run = subprocess.run([bench, *one_head, "--block", "16",
                              "--seq-len", str(1025 * 16), "--mask-png", big],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        width, height, rows = decode_png(big)
        assert width == height == 513, (width, height)
        assert rows[0][512] == ABOVE and rows[512][512] in (
            DIAGONAL_KEPT, (255, 187, 120)), (rows[0][512], rows[512][512])
        assert rows[512][0] != ABOVE, rows[512][0]
        print("ok: 1025 blocks drawn as 513 x 513 pixels")

        # A bad path: exit 2 before the run, nothing written.
        bad = os.path.join(tmp, "missing", "mask.png")
        run = subprocess.run([bench, *shape, "--seq-len", "1024",
                              "--mask-png", bad],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 2, (run.returncode, run.stderr)
        assert "--mask-png: cannot create" in run.stderr, run.stderr
        assert run.stdout == "", run.stdout
        assert not os.path.exists(os.path.dirname(bad))
        print("ok: a bad --mask-png path exits 2 before the run")


if __name__ == "__main__":
    main()
