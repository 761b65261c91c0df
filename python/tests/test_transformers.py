"""The transformers backend (``attn_implementation="flashprefill"``) on CPU:
registration, the mask function, which calls run flashprefill and which fall
back to SDPA (and that fallbacks equal SDPA exactly), settings from
``register()`` and ``config.flashprefill``, per-layer density, static and
dynamic caches, ``generate``.

Runs on torch CPU tensors through the library's CPU reference
(``cpu_reference=True``), on a tiny random Llama. Skips without torch or
transformers. ``test_transformers_gpu.py`` has the GPU tests at 16K-64K.
"""

from __future__ import annotations

import types

import pytest

torch = pytest.importorskip("torch", reason="torch is not installed")
transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed: pip install 'transformers>=5'")
if int(transformers.__version__.split(".")[0]) < 5:
    pytest.skip(f"the backend targets transformers 5.x, found {transformers.__version__}",
                allow_module_level=True)

import flashprefill  # noqa: E402
from flashprefill.integrations import transformers as fp_hf  # noqa: E402
from transformers import AutoModelForCausalLM, DynamicCache, LlamaConfig, StaticCache  # noqa: E402

BLOCK = 64
MIN_LEN = 128


@pytest.fixture(autouse=True)
def registered():
    """Every test starts from the same process-wide defaults: CPU reference
    on, 64-token blocks, flashprefill from 128 tokens."""
    fp_hf.register(cpu_reference=True, block_size=BLOCK, min_seq_len=MIN_LEN)
    yield
    fp_hf.register()


def tiny_config(**overrides):
    kw = dict(vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=64,
              max_position_embeddings=4096)
    kw.update(overrides)
    return LlamaConfig(**kw)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    fp_hf.register(cpu_reference=True, block_size=BLOCK, min_seq_len=MIN_LEN)
    m = AutoModelForCausalLM.from_config(tiny_config(), attn_implementation="flashprefill",
                                         dtype=torch.bfloat16).eval()
    return m


def run(m, ids, impl="flashprefill", settings=None, **kw):
    """Logits (and stats) of one forward pass under `impl`."""
    m.set_attn_implementation(impl)
    m.config.flashprefill = settings
    try:
        with torch.no_grad(), fp_hf.collect_stats() as st:
            out = m(ids, **kw)
    finally:
        m.config.flashprefill = None
        m.set_attn_implementation("flashprefill")
    return out, st


def ids_of(b, s, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 512, (b, s), generator=g)


def rel(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


# --- registration and the mask function -------------------------------------


def test_register_makes_the_name_valid(model):
    assert fp_hf.register(cpu_reference=True) == "flashprefill"
    assert fp_hf.register(cpu_reference=True) == "flashprefill"  # idempotent
    assert model.config._attn_implementation == "flashprefill"
    assert model.model.layers[0].self_attn.config._attn_implementation == "flashprefill"
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    assert ALL_ATTENTION_FUNCTIONS["flashprefill"] is fp_hf.attention_forward
    assert ALL_MASK_ATTENTION_FUNCTIONS["flashprefill"] is fp_hf.mask_function


def test_a_name_without_flash_needs_no_shim():
    name = fp_hf.register(name="fp_sparse", cpu_reference=True, min_seq_len=MIN_LEN)
    m = AutoModelForCausalLM.from_config(tiny_config(num_hidden_layers=1),
                                         attn_implementation=name, dtype=torch.bfloat16)
    ids = ids_of(1, 200)
    with torch.no_grad(), fp_hf.collect_stats() as st:
        m(ids)
    assert st.prefill_calls() == {0: 1}


def test_bad_names_and_settings_are_named():
    with pytest.raises(ValueError, match="name"):
        fp_hf.register(name="paged|x")
    with pytest.raises(ValueError, match="unknown flashprefill setting 'alfa'"):
        fp_hf.register(alfa=0.1)
    with pytest.raises(ValueError, match="min_seq_len: expected an int >= 1"):
        fp_hf.register(min_seq_len=0)
    with pytest.raises(ValueError, match="dense_layers"):
        fp_hf.register(dense_layers="2")
    with pytest.raises(ValueError, match="cpu_reference: expected True or False"):
        fp_hf.register(cpu_reference=1)
    cfg = tiny_config(flashprefill={"bogus": 1})
    with pytest.raises(ValueError, match="config.flashprefill: unknown flashprefill setting 'bogus'"):
        fp_hf.settings(cfg)


def test_config_overrides_register_defaults():
    fp_hf.register(alpha=0.5, min_seq_len=1000, dense_layers=[0, 3])
    assert fp_hf.settings().alpha == 0.5
    assert fp_hf.settings().dense_layers == frozenset({0, 3})
    cfg = tiny_config(flashprefill={"alpha": 0.0, "dense_layers": 1})
    s = fp_hf.settings(cfg)
    assert (s.alpha, s.min_seq_len, s.dense_layers) == (0.0, 1000, 1)
    assert s.is_dense_layer(0) and not s.is_dense_layer(1)
    assert cfg.to_dict()["flashprefill"] == {"alpha": 0.0, "dense_layers": 1}  # saved with it


def test_mask_function_builds_no_mask_for_causal_prefill(model):
    from transformers.masking_utils import create_causal_mask

    emb = torch.zeros(2, 300, 8, dtype=torch.bfloat16)
    cfg = model.config
    assert create_causal_mask(cfg, emb, None, None) is None
    assert create_causal_mask(cfg, emb, torch.ones(2, 300, dtype=torch.long), None) is None
    padded = torch.ones(2, 300, dtype=torch.long)
    padded[1, :20] = 0
    mask = create_causal_mask(cfg, emb, padded, None)
    assert mask is not None and mask.shape == (2, 1, 300, 300) and mask.dtype == torch.bool


# --- the attention function itself -------------------------------------------


def fake_module(layer_idx=0, **settings):
    cfg = types.SimpleNamespace(flashprefill=settings or None)
    return types.SimpleNamespace(config=cfg, layer_idx=layer_idx, is_causal=True)


def test_attention_forward_is_prefill_and_counts_kept_blocks():
    g = torch.Generator().manual_seed(3)
    b, hq, hkv, s, d = 2, 4, 2, 1500, 64
    # Structure, so that some blocks are dropped: queries share a direction u
    # and each key block leans towards or away from it.
    u = torch.randn(d, generator=g)
    u = u / u.norm() * 8
    q = (torch.randn(b, hq, s, d, generator=g) + u).bfloat16()
    lean = (torch.rand(b, hkv, s // BLOCK + 1, 1, generator=g) * 2 - 1).repeat_interleave(BLOCK, 2)
    k = (torch.randn(b, hkv, s, d, generator=g) + lean[:, :, :s] * u).bfloat16()
    v = torch.randn(b, hkv, s, d, generator=g).bfloat16()
    mod = fake_module(layer_idx=5, alpha=0.3)
    with fp_hf.collect_stats() as st:
        out, weights = fp_hf.attention_forward(mod, q, k, v, None, scaling=0.1)
    assert weights is None and out.shape == (b, s, hq, d) and out.is_contiguous()
    want = flashprefill.prefill(q, k, v, alpha=0.3, block_size=BLOCK, scale=0.1, layout="bhsd")
    assert torch.equal(out, want.transpose(1, 2))
    m = flashprefill.mask(q, k, alpha=0.3, block_size=BLOCK, scale=0.1, layout="bhsd")
    assert st.density() == {5: pytest.approx(m.density())}
    assert 0 < st.density()[5] < 1
    assert st.as_dict()["5"]["kept_blocks"] == int(m.counts.sum())
    # Without a collector: the plain flashprefill.prefill path, same bits.
    out2, _ = fp_hf.attention_forward(mod, q, k, v, None, scaling=0.1)
    assert torch.equal(out, out2)


def test_attention_forward_takes_strided_inputs():
    g = torch.Generator().manual_seed(4)
    qkv = torch.randn(1, 300, 3, 4, 64, generator=g).bfloat16()  # packed, [b, s, 3, h, d]
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    out, _ = fp_hf.attention_forward(fake_module(alpha=0.0), q, k, v, None)
    want = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                                            is_causal=True)
    assert rel(out, want.transpose(1, 2)) < 1e-2


@pytest.mark.parametrize("case, reason", [
    ("decode", "decode"), ("short", "short"), ("mask", "mask"), ("dense", "dense_layer"),
    ("fp32", "dtype"), ("no_cpu", "device"), ("grad", "grad"), ("not_causal", "not_causal"),
    ("config_not_causal", "not_causal"),
    ("softcap", "unsupported"), ("dropout", "dropout"),
])
def test_fallbacks_equal_sdpa(case, reason):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    g = torch.Generator().manual_seed(5)
    s = 40 if case == "short" else 300
    dtype = torch.float32 if case == "fp32" else torch.bfloat16
    q = torch.randn(1, 4, 1 if case == "decode" else s, 64, generator=g).to(dtype)
    k = torch.randn(1, 2, s, 64, generator=g).to(dtype)
    v = torch.randn(1, 2, s, 64, generator=g).to(dtype)
    mod = fake_module(layer_idx=0, **({"dense_layers": 1} if case == "dense" else {}),
                      **({"cpu_reference": False} if case == "no_cpu" else {}))
    mod.num_key_value_groups = 2
    mask = None
    kwargs = {}
    if case == "mask":
        mask = torch.ones(1, 1, s, s, dtype=torch.bool).tril()
        mask[..., :7] = False
    if case == "grad":
        q.requires_grad_(True)
    if case == "not_causal":
        mod.is_causal = False
    if case == "config_not_causal":
        mod.config.is_causal = False  # transformers' bidirectional "power feature"
    if case == "softcap":
        kwargs["softcap"] = 30.0
    dropout = 0.5 if case == "dropout" else 0.0
    torch.manual_seed(0)
    with fp_hf.collect_stats() as st:
        out, _ = fp_hf.attention_forward(mod, q, k, v, mask, dropout=dropout, **kwargs)
    assert st.fallbacks() == {0: {reason: 1}} and st.density() == {}
    torch.manual_seed(0)
    want, _ = sdpa_attention_forward(mod, q, k, v, mask, dropout=dropout, **kwargs)
    assert torch.equal(out, want)


# --- whole models ------------------------------------------------------------


def test_alpha_zero_model_equals_sdpa(model):
    ids = ids_of(1, 300)
    ours, st = run(model, ids, settings={"alpha": 0.0})
    ref, _ = run(model, ids, impl="sdpa")
    assert st.prefill_calls() == {0: 1, 1: 1}
    assert st.density() == {0: 1.0, 1: 1.0}
    assert rel(ours.logits, ref.logits) < 2e-2


def test_default_settings_are_sparse_and_reported(model):
    ids = ids_of(1, 1024)
    out, st = run(model, ids)
    dens = st.density()
    assert set(dens) == {0, 1} and all(0 < x <= 1 for x in dens.values())
    assert "layer 0: density" in st.summary()
    assert torch.isfinite(out.logits.float()).all()


def test_dense_layers_go_to_sdpa(model):
    ids = ids_of(1, 300)
    _, st = run(model, ids, settings={"dense_layers": 1})
    assert st.fallbacks() == {0: {"dense_layer": 1}} and st.prefill_calls() == {0: 0, 1: 1}


def test_padded_batch_falls_back_and_equals_sdpa(model):
    ids = ids_of(2, 300)
    mask = torch.ones(2, 300, dtype=torch.long)
    mask[1, :37] = 0  # left padding
    ours, st = run(model, ids, attention_mask=mask)
    ref, _ = run(model, ids, impl="sdpa", attention_mask=mask)
    assert st.fallbacks() == {0: {"mask": 1}, 1: {"mask": 1}} and st.density() == {}
    assert torch.equal(ours.logits, ref.logits)
    # An all-ones mask is no padding: flashprefill runs.
    _, st = run(model, ids, attention_mask=torch.ones(2, 300, dtype=torch.long))
    assert st.prefill_calls() == {0: 1, 1: 1}


@pytest.mark.parametrize("cache", ["dynamic", "static"])
def test_decode_after_prefill_goes_through_sdpa_with_our_cache(model, cache):
    """Prefill with flashprefill (alpha 0), then decode steps through SDPA
    from the cache it filled; the same tokens fed to an all-SDPA run give
    the same logits (up to bf16)."""
    ids = ids_of(1, 300)
    steps = ids_of(1, 4, seed=9)

    def decode(impl):
        model.set_attn_implementation(impl)
        model.config.flashprefill = {"alpha": 0.0}
        c = DynamicCache(config=model.config) if cache == "dynamic" else \
            StaticCache(config=model.config, max_cache_len=320)
        logits = []
        try:
            with torch.no_grad(), fp_hf.collect_stats() as st:
                logits.append(model(ids, past_key_values=c, use_cache=True).logits[:, -1])
                for i in range(steps.shape[1]):
                    logits.append(model(steps[:, i:i + 1], past_key_values=c,
                                        use_cache=True).logits[:, -1])
        finally:
            model.config.flashprefill = None
            model.set_attn_implementation("flashprefill")
        return torch.cat(logits), st

    ours, st = decode("flashprefill")
    ref, _ = decode("sdpa")
    assert st.prefill_calls() == {0: 1, 1: 1}
    assert st.fallbacks() == {0: {"decode": 4}, 1: {"decode": 4}}
    assert rel(ours, ref) < 2e-2


def test_generate(model):
    ids = ids_of(1, 260)
    model.config.flashprefill = {"alpha": 0.0}
    try:
        with torch.no_grad(), fp_hf.collect_stats() as st:
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=3,
                                 min_new_tokens=3, do_sample=False, pad_token_id=0)
    finally:
        model.config.flashprefill = None
    assert out.shape == (1, 263)
    assert st.prefill_calls() == {0: 1, 1: 1}
    assert st.fallbacks() == {0: {"decode": 2}, 1: {"decode": 2}}
