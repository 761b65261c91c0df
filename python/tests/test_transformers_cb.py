"""transformers continuous batching with flashprefill ("paged|flashprefill",
docs/transformers.md) on the CPU reference: a randomly initialised small
Llama, greedy ``generate_batch`` over prompts of mixed lengths with chunked
prefill over transformers' own paged cache.

* Every call that runs flashprefill is checked against transformers' stock
  paged SDPA on the same inputs (alpha 0: the same attention up to
  rounding), and both cache paths are taken: packed new tokens (no cache
  reads) and pages after a cached prefix.
* With alpha 0 the generated tokens equal the stock implementation's.
* With a pruning rule the kept-block density per layer is below 1 and the
  calls still run.

Skips without torch or transformers. transformers cannot measure free
memory on a CPU (its cache sizing reads GPU memory), so the tests give it a
fixed budget; that is the only thing they change in transformers.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import flashprefill  # noqa: E402,F401
from flashprefill.integrations import transformers as fp_hf  # noqa: E402

try:
    from transformers import AttentionInterface, GenerationConfig, LlamaConfig, LlamaForCausalLM
    from transformers.generation.configuration_utils import ContinuousBatchingConfig
    from transformers.generation.continuous_batching.cache import PagedAttentionMemoryHandler
    from transformers.integrations.sdpa_paged import sdpa_attention_paged_forward
except ImportError as error:  # pragma: no cover - older transformers
    pytest.skip(f"this transformers has no continuous batching: {error}", allow_module_level=True)

PROMPT_LENGTHS = (1500, 700, 50, 2100, 300)


@pytest.fixture
def cpu_memory(monkeypatch):
    monkeypatch.setattr(PagedAttentionMemoryHandler, "get_available_memory",
                        lambda self: 1 << 30)


def tiny_llama():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=256, hidden_size=128, intermediate_size=256,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=32, max_position_embeddings=8192)
    return LlamaForCausalLM(cfg).to(torch.bfloat16).eval()


def prompts():
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, 256, (n,), generator=g).tolist() for n in PROMPT_LENGTHS]


def generate(model, implementation, new_tokens=6):
    model.set_attn_implementation(implementation)
    config = GenerationConfig(max_new_tokens=new_tokens, do_sample=False, eos_token_id=-1,
                              pad_token_id=0)
    # 512-token batches: the 1500- and 2100-token prompts arrive in chunks
    # after a cached prefix, next to decode steps of the others.
    # No CUDA streams or graphs for a CPU model, even where a GPU is present
    # (transformers turns both on when CUDA is available).
    cb = ContinuousBatchingConfig(block_size=32, num_blocks=512, max_batch_tokens=512,
                                  use_async_batching=False, use_cuda_graph=False)
    out = model.generate_batch(inputs=prompts(), generation_config=config,
                               continuous_batching_config=cb)
    return {k: list(v.generated_tokens) for k, v in out.items()}


@pytest.fixture
def backend(cpu_memory):
    yield lambda **settings: fp_hf.register(cpu_reference=True, min_seq_len=64,
                                            min_chunk_len=64, block_size=32, **settings)
    fp_hf.register()


def comparing_forward(checked):
    """A paged attention function that runs ours and, for every call that
    ran flashprefill, the stock paged|sdpa on the same inputs: the worst
    relative L2 goes to checked["worst"], and checked["packed"] /
    checked["paged"] count the calls by cache path. It reads results on
    the host, so it cannot run under CUDA-graph capture."""
    def checking(module, query, key, value, mask, dropout=0.0, scaling=None, **kwargs):
        ours, _ = fp_hf.paged_attention_forward(module, query, key, value, mask,
                                                dropout=dropout, scaling=scaling, **kwargs)
        if fp_hf._paged_fallback_reason(module, query, kwargs["cache"], mask, 0.0, kwargs,
                                        fp_hf.settings(module.config)) is None:
            stock, _ = fp_hf._stock_paged(module, query, key, value, mask, dropout, scaling,
                                          kwargs)
            rows = int(kwargs["cu_seq_lens_q"][-1])  # rows past it belong to no sequence
            a, b = ours[0, :rows].float(), stock[0, :rows].float()
            checked["worst"] = max(checked["worst"], float((a - b).norm() / b.norm()))
            checked["paged" if kwargs["read_index"][0].numel() else "packed"] += 1
        return ours, None

    return checking


def test_dense_rule_equals_stock_paged_sdpa(backend):
    backend(alpha=0.0)
    checked = {"packed": 0, "paged": 0, "worst": 0.0}
    checking = comparing_forward(checked)
    AttentionInterface.register("paged|flashprefill", checking)
    model = tiny_llama()
    with fp_hf.collect_stats() as stats:
        ours = generate(model, "flashprefill")
    stock = generate(model, "paged|sdpa")
    assert checked["packed"] > 0 and checked["paged"] > 0, checked
    assert checked["worst"] < 1e-2, checked
    assert ours == stock
    calls = stats.prefill_calls()
    assert calls[0] == calls[1] == checked["packed"] // 2 + checked["paged"] // 2
    assert all(abs(d - 1.0) < 1e-12 for d in stats.density().values())  # alpha 0 keeps all
    assert stats.fallbacks()[0].get("decode", 0) > 0  # decode-only batches stay stock


def test_pruning_rule_runs_and_prunes(backend):
    backend(alpha=0.99, sink=1, window=1, last_n=1)
    model = tiny_llama()
    with fp_hf.collect_stats() as stats:
        out = generate(model, "flashprefill", new_tokens=3)
    assert len(out) == len(PROMPT_LENGTHS) and all(len(v) == 3 for v in out.values())
    density = stats.density()
    assert set(density) == {0, 1}
    assert min(density.values()) < 0.95, density


def test_settings_are_checked():
    with pytest.raises(ValueError, match=r"min_chunk_len: expected an int >= 1, got 0"):
        fp_hf.register(min_chunk_len=0)
    fp_hf.register()


def test_without_cache_is_an_error():
    model = tiny_llama()
    attention = model.model.layers[0].self_attn
    q = torch.zeros(1, 4, 8, 32, dtype=torch.bfloat16)
    k = torch.zeros(1, 2, 8, 32, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match=r"without a paged attention cache"):
        fp_hf.paged_attention_forward(attention, q, k, k, None)


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="no CUDA device (torch.cuda.is_available() is False)")
def test_cuda_dense_rule_equals_stock_paged_sdpa():
    """On the GPU: a random 2-layer Llama (h_q 8, h_kv 2, d 128), prompts of
    1K-64K tokens in 8K-token batches over a cache of 256-token blocks;
    at alpha 0 every flashprefill call is within bf16 rounding of paged|sdpa
    and the greedy tokens are the stock implementation's."""
    fp_hf.register(alpha=0.0, min_seq_len=1, min_chunk_len=1024)
    checked = {"packed": 0, "paged": 0, "worst": 0.0}
    checking = comparing_forward(checked)

    try:
        AttentionInterface.register("paged|flashprefill", checking)
        torch.manual_seed(0)
        cfg = LlamaConfig(vocab_size=1024, hidden_size=1024, intermediate_size=2048,
                          num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
                          head_dim=128, max_position_embeddings=70000)
        model = LlamaForCausalLM(cfg).to(device="cuda", dtype=torch.bfloat16).eval()
        g = torch.Generator().manual_seed(2)
        inputs = [torch.randint(0, 1024, (n,), generator=g).tolist()
                  for n in (1024, 3000, 16384, 65536)]
        config = GenerationConfig(max_new_tokens=4, do_sample=False, eos_token_id=-1,
                                  pad_token_id=0)
        results = {}
        # The per-call comparison reads results on the host: no CUDA graphs
        # there. Then the backend as users get it (transformers' default
        # graphs) and the stock implementation, each once.
        runs = [("checked", "flashprefill", dict(use_cuda_graph=False)),
                ("graphs", "flashprefill", {}), ("stock", "paged|sdpa", {})]
        ran = {"ours": 0}

        def counting(module, query, key, value, mask, dropout=0.0, scaling=None, **kwargs):
            # Host-side count only: nothing here may synchronise a capture.
            if fp_hf._paged_fallback_reason(module, query, kwargs["cache"], mask, 0.0, kwargs,
                                            fp_hf.settings(module.config)) is None:
                ran["ours"] += 1
            return fp_hf.paged_attention_forward(module, query, key, value, mask,
                                                 dropout=dropout, scaling=scaling, **kwargs)

        for name, implementation, options in runs:
            if name == "graphs":
                AttentionInterface.register("paged|flashprefill", counting)
            model.set_attn_implementation(implementation)
            cb = ContinuousBatchingConfig(block_size=256, max_batch_tokens=8192, **options)
            out = model.generate_batch(inputs=inputs, generation_config=config,
                                       continuous_batching_config=cb)
            results[name] = {k: list(v.generated_tokens) for k, v in out.items()}
        assert ran["ours"] > 0, "no call ran flashprefill with CUDA graphs on"
        assert checked["packed"] + checked["paged"] > 0 and checked["worst"] < 2e-2, checked
        assert results["checked"] == results["stock"]
        assert results["graphs"] == results["stock"]
    finally:
        fp_hf.register()
