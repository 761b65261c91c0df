"""An independent numpy statement of the operator (docs/semantics.md section
1), in float64, to check the library against: block scores and the keep rule,
and masked attention over a given mask. Written from the rule, not from the C++
reference, so agreement means both follow the rule.
"""

from __future__ import annotations

import numpy as np

import flashprefill

SCORE_EPSILON = 1e-9


def to_float(x, dtype: str) -> np.ndarray:
    """bf16 bit patterns (uint16) or float16 -> float64."""
    if dtype == "bf16":
        return flashprefill.from_bf16(x).astype(np.float64)
    return np.asarray(x, dtype=np.float64)


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """float -> the dtype's nearest value, as float64."""
    if dtype == "bf16":
        return flashprefill.from_bf16(flashprefill.to_bf16(x.astype(np.float32))).astype(np.float64)
    return x.astype(np.float16).astype(np.float64)


def structured_qkv(rng, b, s, hq, hkv, d, dtype: str, *, topics=6, noise=0.4, strength=1.2,
                   block=16):
    """q, k, v with block structure: each key block carries one of a few
    topic directions, each query block looks for one topic, so attention
    concentrates on some far blocks (random normals alone attend almost
    uniformly and keep every block)."""
    directions = rng.standard_normal((topics, d))
    nb = -(-s // block)
    key_topic = rng.integers(0, topics, size=(b, nb, hkv))
    query_topic = rng.integers(0, topics, size=(b, nb, hq))
    rows = np.arange(s) // block
    k = noise * rng.standard_normal((b, s, hkv, d))
    q = noise * rng.standard_normal((b, s, hq, d))
    for bi in range(b):
        k[bi] += directions[key_topic[bi, rows]]
        q[bi] += strength * directions[query_topic[bi, rows]]
    v = rng.standard_normal((b, s, hkv, d))
    return tuple(encode(x, dtype) for x in (q, k, v))


def encode(x: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bf16":
        return flashprefill.to_bf16(x.astype(np.float32))
    return x.astype(np.float16)


def block_means(x, block):
    """[b, nb, h, d] block means as the rule computes them: an fp32 sum in
    ascending row order divided (in fp32) by the row count."""
    b, s, h, d = x.shape
    nb = -(-s // block)
    out = np.zeros((b, nb, h, d), dtype=np.float32)
    for j in range(nb):
        rows = range(j * block, min((j + 1) * block, s))
        acc = np.zeros((b, h, d), dtype=np.float32)
        for r in rows:
            acc += x[:, r].astype(np.float32)
        out[:, j] = acc / np.float32(len(rows))
    return out


def block_scores(q, k, block, scale, *, pooled=False, dtype="bf16"):
    """score[b, h, I, j] (float64; 0 above the diagonal), rule v1 step 1-2."""
    b, s, hq, d = q.shape
    hkv = k.shape[2]
    g = hq // hkv
    nb = -(-s // block)
    kbar = round_to(block_means(k, block), dtype)  # stored rounded to the input dtype
    scores = np.zeros((b, hq, nb, nb))
    for bi in range(b):
        for h in range(hq):
            kb = kbar[bi, :, h // g]  # [nb, d]
            for i in range(nb):
                lo, hi = i * block, min((i + 1) * block, s)
                if pooled:
                    qbar = round_to(block_means(q[bi:bi + 1, lo:hi, h:h + 1], block)[0, 0, 0], dtype)
                    logits = (kb[:i + 1] @ qbar) * scale
                    e = np.exp(logits - logits.max())
                else:
                    logits = (q[bi, lo:hi, h] @ kb[:i + 1].T) * scale  # [rows, i+1]
                    last = np.minimum((np.arange(i + 1) + 1) * block, s) - 1
                    visible = np.arange(lo, hi)[:, None] >= last[None, :]
                    logits = np.where(visible, logits, -np.inf)
                    e = np.exp(logits - logits.max()).sum(axis=0)
                scores[bi, h, i, :i + 1] = e / (e.sum() + SCORE_EPSILON)
    return scores


def keep_row(row, I, nq, *, alpha, sink, window, last_n, min_budget=0,
             threshold="relative_max"):
    """Rule v1 step 3 for one (head, query block) row: `row` holds the scores
    of the candidates j <= J(I) = len(row) - 1. Returns (keep, margin) where
    margin is |score - t| / max."""
    J = len(row) - 1
    top = row.max()
    t = alpha * top
    if threshold == "min_max":
        t += (1 - alpha) * row.min()
    j = np.arange(J + 1)
    forced = (j < sink) | (J - j < window)
    keep = (row >= t) | forced | (I >= nq - last_n)
    if min_budget > 0:
        free = row[~forced]
        if len(free) <= min_budget:
            keep |= ~forced
        else:
            kth = np.sort(free)[::-1][min_budget - 1]
            keep |= (row >= kth) & ~forced
    margin = np.abs(row - t) / top if top > 0 else np.full(row.shape, np.inf)
    return keep, margin


def keep_rule(scores, *, alpha, sink, window, last_n, min_budget=0, threshold="relative_max"):
    """dense[b, h, I, j] (bool) and the threshold margin |score - t| / max
    of every block, rule v1 step 3."""
    b, hq, nb, _ = scores.shape
    dense = np.zeros(scores.shape, dtype=bool)
    margin = np.full(scores.shape, np.inf)
    for bi in range(b):
        for h in range(hq):
            for i in range(nb):
                dense[bi, h, i, :i + 1], margin[bi, h, i, :i + 1] = keep_row(
                    scores[bi, h, i, :i + 1], i, nb, alpha=alpha, sink=sink, window=window,
                    last_n=last_n, min_budget=min_budget, threshold=threshold)
    return dense, margin


# ---------------------------------------------------------------------------
# Engine shapes (docs/semantics.md section 2): one sequence whose q_len
# queries are the last of its k_len positions (prefix p = k_len - q_len).
# ---------------------------------------------------------------------------


def last_key_block(prefix, q_len, block, I):
    """J(I) = (p + last local row of query block I) // B."""
    return (prefix + min((I + 1) * block, q_len) - 1) // block


def block_scores_prefix(q, k, block, scale, *, dtype="bf16"):
    """score[h, I, j] (float64; 0 past J(I)) of one sequence: q [q_len, h_q,
    d], k [k_len, h_kv, d]. Local row r (position p + r) scores block j iff
    block j's last key is at a position <= p + r."""
    q_len, hq, _ = q.shape
    k_len, hkv, _ = k.shape
    prefix, g = k_len - q_len, hq // hkv
    nq, nk = -(-q_len // block), -(-k_len // block)
    kbar = round_to(block_means(k[None], block), dtype)[0]  # [nk, h_kv, d]
    scores = np.zeros((hq, nq, nk))
    for h in range(hq):
        for i in range(nq):
            lo, hi = i * block, min((i + 1) * block, q_len)
            J = last_key_block(prefix, q_len, block, i)
            logits = (q[lo:hi, h] @ kbar[:J + 1, h // g].T) * scale  # [rows, J+1]
            last = np.minimum((np.arange(J + 1) + 1) * block, k_len) - 1
            visible = (prefix + np.arange(lo, hi))[:, None] >= last[None, :]
            logits = np.where(visible, logits, -np.inf)
            e = np.exp(logits - logits.max()).sum(axis=0)
            scores[h, i, :J + 1] = e / (e.sum() + SCORE_EPSILON)
    return scores


def keep_rule_prefix(scores, prefix, q_len, block, *, alpha, sink, window, last_n,
                     min_budget=0, threshold="relative_max"):
    """dense[h, I, j] and margins of one sequence, rule v1 step 3 with the
    candidates j <= J(I) (last_n 0 where the call does not apply it)."""
    hq, nq, nk = scores.shape
    dense = np.zeros(scores.shape, dtype=bool)
    margin = np.full(scores.shape, np.inf)
    for h in range(hq):
        for i in range(nq):
            J = last_key_block(prefix, q_len, block, i)
            dense[h, i, :J + 1], margin[h, i, :J + 1] = keep_row(
                scores[h, i, :J + 1], i, nq, alpha=alpha, sink=sink, window=window,
                last_n=last_n, min_budget=min_budget, threshold=threshold)
    return dense, margin


def masked_attention_prefix(q, k, v, dense_mask, block, scale):
    """out [q_len, h_q, d] and lse [h_q, q_len] in float64 of one sequence
    over the kept blocks of `dense_mask` ([h_q, nq, nk] bool; query blocks
    local, key blocks absolute), causal aligned bottom-right."""
    q_len, hq, _ = q.shape
    k_len = k.shape[0]
    prefix, g = k_len - q_len, hq // k.shape[1]
    out = np.zeros((q_len, hq, v.shape[2]))
    lse = np.full((hq, q_len), -np.inf)
    rows, keys = np.arange(q_len), np.arange(k_len)
    for h in range(hq):
        logits = (q[:, h] @ k[:, h // g].T) * scale  # [q_len, k_len]
        allowed = dense_mask[h][(rows // block)[:, None], (keys // block)[None, :]]
        allowed &= keys[None, :] <= (prefix + rows)[:, None]
        logits = np.where(allowed, logits, -np.inf)
        m = logits.max(axis=1, keepdims=True)
        p = np.exp(logits - m)
        l = p.sum(axis=1, keepdims=True)
        out[:, h] = (p @ v[:, h // g]) / l
        lse[h] = (m + np.log(l))[:, 0]
    return out, lse


def masked_attention(q, k, v, dense_mask, block, scale):
    """out [b, s, h_q, d] and lse [b, h_q, s] in float64 over the kept blocks
    of `dense_mask` ([b, h_q, nb, nb] bool), causal."""
    b, s, hq, d = q.shape
    g = hq // k.shape[2]
    out = np.zeros((b, s, hq, v.shape[3]))
    lse = np.full((b, hq, s), -np.inf)
    key_block = np.arange(s) // block
    for bi in range(b):
        for h in range(hq):
            logits = (q[bi, :, h] @ k[bi, :, h // g].T) * scale  # [s, s]
            allowed = dense_mask[bi, h][key_block[:, None], key_block[None, :]]
            allowed &= np.arange(s)[None, :] <= np.arange(s)[:, None]
            logits = np.where(allowed, logits, -np.inf)
            m = logits.max(axis=1, keepdims=True)
            p = np.exp(logits - m)
            l = p.sum(axis=1, keepdims=True)
            out[bi, :, h] = (p @ v[bi, :, h // g]) / l
            lse[bi, h] = (m + np.log(l))[:, 0]
    return out, lse


def relative_l2(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))
