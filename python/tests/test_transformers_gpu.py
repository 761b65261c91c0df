"""The transformers backend on the GPU, on a randomly initialized Llama
(4 layers, h_q 8, h_kv 2, d 128, hidden 1024, bf16, fixed seeds):

1. alpha = 0 at 16K: logits against an fp32 SDPA run of the same weights; our
   error is at most 2x the bf16 SDPA run's. Greedy decoding after our prefill
   (through SDPA, from the cache our prefill filled) is checked the same way.
2. defaults at 64K: the prefill runs, reports density per layer, and decoding
   continues from its cache; tokens and logits are compared with an all-SDPA
   run (differences come from sparsity and are reported, not hidden).
3. a padded batch falls back and equals SDPA bit for bit.

Numbers are printed as ``RESULT name = value`` lines (``pytest -s``) and,
with ``FP_RESULTS_JSON=path``, written there as JSON. Skips without CUDA or
transformers. ``FP_TRANSFORMERS_GPU_SMOKE=cpu`` runs the same logic on CPU at
toy sizes (CPU reference, 64-token blocks), to check the script before
spending GPU time.
"""

from __future__ import annotations

import copy
import json
import os
import time

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")
transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed: pip install 'transformers>=5'")
SMOKE = os.environ.get("FP_TRANSFORMERS_GPU_SMOKE") == "cpu"
if not SMOKE and not torch.cuda.is_available():
    pytest.skip("no CUDA device (torch.cuda.is_available() is False)", allow_module_level=True)
if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip(f"the backend targets transformers 5.x, found {transformers.__version__}",
                allow_module_level=True)

from flashprefill.integrations import transformers as fp_hf  # noqa: E402
from transformers import AutoModelForCausalLM, DynamicCache, LlamaConfig  # noqa: E402

DEV = "cpu" if SMOKE else "cuda"
VOCAB = 1024 if SMOKE else 32000
S1, S2, S3, PAD = (512, 1024, 512, 100) if SMOKE else (16384, 65536, 4096, 1000)
MIN1, MIN3 = (256, 256) if SMOKE else (4096, 2048)
DECODE = 8  # greedy tokens after the prompt (the first comes from the prefill's logits)
RESULTS: dict = {}


def report(name, value):
    RESULTS[name] = value
    print(f"RESULT {name} = {value}", flush=True)


@pytest.fixture(scope="module", autouse=True)
def results_file():
    report("env", {"gpu": "cpu smoke" if SMOKE else torch.cuda.get_device_name(),
                   "torch": torch.__version__,
                   "transformers": transformers.__version__})
    yield
    path = os.environ.get("FP_RESULTS_JSON")
    if path:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=1, default=str)


@pytest.fixture(scope="module")
def models():
    """(fp32 model, bf16 copy with the same weights), both on the GPU."""
    # The built-in defaults (tests set config.flashprefill); the CPU smoke run
    # uses the CPU reference and blocks that fit its toy lengths.
    fp_hf.register(**({"cpu_reference": True, "block_size": 64, "min_seq_len": 512} if SMOKE else {}))
    torch.backends.cuda.matmul.allow_tf32 = False  # a true fp32 reference
    hidden, ffn = (256, 512) if SMOKE else (1024, 2816)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=hidden, intermediate_size=ffn,
                      num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
                      head_dim=hidden // 8, max_position_embeddings=131072, rope_theta=500000.0)
    torch.manual_seed(0)  # initialized on the CPU: the same weights on any GPU
    m32 = AutoModelForCausalLM.from_config(cfg, attn_implementation="flashprefill",
                                           dtype=torch.float32).eval().to(DEV)
    # Cast parameters only: Module.to(dtype) would also round the rotary
    # inv_freq buffer to bf16, which from_pretrained(dtype=bf16) keeps in fp32
    # (and which would add RoPE error to both bf16 runs).
    m16 = copy.deepcopy(m32)
    for p in m16.parameters():
        p.data = p.data.to(torch.bfloat16)
    m16.config.dtype = torch.bfloat16
    return m32, m16


def prompt(b, s, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, VOCAB, (b, s), generator=g).to(DEV)


def rel(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


def use(model, impl, settings=None):
    model.set_attn_implementation(impl)
    model.config.flashprefill = settings


def logits_of(model, impl, ids, settings=None, **kw):
    use(model, impl, settings)
    with torch.no_grad(), fp_hf.collect_stats() as st:
        out = model(ids, use_cache=False, **kw).logits
    return out, st


def greedy(model, impl, ids, settings=None, forced=None):
    """Prefill `ids` under `impl`, then decode through the model (decode
    steps are always SDPA) from the cache the prefill filled. Returns
    (tokens, logits [DECODE, vocab] fp32, stats, cache length). With
    `forced`, those tokens are fed instead of the argmax (teacher forcing),
    so logits of different runs are comparable step by step."""
    use(model, impl, settings)
    cache = DynamicCache(config=model.config)
    tokens, rows = [], []
    with torch.no_grad(), fp_hf.collect_stats() as st:
        out = model(ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
        for i in range(DECODE):
            row = out.logits[:, -1].float()
            rows.append(row)
            tok = row.argmax(-1) if forced is None else torch.tensor([forced[i]], device=DEV)
            tokens.append(int(tok))
            if i + 1 < DECODE:
                out = model(tok.view(1, 1), past_key_values=cache, use_cache=True)
    return tokens, torch.cat(rows), st, cache.get_seq_length()


def sync():
    if not SMOKE:
        torch.cuda.synchronize()


def timed_prefill(model, impl, ids, settings=None):
    """Milliseconds of a no-cache forward (last-token logits), second run."""
    use(model, impl, settings)
    with torch.no_grad():
        for _ in range(2):
            sync()
            t = time.perf_counter()
            model(ids, use_cache=False, logits_to_keep=1)
            sync()
    return round((time.perf_counter() - t) * 1e3, 1)


def test_alpha_zero_16k_error_within_2x_of_bf16_sdpa(models):
    m32, m16 = models
    ids = prompt(1, S1, seed=1)
    dense = {"alpha": 0.0, "min_seq_len": MIN1}

    ref, _ = logits_of(m32, "sdpa", ids)
    sdpa, _ = logits_of(m16, "sdpa", ids)
    ours, st = logits_of(m16, "flashprefill", ids, dense)
    err_sdpa, err_ours = rel(sdpa, ref), rel(ours, ref)
    report("t1_16k_alpha0_logits_rel_l2_vs_fp32", {"sdpa_bf16": err_sdpa, "flashprefill": err_ours,
                                                    "ratio": err_ours / err_sdpa})
    report("t1_16k_alpha0_logits_max_abs_vs_fp32", {
        "sdpa_bf16": float((sdpa.float() - ref).abs().max()),
        "flashprefill": float((ours.float() - ref).abs().max()),
        "ref_max_abs": float(ref.abs().max())})
    report("t1_16k_alpha0_density", st.density())
    assert st.prefill_calls() == {0: 1, 1: 1, 2: 1, 3: 1}
    assert st.density() == {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}
    assert err_ours <= 2 * err_sdpa
    del ref, sdpa, ours

    # Decoding after the prefill, from the cache it filled: greedy tokens of
    # each run, then teacher-forced on the fp32 tokens to compare logits.
    ref_tok, ref_rows, _, _ = greedy(m32, "sdpa", ids)
    sdpa_tok, _, _, _ = greedy(m16, "sdpa", ids)
    ours_tok, _, st, n = greedy(m16, "flashprefill", ids, dense)
    _, sdpa_rows, _, _ = greedy(m16, "sdpa", ids, forced=ref_tok)
    _, ours_rows, _, _ = greedy(m16, "flashprefill", ids, dense, forced=ref_tok)
    e_sdpa, e_ours = rel(sdpa_rows[1:], ref_rows[1:]), rel(ours_rows[1:], ref_rows[1:])
    report("t1_16k_alpha0_greedy_tokens", {"fp32_sdpa": ref_tok, "bf16_sdpa": sdpa_tok,
                                           "flashprefill": ours_tok})
    report("t1_16k_alpha0_decode_logits_rel_l2_vs_fp32",
           {"sdpa_bf16": e_sdpa, "flashprefill": e_ours})
    assert n == S1 + DECODE - 1
    assert st.fallbacks() == {i: {"decode": DECODE - 1} for i in range(4)}
    assert e_ours <= 2 * e_sdpa + 1e-4


@pytest.fixture(scope="module")
def sdpa64(models):
    """The 64K prompt and its all-SDPA greedy run (tokens, logits)."""
    _, m16 = models
    ids = prompt(1, S2, seed=2)
    tokens, rows, _, _ = greedy(m16, "sdpa", ids)
    return ids, tokens, rows


def compare_with_sdpa(tag, m16, ids, sdpa_tok, sdpa_rows, settings):
    """Greedy and teacher-forced runs of our prefill + SDPA decode against
    the all-SDPA run; reports and returns (stats, logits of both runs)."""
    ours_tok, ours_rows, st, n = greedy(m16, "flashprefill", ids, settings)
    _, forced_rows, _, _ = greedy(m16, "flashprefill", ids, settings, forced=sdpa_tok)
    same = sum(a == b for a, b in zip(ours_tok, sdpa_tok))
    first_diff = next((i for i, (a, b) in enumerate(zip(ours_tok, sdpa_tok)) if a != b), None)
    report(f"{tag}_settings", {k: v for k, v in vars(fp_hf.settings(m16.config)).items()})
    report(f"{tag}_density_per_layer", st.density())
    report(f"{tag}_greedy_tokens", {"bf16_sdpa": sdpa_tok, "flashprefill": ours_tok,
                                    "matching": f"{same}/{DECODE}", "first_difference": first_diff})
    report(f"{tag}_last_prompt_logits_rel_l2_vs_sdpa", rel(ours_rows[0], sdpa_rows[0]))
    report(f"{tag}_decode_logits_rel_l2_vs_sdpa_teacher_forced",
           [round(rel(forced_rows[i], sdpa_rows[i]), 5) for i in range(DECODE)])
    report(f"{tag}_prefill_ms", {"flashprefill": timed_prefill(m16, "flashprefill", ids, settings),
                                 "sdpa": timed_prefill(m16, "sdpa", ids)})
    assert st.prefill_calls() == {0: 1, 1: 1, 2: 1, 3: 1}
    assert st.fallbacks() == {i: {"decode": DECODE - 1} for i in range(4)}
    assert n == S2 + DECODE - 1
    assert torch.isfinite(ours_rows).all() and torch.isfinite(forced_rows).all()
    return st, forced_rows


def test_defaults_64k_density_and_decode(models, sdpa64):
    _, m16 = models
    ids, sdpa_tok, sdpa_rows = sdpa64
    top2 = sdpa_rows.topk(2, dim=-1).values
    report("t2_64k_sdpa_top1_minus_top2_logit_gap",
           [round(float(g), 5) for g in top2[:, 0] - top2[:, 1]])
    st, forced_rows = compare_with_sdpa("t2_64k", m16, ids, sdpa_tok, sdpa_rows, None)
    density = st.density()
    assert set(density) == {0, 1, 2, 3} and all(0 < d <= 1 for d in density.values())
    # Not garbage: sparsity may move the logits, it must not scramble them.
    assert rel(forced_rows, sdpa_rows) < 0.5


def test_forced_sparsity_64k_effect_on_decode(models, sdpa64):
    """Random weights give nearly flat attention: block scores within a few
    percent of each other, so the default alpha keeps every block. alpha =
    0.99 drops the blocks below 99% of the row's best: the price of real
    sparsity in logits and tokens, measured (a trained model's attention is
    peaked, so it keeps the mass it needs at far lower density)."""
    _, m16 = models
    ids, sdpa_tok, sdpa_rows = sdpa64
    st, forced_rows = compare_with_sdpa("t2b_64k_alpha0.99", m16, ids, sdpa_tok, sdpa_rows,
                                        {"alpha": 0.99})
    assert all(0 < d <= 1 for d in st.density().values())


def test_padded_batch_falls_back_and_equals_sdpa(models):
    _, m16 = models
    ids = prompt(2, S3, seed=3)
    mask = torch.ones_like(ids)
    mask[1, :PAD] = 0  # left padding
    settings = {"min_seq_len": MIN3}
    ours, st = logits_of(m16, "flashprefill", ids, settings, attention_mask=mask)
    sdpa, _ = logits_of(m16, "sdpa", ids, attention_mask=mask)
    report("t3_padded_fallbacks", st.fallbacks())
    report("t3_padded_max_abs_diff_vs_sdpa", float((ours.float() - sdpa.float()).abs().max()))
    assert st.fallbacks() == {i: {"mask": 1} for i in range(4)} and st.density() == {}
    assert torch.equal(ours, sdpa)
    # The same batch without padding (an all-ones mask) runs flashprefill.
    _, st = logits_of(m16, "flashprefill", ids, settings, attention_mask=torch.ones_like(ids))
    report("t3_unpadded_density", st.density())
    assert st.prefill_calls() == {0: 1, 1: 1, 2: 1, 3: 1}
