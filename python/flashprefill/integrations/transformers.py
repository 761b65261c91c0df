"""Hugging Face transformers attention backend: ``attn_implementation="flashprefill"``.

Three lines::

    from flashprefill.integrations import transformers as fp_hf
    fp_hf.register()                                   # once per process
    model = AutoModelForCausalLM.from_pretrained(name, attn_implementation="flashprefill",
                                                 dtype=torch.bfloat16, device_map="cuda")

:func:`register` adds two entries under the same name:

* an attention function (transformers' ``AttentionInterface``) that runs
  :func:`flashprefill.prefill` (block-sparse causal attention) for a causal
  prefill of at least ``min_seq_len`` tokens with no padding, and hands every
  other call to transformers' own SDPA function: decode steps and prefills
  after a cached prefix (``s_q != s_k``, which the kernel does not support),
  short prompts (dense SDPA is faster there), padded batches, layers listed in
  ``dense_layers``, training (the kernel has no backward), and dtypes, head
  dims or devices the kernel lacks;
* a mask function (``masking_utils.AttentionMaskInterface``), SDPA's: it
  returns ``None`` for a pure causal prefill, so nothing builds an ``s x s``
  mask at 64K, and a boolean mask when there is padding, which sends the call
  to SDPA (which needs it). Without an entry there, transformers would pass
  ``attention_mask=None`` even for padded batches.

Settings (every one optional), from lowest to highest priority: the built-in
defaults, ``register(**settings)``, and the model config's ``flashprefill``
attribute (a dict, e.g. ``cfg.flashprefill = {"alpha": 0.05}``; it is saved
with the config):

* ``alpha``, ``sink``, ``window``, ``last_n``, ``min_budget``, ``threshold``,
  ``block_size``, ``pooled_queries``: passed to :func:`flashprefill.prefill`;
  ``None`` means the library default (:func:`flashprefill.defaults`).
* ``min_seq_len`` (16384): prompts shorter than this go to SDPA. On an H100,
  our prefill at 8K is as fast as cuDNN's dense attention and 1.65x faster at
  16K (``bench/RESULTS.md``); below that sparsity only costs accuracy.
* ``dense_layers`` (0): an int N sends the first N layers (``layer_idx < N``)
  to dense SDPA; a list or set names the layers. Early layers tend to have the
  least sparse attention.
* ``min_chunk_len`` (1024): continuous batching only: a batch whose longest
  chunk has fewer queries (decode steps, short chunks) goes to the stock
  paged SDPA.
* ``cpu_reference`` (False): on CPU tensors, run the library's CPU reference
  (exact, slow: for tests) instead of falling back to SDPA.

Continuous batching (``generate_batch``, ``ContinuousBatchingManager``,
``transformers serve``) switches a model to ``"paged|<name>"``, which
:func:`register` also adds: :func:`paged_attention_forward` runs
:func:`flashprefill.prefill_varlen` over transformers' own paged KV cache
(its pages are our pages; nothing is copied) for batches whose longest chunk
has at least ``min_chunk_len`` queries and whose longest sequence at least
``min_seq_len`` keys, with ``last_n`` on the sequences whose prompt ends in
this batch; every other batch (decode steps, short chunks) goes to
transformers' stock paged SDPA. See ``docs/transformers.md``.

Per-layer density is opt-in and cheap: inside ``with collect_stats() as st:``
each prefill adds its kept-block count to a per-layer device counter (the
library's ``kept_counter``, no host synchronization); ``st.density()`` reads
them afterwards. See ``docs/transformers.md``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import numbers
from collections import Counter
from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Union

__all__ = [
    "CONFIG_ATTRIBUTE",
    "NAME",
    "PrefillStats",
    "Settings",
    "attention_forward",
    "collect_stats",
    "mask_function",
    "paged_attention_forward",
    "register",
    "settings",
]

#: The ``attn_implementation`` name :func:`register` uses by default.
NAME = "flashprefill"
#: The model-config attribute that holds per-model settings (a dict).
CONFIG_ATTRIBUTE = "flashprefill"

logger = logging.getLogger(__name__)

# Head dims and dtypes the CUDA kernels are generated for (the CPU reference
# takes any head dim).
_CUDA_HEAD_DIMS = (64, 128, 256)


@dataclass(frozen=True)
class Settings:
    """The backend's settings; see the module docstring for each field."""

    alpha: Optional[float] = None
    sink: Optional[int] = None
    window: Optional[int] = None
    last_n: Optional[int] = None
    min_budget: Optional[int] = None
    threshold: Optional[str] = None
    block_size: Optional[int] = None
    pooled_queries: bool = False
    min_seq_len: int = 16384
    min_chunk_len: int = 1024
    dense_layers: Union[int, frozenset] = 0
    cpu_reference: bool = False

    def updated(self, values: Mapping[str, Any], where: str) -> "Settings":
        """A copy with `values` applied, each checked (errors name `where`)."""
        known = {f.name for f in fields(self)}
        clean = {}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"{where}: unknown flashprefill setting {key!r}; expected one of "
                                 f"{', '.join(sorted(known))}")
            clean[key] = _check_setting(key, value, where)
        return replace(self, **clean)

    def operator_kwargs(self) -> Dict[str, Any]:
        """The keyword arguments of :func:`flashprefill.prefill`."""
        return {"alpha": self.alpha, "sink": self.sink, "window": self.window,
                "last_n": self.last_n, "min_budget": self.min_budget,
                "threshold": self.threshold, "block_size": self.block_size,
                "pooled_queries": self.pooled_queries}

    def is_dense_layer(self, layer: Optional[int]) -> bool:
        if layer is None:
            return False
        if isinstance(self.dense_layers, frozenset):
            return layer in self.dense_layers
        return layer < self.dense_layers


def _check_setting(key: str, value: Any, where: str) -> Any:
    """Checks the settings this module interprets itself; the operator's
    (alpha, sink, ...) are range-checked by the library, whose messages name
    the parameter."""
    def is_int(x):
        return isinstance(x, numbers.Integral) and not isinstance(x, bool)

    if key in ("min_seq_len", "min_chunk_len"):
        if not is_int(value) or value < 1:
            raise ValueError(f"{where}: {key}: expected an int >= 1, got {value!r}")
        return int(value)
    if key == "dense_layers":
        if is_int(value):
            if value < 0:
                raise ValueError(f"{where}: dense_layers: expected an int >= 0 (the first N layers) "
                                 f"or a collection of layer indices, got {value!r}")
            return int(value)
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable) or not all(
                is_int(i) for i in value):
            raise ValueError(f"{where}: dense_layers: expected an int (the first N layers) or a "
                             f"collection of layer indices, got {value!r}")
        return frozenset(int(i) for i in value)
    if key in ("cpu_reference", "pooled_queries"):
        if not isinstance(value, bool):
            raise ValueError(f"{where}: {key}: expected True or False, got {value!r}")
    if key in ("sink", "window", "last_n", "min_budget", "block_size") and value is not None \
            and not is_int(value):
        raise ValueError(f"{where}: {key}: expected an int or None, got {value!r}")
    if key == "alpha" and value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ValueError(f"{where}: alpha: expected a number in [0, 1] or None, got {value!r}")
    return value


# Process-wide defaults, set by register(**settings).
_defaults = Settings()
_sdpa_forward = None  # transformers' sdpa_attention_forward, bound by register()


def settings(config: Any = None) -> Settings:
    """The settings a model with this config runs with: ``register()``'s,
    updated by ``config.flashprefill`` when present."""
    override = getattr(config, CONFIG_ATTRIBUTE, None) if config is not None else None
    if not override:
        return _defaults
    if isinstance(override, Settings):
        return override
    if not isinstance(override, Mapping):
        raise ValueError(f"config.{CONFIG_ATTRIBUTE}: expected a dict of flashprefill settings, "
                         f"got {type(override).__name__}")
    return _defaults.updated(override, f"config.{CONFIG_ATTRIBUTE}")


# ---------------------------------------------------------------------------
# Statistics (opt-in)
# ---------------------------------------------------------------------------


class _LayerStats:
    __slots__ = ("prefills", "tokens", "causal_blocks", "counters", "fallbacks")

    def __init__(self):
        self.prefills = 0        # calls that ran our prefill
        self.tokens = 0          # b * s over those calls
        self.causal_blocks = 0   # b * h_q * nb * (nb + 1) / 2 over those calls
        self.counters = {}       # device -> int64 [1] kept-block counter on that device
        self.fallbacks = Counter()  # reason -> calls handed to SDPA

    def kept(self) -> int:
        return sum(int(c.item()) for c in self.counters.values())


class PrefillStats:
    """Per-layer record of what the backend did, filled inside
    :func:`collect_stats`.

    Kept blocks are counted on the device by the library (``kept_counter``):
    recording costs no synchronization; :meth:`density` and :meth:`as_dict`
    synchronize once to read the counters. Layers are keyed by the attention
    module's ``layer_idx`` (None when it has none).
    """

    def __init__(self):
        self._layers: Dict[Optional[int], _LayerStats] = {}

    def _layer(self, layer):
        found = self._layers.get(layer)
        if found is None:
            found = self._layers[layer] = _LayerStats()
        return found

    def _counter(self, layer, device):
        import torch

        entry = self._layer(layer)
        counter = entry.counters.get(device)
        if counter is None:
            counter = entry.counters[device] = torch.zeros(1, dtype=torch.int64, device=device)
        return counter

    def _prefill(self, layer, b, hq, s, block):
        entry = self._layer(layer)
        nb = -(-s // block)
        entry.prefills += 1
        entry.tokens += b * s
        entry.causal_blocks += b * hq * nb * (nb + 1) // 2

    def _prefill_varlen(self, layer, hq, cu_q, cu_k, block):
        """A continuous-batching call: the causal blocks of each sequence's
        chunk (query blocks of the chunk against its visible key blocks).
        Reads the offsets (one host copy, only while collecting stats)."""
        entry = self._layer(layer)
        q_lens = (cu_q[1:] - cu_q[:-1]).tolist()
        k_lens = (cu_k[1:] - cu_k[:-1]).tolist()
        entry.prefills += 1
        for q_len, k_len in zip(q_lens, k_lens):
            if q_len <= 0:
                continue
            entry.tokens += q_len
            prefix = k_len - q_len
            for i in range(-(-q_len // block)):
                last_row = prefix + min((i + 1) * block, q_len) - 1
                entry.causal_blocks += hq * (last_row // block + 1)

    def _fallback(self, layer, reason):
        self._layer(layer).fallbacks[reason] += 1

    def layers(self):
        """Layer indices seen, in order (None last)."""
        return sorted(self._layers, key=lambda i: (i is None, i if i is not None else 0))

    def density(self) -> Dict[Optional[int], float]:
        """Kept / causal blocks per layer over its flashprefill calls (forced
        blocks included; 1.0 means dense). Layers that only fell back to SDPA
        are absent."""
        return {i: self._layers[i].kept() / self._layers[i].causal_blocks
                for i in self.layers() if self._layers[i].causal_blocks}

    def fallbacks(self) -> Dict[Optional[int], Dict[str, int]]:
        """Calls handed to SDPA per layer, by reason (``"decode"``,
        ``"cached_prefix"``, ``"short"``, ``"mask"``, ``"dense_layer"``,
        ``"not_causal"``, ``"dtype"``, ``"device"``, ``"head_dim"``,
        ``"grad"``, ``"dropout"``, ``"unsupported"``)."""
        return {i: dict(self._layers[i].fallbacks) for i in self.layers()
                if self._layers[i].fallbacks}

    def prefill_calls(self) -> Dict[Optional[int], int]:
        """Calls that ran flashprefill, per layer."""
        return {i: self._layers[i].prefills for i in self.layers()}

    def as_dict(self) -> Dict[str, Any]:
        """Everything, JSON-friendly (layer keys as strings)."""
        out = {}
        for i in self.layers():
            e = self._layers[i]
            kept = e.kept()
            out[str(i)] = {"prefills": e.prefills, "tokens": e.tokens, "kept_blocks": kept,
                           "causal_blocks": e.causal_blocks,
                           "density": kept / e.causal_blocks if e.causal_blocks else None,
                           "fallbacks": dict(e.fallbacks)}
        return out

    def summary(self) -> str:
        """One line per layer: density, flashprefill calls, fallbacks."""
        lines = []
        for i, e in self.as_dict().items():
            d = "-" if e["density"] is None else f"{e['density']:.3f}"
            fb = ", ".join(f"{k} {v}" for k, v in sorted(e["fallbacks"].items())) or "none"
            lines.append(f"layer {i}: density {d} ({e['prefills']} prefills), sdpa: {fb}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"PrefillStats(layers={len(self._layers)})"


_active_stats: contextvars.ContextVar = contextvars.ContextVar("flashprefill_stats", default=None)
# The innermost collect_stats() of the process: continuous batching runs the
# model in its own thread, which does not inherit the caller's context.
_process_stats: list = []


def _current_stats() -> Optional["PrefillStats"]:
    found = _active_stats.get()
    if found is None and _process_stats:
        found = _process_stats[-1]
    return found


@contextlib.contextmanager
def collect_stats() -> Iterator[PrefillStats]:
    """Records per-layer density and fallbacks of the calls made inside::

        with collect_stats() as st:
            model(input_ids)
        print(st.density())     # {0: 0.31, 1: 0.12, ...}
        print(st.summary())

    Outside it the backend records nothing (and takes the plain
    :func:`flashprefill.prefill` path, which ``torch.compile`` traces as one
    op)."""
    stats = PrefillStats()
    token = _active_stats.set(stats)
    _process_stats.append(stats)
    try:
        yield stats
    finally:
        _active_stats.reset(token)
        _process_stats.remove(stats)


# ---------------------------------------------------------------------------
# The attention and mask functions
# ---------------------------------------------------------------------------

_warned: set = set()


def _warn_once(reason: str, message: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        logger.warning("flashprefill: %s; using SDPA for such calls", message)


def _fallback_reason(module, query, key, value, attention_mask, dropout, is_causal, kwargs, cfg):
    """Why this call cannot run flashprefill (None: it can). Cheap checks
    first: decode steps are most calls and must cost next to nothing."""
    import torch

    s_q, s_k = query.shape[2], key.shape[2]
    if s_q == 1:
        return "decode"
    if s_q < cfg.min_seq_len:
        return "short"
    if attention_mask is not None:
        return "mask"  # padding or a non-causal pattern: SDPA needs the mask
    if s_k != s_q:
        return "cached_prefix"
    if not (is_causal if is_causal is not None else getattr(module, "is_causal", True)) or \
            not getattr(getattr(module, "config", None), "is_causal", True):
        # config.is_causal = False makes transformers build bidirectional
        # masks (None without padding) for decoder models.
        return "not_causal"
    if dropout:
        return "dropout"
    sliding = kwargs.get("sliding_window")
    if (kwargs.get("position_bias") is not None or kwargs.get("softcap")
            or kwargs.get("s_aux") is not None or kwargs.get("sinks") is not None
            or (sliding is not None and 0 < sliding < s_q)):
        return "unsupported"
    if cfg.is_dense_layer(getattr(module, "layer_idx", None)):
        return "dense_layer"
    if query.dtype not in (torch.bfloat16, torch.float16):
        return "dtype"
    device = query.device.type
    if not (device == "cuda" or (device == "cpu" and cfg.cpu_reference)):
        return "device"
    d = query.shape[-1]
    if value.shape[-1] != d or (device == "cuda" and d not in _CUDA_HEAD_DIMS):
        return "head_dim"
    if torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad):
        return "grad"
    return None


def _kernel_ready(t):
    """`t` when the kernels can read it in place (contiguous last dim; on the
    GPU 16-byte aligned with strides in multiples of 8 elements), else a
    contiguous copy."""
    import torch

    ok = t.stride(-1) == 1
    if ok and t.is_cuda:
        ok = t.data_ptr() % 16 == 0 and all(st % 8 == 0 for st in t.stride()[:-1])
    return t if ok else t.clone(memory_format=torch.contiguous_format)


def _static_cache_prefill(query, key, value, attention_mask):
    """SDPA's own rule for a prefill into an empty static cache: the mask
    function returned None (so the cache holds nothing before these tokens)
    while the keys span the whole cache; the first s_q keys are the prompt's."""
    s_q, s_k = query.shape[2], key.shape[2]
    if attention_mask is None and 1 < s_q < s_k:
        return key[:, :, :s_q], value[:, :, :s_q]
    return key, value


def attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                      scaling: Optional[float] = None, is_causal: Optional[bool] = None,
                      **kwargs):
    """The ``AttentionInterface`` function: ``query [b, h_q, s_q, d]``,
    ``key``/``value [b, h_kv, s_k, d]`` in, ``(out [b, s_q, h_q, d], None)``
    out, like transformers' SDPA function, which takes every call that
    flashprefill cannot (see :class:`PrefillStats.fallbacks` for the reasons).
    """
    # Decode steps are most calls: decide them before anything else.
    cfg = None if query.shape[2] == 1 else settings(getattr(module, "config", None))
    k_in, v_in = _static_cache_prefill(query, key, value, attention_mask)
    reason = "decode" if cfg is None else _fallback_reason(
        module, query, k_in, v_in, attention_mask, dropout, is_causal, kwargs, cfg)
    stats = _current_stats()
    layer = getattr(module, "layer_idx", None)
    if reason is not None:
        if stats is not None:
            stats._fallback(layer, reason)
        if reason not in ("decode", "short", "cached_prefix", "dense_layer"):
            _warn_once(reason, f"a {query.shape[2]}-token prefill cannot use flashprefill "
                               f"(reason: {reason})")
        return _sdpa()(module, query, key, value, attention_mask, dropout=dropout,
                       scaling=scaling, is_causal=is_causal, **kwargs)

    import flashprefill
    from flashprefill._eager import functional_plan

    b, hq, s, d = query.shape
    q, k, v = _kernel_ready(query), _kernel_ready(k_in), _kernel_ready(v_in)
    # Written through a [b, h, s, d] view of a [b, s, h, d] buffer: the caller
    # wants [b, s, h, d] (as SDPA's function returns), and the kernel takes
    # strided outputs, so no transpose copy is needed.
    out = query.new_empty((b, s, hq, d))
    ops = cfg.operator_kwargs()
    if stats is None:
        flashprefill.prefill(q, k, v, scale=scaling, out=out.transpose(1, 2), layout="bhsd", **ops)
    else:
        # The plan entry point takes a kept_counter: the library adds the
        # kept-block count on the device, so recording needs no sync.
        pre, plan = functional_plan(q, k, block_size=ops["block_size"],
                                    pooled_queries=ops["pooled_queries"], layout="bhsd",
                                    dtype=None)
        plan.prefill(q, k, v, alpha=ops["alpha"], sink=ops["sink"], window=ops["window"],
                     last_n=ops["last_n"], min_budget=ops["min_budget"],
                     threshold=ops["threshold"], scale=scaling, out=out.transpose(1, 2),
                     kept_counter=stats._counter(layer, q.device), layout="bhsd", _pre=pre)
        stats._prefill(layer, b, hq, s, plan.block_size)
    return out, None


def mask_function(*args, **kwargs):
    """The ``AttentionMaskInterface`` function: transformers' ``sdpa_mask``.

    It returns None (no mask is built) for a causal prefill without padding
    and for decode steps without padding, where :func:`attention_forward`
    knows the pattern from the shapes; otherwise a boolean
    ``[b, 1, s_q, s_k]`` mask, which sends the call to SDPA."""
    from transformers.masking_utils import sdpa_mask

    return sdpa_mask(*args, **kwargs)


# ---------------------------------------------------------------------------
# Continuous batching: "paged|<name>"
# ---------------------------------------------------------------------------


def _paged_fallback_reason(module, query, cache, attention_mask, dropout, kwargs, cfg):
    """Why this continuous-batching call goes to the stock paged SDPA (None:
    it runs flashprefill). Decode-only and short-chunk batches first."""
    import torch

    if kwargs.get("block_table") is not None:
        return "decode"  # transformers' block-table decode fast path
    if int(kwargs["max_seqlen_q"]) < max(cfg.min_chunk_len, 2):
        return "decode" if int(kwargs["max_seqlen_q"]) <= 1 else "short"
    max_k = kwargs["max_seqlen_k"]
    if isinstance(max_k, dict):
        if set(max_k) != {"full_attention"}:
            return "unsupported"  # sliding-window layer groups
        max_k = max_k["full_attention"]
    if int(max_k) < cfg.min_seq_len:
        return "short"
    layer = getattr(module, "layer_idx", None)
    if layer is None or cache.sliding_windows[layer] != 1:
        return "unsupported"
    if cfg.is_dense_layer(layer):
        return "dense_layer"
    if dropout:
        return "dropout"
    if (kwargs.get("position_bias") is not None or kwargs.get("softcap")
            or kwargs.get("s_aux") is not None or kwargs.get("sinks") is not None):
        return "unsupported"
    if query.dtype not in (torch.bfloat16, torch.float16):
        return "dtype"
    device = query.device.type
    if not (device == "cuda" or (device == "cpu" and cfg.cpu_reference)):
        return "device"
    if device == "cuda" and query.shape[-1] not in _CUDA_HEAD_DIMS:
        return "head_dim"
    page = cache.block_size
    if page < 1 or page > 256 or page & (page - 1):
        return "page_size"
    if torch.is_grad_enabled() and query.requires_grad:
        return "grad"
    return None


def _positions(module) -> Optional[int]:
    """The model's max_position_embeddings, if it has one."""
    value = getattr(getattr(module, "config", None), "max_position_embeddings", None)
    return int(value) if isinstance(value, numbers.Integral) and value > 0 else None


def _capturing(query) -> bool:
    import torch

    return query.is_cuda and torch.cuda.is_current_stream_capturing()


def _key_maximum(module, query, max_k: int) -> int:
    """The max_seqlen_k to size the call with. For CUDA graphs, continuous
    batching pads max_seqlen_k up to the whole cache's capacity (24M tokens
    for a small model on an H100), past what discovery's shared memory
    holds, in its eager warm-up as in the capture. The model's
    max_position_embeddings bounds every sequence it can run instead, so the
    warm-up creates the plan the capture then reuses (creating one inside a
    capture would load modules there and invalidate it)."""
    limit = _positions(module)
    if limit is not None and max_k > limit:
        return limit
    return max_k


def _stock_paged(module, query, key, value, attention_mask, dropout, scaling, kwargs):
    """transformers' paged SDPA. It needs the additive [1, 1, total_q,
    total_k] mask that continuous batching builds for non-flash
    implementations; a name with "flash" in it makes transformers skip it,
    so it is built here, on the device, from the offsets."""
    import torch
    from transformers.integrations.sdpa_paged import sdpa_attention_paged_forward

    if attention_mask is None:
        cu_q = kwargs["cu_seq_lens_q"].long()
        cu_k = kwargs["cu_seq_lens_k"]
        cu_k = (cu_k["full_attention"] if isinstance(cu_k, dict) else cu_k).long()
        total_q = query.shape[2]
        read = kwargs["read_index"]
        total_k = (read[0].numel() if read and read[0].numel() else key.shape[2])
        rows = torch.arange(total_q, device=query.device)
        cols = torch.arange(total_k, device=query.device)
        seq_r = torch.searchsorted(cu_q[1:], rows, right=True)
        seq_c = torch.searchsorted(cu_k[1:], cols, right=True)
        batch = cu_q.numel() - 1
        seq_r_c = seq_r.clamp(max=batch - 1)
        prefix = (cu_k[1:] - cu_k[:-1]) - (cu_q[1:] - cu_q[:-1])
        local_r = rows - cu_q[seq_r_c] + prefix[seq_r_c]  # the row's key position
        local_c = cols - cu_k[seq_c.clamp(max=batch - 1)]
        allowed = ((seq_r[:, None] == seq_c[None, :]) & (seq_r[:, None] < batch)
                   & (local_c[None, :] <= local_r[:, None]))
        attention_mask = torch.zeros((1, 1, total_q, total_k), dtype=query.dtype,
                                     device=query.device)
        attention_mask.masked_fill_(~allowed, torch.finfo(query.dtype).min)
    return sdpa_attention_paged_forward(module, query, key, value, attention_mask,
                                        dropout=dropout, scaling=scaling, **kwargs)


def _last_n_flags(cu_q, logits_indices):
    """[b] int32: 1 for the sequences whose last query row produces a logit
    (their prompt ends in this batch, or a decode step), which is where
    ``last_n`` applies (docs/semantics.md section 2)."""
    import torch

    last_rows = (cu_q[1:] - 1).long()
    has_rows = cu_q[1:] > cu_q[:-1]
    produces = (last_rows[:, None] == logits_indices.long()[None, :]).any(dim=1)
    return (produces & has_rows).to(torch.int32)


def _page_table(read_index, cu_k, max_seqlen_k, page_size):
    """[b, ceil(max_seqlen_k / page)] int32 page ids of transformers'
    per-token read slots (slot = block * page_size + offset, whole blocks per
    request), on the device without a host sync; entries past a sequence's
    pages are 0 and never read."""
    import torch

    cu_k = cu_k.long()
    pages = -(-int(max_seqlen_k) // page_size)
    at = torch.arange(pages, device=cu_k.device) * page_size
    lens = cu_k[1:] - cu_k[:-1]
    pos = (cu_k[:-1, None] + at[None, :]).clamp(max=max(read_index.numel() - 1, 0))
    table = torch.div(read_index[pos], page_size, rounding_mode="floor")
    return torch.where(at[None, :] < lens[:, None], table, 0).to(torch.int32).contiguous()


def paged_attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                            scaling: Optional[float] = None, **kwargs):
    """The ``"paged|<name>"`` function of continuous batching: ``query [1,
    h_q, total_q, d]`` (every sequence's new tokens packed), ``key`` /
    ``value [1, h_kv, total_q, d]`` (the new tokens' keys and values), the
    paged cache and offsets in `kwargs`; returns ``([1, total_q, h_q, d],
    None)``.

    A batch with a long chunk writes the new keys and values into the cache
    (as transformers' update does) and runs
    :func:`flashprefill.prefill_varlen` over the cache's pages: page size =
    the cache's block size, the page table read off transformers' read
    slots, ``apply_last_n`` where the batch produces a sequence's next
    token. A batch without cache reads (every sequence starts here) runs over
    the new keys packed. Other batches go to the stock paged SDPA."""
    cache = kwargs.get("cache")
    if cache is None:
        raise ValueError("paged attention was called without a paged attention cache (continuous "
                         "batching passes one); use the non-paged implementation for a standard "
                         "forward")
    cfg = settings(getattr(module, "config", None))
    reason = _paged_fallback_reason(module, query, cache, attention_mask, dropout, kwargs, cfg)
    stats = _current_stats()
    layer = getattr(module, "layer_idx", None)
    if reason is not None:
        if stats is not None:
            stats._fallback(layer, reason)
        if reason not in ("decode", "short", "dense_layer"):
            _warn_once("paged_" + reason, f"a continuous-batching batch cannot use flashprefill "
                                          f"(reason: {reason})")
        return _stock_paged(module, query, key, value, attention_mask, dropout, scaling, kwargs)

    import torch

    import flashprefill
    from flashprefill._eager import varlen_plan, varlen_problem

    group, in_group = cache.layer_index_to_group_indices[layer]
    k_cache, v_cache = cache.key_cache[in_group], cache.value_cache[in_group]
    new_k = key.transpose(1, 2).squeeze(0)  # [total_q, h_kv, d]
    new_v = value.transpose(1, 2).squeeze(0)
    k_cache.index_copy_(0, kwargs["write_index"][group], new_k)
    v_cache.index_copy_(0, kwargs["write_index"][group], new_v)

    q = query.transpose(1, 2).squeeze(0).contiguous()  # [total_q, h_q, d]
    cu_q = kwargs["cu_seq_lens_q"].to(torch.int32)
    cu_k = kwargs["cu_seq_lens_k"]
    max_k = kwargs["max_seqlen_k"]
    if isinstance(cu_k, dict):
        cu_k, max_k = cu_k["full_attention"], max_k["full_attention"]
    cu_k = cu_k.to(torch.int32)
    read = kwargs["read_index"][group]
    logits = kwargs.get("logits_indices")
    flags = None if logits is None else _last_n_flags(cu_q, logits)
    max_k = _key_maximum(module, query, int(max_k))
    max_q = min(max(int(kwargs["max_seqlen_q"]), 1), max(max_k, 1))
    maxima = dict(max_seqlen_q=max_q, max_seqlen_k=max(max_k, 1))
    if read.numel() == 0:  # every sequence starts here: K/V are the new tokens, packed
        kv = dict(cu_seqlens_k=cu_k)
        k_arg, v_arg = new_k.contiguous(), new_v.contiguous()
    else:
        page = cache.block_size
        shape = (-1, page) + tuple(k_cache.shape[1:])
        k_arg, v_arg = k_cache.view(shape), v_cache.view(shape)
        kv = dict(k_lens=(cu_k[1:] - cu_k[:-1]).contiguous(),
                  page_table=_page_table(read, cu_k, maxima["max_seqlen_k"], page))
    ops = cfg.operator_kwargs()
    pooled = ops.pop("pooled_queries")
    rule = dict(alpha=ops["alpha"], sink=ops["sink"], window=ops["window"], last_n=ops["last_n"],
                min_budget=ops["min_budget"], threshold=ops["threshold"], scale=scaling)
    if pooled:
        _warn_once("paged_pooled", "pooled_queries is not used by continuous batching yet")
    out = q.new_empty(q.shape)
    if stats is None:
        flashprefill.prefill_varlen(q, k_arg, v_arg, cu_q, apply_last_n=flags,
                                    block_size=ops["block_size"], out=out, **kv, **maxima, **rule)
    else:
        pre = varlen_problem(q, k_arg, v_arg, cu_q, kv.get("cu_seqlens_k"),
                             k_lens=kv.get("k_lens"), page_table=kv.get("page_table"),
                             apply_last_n=flags, out=out, dtype=None, **maxima)
        plan = varlen_plan(pre, ops["block_size"])
        plan.prefill_varlen(q, k_arg, v_arg, cu_q, kv.get("cu_seqlens_k"), out=out,
                            kept_counter=stats._counter(layer, q.device), _pre=pre, **rule)
        stats._prefill_varlen(layer, q.shape[1], cu_q, cu_k, plan.block_size)
    return out.unsqueeze(0), None


def _sdpa():
    global _sdpa_forward
    if _sdpa_forward is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        _sdpa_forward = sdpa_attention_forward
    return _sdpa_forward


def register(name: str = NAME, **defaults: Any) -> str:
    """Registers the backend with transformers under `name` (an
    ``attn_implementation`` value) and sets the process-wide default
    settings: ``register(alpha=0.05, min_seq_len=8192)``. Keys left out take
    the built-in defaults (each call replaces the previous defaults); a
    model's ``config.flashprefill`` dict overrides them per model.

    Idempotent; returns `name`.

    Raises:
        ImportError: transformers is missing or too old (needs 5.x:
            ``AttentionInterface`` and ``masking_utils.AttentionMaskInterface``).
        ValueError: an unknown or ill-typed setting.
    """
    global _defaults
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface
    except ImportError as error:
        raise ImportError(
            "flashprefill.integrations.transformers needs transformers 5.x (AttentionInterface "
            f"and masking_utils.AttentionMaskInterface; checked with 5.17): {error}") from error
    if not isinstance(name, str) or not name or "|" in name or "/" in name:
        raise ValueError(f"register(): name: expected an attn_implementation name without '|' or "
                         f"'/' (those mean paged attention and hub kernels), got {name!r}")
    _defaults = Settings().updated(defaults, "register()")
    _sdpa()
    # Both are class-level registries: every instance (and every model) sees them.
    AttentionInterface.register(name, attention_forward)
    AttentionMaskInterface.register(name, mask_function)
    # Continuous batching switches the model to "paged|<name>"; it builds its
    # own masks (none for names with "flash" in them), so no mask entry.
    AttentionInterface.register("paged|" + name, paged_attention_forward)
    if "flash" in name:
        _skip_flash_kernel_loading(name)
    return name


def _skip_flash_kernel_loading(name: str) -> None:
    """transformers 5.x takes every ``attn_implementation`` whose name
    contains "flash" for a FlashAttention kernel (``is_flash_attention_requested``
    is a substring test) and, when a model is built or switched to it, calls
    ``lazy_import_flash_attention(name)``, which tries to load it from the
    kernels hub and raises for "flashprefill". That loader is the only step
    that breaks (the other "flash" checks concern FA-only features: chunked
    masks, packed sequences, continuous batching), so teach it that our
    names have nothing to load: ``_lazy_imports`` (looked up as a module
    global on every call) returns no FlashAttention functions for them, a
    case transformers already handles for block-sparse hub kernels. Every
    other name goes to the original function.

    If this transformers version is laid out differently, the check at the
    end fails and the error says to register under a name without "flash",
    which needs none of this.
    """
    try:
        from transformers import modeling_flash_attention_utils as fa_utils

        original = fa_utils._lazy_imports
        names = getattr(original, "_flashprefill_names", None)
        if names is None:
            names = set()

            def _lazy_imports(implementation, *args, **kwargs):
                base = implementation.split("|")[-1] if isinstance(implementation, str) else None
                if base in names:
                    return (None, None, None, getattr(fa_utils, "_pad_input", None),
                            getattr(fa_utils, "_unpad_input", None))
                return original(implementation, *args, **kwargs)

            _lazy_imports._flashprefill_names = names
            _lazy_imports.__wrapped__ = original
            _lazy_imports.__doc__ = original.__doc__
            fa_utils._lazy_imports = _lazy_imports
        names.add(name)
        fa_utils.lazy_import_flash_attention(name)  # what building the model will do
    except Exception as error:
        raise RuntimeError(
            f"register(): transformers treats attn_implementation names containing 'flash' as "
            f"FlashAttention kernels and tries to load {name!r} from the kernels hub; teaching it "
            f"to skip that failed on this transformers version ({type(error).__name__}: {error}). "
            f"Register under a name without 'flash' instead, e.g. register(name='fp_sparse')"
        ) from error
