"""``transformers serve`` (its OpenAI-compatible server) with the flashprefill
backend, on the CPU reference: a random 2-layer Llama and a word-level
tokenizer saved to a temporary folder (nothing is downloaded), a completion
request from a bounded client on localhost.

1. In process, with continuous batching: the request is answered and its
   prefill ran through ``paged|flashprefill`` (per-layer statistics).
2. The launcher's command line (``python -m
   flashprefill.integrations.transformers_serve``) in a subprocess, without
   continuous batching (transformers sizes its paged cache from GPU memory,
   which a CPU process does not have): the request is answered.

Skips without torch, transformers or its serving extras.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
try:
    from transformers.utils import is_serve_available
except ImportError:  # pragma: no cover
    is_serve_available = None
if is_serve_available is None or not is_serve_available():
    pytest.skip("transformers serving extras are missing: pip install 'transformers[serving]'",
                allow_module_level=True)

from flashprefill.integrations import transformers as fp_hf  # noqa: E402
from flashprefill.integrations import transformers_serve  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[1]
WORDS = [f"w{i}" for i in range(250)]
PROMPT_WORDS = 600


def save_model(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                            eos_token="</s>").save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=256, hidden_size=128, intermediate_size=256,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      head_dim=32, max_position_embeddings=8192, bos_token_id=1, eos_token_id=2)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def complete(port: int, model: str, deadline_s: float = 120.0) -> dict:
    """POST /v1/completions, retrying while the server starts; gives up
    after `deadline_s`."""
    prompt = " ".join(WORDS[i % len(WORDS)] for i in range(PROMPT_WORDS))
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": 5,
                       "temperature": 0}).encode()
    deadline = time.monotonic() + deadline_s
    while True:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=deadline_s) as response:
                assert response.status == 200
                return json.loads(response.read())
        except (ConnectionError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def test_serve_in_process_with_continuous_batching(tmp_path, monkeypatch):
    from transformers.cli.serve import Serve
    from transformers.generation.continuous_batching.cache import PagedAttentionMemoryHandler

    monkeypatch.setattr(PagedAttentionMemoryHandler, "get_available_memory",
                        lambda self: 1 << 30)
    save_model(tmp_path)
    name = fp_hf.register(cpu_reference=True, min_seq_len=64, min_chunk_len=64, block_size=32)
    transformers_serve.allow_registered_names([name])
    port = free_port()
    try:
        with fp_hf.collect_stats() as stats:
            server = Serve(force_model=str(tmp_path), continuous_batching=True,
                           attn_implementation=name, device="cpu", dtype="bfloat16",
                           cb_block_size=32, cb_num_blocks=256, cb_max_batch_tokens=256,
                           host="127.0.0.1", port=port, non_blocking=True)
            try:
                answer = complete(port, str(tmp_path))
            finally:
                server.kill_server()
    finally:
        fp_hf.register()
    assert answer["usage"]["completion_tokens"] == 5
    assert answer["usage"]["prompt_tokens"] == PROMPT_WORDS
    assert answer["choices"][0]["text"].split()[0] in WORDS
    calls = stats.prefill_calls()
    assert calls.get(0, 0) > 0 and calls.get(1, 0) > 0, stats.summary()


def test_allow_registered_names_checks_the_name():
    with pytest.raises(ValueError, match=r"'not_registered' is not registered"):
        transformers_serve.allow_registered_names(["not_registered"])


def test_launcher_command_line(tmp_path):
    save_model(tmp_path)
    port = free_port()
    env = dict(os.environ, PYTHONPATH=f"{PACKAGE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               FLASHPREFILL_SETTINGS=json.dumps({"cpu_reference": True, "min_seq_len": 64,
                                                 "block_size": 32}))
    server = subprocess.Popen(
        [sys.executable, "-m", "flashprefill.integrations.transformers_serve", str(tmp_path),
         "--attn-implementation", "flashprefill", "--device", "cpu", "--dtype", "bfloat16",
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        answer = complete(port, str(tmp_path))
    finally:
        server.terminate()
        try:
            log = server.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            server.kill()
            log = server.communicate()[0]
    assert answer["usage"]["completion_tokens"] == 5, log


def test_launcher_rejects_bad_settings():
    env = dict(os.environ, PYTHONPATH=f"{PACKAGE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
               FLASHPREFILL_SETTINGS='{"alpha": "high"}')
    done = subprocess.run([sys.executable, "-m", "flashprefill.integrations.transformers_serve",
                           "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0
    assert "FLASHPREFILL_SETTINGS" in done.stderr and "alpha" in done.stderr
