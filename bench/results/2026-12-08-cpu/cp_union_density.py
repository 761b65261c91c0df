import sys, numpy as np
sys.path.insert(0, "python"); sys.path.insert(0, "python/tests")  # run from the repository root
import flashprefill, reference as ref
for s in (4096, 16384):
    rng = np.random.default_rng(3)
    q, k, v = ref.structured_qkv(rng, 1, s, 32, 8, 128, "bf16", block=128)
    m = flashprefill.mask(q, k, dtype="bf16").to_dense()[0]  # [h, nb, nb]
    nb = m.shape[1]
    for W in (2, 4):
        per = nb // W
        for r in range(1, W):
            rows = range(r * per, (r + 1) * per - (2 if r == W - 1 else 0))  # minus dense tail
            remote = list(range(0, r * per))
            blk = m[:, rows][:, :, remote].any(axis=(0, 1)).mean()
            perhead = m[:, rows][:, :, remote].reshape(8, 4, len(rows), len(remote)).any(axis=(1, 2)).mean()
            print(f"S={s} W={W} rank={r}: density={m.sum()/ (32*nb*(nb+1)/2):.3f} union blocks={blk:.3f} union (block,kv head)={perhead:.3f}")
