"""``transformers serve`` with the flashprefill backend.

transformers' OpenAI-compatible server (``transformers serve``) accepts only
its built-in attention names and hub kernels for ``--attn-implementation``.
This launcher registers the backend (:func:`flashprefill.integrations.
transformers.register`), lets the server's argument check accept the
registered name, and runs the server's own command line::

    python -m flashprefill.integrations.transformers_serve MODEL \\
        --continuous-batching --attn-implementation flashprefill [other serve flags]

With ``--continuous-batching`` the requests run through ``paged|flashprefill``
(long prefill chunks on transformers' paged cache, decode on the stock paged
SDPA); without it through ``flashprefill``. Settings come from the model
config's ``flashprefill`` dict, or from ``FLASHPREFILL_SETTINGS`` (a JSON
object passed to ``register()``, e.g. ``'{"alpha": 0.05}'``).

In a Python process, :func:`allow_registered_names` alone makes
``transformers.cli.serve.Serve(..., attn_implementation="flashprefill")``
work (the tests start the server that way).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Iterable, Optional

from . import transformers as fp_hf

__all__ = ["allow_registered_names", "main"]

_allowed: set = set()


def allow_registered_names(names: Iterable[str] = (fp_hf.NAME,)) -> None:
    """Lets ``transformers serve``'s model manager accept `names` (each must
    be registered with transformers' ``AttentionInterface``) as
    ``attn_implementation``. Every other name is checked by transformers as
    before. Idempotent."""
    try:
        from transformers import AttentionInterface
        from transformers.cli.serving import model_manager
    except ImportError as error:
        raise ImportError("transformers serve needs transformers 5.x with its serving extras: "
                          "pip install 'transformers[serving]'") from error
    for name in names:
        if name not in AttentionInterface._global_mapping:
            raise ValueError(f"names: {name!r} is not registered with transformers' "
                             "AttentionInterface; call flashprefill.integrations.transformers."
                             "register() first")
        _allowed.add(name)
    manager = model_manager.ModelManager
    if getattr(manager._validate_args, "_flashprefill", False):
        return
    original = manager._validate_args

    def _validate_args(self):
        # The check knows the built-in names only; ours are registered, and
        # from_pretrained resolves them through the AttentionInterface.
        name = self.attn_implementation
        if name not in _allowed:
            return original(self)
        self.attn_implementation = None
        try:
            return original(self)
        finally:
            self.attn_implementation = name

    _validate_args._flashprefill = True
    _validate_args.__wrapped__ = original
    manager._validate_args = _validate_args


def main(argv: Optional[list] = None) -> None:
    """``transformers serve`` with the backend registered (see the module
    docstring)."""
    settings = os.environ.get("FLASHPREFILL_SETTINGS")
    try:
        registered = fp_hf.register(**(json.loads(settings) if settings else {}))
    except (ValueError, TypeError) as error:
        raise SystemExit(f"FLASHPREFILL_SETTINGS: {error}") from error
    allow_registered_names([registered])
    from transformers.cli.transformers import app

    app(args=["serve"] + list(sys.argv[1:] if argv is None else argv),
        prog_name="transformers_serve")


if __name__ == "__main__":
    main()
